-- Learners own their data (docs/learners.md). A learner's settings: the retention FSRS aims
-- for, the longest interval, the time zone their days are counted in, and the FSRS parameters
-- fitted to their own review log (NULL: the defaults). A fit is queued by setting
-- `fit_requested_at`; the replica that runs it holds `fit_owner` from `fit_started_at`.
CREATE TABLE learner_settings (
    learner               TEXT PRIMARY KEY NOT NULL,
    desired_retention     DOUBLE PRECISION NOT NULL CHECK (desired_retention BETWEEN 0.7 AND 0.97),
    maximum_interval_days BIGINT NOT NULL CHECK (maximum_interval_days BETWEEN 1 AND 36500),
    time_zone             TEXT NOT NULL,
    -- JSON array of FSRS parameters.
    parameters            TEXT,
    fitted_at             BIGINT,
    fitted_reviews        BIGINT,
    fit_requested_at      BIGINT,
    fit_started_at        BIGINT,
    fit_owner             TEXT,
    -- Why the last fit kept the defaults (too few reviews), if it did.
    fit_note              TEXT,
    updated_at            BIGINT NOT NULL
);

-- Erased learners, by a keyed hash of their id (HMAC-SHA256 under the learner-token key, so
-- the id itself is not kept): a learner token issued before `erased_at` is refused. A row
-- outlives the longest token's lifetime only until it is pruned.
CREATE TABLE erased_learners (
    learner_hash TEXT PRIMARY KEY NOT NULL,
    erased_at    BIGINT NOT NULL
);
