-- The change log becomes the change feed as well. Each entry now says what happened (`event`:
-- question.created, question.updated, question.deleted, category.created, ...), the slug of
-- the category it concerns (for the feed's category filter; a deleted question's last one),
-- and `data`: the event's payload as the API renders it at commit (the question, the category,
-- or a deletion's tombstone), so the feed and webhooks show what each change was, not what
-- the row is now. A category event has `question_id` 0, which the search index skips.
-- Entries from before this migration have no event: the index applies them, the feed skips
-- them. The feed keeps entries for its own retention (KB_CHANGES_RETENTION), not only until
-- every replica's index has applied them.
ALTER TABLE index_changes ADD COLUMN event TEXT;
ALTER TABLE index_changes ADD COLUMN category TEXT;
ALTER TABLE index_changes ADD COLUMN data TEXT;
CREATE INDEX index_changes_by_time ON index_changes (created_at);
