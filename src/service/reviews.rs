//! Spaced repetition per learner: recording reviews (one, or a batch synced from a device that
//! was offline) and listing what is due. The store merges reviews into the learner's log and
//! replays each card with the FSRS scheduler this module hands it; here the reviews' times
//! are checked against the clock and the store's verdicts put in the service's words.

use super::quiz::question_id;
use super::{Error, Result, Service};
use crate::domain::{LearnerId, Question, Rating, ReviewId, check_review_time};
use crate::idempotency::{self, Reply};
use crate::store::{Card, Merge, Merged, NewReview, ReviewState};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A review as a client sent it, its fields parsed.
#[derive(Debug, Clone)]
pub struct ReviewInput {
    pub review_id: Option<ReviewId>,
    pub question_id: i64,
    pub rating: Rating,
    /// When it happened, as the client says; `None`: now.
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// What became of one review of a batch.
#[derive(Debug)]
pub enum ReviewOutcome {
    Applied,
    /// Already recorded (the same `review_id`, or the same question, rating and time):
    /// nothing changed.
    Duplicate,
    /// Refused for the reason given; the batch's other reviews are not affected.
    Refused(Error),
}

/// The card a review left, and whether that review was one already recorded.
#[derive(Debug, Clone, Copy)]
pub struct Reviewed {
    pub card: Card,
    pub duplicate: bool,
}

/// The scheduler the store replays a learner's cards with: their own schedule.
fn state_after(
    schedule: &crate::quiz::Schedule,
    previous: Option<(f32, f32, DateTime<Utc>)>,
    rating: Rating,
    at: DateTime<Utc>,
) -> anyhow::Result<ReviewState> {
    let s = schedule.next(previous, rating, at)?;
    Ok(ReviewState {
        stability: s.stability,
        difficulty: s.difficulty,
        interval_days: s.interval_days,
        due: s.due,
    })
}

impl Service {
    /// Records one review and answers with the question's card as it stands after it: for a
    /// review that arrived late, the card replayed with it in its place. The same review
    /// again is not an error: `duplicate` says so, and the card is as it was.
    #[tracing::instrument(skip(self, learner, input), fields(learner = learner.as_str(), question_id = input.question_id))]
    pub async fn review(&self, learner: &LearnerId, input: ReviewInput) -> Result<Reviewed> {
        let question = input.question_id;
        let (mut outcomes, cards) = self.merge(learner, std::slice::from_ref(&input)).await?;
        let duplicate = match outcomes.pop() {
            Some(ReviewOutcome::Applied) => false,
            Some(ReviewOutcome::Duplicate) => true,
            Some(ReviewOutcome::Refused(e)) => return Err(e),
            None => return Err(anyhow::anyhow!("a merge of one review reported none").into()),
        };
        let card = cards
            .get(&question)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("a merged review left no card"))?;
        Ok(Reviewed { card, duplicate })
    }

    /// Records a batch of reviews in one transaction and says what became of each, in order:
    /// one refused review (an unknown question, a time out of range, a reused id) never
    /// keeps the others out. `respond`, when given, renders the outcomes as the answer to keep
    /// for an `Idempotency-Key`, inside the merge's transaction.
    #[tracing::instrument(skip(self, learner, inputs, respond), fields(learner = learner.as_str(), reviews = inputs.len()))]
    pub async fn review_batch(
        &self,
        learner: &LearnerId,
        inputs: &[ReviewInput],
        respond: Option<Box<dyn FnOnce(Vec<ReviewOutcome>) -> Reply + Send>>,
    ) -> Result<Vec<ReviewOutcome>> {
        // One clock reading for the whole batch: reviews it dates are dated alike, and the
        // answer rendered inside the transaction sees the same checks as the one returned.
        let now = Utc::now();
        if let Some(respond) = respond {
            let inputs = inputs.to_vec();
            idempotency::reply_with(move |m: &Merge| respond(outcomes(&inputs, now, &m.outcomes)));
        }
        Ok(self.merge_at(learner, inputs, now).await?.0)
    }

    async fn merge(
        &self,
        learner: &LearnerId,
        inputs: &[ReviewInput],
    ) -> Result<(Vec<ReviewOutcome>, HashMap<i64, Card>)> {
        self.merge_at(learner, inputs, Utc::now()).await
    }

    /// Checks each review's time and question id, merges those that pass, and reports every
    /// review's outcome in order with the cards of the questions named.
    async fn merge_at(
        &self,
        learner: &LearnerId,
        inputs: &[ReviewInput],
        now: DateTime<Utc>,
    ) -> Result<(Vec<ReviewOutcome>, HashMap<i64, Card>)> {
        let reviews: Vec<NewReview<'_>> = inputs
            .iter()
            .filter_map(|input| check(input, now).ok())
            .collect();
        let merge = if reviews.is_empty() {
            Merge::default()
        } else {
            let merge = self.merge_scheduled(learner, &reviews).await?;
            if let Err(e) = self.maybe_fit(learner).await {
                tracing::warn!(learner = learner.as_str(), error = %e, "cannot queue a parameter fit");
            }
            merge
        };
        Ok((outcomes(inputs, now, &merge.outcomes), merge.cards))
    }

    /// Merges reviews into the learner's cards, folded with the learner's own schedule (their
    /// parameters, retention and longest interval).
    async fn merge_scheduled(
        &self,
        learner: &LearnerId,
        reviews: &[NewReview<'_>],
    ) -> Result<Merge> {
        let schedule = self.schedule_of(learner).await?;
        let fold = |previous, rating, at| state_after(&schedule, previous, rating, at);
        Ok(self
            .store
            .merge_reviews(learner.as_str(), reviews, &fold)
            .await?)
    }

    /// Merges reviews from an import (another kb's history): as a batch, but a review may be
    /// any age (an upload is refused more than a year back; a history is not). Each review's
    /// reason for being refused, or `None` when applied or already there.
    pub(super) async fn import_reviews(
        &self,
        learner: &LearnerId,
        inputs: &[ReviewInput],
    ) -> Result<Vec<Option<String>>> {
        let now = Utc::now();
        let reviews: Vec<NewReview<'_>> = inputs
            .iter()
            .map(|input| NewReview {
                review_id: input.review_id.as_ref().map(ReviewId::as_str),
                question_id: input.question_id,
                rating: input.rating,
                reviewed_at: input.reviewed_at.unwrap_or(now).min(now),
                dated_by_client: true,
            })
            .collect();
        if reviews.is_empty() {
            return Ok(Vec::new());
        }
        let merge = self.merge_scheduled(learner, &reviews).await?;
        Ok(merge
            .outcomes
            .iter()
            .zip(&reviews)
            .map(|(m, r)| match m {
                Merged::Applied | Merged::Duplicate => None,
                Merged::QuestionNotFound => Some(format!("no question {}", r.question_id)),
                Merged::ReviewIdReused => Some(format!(
                    "review_id `{}` names another review of this learner",
                    r.review_id.unwrap_or_default()
                )),
            })
            .collect())
    }

    /// Overdue questions (most overdue first), then questions never reviewed.
    #[tracing::instrument(level = "debug", skip(self, learner), fields(learner = learner.as_str()))]
    pub async fn due(
        &self,
        learner: &LearnerId,
        limit: i64,
    ) -> Result<Vec<(Question, Option<DateTime<Utc>>)>> {
        let due = self
            .store
            .due_cards(learner.as_str(), Utc::now(), limit)
            .await?;
        let rest = limit - due.len() as i64;
        let fresh = if rest > 0 {
            self.store.unreviewed(learner.as_str(), rest).await?
        } else {
            Vec::new()
        };
        let ids: Vec<i64> = due
            .iter()
            .map(|c| c.question_id)
            .chain(fresh.iter().copied())
            .collect();
        let due_at: HashMap<i64, DateTime<Utc>> =
            due.into_iter().map(|c| (c.question_id, c.due)).collect();
        Ok(self
            .store
            .get_questions(&ids)
            .await?
            .into_iter()
            .map(|q| {
                let d = due_at.get(&q.id).copied();
                (q, d)
            })
            .collect())
    }
}

/// A review's time and question id checked against the clock reading `now`: the review as the
/// store takes it, or why it is refused before it gets there.
fn check(input: &ReviewInput, now: DateTime<Utc>) -> Result<NewReview<'_>> {
    let (reviewed_at, dated_by_client) = match input.reviewed_at {
        Some(t) => (
            check_review_time(t, now).map_err(Error::ReviewTimeOutOfRange)?,
            true,
        ),
        None => (now, false),
    };
    Ok(NewReview {
        review_id: input.review_id.as_ref().map(ReviewId::as_str),
        question_id: question_id(input.question_id)?.get(),
        rating: input.rating,
        reviewed_at,
        dated_by_client,
    })
}

/// Every review's outcome, in order: refused by the checks, or as the merge (which saw only
/// the reviews that passed them, in order) found it.
fn outcomes(inputs: &[ReviewInput], now: DateTime<Utc>, merged: &[Merged]) -> Vec<ReviewOutcome> {
    let mut merged = merged.iter();
    inputs
        .iter()
        .map(|input| match check(input, now) {
            Err(e) => ReviewOutcome::Refused(e),
            Ok(r) => match merged.next() {
                Some(Merged::Applied) => ReviewOutcome::Applied,
                Some(Merged::Duplicate) => ReviewOutcome::Duplicate,
                Some(Merged::QuestionNotFound) => {
                    ReviewOutcome::Refused(Error::QuestionNotFound(r.question_id))
                }
                Some(Merged::ReviewIdReused) => ReviewOutcome::Refused(Error::ReviewIdReused(
                    r.review_id.unwrap_or_default().to_string(),
                )),
                None => ReviewOutcome::Refused(
                    anyhow::anyhow!("the store reported fewer outcomes than reviews").into(),
                ),
            },
        })
        .collect()
}
