-- The change log becomes the change feed as well (the same columns as SQLite's migration
-- 0010): what happened (`event`), the category it concerns (for the feed's filter), and the
-- event's payload as the API rendered it at commit (`data`). A category event has
-- `question_id` 0, which the search index skips; entries from before this migration have no
-- event and are skipped by the feed.
ALTER TABLE index_changes ADD COLUMN event TEXT;
ALTER TABLE index_changes ADD COLUMN category TEXT;
ALTER TABLE index_changes ADD COLUMN data TEXT;
CREATE INDEX index_changes_by_time ON index_changes (created_at);
