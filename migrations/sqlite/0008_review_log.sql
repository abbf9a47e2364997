-- Reviews that merge: a card is the FSRS fold of its reviews in `reviewed_at` order, so a late
-- review (an offline device) is placed where it belongs and the card recomputed.
--
-- `review_id` is the client's id for a review (unique per learner): uploaded twice, it is
-- applied once. `stability` and `difficulty` are the memory state the review led to, kept in
-- step with `interval_days` whenever the card is replayed, so a replay starts at the first
-- review that changed; rows written before this migration have none until their card is next
-- replayed (from its first review). The card keeps the interval its last review set, which a
-- duplicate upload is answered with.
ALTER TABLE reviews ADD COLUMN review_id TEXT
    CHECK (review_id IS NULL OR length(review_id) BETWEEN 1 AND 64);
ALTER TABLE reviews ADD COLUMN stability REAL;
ALTER TABLE reviews ADD COLUMN difficulty REAL;
CREATE UNIQUE INDEX reviews_by_review_id ON reviews (learner, review_id)
    WHERE review_id IS NOT NULL;
CREATE INDEX reviews_by_card ON reviews (learner, question_id, reviewed_at);

ALTER TABLE review_cards ADD COLUMN interval_days REAL NOT NULL DEFAULT 0;
UPDATE review_cards SET interval_days = coalesce((
    SELECT r.interval_days FROM reviews r
    WHERE r.learner = review_cards.learner AND r.question_id = review_cards.question_id
    ORDER BY r.reviewed_at DESC, r.id DESC LIMIT 1), 0);
