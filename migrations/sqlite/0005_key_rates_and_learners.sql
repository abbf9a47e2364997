-- Keys gain the `learners` scope (acting for learners: their reviews and due lists) and a
-- quota of their own (`rate`, request units per minute; NULL: the server's default for keys).
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.
CREATE TABLE api_keys_new (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'learners', 'admin')),
    key_hash     TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    rate         INTEGER CHECK (rate IS NULL OR rate > 0)
);
INSERT INTO api_keys_new (id, name, scope, key_hash, prefix, created_at, revoked_at)
    SELECT id, name, scope, key_hash, prefix, created_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
