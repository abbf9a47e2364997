-- Idempotent POSTs: the answer to a request made with an `Idempotency-Key`, kept for 24 hours
-- under the caller's scope and the key (docs/idempotency.md), written in the same transaction
-- as the request's effect. On PostgreSQL a row is also the claim of a running request
-- (`running`, with a token and a lease); here the one kb process serving the file holds those
-- claims in memory, so its rows are `done`, but the table has the same shape and rules.
-- An ordinary rowid table: a row holds a whole response body, too large for WITHOUT ROWID.
CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 (hex) of method, path and query, and body; NULL while a streamed body is read.
    fingerprint TEXT,
    -- The learner named in the path, so that erasing a learner can erase their answers too.
    learner     TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done')),
    claim       TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    status      INTEGER,
    -- JSON array of [name, value] pairs.
    headers     TEXT,
    body        BLOB,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK (state = 'running' OR (status IS NOT NULL AND headers IS NOT NULL AND body IS NOT NULL))
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_by_learner ON idempotency_keys (learner) WHERE learner IS NOT NULL;
