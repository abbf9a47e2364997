//! What a learner owns besides the merge of their reviews (`reviews.rs`): their settings and
//! parameter fits, the raw material of their statistics, their review history page by page,
//! and their erasure. Every statement here is one both databases accept.

use super::sql::Conn;
use super::{Store, StoreResult, decode_error, from_micros, now_micros};
use crate::domain::learners::{FitState, LearnerSettings, SettingsInput};
use sqlx::FromRow;

#[derive(FromRow)]
struct SettingsRow {
    desired_retention: f64,
    maximum_interval_days: i64,
    time_zone: String,
    parameters: Option<String>,
    fitted_at: Option<i64>,
    fitted_reviews: Option<i64>,
    fit_requested_at: Option<i64>,
    fit_started_at: Option<i64>,
    fit_note: Option<String>,
}

impl TryFrom<SettingsRow> for LearnerSettings {
    type Error = sqlx::Error;

    fn try_from(r: SettingsRow) -> Result<Self, Self::Error> {
        Ok(LearnerSettings {
            desired_retention: r.desired_retention,
            maximum_interval_days: r.maximum_interval_days,
            time_zone: r
                .time_zone
                .parse()
                .map_err(|_| decode_error(format!("time zone `{}`", r.time_zone)))?,
            parameters: r
                .parameters
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(decode_error)?,
            fitted_at: r.fitted_at.map(from_micros),
            fitted_reviews: r.fitted_reviews,
            fit_note: r.fit_note,
            fit: match (r.fit_requested_at, r.fit_started_at) {
                (Some(_), Some(_)) => FitState::Running,
                (Some(_), None) => FitState::Queued,
                _ => FitState::Idle,
            },
        })
    }
}

/// One review with the card's state before and after it, as the history lists it.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub review_id: Option<String>,
    pub question_id: i64,
    pub external_id: Option<String>,
    pub rating: String,
    pub reviewed_at: i64,
    pub stability: Option<f64>,
    pub difficulty: Option<f64>,
    pub interval_days: f64,
    pub before_stability: Option<f64>,
    pub before_difficulty: Option<f64>,
    pub before_reviewed_at: Option<i64>,
    pub before_interval_days: Option<f64>,
}

/// The statistics' period, a quarter hour at a time (every time zone's midnights fall on
/// quarter hours, so the service can put each in the learner's day exactly): reviews made in
/// it, of them rated `again`, of them of due cards (at or after the card's due time), and of
/// those, recalled. Aggregated in the database: a learner with 100,000 reviews sends a few
/// hundred rows, not 100,000.
#[derive(Debug, Clone, FromRow)]
pub struct PeriodQuarter {
    pub quarter: i64,
    pub reviews: i64,
    pub again: i64,
    pub due_reviews: i64,
    pub recalled: i64,
}

/// A learner's cards in figures: by state, the earliest due time, and how many fall due in
/// each quarter hour of the forecast.
#[derive(Debug, Clone, Default)]
pub struct CardFigures {
    pub cards: i64,
    /// Reviewed once, last interval under a day.
    pub learning: i64,
    /// Reviewed more than once, last interval under a day (forgotten and being relearned).
    pub relearning: i64,
    pub next_due: Option<i64>,
    /// (quarter hour, cards due in it) up to the forecast's horizon; overdue cards are in the
    /// quarters they fell due in.
    pub due_quarters: Vec<(i64, i64)>,
    /// Questions in the knowledge base.
    pub questions: i64,
}

#[derive(FromRow)]
struct CardCounts {
    cards: i64,
    learning: Option<i64>,
    relearning: Option<i64>,
    next_due: Option<i64>,
}

/// One review as a parameter fit reads it, card by card in time order.
#[derive(Debug, Clone, FromRow)]
pub struct FitReview {
    pub question_id: i64,
    pub rating: String,
    pub reviewed_at: i64,
}

/// A learner's settings as an export carries them.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedSettings {
    pub learner: String,
    pub desired_retention: f64,
    pub maximum_interval_days: i64,
    pub time_zone: String,
    pub parameters: Option<String>,
    pub fitted_at: Option<i64>,
    pub fitted_reviews: Option<i64>,
}

/// A review as an export carries it.
#[derive(Debug, Clone, FromRow)]
pub struct ExportedReview {
    pub id: i64,
    pub learner: String,
    pub review_id: Option<String>,
    pub question_id: i64,
    pub external_id: Option<String>,
    pub rating: String,
    pub reviewed_at: i64,
}

/// Every learner's settings, by learner (in a snapshot).
pub(super) async fn all_settings(c: &mut Conn<'_>) -> StoreResult<Vec<ExportedSettings>> {
    Ok(c.fetch_all(
        "SELECT learner, desired_retention, maximum_interval_days, time_zone, parameters,
            fitted_at, fitted_reviews
         FROM learner_settings ORDER BY learner",
        &[],
    )
    .await?)
}

/// Up to `limit` reviews after (`learner`, `id`), by learner and then as recorded.
pub(super) async fn reviews_page(
    c: &mut Conn<'_>,
    learner: &str,
    id: i64,
    limit: i64,
) -> StoreResult<Vec<ExportedReview>> {
    Ok(c.fetch_all(
        "SELECT r.id, r.learner, r.review_id, r.question_id, q.external_id, r.rating,
            r.reviewed_at
         FROM reviews r JOIN questions q ON q.id = r.question_id
         WHERE r.learner > $1 OR (r.learner = $1 AND r.id > $2)
         ORDER BY r.learner, r.id LIMIT $3",
        &[learner.into(), id.into(), limit.into()],
    )
    .await?)
}

impl Store {
    /// Sets everything a learner's settings hold, fitted parameters too (an import).
    pub async fn import_learner_settings(&self, s: &ExportedSettings) -> StoreResult<()> {
        let now = now_micros();
        self.write(async |c| {
            c.execute(
                "INSERT INTO learner_settings (learner, desired_retention, maximum_interval_days,
                    time_zone, parameters, fitted_at, fitted_reviews, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (learner) DO UPDATE SET desired_retention = $2,
                    maximum_interval_days = $3, time_zone = $4, parameters = $5,
                    fitted_at = $6, fitted_reviews = $7, updated_at = $8",
                &[
                    s.learner.as_str().into(),
                    s.desired_retention.into(),
                    s.maximum_interval_days.into(),
                    s.time_zone.as_str().into(),
                    s.parameters.as_deref().into(),
                    s.fitted_at.into(),
                    s.fitted_reviews.into(),
                    now.into(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The question whose import identity is `external_id`.
    pub async fn question_by_external_id(&self, external_id: &str) -> StoreResult<Option<i64>> {
        self.reading(async |c| {
            Ok(c.value(
                "SELECT id FROM questions WHERE external_id = $1",
                &[external_id.into()],
            )
            .await?)
        })
        .await
    }

    /// A learner's settings; the defaults for one who never set any.
    pub async fn learner_settings(&self, learner: &str) -> StoreResult<LearnerSettings> {
        self.reading(async |c| settings(c, learner).await).await
    }

    /// Sets what a learner may set; fitted parameters stay.
    pub async fn put_learner_settings(
        &self,
        learner: &str,
        input: &SettingsInput,
    ) -> StoreResult<LearnerSettings> {
        let now = now_micros();
        self.write(async |c| {
            c.execute(
                "INSERT INTO learner_settings (learner, desired_retention, maximum_interval_days,
                    time_zone, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (learner) DO UPDATE SET desired_retention = $2,
                    maximum_interval_days = $3, time_zone = $4, updated_at = $5",
                &[
                    learner.into(),
                    input.desired_retention.into(),
                    input.maximum_interval_days.into(),
                    input.time_zone.name().into(),
                    now.into(),
                ],
            )
            .await?;
            settings(c, learner).await
        })
        .await
    }

    /// Queues a fit of the learner's parameters; false when one is already queued or running.
    pub async fn request_fit(&self, learner: &str) -> StoreResult<bool> {
        let now = now_micros();
        let d = LearnerSettings::default();
        self.write(async |c| {
            c.execute(
                "INSERT INTO learner_settings (learner, desired_retention, maximum_interval_days,
                    time_zone, updated_at)
                 VALUES ($1, $2, $3, 'UTC', $4)
                 ON CONFLICT (learner) DO NOTHING",
                &[
                    learner.into(),
                    d.desired_retention.into(),
                    d.maximum_interval_days.into(),
                    now.into(),
                ],
            )
            .await?;
            Ok(c.execute(
                "UPDATE learner_settings SET fit_requested_at = $2
                 WHERE learner = $1 AND fit_requested_at IS NULL",
                &[learner.into(), now.into()],
            )
            .await?
                == 1)
        })
        .await
    }

    /// Takes the oldest queued fit for `owner` (or one whose fitter has not finished since
    /// `stale_before`, microseconds: it died); the learner, if there is one.
    pub async fn claim_fit(&self, owner: &str, stale_before: i64) -> StoreResult<Option<String>> {
        let now = now_micros();
        self.write_unflushed(async |c| {
            let next: Option<String> = c
                .value(
                    "SELECT learner FROM learner_settings
                     WHERE fit_requested_at IS NOT NULL
                       AND (fit_started_at IS NULL OR fit_started_at < $1)
                     ORDER BY fit_requested_at LIMIT 1",
                    &[stale_before.into()],
                )
                .await?;
            let Some(learner) = next else {
                return Ok(None);
            };
            let n = c
                .execute(
                    "UPDATE learner_settings SET fit_started_at = $2, fit_owner = $3
                     WHERE learner = $1 AND fit_requested_at IS NOT NULL
                       AND (fit_started_at IS NULL OR fit_started_at < $4)",
                    &[
                        learner.as_str().into(),
                        now.into(),
                        owner.into(),
                        stale_before.into(),
                    ],
                )
                .await?;
            Ok((n == 1).then_some(learner))
        })
        .await
    }

    /// Records a finished fit: parameters fitted from `reviews` reviews, or the defaults kept
    /// (`parameters` `None`) and why.
    pub async fn finish_fit(
        &self,
        learner: &str,
        owner: &str,
        parameters: Option<&[f32]>,
        reviews: i64,
        note: Option<&str>,
    ) -> StoreResult<()> {
        let now = now_micros();
        let json = parameters.map(|p| serde_json::to_string(p).expect("numbers serialize"));
        self.write(async |c| {
            c.execute(
                "UPDATE learner_settings SET
                    parameters = COALESCE($3, parameters),
                    fitted_at = CASE WHEN $3 IS NULL THEN fitted_at ELSE $4 END,
                    fitted_reviews = CASE WHEN $3 IS NULL THEN fitted_reviews ELSE $5 END,
                    fit_note = $6, fit_requested_at = NULL, fit_started_at = NULL,
                    fit_owner = NULL
                 WHERE learner = $1 AND fit_owner = $2",
                &[
                    learner.into(),
                    owner.into(),
                    json.as_deref().into(),
                    now.into(),
                    reviews.into(),
                    note.into(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Every review of a learner, card by card in time order, for a fit.
    pub async fn fit_reviews(&self, learner: &str) -> StoreResult<Vec<FitReview>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT question_id, rating, reviewed_at FROM reviews WHERE learner = $1
                 ORDER BY question_id, reviewed_at, id",
                &[learner.into()],
            )
            .await?)
        })
        .await
    }

    /// How many reviews a learner has.
    pub async fn review_count(&self, learner: &str) -> StoreResult<i64> {
        self.reading(async |c| {
            Ok(c.value(
                "SELECT count(*) FROM reviews WHERE learner = $1",
                &[learner.into()],
            )
            .await?
            .unwrap_or(0))
        })
        .await
    }

    /// A page of a learner's review history: reviews after row `after`, in the order they were
    /// recorded, each with its card's state before it.
    pub async fn review_history(
        &self,
        learner: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT r.id, r.review_id, r.question_id, q.external_id, r.rating, r.reviewed_at,
                    r.stability, r.difficulty, r.interval_days,
                    p.stability AS before_stability, p.difficulty AS before_difficulty,
                    p.reviewed_at AS before_reviewed_at, p.interval_days AS before_interval_days
                 FROM reviews r
                 LEFT JOIN questions q ON q.id = r.question_id
                 LEFT JOIN reviews p ON p.id = (
                    SELECT p2.id FROM reviews p2
                    WHERE p2.learner = r.learner AND p2.question_id = r.question_id
                      AND (p2.reviewed_at < r.reviewed_at
                           OR (p2.reviewed_at = r.reviewed_at AND p2.id < r.id))
                    ORDER BY p2.reviewed_at DESC, p2.id DESC LIMIT 1)
                 WHERE r.learner = $1 AND r.id > $2
                 ORDER BY r.id LIMIT $3",
                &[learner.into(), after.into(), limit.into()],
            )
            .await?)
        })
        .await
    }

    /// Up to `limit` of a learner's reviews after (`question_id`, `reviewed_at`, `id`) = `after`,
    /// card by card and each card's in time order, without the state before each (the caller
    /// carries it from the row before: one pass over the index, no lookup per review).
    pub async fn review_history_by_card(
        &self,
        learner: &str,
        after: (i64, i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT r.id, r.review_id, r.question_id, q.external_id, r.rating, r.reviewed_at,
                    r.stability, r.difficulty, r.interval_days,
                    CAST(NULL AS DOUBLE PRECISION) AS before_stability,
                    CAST(NULL AS DOUBLE PRECISION) AS before_difficulty,
                    CAST(NULL AS BIGINT) AS before_reviewed_at,
                    CAST(NULL AS DOUBLE PRECISION) AS before_interval_days
                 FROM reviews r
                 LEFT JOIN questions q ON q.id = r.question_id
                 WHERE r.learner = $1
                   AND (r.question_id > $2 OR (r.question_id = $2 AND (r.reviewed_at > $3
                        OR (r.reviewed_at = $3 AND r.id > $4))))
                 ORDER BY r.question_id, r.reviewed_at, r.id LIMIT $5",
                &[
                    learner.into(),
                    after.0.into(),
                    after.1.into(),
                    after.2.into(),
                    limit.into(),
                ],
            )
            .await?)
        })
        .await
    }

    /// A learner's reviews since `since` (microseconds), a quarter hour at a time.
    pub async fn period_quarters(
        &self,
        learner: &str,
        since: i64,
    ) -> StoreResult<Vec<PeriodQuarter>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT quarter, count(*) AS reviews, sum(again) AS again,
                    sum(due) AS due_reviews, sum(due * (1 - again)) AS recalled
                 FROM (SELECT r.reviewed_at / 900000000 AS quarter,
                        CASE WHEN r.rating = 'again' THEN 1 ELSE 0 END AS again,
                        CASE WHEN r.prior_due <= r.reviewed_at THEN 1 ELSE 0 END AS due
                       FROM reviews r WHERE r.learner = $1 AND r.reviewed_at >= $2) t
                 GROUP BY quarter",
                &[learner.into(), since.into()],
            )
            .await?)
        })
        .await
    }

    /// The quarter hours (microseconds / 900 000 000) in which a learner reviewed anything,
    /// as the review merge keeps them: every time zone's day boundaries fall on one, so they
    /// give the days of any zone.
    pub async fn review_quarter_hours(&self, learner: &str) -> StoreResult<Vec<i64>> {
        self.reading(async |c| {
            Ok(c.values(
                "SELECT quarter FROM review_quarters WHERE learner = $1 ORDER BY quarter",
                &[learner.into()],
            )
            .await?)
        })
        .await
    }

    /// A learner's cards in figures, the forecast up to `horizon` (microseconds).
    pub async fn card_figures(&self, learner: &str, horizon: i64) -> StoreResult<CardFigures> {
        self.reading(async |c| {
            let counts: CardCounts = c
                .fetch_one(
                    "SELECT count(*) AS cards,
                        sum(CASE WHEN interval_days < 1 AND reps <= 1 THEN 1 ELSE 0 END)
                            AS learning,
                        sum(CASE WHEN interval_days < 1 AND reps > 1 THEN 1 ELSE 0 END)
                            AS relearning,
                        min(due) AS next_due
                     FROM review_cards WHERE learner = $1",
                    &[learner.into()],
                )
                .await?;
            let due_quarters = c
                .fetch_all(
                    "SELECT due / 900000000 AS quarter, count(*) FROM review_cards
                     WHERE learner = $1 AND due < $2 GROUP BY due / 900000000",
                    &[learner.into(), horizon.into()],
                )
                .await?;
            let questions: i64 = c
                .value("SELECT count(*) FROM questions", &[])
                .await?
                .unwrap_or(0);
            Ok(CardFigures {
                cards: counts.cards,
                learning: counts.learning.unwrap_or(0),
                relearning: counts.relearning.unwrap_or(0),
                next_due: counts.next_due,
                due_quarters,
                questions,
            })
        })
        .await
    }

    /// Erases a learner: cards, reviews, settings and stored idempotent answers; and records
    /// `hash` (a keyed hash of the id, not the id) so that tokens issued until now are refused.
    /// Returns how many rows went.
    pub async fn erase_learner(&self, learner: &str, hash: &str) -> StoreResult<u64> {
        let now = now_micros();
        self.write(async |c| {
            let mut gone = 0;
            for sql in [
                "DELETE FROM review_cards WHERE learner = $1",
                "DELETE FROM reviews WHERE learner = $1",
                "DELETE FROM review_quarters WHERE learner = $1",
                "DELETE FROM learner_settings WHERE learner = $1",
                "DELETE FROM idempotency_keys WHERE learner = $1",
            ] {
                gone += c.execute(sql, &[learner.into()]).await?;
            }
            c.execute(
                "INSERT INTO erased_learners (learner_hash, erased_at) VALUES ($1, $2)
                 ON CONFLICT (learner_hash) DO UPDATE SET erased_at = $2",
                &[hash.into(), now.into()],
            )
            .await?;
            Ok(gone)
        })
        .await
    }

    /// When the learner of `hash` was last erased (microseconds), if ever.
    pub async fn learner_erased_at(&self, hash: &str) -> StoreResult<Option<i64>> {
        self.reading(async |c| {
            Ok(c.value(
                "SELECT erased_at FROM erased_learners WHERE learner_hash = $1",
                &[hash.into()],
            )
            .await?)
        })
        .await
    }

    /// Forgets erasures older than `before` (microseconds): no token issued before them is
    /// still valid.
    pub async fn prune_erasures(&self, before: i64) -> StoreResult<u64> {
        self.write(async |c| {
            Ok(c.execute(
                "DELETE FROM erased_learners WHERE erased_at < $1",
                &[before.into()],
            )
            .await?)
        })
        .await
    }
}

async fn settings(c: &mut Conn<'_>, learner: &str) -> StoreResult<LearnerSettings> {
    let row: Option<SettingsRow> = c
        .fetch_optional(
            "SELECT desired_retention, maximum_interval_days, time_zone, parameters, fitted_at,
                fitted_reviews, fit_requested_at, fit_started_at, fit_note
             FROM learner_settings WHERE learner = $1",
            &[learner.into()],
        )
        .await?;
    Ok(row
        .map(LearnerSettings::try_from)
        .transpose()?
        .unwrap_or_default())
}
