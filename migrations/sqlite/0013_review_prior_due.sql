-- Each review keeps the due time its card had when the review was made (NULL for a card's
-- first review): a learner's retention ("recalled when due") is then a plain aggregate over
-- the period, not a look-up of the previous review for every review in it. The review merge
-- keeps it so when a late review is slotted into a card's log (docs/learners.md).
ALTER TABLE reviews ADD COLUMN prior_due INTEGER;

UPDATE reviews SET prior_due = (
    SELECT p.reviewed_at + CAST(p.interval_days * 86400000000 AS INTEGER)
    FROM reviews p
    WHERE p.learner = reviews.learner AND p.question_id = reviews.question_id
      AND (p.reviewed_at < reviews.reviewed_at
           OR (p.reviewed_at = reviews.reviewed_at AND p.id < reviews.id))
    ORDER BY p.reviewed_at DESC, p.id DESC LIMIT 1);
