//! What a learner owns, over HTTP: their progress (`…/stats`), their review history
//! (`…/reviews`, pages or NDJSON), their erasure (`DELETE /api/v1/learners/{learner}`) and
//! their settings with the parameter fit (`…/settings`, `…/settings/fit`). Same access as the
//! learner's other routes: their own token or a key with `learners` scope.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, Query};
use super::learners::Learner;
use super::shared::parse_limit;
use crate::domain::FieldErrors;
use crate::domain::learners::{
    LearnerSettings, SettingsInput, Stats, parse_days, parse_interval, parse_retention,
    parse_time_zone,
};
use crate::store::HistoryRow;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Rows read per page while streaming a whole history as NDJSON.
const STREAM_PAGE: i64 = 5_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Days of history, ending today, 1–365.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 365, default = 30)]
    pub days: Option<String>,
    /// The IANA time zone days are counted in; default: the learner's setting (UTC unless
    /// set).
    #[param(value_type = Option<String>, example = "Asia/Shanghai", format = "kb:time-zone")]
    pub tz: Option<String>,
}

/// Reviews on one day of the learner's calendar.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayOut {
    #[schema(value_type = String, format = Date, example = "2026-12-05")]
    pub date: NaiveDate,
    pub reviews: i64,
    /// Of them, rated `again`.
    pub again: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreakOut {
    /// Consecutive days with a review, ending today (or yesterday, until today's first).
    pub current: i64,
    pub longest: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardsOut {
    /// Questions never reviewed.
    pub new: i64,
    /// Reviewed once, interval under a day.
    pub learning: i64,
    /// Remembered for a day or more.
    pub review: i64,
    /// Reviewed more than once, interval back under a day: forgotten, being relearned.
    pub relearning: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastOut {
    #[schema(value_type = String, format = Date, example = "2026-12-06")]
    pub date: NaiveDate,
    /// Cards due that day (today: overdue ones too).
    pub due: i64,
}

/// A learner's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsOut {
    /// One per day of the period, oldest first, in the learner's time zone.
    pub days: Vec<DayOut>,
    pub streak: StreakOut,
    /// Share of the period's reviews of due cards (at or after their due time) not rated
    /// `again` (true retention); `null` without any.
    pub retention: Option<f64>,
    pub cards: CardsOut,
    /// Cards due per day for the next 30 days, today first.
    pub forecast: Vec<ForecastOut>,
    /// When the next card is (or was: overdue) due; `null` without cards.
    pub next_due_at: Option<DateTime<Utc>>,
    /// The time zone the days are counted in.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
}

impl StatsOut {
    fn new(s: Stats, time_zone: String) -> Self {
        Self {
            days: s
                .days
                .into_iter()
                .map(|d| DayOut {
                    date: d.date,
                    reviews: d.reviews,
                    again: d.again,
                })
                .collect(),
            streak: StreakOut {
                current: s.streak_current,
                longest: s.streak_longest,
            },
            retention: s.retention,
            cards: CardsOut {
                new: s.cards.new,
                learning: s.cards.learning,
                review: s.cards.review,
                relearning: s.cards.relearning,
            },
            forecast: s
                .forecast
                .into_iter()
                .map(|(date, due)| ForecastOut { date, due })
                .collect(),
            next_due_at: s.next_due_at,
            time_zone,
        }
    }
}

/// Progress
///
/// Reviews per day, streaks, true retention, cards by state and the due forecast, counted in
/// the learner's time zone. A learner with no reviews gets zeros, not 404.
#[utoipa::path(
    get, path = "/api/v1/learners/{learner}/stats", tag = "learners",
    params(("learner" = String, Path, description = "Learner id", format = "kb:learner"), StatsParams),
    responses(
        (status = 200, description = "The learner's progress", body = StatsOut),
        (status = 400, description = "Malformed learner id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`days` out of range or an unknown time zone", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    Learner(learner): Learner,
    Query(params): Query<StatsParams>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let days = match params.days.as_deref() {
        None => Some(30),
        Some(raw) => e.check("days", parse_days(raw)),
    };
    let tz = match params.tz.as_deref() {
        None => None,
        Some(raw) => e.check("tz", parse_time_zone(raw)),
    };
    e.finish()?;
    let tz = match tz {
        Some(tz) => tz,
        None => state.service.learner_settings(&learner).await?.time_zone,
    };
    let s = state
        .service
        .stats(&learner, days.unwrap_or(30), tz)
        .await?;
    Ok(axum::Json(StatsOut::new(s, tz.name().to_string())).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// A `next_cursor` from the previous page.
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,17}$")]
    pub after: Option<String>,
    /// Reviews per page, 1–1000.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<String>,
}

/// A card's memory state around a review.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardStateOut {
    /// `null` for reviews recorded before kb kept states, until the card is next replayed.
    pub stability: Option<f64>,
    pub difficulty: Option<f64>,
    /// When the card was due.
    pub due: DateTime<Utc>,
}

/// One review of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    /// The client's id for the review, if it sent one.
    pub review_id: Option<String>,
    pub question_id: i64,
    /// The question's import identity: what matches it on another knowledge base.
    pub external_id: Option<String>,
    #[schema(value_type = crate::quiz::Rating)]
    pub rating: String,
    pub reviewed_at: DateTime<Utc>,
    /// The card before this review; `null` for its first.
    pub before: Option<CardStateOut>,
    /// The card after it.
    pub after: CardStateOut,
}

impl From<HistoryRow> for HistoryItem {
    fn from(r: HistoryRow) -> Self {
        let at = |us: i64| DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default();
        let after_micros = |from: i64, days: f64| from + (days * 86_400_000_000.0) as i64;
        HistoryItem {
            review_id: r.review_id,
            question_id: r.question_id,
            external_id: r.external_id,
            rating: r.rating,
            reviewed_at: at(r.reviewed_at),
            before: r.before_reviewed_at.map(|prev| CardStateOut {
                stability: r.before_stability,
                difficulty: r.before_difficulty,
                due: at(after_micros(prev, r.before_interval_days.unwrap_or(0.0))),
            }),
            after: CardStateOut {
                stability: r.stability,
                difficulty: r.difficulty,
                due: at(after_micros(r.reviewed_at, r.interval_days)),
            },
        }
    }
}

/// A page of a learner's review history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// In the order they were recorded.
    pub items: Vec<HistoryItem>,
    /// Pass it as `after` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Review history
///
/// Every review of the learner, in the order recorded, with the card's state before and after
/// each. With `Accept: application/x-ndjson` the whole history streams as one review per line,
/// card by card and each card's reviews in time order (`after` and `limit` do not apply). Each item is a valid item of `…/reviews/batch` on
/// another kb once its `question_id` is mapped through `external_id`.
#[utoipa::path(
    get, path = "/api/v1/learners/{learner}/reviews", tag = "learners",
    params(("learner" = String, Path, description = "Learner id", format = "kb:learner"), HistoryParams),
    responses(
        (status = 200, description = "A page of the history (or all of it as NDJSON)", body = HistoryPage,
            content(
                (HistoryPage = "application/json"),
                (HistoryItem = "application/x-ndjson"),
            )),
        (status = 400, description = "Malformed learner id or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Learner(learner): Learner,
    headers: HeaderMap,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let limit = e
        .check("limit", parse_limit(params.limit.as_deref(), 100, 1000))
        .unwrap_or(100);
    e.finish()?;
    let after = match params.after.as_deref() {
        None => 0,
        Some(raw) => raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "pass back a `next_cursor` exactly as kb returned it",
            )
        })?,
    };
    let wants_ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if wants_ndjson {
        return Ok(stream_history(state, learner));
    }
    let rows = state
        .service
        .review_history(&learner, after, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<HistoryRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items = rows.into_iter().map(HistoryItem::from).collect();
    Ok(axum::Json(HistoryPage { items, next_cursor }).into_response())
}

/// The whole history as NDJSON, read part by part while it is sent.
fn stream_history(state: AppState, learner: crate::domain::LearnerId) -> Response {
    let start = Some(crate::service::HistoryStream::default());
    let pages = futures_util::stream::unfold(start, move |from| {
        let state = state.clone();
        let learner = learner.clone();
        async move {
            let mut from = from?;
            match state
                .service
                .review_history_part(&learner, &mut from, STREAM_PAGE)
                .await
            {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let more = rows.len() as i64 == STREAM_PAGE;
                    let mut buf = Vec::with_capacity(rows.len() * 256);
                    for r in rows {
                        if serde_json::to_writer(&mut buf, &HistoryItem::from(r)).is_ok() {
                            buf.push(b'\n');
                        }
                    }
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                        more.then_some(from),
                    ))
                }
                Err(e) => {
                    // Headers are gone: end the body early; the client sees a cut-off stream.
                    tracing::error!(error = %e, "review history stream failed");
                    Some((Err(std::io::Error::other("history read failed")), None))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(pages));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Erase a learner
///
/// Removes everything kb holds of the learner: cards, reviews, settings and stored answers to
/// their idempotent requests; the learner's tokens issued until now stop working (401). What
/// is left is a keyed hash of the id (not the id) with the time, by which those tokens are
/// recognised until they would have expired anyway.
#[utoipa::path(
    delete, path = "/api/v1/learners/{learner}", tag = "learners",
    params(("learner" = String, Path, description = "Learner id", format = "kb:learner")),
    responses(
        (status = 204, description = "Erased (also when there was nothing to erase)"),
        (status = 400, description = "Malformed learner id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn erase(
    State(state): State<AppState>,
    Learner(learner): Learner,
) -> ApiResult<StatusCode> {
    state.service.erase_learner(&learner).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where the parameters a learner is scheduled with come from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParametersOut {
    /// `default` (FSRS's own) or `fitted` (to this learner's reviews).
    #[schema(example = "fitted")]
    pub source: &'static str,
    /// When they were fitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fitted_at: Option<DateTime<Utc>>,
    /// How many reviews they were fitted from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviews: Option<i64>,
    /// Why the last fit kept the defaults, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The FSRS parameters in use.
    pub values: Vec<f32>,
}

/// A learner's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsOut {
    /// The chance of still recalling an answer when it falls due, 0.70–0.97.
    #[schema(example = 0.9)]
    pub desired_retention: f64,
    /// The longest interval between reviews, in days.
    #[schema(example = 36500)]
    pub maximum_interval_days: i64,
    /// The IANA time zone the learner's days are counted in.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    pub parameters: ParametersOut,
    /// `idle`, `queued` or `running`.
    #[schema(example = "idle")]
    pub fit: &'static str,
}

impl From<LearnerSettings> for SettingsOut {
    fn from(s: LearnerSettings) -> Self {
        let fitted = s.parameters.is_some();
        Self {
            desired_retention: s.desired_retention,
            maximum_interval_days: s.maximum_interval_days,
            time_zone: s.time_zone.name().to_string(),
            parameters: ParametersOut {
                source: if fitted { "fitted" } else { "default" },
                fitted_at: s.fitted_at.filter(|_| fitted),
                reviews: s.fitted_reviews.filter(|_| fitted),
                note: s.fit_note,
                values: s
                    .parameters
                    .unwrap_or_else(|| fsrs::DEFAULT_PARAMETERS.to_vec()),
            },
            fit: s.fit.as_str(),
        }
    }
}

/// Body of `PUT /api/v1/learners/{learner}/settings`: every setting (one left out takes its
/// default).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"desired_retention": 0.85, "maximum_interval_days": 365, "time_zone": "Asia/Shanghai"}))]
pub struct PutSettings {
    /// 0.70–0.97; default 0.9.
    #[schema(value_type = Option<f64>, minimum = 0.7, maximum = 0.97)]
    pub desired_retention: Option<f64>,
    /// 1–36500; default 36500.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 36500)]
    #[serde(default, deserialize_with = "super::whole_number")]
    pub maximum_interval_days: Option<i64>,
    /// An IANA time zone name; default `UTC`.
    #[schema(value_type = Option<String>, example = "Asia/Shanghai", format = "kb:time-zone")]
    pub time_zone: Option<String>,
}

/// A learner's settings
#[utoipa::path(
    get, path = "/api/v1/learners/{learner}/settings", tag = "learners",
    params(("learner" = String, Path, description = "Learner id", format = "kb:learner")),
    responses(
        (status = 200, description = "The settings, with where the parameters come from", body = SettingsOut),
        (status = 400, description = "Malformed learner id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_settings(
    State(state): State<AppState>,
    Learner(learner): Learner,
) -> ApiResult<Response> {
    let s = state.service.learner_settings(&learner).await?;
    Ok(axum::Json(SettingsOut::from(s)).into_response())
}

/// Set a learner's settings
///
/// Replaces the retention, longest interval and time zone (a field left out takes its
/// default). Reviews from now on are scheduled with them; fitted parameters stay.
#[utoipa::path(
    put, path = "/api/v1/learners/{learner}/settings", tag = "learners",
    params(("learner" = String, Path, description = "Learner id", format = "kb:learner")),
    request_body(content = PutSettings, content_type = "application/json"),
    responses(
        (status = 200, description = "The settings as they are now", body = SettingsOut),
        (status = 400, description = "Malformed JSON or learner id", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A setting out of range or an unknown time zone", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_settings(
    State(state): State<AppState>,
    Learner(learner): Learner,
    Json(body): Json<PutSettings>,
) -> ApiResult<Response> {
    let d = LearnerSettings::default();
    let mut e = FieldErrors::new();
    let retention = e.check(
        "desired_retention",
        parse_retention(body.desired_retention.unwrap_or(d.desired_retention)),
    );
    let interval = e.check(
        "maximum_interval_days",
        parse_interval(
            body.maximum_interval_days
                .unwrap_or(d.maximum_interval_days),
        ),
    );
    let tz = e.check(
        "time_zone",
        parse_time_zone(body.time_zone.as_deref().unwrap_or("UTC")),
    );
    e.finish()?;
    let (Some(desired_retention), Some(maximum_interval_days), Some(time_zone)) =
        (retention, interval, tz)
    else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "parse without error left a gap"
        )));
    };
    let s = state
        .service
        .put_learner_settings(
            &learner,
            &SettingsInput {
                desired_retention,
                maximum_interval_days,
                time_zone,
            },
        )
        .await?;
    Ok(axum::Json(SettingsOut::from(s)).into_response())
}

/// Fit the learner's parameters
///
/// Asks for FSRS's optimiser to fit this learner's parameters to their review log, in the
/// background (one fit at a time, at low priority). `GET …/settings` shows when it is done.
/// kb also asks by itself once a learner has 64 reviews, and again whenever they double.
#[utoipa::path(
    post, path = "/api/v1/learners/{learner}/settings/fit", tag = "learners",
    params(("learner" = String, Path, description = "Learner id", format = "kb:learner")),
    responses(
        (status = 202, description = "Queued: the settings with `fit` = `queued`", body = SettingsOut),
        (status = 400, description = "Malformed learner id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A fit is already queued or running", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn fit(State(state): State<AppState>, Learner(learner): Learner) -> ApiResult<Response> {
    let s = state.service.request_fit(&learner).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(SettingsOut::from(s))).into_response())
}
