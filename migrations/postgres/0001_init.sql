-- kb schema for PostgreSQL: the same tables as the SQLite migrations 0001-0007 reach, in one
-- step. Timestamps are BIGINT microseconds since the Unix epoch (UTC), as in SQLite, so both
-- stores share one row format. sqlx applies migrations under an advisory lock: replicas that
-- start together migrate once.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE categories (
    id         BIGSERIAL PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 50),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at BIGINT NOT NULL
);

-- Sequences never hand an id out twice, so a stale id (or ETag) can never name a new question.
CREATE TABLE questions (
    id          BIGSERIAL PRIMARY KEY,
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    body        TEXT CHECK (body IS NULL OR length(body) BETWEEN 1 AND 100000),
    category_id BIGINT NOT NULL REFERENCES categories (id) ON DELETE RESTRICT,
    difficulty  TEXT NOT NULL CHECK (difficulty IN ('easy', 'medium', 'hard')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1),
    external_id TEXT CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 200),
    import_hash TEXT
);
CREATE INDEX questions_by_category ON questions (category_id, id);
CREATE INDEX questions_by_difficulty ON questions (difficulty, id);
CREATE INDEX questions_by_updated ON questions (updated_at, id);
CREATE UNIQUE INDEX questions_by_external_id ON questions (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX questions_by_import_hash ON questions (import_hash) WHERE import_hash IS NOT NULL;

CREATE TABLE answers (
    id          BIGSERIAL PRIMARY KEY,
    question_id BIGINT NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    body        TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 100000),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1)
);
CREATE INDEX answers_by_question ON answers (question_id, id);

CREATE TABLE tags (
    id   BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 50)
);

CREATE TABLE question_tags (
    question_id BIGINT NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    tag_id      BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL CHECK (position >= 0),
    PRIMARY KEY (question_id, tag_id)
);
CREATE INDEX question_tags_by_tag ON question_tags (tag_id, question_id);

-- The change log that feeds every replica's search index. A sequence's order is not commit
-- order when transactions append concurrently, so appends are serialised: every transaction
-- that appends takes the advisory lock `change_log` first and holds it until it commits (see
-- src/store/postgres). A reader that saw sequence n has then seen everything below n.
CREATE TABLE index_changes (
    seq         BIGSERIAL PRIMARY KEY,
    question_id BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE replicas (
    name    TEXT PRIMARY KEY,
    applied BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);

CREATE TABLE quiz_pools (
    pool TEXT PRIMARY KEY,
    size BIGINT NOT NULL CHECK (size >= 0)
);

CREATE TABLE quiz_slots (
    pool        TEXT NOT NULL,
    slot        BIGINT NOT NULL CHECK (slot >= 1),
    question_id BIGINT NOT NULL,
    PRIMARY KEY (pool, slot)
);
CREATE UNIQUE INDEX quiz_slots_by_question ON quiz_slots (question_id, pool);

CREATE TABLE quiz_sessions (
    token_hash  TEXT PRIMARY KEY,
    category    TEXT,
    tag         TEXT,
    difficulty  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX quiz_sessions_by_expiry ON quiz_sessions (expires_at);

CREATE TABLE quiz_session_served (
    token_hash  TEXT NOT NULL REFERENCES quiz_sessions (token_hash) ON DELETE CASCADE,
    question_id BIGINT NOT NULL,
    PRIMARY KEY (token_hash, question_id)
);

CREATE TABLE review_cards (
    learner     TEXT NOT NULL,
    question_id BIGINT NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    stability   DOUBLE PRECISION NOT NULL,
    difficulty  DOUBLE PRECISION NOT NULL,
    due         BIGINT NOT NULL,
    last_review BIGINT NOT NULL,
    reps        BIGINT NOT NULL,
    PRIMARY KEY (learner, question_id)
);
CREATE INDEX review_cards_by_due ON review_cards (learner, due);

CREATE TABLE reviews (
    id            BIGSERIAL PRIMARY KEY,
    learner       TEXT NOT NULL,
    question_id   BIGINT NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    rating        TEXT NOT NULL CHECK (rating IN ('again', 'hard', 'good', 'easy')),
    reviewed_at   BIGINT NOT NULL,
    interval_days DOUBLE PRECISION NOT NULL
);
CREATE INDEX reviews_by_learner ON reviews (learner, reviewed_at);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'learners', 'admin')),
    key_hash     TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    rate         BIGINT CHECK (rate IS NULL OR rate > 0)
);

CREATE TABLE synonyms (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    body    TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1)
);
