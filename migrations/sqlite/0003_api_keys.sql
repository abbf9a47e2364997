-- API keys. Only the SHA-256 of a key is stored; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    key_hash     TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
