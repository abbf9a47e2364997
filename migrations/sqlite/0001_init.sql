-- kb schema, version 1. Timestamps are INTEGER microseconds since the Unix epoch (UTC):
-- compact, exact, and ordered the same way as time.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE categories (
    id         INTEGER PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 50),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at INTEGER NOT NULL
);

-- AUTOINCREMENT: ids are never reused, so a stale id (or ETag) can never name a new question.
CREATE TABLE questions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    body        TEXT CHECK (body IS NULL OR length(body) BETWEEN 1 AND 100000),
    category_id INTEGER NOT NULL REFERENCES categories (id) ON DELETE RESTRICT,
    difficulty  TEXT NOT NULL CHECK (difficulty IN ('easy', 'medium', 'hard')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
);
-- The list is ordered by id (the cursor); each filter gets an index ending in id.
CREATE INDEX questions_by_category ON questions (category_id, id);
CREATE INDEX questions_by_difficulty ON questions (difficulty, id);
CREATE INDEX questions_by_updated ON questions (updated_at, id);

CREATE TABLE answers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
);
CREATE INDEX answers_by_question ON answers (question_id, id);

CREATE TABLE tags (
    id   INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 50)
);

CREATE TABLE question_tags (
    question_id INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    tag_id      INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL CHECK (position >= 0),
    PRIMARY KEY (question_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX question_tags_by_tag ON question_tags (tag_id, question_id);

-- The change log that feeds the search index: every write to a question appends its id here
-- in the same transaction. The indexer applies entries in seq order and records the last one
-- it committed, so a crash can delay the index but never make it disagree with these tables.
CREATE TABLE index_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
