-- Where each replica's search index stands in the change log (one row per data directory),
-- so the log is pruned only below what every live replica has applied.
CREATE TABLE replicas (
    name    TEXT PRIMARY KEY NOT NULL,
    applied INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
