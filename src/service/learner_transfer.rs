//! Learners in an export and an import (`--with-learners`, `?with_learners=true`): their
//! settings and reviews travel as lines of their own, attached to questions by `external_id`,
//! so a knowledge base moved to another kb keeps its learners' schedules.
//!
//! The lines, after the questions:
//! - `{"learner": "ann", "settings": {desired_retention, maximum_interval_days, time_zone,
//!   parameters, fitted_at, fitted_reviews}}`, one per learner with settings;
//! - `{"learner": "ann", "reviews": [{review_id, external_id, rating, reviewed_at}, …]}`, up to
//!   [`REVIEWS_PER_LINE`] of one learner's reviews per line, in the order recorded.
//!
//! A question without an `external_id` is given one on such an export, derived from the
//! database and the question's id (`kb-<database tag>-<id>`), so it is the same on every
//! export, and the importing kb keeps it as the question's identity.

use super::{Result, ReviewInput, Service};
use crate::domain::{LearnerId, Rating, ReviewId};
use crate::store::{ExportedReview, ExportedSettings};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Reviews per line: one batch of `…/reviews/batch`.
pub const REVIEWS_PER_LINE: usize = 1000;

/// The identity an export gives a question without an `external_id`.
pub fn derived_external_id(tag: [u8; 4], id: i64) -> String {
    format!("kb-{}-{id}", hex::encode(tag))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLine {
    pub learner: String,
    pub settings: SettingsBody,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    pub desired_retention: f64,
    pub maximum_interval_days: i64,
    pub time_zone: String,
    pub parameters: Option<Vec<f32>>,
    pub fitted_at: Option<DateTime<Utc>>,
    pub fitted_reviews: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewsLine {
    pub learner: String,
    pub reviews: Vec<ReviewBody>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub review_id: Option<String>,
    pub external_id: String,
    pub rating: Rating,
    pub reviewed_at: DateTime<Utc>,
}

/// A settings line of an export.
pub fn settings_line(s: ExportedSettings) -> serde_json::Value {
    let line = SettingsLine {
        learner: s.learner,
        settings: SettingsBody {
            desired_retention: s.desired_retention,
            maximum_interval_days: s.maximum_interval_days,
            time_zone: s.time_zone,
            parameters: s
                .parameters
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            fitted_at: s.fitted_at.and_then(DateTime::from_timestamp_micros),
            fitted_reviews: s.fitted_reviews,
        },
    };
    serde_json::to_value(line).expect("a line serializes")
}

/// Review lines of an export: consecutive reviews of one learner, [`REVIEWS_PER_LINE`] at
/// most per line. `carry` holds the last line between pages, so a learner's reviews do not
/// split at page boundaries more than they must.
pub fn review_lines(
    tag: [u8; 4],
    rows: Vec<ExportedReview>,
    carry: &mut Option<ReviewsLine>,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for r in rows {
        let body = ReviewBody {
            review_id: r.review_id,
            external_id: r
                .external_id
                .unwrap_or_else(|| derived_external_id(tag, r.question_id)),
            rating: Rating::parse(&r.rating).unwrap_or(Rating::Good),
            reviewed_at: DateTime::from_timestamp_micros(r.reviewed_at).unwrap_or_default(),
        };
        match carry {
            Some(line) if line.learner == r.learner && line.reviews.len() < REVIEWS_PER_LINE => {
                line.reviews.push(body);
            }
            _ => {
                if let Some(full) = carry.take() {
                    out.push(serde_json::to_value(full).expect("a line serializes"));
                }
                *carry = Some(ReviewsLine {
                    learner: r.learner,
                    reviews: vec![body],
                });
            }
        }
    }
    out
}

/// The last line held back by [`review_lines`].
pub fn flush_reviews(carry: &mut Option<ReviewsLine>) -> Option<serde_json::Value> {
    carry
        .take()
        .map(|l| serde_json::to_value(l).expect("a line serializes"))
}

/// What a learner line of an import is.
pub enum LearnerLine {
    Settings(SettingsLine),
    Reviews(ReviewsLine),
}

/// Reads a learner line (`None`: not one; `Some(Err)`: one that is malformed).
pub fn parse_learner_line(
    value: &serde_json::Value,
) -> Option<std::result::Result<LearnerLine, String>> {
    let obj = value.as_object()?;
    obj.get("learner")?;
    let parsed = if obj.contains_key("settings") {
        serde_json::from_value(value.clone())
            .map(LearnerLine::Settings)
            .map_err(|e| format!("learner settings line: {e}"))
    } else if obj.contains_key("reviews") {
        serde_json::from_value(value.clone())
            .map(LearnerLine::Reviews)
            .map_err(|e| format!("learner reviews line: {e}"))
    } else {
        Err("a learner line holds `settings` or `reviews`".into())
    };
    Some(parsed)
}

impl Service {
    /// Applies one learner line of an import; returns the reviews refused (with why), keyed
    /// by their position in the line. `ids` caches external ids already looked up.
    pub(super) async fn import_learner_line(
        &self,
        line: LearnerLine,
        ids: &mut HashMap<String, Option<i64>>,
    ) -> Result<std::result::Result<Vec<(usize, String)>, String>> {
        match line {
            LearnerLine::Settings(s) => {
                if let Err(e) = LearnerId::parse(&s.learner) {
                    return Ok(Err(format!("learner: {e}")));
                }
                let b = s.settings;
                let checks = [
                    crate::domain::learners::parse_retention(b.desired_retention).err(),
                    crate::domain::learners::parse_interval(b.maximum_interval_days).err(),
                    crate::domain::learners::parse_time_zone(&b.time_zone).err(),
                ];
                if let Some(e) = checks.into_iter().flatten().next() {
                    return Ok(Err(format!("settings: {e}")));
                }
                self.store
                    .import_learner_settings(&ExportedSettings {
                        learner: s.learner,
                        desired_retention: b.desired_retention,
                        maximum_interval_days: b.maximum_interval_days,
                        time_zone: b.time_zone,
                        parameters: b
                            .parameters
                            .map(|p| serde_json::to_string(&p).expect("numbers serialize")),
                        fitted_at: b.fitted_at.map(|t| t.timestamp_micros()),
                        fitted_reviews: b.fitted_reviews,
                    })
                    .await?;
                Ok(Ok(Vec::new()))
            }
            LearnerLine::Reviews(line) => {
                let learner = match LearnerId::parse(&line.learner) {
                    Ok(l) => l,
                    Err(e) => return Ok(Err(format!("learner: {e}"))),
                };
                if line.reviews.len() > REVIEWS_PER_LINE {
                    return Ok(Err(format!("at most {REVIEWS_PER_LINE} reviews per line")));
                }
                let mut refused = Vec::new();
                let mut inputs = Vec::with_capacity(line.reviews.len());
                let mut positions = Vec::with_capacity(line.reviews.len());
                for (i, r) in line.reviews.into_iter().enumerate() {
                    let id = match ids.get(&r.external_id) {
                        Some(id) => *id,
                        None => {
                            let id = self.store.question_by_external_id(&r.external_id).await?;
                            ids.insert(r.external_id.clone(), id);
                            id
                        }
                    };
                    let Some(question_id) = id else {
                        refused.push((
                            i,
                            format!("no question has external_id `{}`", r.external_id),
                        ));
                        continue;
                    };
                    let review_id = match r.review_id.as_deref().map(ReviewId::parse).transpose() {
                        Ok(v) => v,
                        Err(e) => {
                            refused.push((i, format!("review_id: {e}")));
                            continue;
                        }
                    };
                    inputs.push(ReviewInput {
                        review_id,
                        question_id,
                        rating: r.rating,
                        reviewed_at: Some(r.reviewed_at),
                    });
                    positions.push(i);
                }
                let outcomes = self.import_reviews(&learner, &inputs).await?;
                for (at, outcome) in positions.into_iter().zip(outcomes) {
                    if let Some(why) = outcome {
                        refused.push((at, why));
                    }
                }
                Ok(Ok(refused))
            }
        }
    }
}
