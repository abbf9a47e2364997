//! Spaced repetition per learner: recording reviews (one, or a batch synced from a device that
//! was offline) and listing what is due. The store merges reviews into the learner's log and
//! replays each card with the FSRS scheduler this module hands it; here the reviews' times
//! are checked against the clock and the store's verdicts put in the service's words.

use super::quiz::question_id;
use super::{Error, Result, Service};
use crate::domain::{LearnerId, Question, Rating, ReviewId, check_review_time};
use crate::quiz::schedule;
use crate::store::{Card, Merged, NewReview, ReviewState};
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

/// The scheduler the store replays cards with: FSRS with its default parameters.
fn fsrs(
    previous: Option<(f32, f32, DateTime<Utc>)>,
    rating: Rating,
    at: DateTime<Utc>,
) -> anyhow::Result<ReviewState> {
    let s = schedule(previous, rating, at)?;
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
    /// keeps the others out.
    #[tracing::instrument(skip(self, learner, inputs), fields(learner = learner.as_str(), reviews = inputs.len()))]
    pub async fn review_batch(
        &self,
        learner: &LearnerId,
        inputs: &[ReviewInput],
    ) -> Result<Vec<ReviewOutcome>> {
        Ok(self.merge(learner, inputs).await?.0)
    }

    /// Checks each review's time and question id, merges those that pass, and reports every
    /// review's outcome in order with the cards of the questions named.
    async fn merge(
        &self,
        learner: &LearnerId,
        inputs: &[ReviewInput],
    ) -> Result<(Vec<ReviewOutcome>, HashMap<i64, Card>)> {
        // One clock reading for the whole batch: reviews it dates are dated alike.
        let now = Utc::now();
        let mut refused: Vec<Option<Error>> = Vec::with_capacity(inputs.len());
        let mut reviews: Vec<NewReview<'_>> = Vec::with_capacity(inputs.len());
        for input in inputs {
            let when = match input.reviewed_at {
                Some(t) => check_review_time(t, now)
                    .map(|t| (t, true))
                    .map_err(Error::ReviewTimeOutOfRange),
                None => Ok((now, false)),
            };
            match when.and_then(|w| Ok((w, question_id(input.question_id)?))) {
                Ok(((reviewed_at, dated_by_client), question)) => {
                    reviews.push(NewReview {
                        review_id: input.review_id.as_ref().map(ReviewId::as_str),
                        question_id: question.get(),
                        rating: input.rating,
                        reviewed_at,
                        dated_by_client,
                    });
                    refused.push(None);
                }
                Err(e) => refused.push(Some(e)),
            }
        }
        let merge = if reviews.is_empty() {
            Default::default()
        } else {
            self.store
                .merge_reviews(learner.as_str(), &reviews, &fsrs)
                .await?
        };
        let mut merged = reviews.iter().zip(merge.outcomes);
        let outcomes = refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(e) => ReviewOutcome::Refused(e),
                None => match merged.next() {
                    Some((_, Merged::Applied)) => ReviewOutcome::Applied,
                    Some((_, Merged::Duplicate)) => ReviewOutcome::Duplicate,
                    Some((r, Merged::QuestionNotFound)) => {
                        ReviewOutcome::Refused(Error::QuestionNotFound(r.question_id))
                    }
                    Some((r, Merged::ReviewIdReused)) => ReviewOutcome::Refused(
                        Error::ReviewIdReused(r.review_id.unwrap_or_default().to_string()),
                    ),
                    None => ReviewOutcome::Refused(
                        anyhow::anyhow!("the store reported fewer outcomes than reviews").into(),
                    ),
                },
            })
            .collect();
        Ok((outcomes, merge.cards))
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
