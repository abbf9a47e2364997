-- Bulk import identity. `external_id` is the importer's stable id for a question (unique when
-- present); `import_hash` is the SHA-256 of the bulk line a question was last imported from.
-- Re-importing a line whose hash matches changes nothing; a line without `external_id` is
-- identified by its hash alone.
ALTER TABLE questions ADD COLUMN external_id TEXT CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 200);
ALTER TABLE questions ADD COLUMN import_hash TEXT;
CREATE UNIQUE INDEX questions_by_external_id ON questions (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX questions_by_import_hash ON questions (import_hash) WHERE import_hash IS NOT NULL;
