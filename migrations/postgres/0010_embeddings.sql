-- Search by meaning: one vector per question and embedding model, derived data like the search
-- index (it can always be computed again), kept in the database so every replica shares it and
-- a new replica embeds nothing. `version` is the question version it was computed for and
-- `content_hash` the SHA-256 of the text embedded, so an edit that leaves the embedded text
-- alone costs no new embedding. A vector is `dim` little-endian f32s, L2-normalised.
-- `seq` grows with every vector written (a replaced vector is deleted and inserted again), so
-- replicas follow new vectors by `seq`, as they follow the change log.
CREATE TABLE embeddings (
    seq          BIGSERIAL PRIMARY KEY,
    question_id  BIGINT NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    model        TEXT NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    version      BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    dim          INTEGER NOT NULL CHECK (dim BETWEEN 1 AND 8192),
    vector       BYTEA NOT NULL CHECK (length(vector) = 4 * dim),
    embedded_at  BIGINT NOT NULL,
    UNIQUE (question_id, model)
);
CREATE INDEX embeddings_by_model ON embeddings (model, seq);

-- Which replica embeds (one at a time, so the embedder is asked once per question version):
-- the holder renews its lease while it works; another replica takes over once it lapses.
CREATE TABLE embedder_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO embedder_lease (id, holder, expires_at) VALUES (1, '', 0);
