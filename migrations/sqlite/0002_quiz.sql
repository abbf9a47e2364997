-- Quiz draws, sessions, and spaced-repetition state.

-- Every question sits in a few pools ('all', 'c:<category id>', 'd:<difficulty>',
-- 't:<tag id>') at a dense slot 1..size. A uniform draw picks random slots: O(log n) however
-- large the table, no ORDER BY RANDOM(). Removing a question moves the pool's last member into
-- its slot, so slots stay dense.
CREATE TABLE quiz_pools (
    pool TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0)
) WITHOUT ROWID;

CREATE TABLE quiz_slots (
    pool        TEXT NOT NULL,
    slot        INTEGER NOT NULL CHECK (slot >= 1),
    question_id INTEGER NOT NULL,
    PRIMARY KEY (pool, slot)
) WITHOUT ROWID;
CREATE UNIQUE INDEX quiz_slots_by_question ON quiz_slots (question_id, pool);

INSERT INTO quiz_slots (pool, slot, question_id)
    SELECT 'all', row_number() OVER (ORDER BY id), id FROM questions;
INSERT INTO quiz_slots (pool, slot, question_id)
    SELECT 'c:' || category_id, row_number() OVER (PARTITION BY category_id ORDER BY id), id
    FROM questions;
INSERT INTO quiz_slots (pool, slot, question_id)
    SELECT 'd:' || difficulty, row_number() OVER (PARTITION BY difficulty ORDER BY id), id
    FROM questions;
INSERT INTO quiz_slots (pool, slot, question_id)
    SELECT 't:' || tag_id, row_number() OVER (PARTITION BY tag_id ORDER BY question_id), question_id
    FROM question_tags;
INSERT INTO quiz_pools (pool, size) SELECT pool, count(*) FROM quiz_slots GROUP BY pool;

-- A no-repeat session. The token is a bearer secret: only its SHA-256 is stored.
CREATE TABLE quiz_sessions (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    category    TEXT,
    tag         TEXT,
    difficulty  TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX quiz_sessions_by_expiry ON quiz_sessions (expires_at);

CREATE TABLE quiz_session_served (
    token_hash  TEXT NOT NULL REFERENCES quiz_sessions (token_hash) ON DELETE CASCADE,
    question_id INTEGER NOT NULL,
    PRIMARY KEY (token_hash, question_id)
) WITHOUT ROWID;

-- FSRS memory state per learner and question, and the log of every review.
CREATE TABLE review_cards (
    learner     TEXT NOT NULL,
    question_id INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    stability   REAL NOT NULL,
    difficulty  REAL NOT NULL,
    due         INTEGER NOT NULL,
    last_review INTEGER NOT NULL,
    reps        INTEGER NOT NULL,
    PRIMARY KEY (learner, question_id)
) WITHOUT ROWID;
CREATE INDEX review_cards_by_due ON review_cards (learner, due);

CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY,
    learner       TEXT NOT NULL,
    question_id   INTEGER NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    rating        TEXT NOT NULL CHECK (rating IN ('again', 'hard', 'good', 'easy')),
    reviewed_at   INTEGER NOT NULL,
    interval_days REAL NOT NULL
);
CREATE INDEX reviews_by_learner ON reviews (learner, reviewed_at);
