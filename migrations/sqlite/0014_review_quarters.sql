-- The quarter hours in which each learner reviewed anything (reviewed_at / 900,000,000 µs):
-- every time zone's day boundaries fall on a quarter hour, so these give a learner's study
-- days (and streaks) in any zone without reading every review. Written by the review merge
-- with the reviews; a review's quarter stays when its question is deleted (the learner did
-- study then).
CREATE TABLE review_quarters (
    learner TEXT NOT NULL,
    quarter INTEGER NOT NULL,
    PRIMARY KEY (learner, quarter)
) WITHOUT ROWID;

INSERT INTO review_quarters (learner, quarter)
SELECT DISTINCT learner, reviewed_at / 900000000 FROM reviews;
