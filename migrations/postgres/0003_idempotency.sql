-- Idempotent POSTs: the answer to a request made with an `Idempotency-Key`, kept for 24 hours
-- under the caller's scope and the key (docs/idempotency.md). A row is `running` while its
-- request is (a claim with a token and a lease, taken over once the lease ends), and `done`
-- once it holds the answer, written in the same transaction as the request's effect.
CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 (hex) of method, path and query, and body; NULL while a streamed body is read.
    fingerprint TEXT,
    -- The learner named in the path, so that erasing a learner can erase their answers too.
    learner     TEXT,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done')),
    claim       TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    status      BIGINT,
    -- JSON array of [name, value] pairs.
    headers     TEXT,
    body        BYTEA,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK (state = 'running' OR (status IS NOT NULL AND headers IS NOT NULL AND body IS NOT NULL))
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_by_learner ON idempotency_keys (learner) WHERE learner IS NOT NULL;
