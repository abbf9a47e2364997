-- The knowledge base's synonym table (GET/PUT /api/v1/synonyms): one row, the table as JSON in
-- the API's shape, and a version for ETags. No row means the default: the built-in
-- programming synonyms on, no sets of its own. Synonyms apply at query time: no reindex.
CREATE TABLE synonyms (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1)
);
