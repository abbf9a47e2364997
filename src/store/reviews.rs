//! Reviews that merge: a learner's card for a question is the FSRS fold of their reviews of it
//! in time order, so reviews uploaded late (an offline device) or twice end in the same card
//! whatever order they arrive in. This file holds the rules (which upload is the same review
//! as a stored one, the order of a card's log, replaying it) and the one write path that
//! applies them, written once; the statements the databases spell differently are in
//! `sqlite/reviews.rs` and `postgres/reviews.rs`, with how each locks the cards.
//!
//! The store knows no scheduler: the service hands it one ([`Scheduler`]), and the store folds
//! with it under the cards' locks.

use super::model::{Card, QuestionCardRow};
use super::sql::{Arg, Conn};
use super::{Store, StoreError, StoreResult, decode_error, from_micros};
use crate::domain::{REVIEW_CLOCK_SKEW_SECS, Rating};
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A review to merge into a learner's log, as the service validated it.
#[derive(Debug, Clone, Copy)]
pub struct NewReview<'a> {
    /// The client's id for it, if it gave one.
    pub review_id: Option<&'a str>,
    pub question_id: i64,
    pub rating: Rating,
    /// When it happened; kept to the microsecond.
    pub reviewed_at: DateTime<Utc>,
    /// The client said when (else kb dated it on receipt).
    pub dated_by_client: bool,
}

/// What became of one review of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// It is in the log now, and its card was recomputed.
    Applied,
    /// The log already held it: nothing changed.
    Duplicate,
    QuestionNotFound,
    /// Its `review_id` names another review of this learner (another question or rating, or
    /// another time): refused, the stored one stays.
    ReviewIdReused,
}

/// What a merge did: each review's fate, in the order given, and the cards of the questions
/// it named that have one (recomputed, or as they were).
#[derive(Debug, Default)]
pub struct Merge {
    pub outcomes: Vec<Merged>,
    pub cards: HashMap<i64, Card>,
}

/// A card's memory after one review, and when that review makes it due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewState {
    pub stability: f32,
    pub difficulty: f32,
    pub interval_days: f64,
    pub due: DateTime<Utc>,
}

/// The scheduler a card is folded with: the state after a review of `rating` at a time, given
/// the state and time of the review before it (`None` for the first).
pub type Scheduler<'a> = &'a (
        dyn Fn(
    Option<(f32, f32, DateTime<Utc>)>,
    Rating,
    DateTime<Utc>,
) -> anyhow::Result<ReviewState>
            + Sync
    );

/// How reviews lock their cards, which SQLite and PostgreSQL do their own way
/// (`sqlite/reviews.rs`, `postgres/reviews.rs`).
pub(super) trait ReviewSql {
    /// Makes the check-then-write of a merge atomic against other writers of the same cards
    /// and of the same review ids, and against the questions' deletion; returns which of the
    /// questions exist, in ascending order.
    async fn lock_for_reviews(
        &mut self,
        learner: &str,
        questions: &[i64],
        review_ids: &[&str],
    ) -> sqlx::Result<Vec<i64>>;
}

impl ReviewSql for Conn<'_> {
    async fn lock_for_reviews(
        &mut self,
        learner: &str,
        questions: &[i64],
        review_ids: &[&str],
    ) -> sqlx::Result<Vec<i64>> {
        match self {
            Conn::Sqlite(c) => c.lock_for_reviews(learner, questions, review_ids).await,
            Conn::Postgres(c) => c.lock_for_reviews(learner, questions, review_ids).await,
        }
    }
}

/// A stored review, as the log of its card is read.
#[derive(FromRow)]
pub(super) struct StoredReview {
    id: i64,
    question_id: i64,
    review_id: Option<String>,
    rating: String,
    reviewed_at: i64,
    interval_days: f64,
    stability: Option<f64>,
    difficulty: Option<f64>,
    prior_due: Option<i64>,
}

/// A stored review that carries a client's id: what a later upload with that id is compared
/// with.
#[derive(FromRow)]
pub(super) struct NamedReview {
    review_id: String,
    question_id: i64,
    rating: String,
    reviewed_at: i64,
}

/// What an upload naming a review id is checked against.
#[derive(Debug, Clone, Copy)]
struct Named {
    question_id: i64,
    rating: Rating,
    at: i64,
}

impl Named {
    /// Whether `r`, which carries this review's id, is this review again: the same question
    /// and rating and, when the client dated it, a time within the clock allowance of the
    /// stored one. The time is not compared exactly because kb dates a review sent without a
    /// time, or ahead of its clock, on receipt: a faithful retry of it carries another time.
    fn is(&self, r: &NewReview<'_>) -> bool {
        let allowance = REVIEW_CLOCK_SKEW_SECS * 1_000_000;
        self.question_id == r.question_id
            && self.rating == r.rating
            && (!r.dated_by_client
                || (r.reviewed_at.timestamp_micros() - self.at).abs() <= allowance)
    }
}

/// One review in a card's log.
#[derive(Debug, Clone)]
struct Entry {
    /// The stored row; `None` for a review this merge adds.
    row: Option<i64>,
    review_id: Option<String>,
    rating: Rating,
    /// Microseconds.
    at: i64,
    /// As stored: the interval it set, and its memory state (`None` on rows older than the
    /// state columns).
    interval_days: f64,
    memory: Option<(f32, f32)>,
    /// As stored: the card's due time when this review was made (microseconds).
    prior_due: Option<i64>,
}

impl Entry {
    /// A card's log is in time order; reviews at the same instant by rating, then by review
    /// id (none first). Content only, never arrival: every upload order gives one order.
    fn key(&self) -> (i64, Rating, Option<&str>) {
        (self.at, self.rating, self.review_id.as_deref())
    }
}

/// One card's log during a merge.
#[derive(Debug, Default)]
struct CardLog {
    entries: Vec<Entry>,
    /// (time, rating) of every review in it: a review that repeats one is that review.
    contents: HashSet<(i64, Rating)>,
    grew: bool,
}

impl CardLog {
    fn push(&mut self, e: Entry) {
        self.contents.insert((e.at, e.rating));
        self.entries.push(e);
    }
}

/// A quarter hour in microseconds: `review_quarters` keeps a learner's reviews' quarters.
const QUARTER_MICROS: i64 = 900_000_000;

/// A review row to add: `[question_id, review_id, rating, reviewed_at, interval_days,
/// stability, difficulty, prior_due]`.
type NewRow = (
    i64,
    Option<String>,
    &'static str,
    i64,
    f64,
    f64,
    f64,
    Option<i64>,
);

/// The rows a merge writes.
#[derive(Debug, Default)]
struct Plan {
    outcomes: Vec<Merged>,
    inserts: Vec<NewRow>,
    /// `[id, interval_days, stability, difficulty, prior_due]` of stored reviews a replay
    /// changed.
    restates: Vec<(i64, f64, f64, f64, Option<i64>)>,
    cards: BTreeMap<i64, Card>,
}

/// Decides each review's fate against the stored logs (and the reviews before it in
/// `reviews`), and replays every card that gained a review.
fn plan(
    reviews: &[NewReview<'_>],
    existing: &HashSet<i64>,
    stored: Vec<StoredReview>,
    named: Vec<NamedReview>,
    schedule: Scheduler<'_>,
) -> StoreResult<Plan> {
    let mut logs: BTreeMap<i64, CardLog> = BTreeMap::new();
    for r in stored {
        let memory = match (r.stability, r.difficulty) {
            (Some(s), Some(d)) => Some((s as f32, d as f32)),
            _ => None,
        };
        logs.entry(r.question_id).or_default().push(Entry {
            row: Some(r.id),
            review_id: r.review_id,
            rating: Rating::parse(&r.rating).map_err(decode_error)?,
            at: r.reviewed_at,
            interval_days: r.interval_days,
            memory,
            prior_due: r.prior_due,
        });
    }
    let mut ids: HashMap<String, Named> = HashMap::new();
    for n in named {
        let rating = Rating::parse(&n.rating).map_err(decode_error)?;
        ids.insert(
            n.review_id,
            Named {
                question_id: n.question_id,
                rating,
                at: n.reviewed_at,
            },
        );
    }
    let mut out = Plan::default();
    for r in reviews {
        let at = r.reviewed_at.timestamp_micros();
        let outcome = if !existing.contains(&r.question_id) {
            Merged::QuestionNotFound
        } else if let Some(n) = r.review_id.and_then(|id| ids.get(id)) {
            if n.is(r) {
                Merged::Duplicate
            } else {
                Merged::ReviewIdReused
            }
        } else {
            let log = logs.entry(r.question_id).or_default();
            // A review with a new id that repeats a stored one's time and rating is that
            // review too: were it not, whether two uploads of one review (one with an id, one
            // without) count once or twice would depend on which came first.
            if log.contents.contains(&(at, r.rating)) {
                Merged::Duplicate
            } else {
                log.push(Entry {
                    row: None,
                    review_id: r.review_id.map(str::to_string),
                    rating: r.rating,
                    at,
                    interval_days: 0.0,
                    memory: None,
                    prior_due: None,
                });
                log.grew = true;
                if let Some(id) = r.review_id {
                    ids.insert(
                        id.to_string(),
                        Named {
                            question_id: r.question_id,
                            rating: r.rating,
                            at,
                        },
                    );
                }
                Merged::Applied
            }
        };
        out.outcomes.push(outcome);
    }
    for (question_id, log) in logs.iter_mut().filter(|(_, l)| l.grew) {
        replay(*question_id, log, schedule, &mut out)?;
    }
    Ok(out)
}

/// Puts the card's log in order and folds it from the first review that is new or has no
/// stored state: the reviews before that one are where they were, and their stored states are
/// what a fold from the start gives (every replay keeps them so), in the same `f32`s, so the
/// card comes out bit for bit as a fold of the whole log would make it. Adds the rows to write
/// and the card to `out`.
fn replay(
    question_id: i64,
    log: &mut CardLog,
    schedule: Scheduler<'_>,
    out: &mut Plan,
) -> StoreResult<()> {
    let entries = &mut log.entries;
    entries.sort_by(|a, b| a.key().cmp(&b.key()));
    let start = entries
        .iter()
        .position(|e| e.row.is_none() || e.memory.is_none())
        .unwrap_or(entries.len());
    let mut previous = start.checked_sub(1).and_then(|i| {
        entries[i]
            .memory
            .map(|(s, d)| (s, d, from_micros(entries[i].at)))
    });
    let mut prior_due = start
        .checked_sub(1)
        .map(|i| due_after(entries[i].at, entries[i].interval_days));
    let mut last = None;
    for e in &entries[start..] {
        let at = from_micros(e.at);
        let s = schedule(previous, e.rating, at).map_err(StoreError::Schedule)?;
        let (interval, stability, difficulty) = (
            s.interval_days,
            f64::from(s.stability),
            f64::from(s.difficulty),
        );
        match e.row {
            None => out.inserts.push((
                question_id,
                e.review_id.clone(),
                e.rating.as_str(),
                e.at,
                interval,
                stability,
                difficulty,
                prior_due,
            )),
            Some(id) => {
                let unchanged = e.memory == Some((s.stability, s.difficulty))
                    && e.interval_days as f32 == s.interval_days as f32
                    && e.prior_due == prior_due;
                if !unchanged {
                    out.restates
                        .push((id, interval, stability, difficulty, prior_due));
                }
            }
        }
        prior_due = Some(due_after(e.at, interval));
        previous = Some((s.stability, s.difficulty, at));
        last = Some((s, at));
    }
    if let Some((s, at)) = last {
        out.cards.insert(
            question_id,
            Card {
                stability: s.stability,
                difficulty: s.difficulty,
                due: s.due,
                last_review: at,
                reps: entries.len() as i64,
                interval_days: s.interval_days,
            },
        );
    }
    Ok(())
}

/// When a review at `at` (microseconds) with `interval_days` makes its card due: the stored
/// interval counts, as the history shows it (the card's own due may differ by its rounding).
fn due_after(at: i64, interval_days: f64) -> i64 {
    at + (interval_days * 86_400_000_000.0) as i64
}

/// Rows as one JSON array of arrays (tuples serialize as arrays).
fn json(rows: &impl serde::Serialize) -> String {
    serde_json::to_string(rows).expect("rows serialize")
}

impl Store {
    /// Merges reviews into `learner`'s log in one transaction, under the locks of every card
    /// they name (and of every review id they carry): each review is applied, recognised as
    /// one already stored (or given earlier in `reviews`), or refused; each card that gained a
    /// review is replayed once. A refused review costs the others nothing.
    pub async fn merge_reviews(
        &self,
        learner: &str,
        reviews: &[NewReview<'_>],
        schedule: Scheduler<'_>,
    ) -> StoreResult<Merge> {
        let mut questions: Vec<i64> = reviews.iter().map(|r| r.question_id).collect();
        questions.sort_unstable();
        questions.dedup();
        let mut review_ids: Vec<&str> = reviews.iter().filter_map(|r| r.review_id).collect();
        review_ids.sort_unstable();
        review_ids.dedup();
        self.write(async |c| {
            let live = c.lock_for_reviews(learner, &questions, &review_ids).await?;
            let texts = &c.dialect().reviews;
            let stored: Vec<StoredReview> = c
                .fetch_all(texts.log, &[learner.into(), Arg::Ints(&live)])
                .await?;
            let named: Vec<NamedReview> = if review_ids.is_empty() {
                Vec::new()
            } else {
                c.fetch_all(texts.named, &[learner.into(), Arg::Texts(&review_ids)])
                    .await?
            };
            let existing: HashSet<i64> = live.iter().copied().collect();
            let plan = plan(reviews, &existing, stored, named, schedule)?;
            if !plan.inserts.is_empty() {
                let rows = json(&plan.inserts);
                c.execute(texts.insert, &[learner.into(), rows.as_str().into()])
                    .await?;
                // A batch spans a few quarter hours: a statement each is cheaper than a
                // dialect of its own.
                let quarters: BTreeSet<i64> =
                    plan.inserts.iter().map(|r| r.3 / QUARTER_MICROS).collect();
                for q in quarters {
                    c.execute(
                        "INSERT INTO review_quarters (learner, quarter) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[learner.into(), q.into()],
                    )
                    .await?;
                }
            }
            if !plan.restates.is_empty() {
                let rows = json(&plan.restates);
                c.execute(texts.restate, &[rows.as_str().into()]).await?;
            }
            if !plan.cards.is_empty() {
                let rows: Vec<_> = plan
                    .cards
                    .iter()
                    .map(|(q, card)| {
                        (
                            q,
                            f64::from(card.stability),
                            f64::from(card.difficulty),
                            card.due.timestamp_micros(),
                            card.last_review.timestamp_micros(),
                            card.reps,
                            card.interval_days,
                        )
                    })
                    .collect();
                let rows = json(&rows);
                c.execute(texts.save_cards, &[learner.into(), rows.as_str().into()])
                    .await?;
            }
            let mut cards: HashMap<i64, Card> = plan.cards.into_iter().collect();
            let untouched: Vec<i64> = live
                .iter()
                .copied()
                .filter(|q| !cards.contains_key(q))
                .collect();
            if !untouched.is_empty() {
                let rows: Vec<QuestionCardRow> = c
                    .fetch_all(texts.cards, &[learner.into(), Arg::Ints(&untouched)])
                    .await?;
                cards.extend(rows.into_iter().map(|r| (r.question_id, r.card.into())));
            }
            Ok(Merge {
                outcomes: plan.outcomes,
                cards,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduler that is not FSRS but depends on everything FSRS does (the previous state,
    /// the time since it, the rating), so a fold in another order shows.
    fn toy(
        previous: Option<(f32, f32, DateTime<Utc>)>,
        rating: Rating,
        at: DateTime<Utc>,
    ) -> anyhow::Result<ReviewState> {
        let r = rating as u8 as f32 + 1.0;
        let (stability, difficulty) = match previous {
            None => (r, 5.0 - r),
            Some((s, d, last)) => {
                let days = (at - last).num_seconds() as f32 / 86_400.0;
                (s * 1.3 + r * days.sqrt(), (d + 0.1 * r).min(10.0))
            }
        };
        let interval_days = f64::from(stability.round());
        Ok(ReviewState {
            stability,
            difficulty,
            interval_days,
            due: at + chrono::Duration::seconds((interval_days * 86_400.0) as i64),
        })
    }

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap() + chrono::Duration::hours(hours)
    }

    fn review(id: Option<&'static str>, rating: Rating, hours: i64) -> NewReview<'static> {
        NewReview {
            review_id: id,
            question_id: 1,
            rating,
            reviewed_at: at(hours),
            dated_by_client: true,
        }
    }

    /// A stored review's time, rating, interval, stability and difficulty.
    type State = (i64, String, f64, Option<f64>, Option<f64>, Option<i64>);

    /// Applies `plan`'s writes to an in-memory table the way the statements would.
    #[derive(Default)]
    struct Table {
        rows: Vec<StoredReview>,
        card: Option<Card>,
    }

    impl Table {
        fn merge(&mut self, reviews: &[NewReview<'_>]) -> Vec<Merged> {
            let stored = self
                .rows
                .iter()
                .map(|r| StoredReview {
                    id: r.id,
                    question_id: r.question_id,
                    review_id: r.review_id.clone(),
                    rating: r.rating.clone(),
                    reviewed_at: r.reviewed_at,
                    interval_days: r.interval_days,
                    stability: r.stability,
                    difficulty: r.difficulty,
                    prior_due: r.prior_due,
                })
                .collect();
            let named = self
                .rows
                .iter()
                .filter_map(|r| {
                    Some(NamedReview {
                        review_id: r.review_id.clone()?,
                        question_id: r.question_id,
                        rating: r.rating.clone(),
                        reviewed_at: r.reviewed_at,
                    })
                })
                .collect();
            let p = plan(reviews, &[1, 2].into(), stored, named, &toy).unwrap();
            for (q, review_id, rating, at, interval, s, d, prior_due) in p.inserts {
                let id = self.rows.len() as i64 + 1;
                self.rows.push(StoredReview {
                    id,
                    question_id: q,
                    review_id,
                    rating: rating.into(),
                    reviewed_at: at,
                    interval_days: interval,
                    stability: Some(s),
                    difficulty: Some(d),
                    prior_due,
                });
            }
            for (id, interval, s, d, prior_due) in p.restates {
                let row = &mut self.rows[id as usize - 1];
                (
                    row.interval_days,
                    row.stability,
                    row.difficulty,
                    row.prior_due,
                ) = (interval, Some(s), Some(d), prior_due);
            }
            if let Some(card) = p.cards.get(&1) {
                self.card = Some(*card);
            }
            p.outcomes
        }

        /// Each review's time, rating and state, in time order.
        fn states(&self) -> Vec<State> {
            let mut v: Vec<_> = self
                .rows
                .iter()
                .map(|r| {
                    (
                        r.reviewed_at,
                        r.rating.clone(),
                        r.interval_days,
                        r.stability,
                        r.difficulty,
                        r.prior_due,
                    )
                })
                .collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v
        }
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn every_upload_order_of_a_log_gives_the_same_card_and_the_same_states() {
        let log = [
            review(Some("a"), Rating::Good, 0),
            review(None, Rating::Again, 30),
            review(Some("c"), Rating::Good, 30),
            review(Some("d"), Rating::Hard, 50),
            review(None, Rating::Easy, 75),
        ];
        let mut reference = Table::default();
        for r in &log {
            assert_eq!(reference.merge(&[*r]), [Merged::Applied]);
        }
        let card = reference.card.unwrap();
        assert_eq!(card.reps, 5);
        assert_eq!(card.last_review, at(75));
        for order in permutations(&log) {
            let mut one_by_one = Table::default();
            for r in &order {
                assert_eq!(one_by_one.merge(&[*r]), [Merged::Applied]);
            }
            assert_eq!(one_by_one.card, Some(card), "{order:?}");
            assert_eq!(one_by_one.states(), reference.states(), "{order:?}");
            let mut at_once = Table::default();
            assert_eq!(at_once.merge(&order), [Merged::Applied; 5]);
            assert_eq!(at_once.card, Some(card), "{order:?}");
        }
    }

    #[test]
    fn a_review_at_the_end_replays_nothing_before_it_and_a_late_one_replays_what_follows() {
        let mut t = Table::default();
        t.merge(&[
            review(None, Rating::Good, 0),
            review(None, Rating::Good, 48),
        ]);
        let first = t.rows[0].stability;
        t.merge(&[review(None, Rating::Easy, 96)]);
        assert_eq!(t.rows[0].stability, first);
        // A late review between the two first ones changes the second and the third, not the
        // first.
        let before: Vec<_> = t.rows.iter().map(|r| r.stability).collect();
        t.merge(&[review(None, Rating::Again, 24)]);
        assert_eq!(t.rows[0].stability, before[0]);
        assert_ne!(t.rows[1].stability, before[1]);
        assert_ne!(t.rows[2].stability, before[2]);
    }

    #[test]
    fn a_log_from_before_the_state_columns_is_replayed_from_its_start() {
        let mut fresh = Table::default();
        fresh.merge(&[
            review(None, Rating::Good, 0),
            review(None, Rating::Hard, 48),
        ]);
        let mut legacy = Table::default();
        legacy.merge(&[
            review(None, Rating::Good, 0),
            review(None, Rating::Hard, 48),
        ]);
        for r in &mut legacy.rows {
            (r.stability, r.difficulty) = (None, None);
        }
        legacy.merge(&[review(None, Rating::Good, 96)]);
        fresh.merge(&[review(None, Rating::Good, 96)]);
        assert_eq!(legacy.card, fresh.card);
        assert_eq!(legacy.states(), fresh.states());
    }

    #[test]
    fn the_same_review_twice_is_applied_once_by_id_or_by_content() {
        let mut t = Table::default();
        let r = review(Some("x"), Rating::Good, 0);
        assert_eq!(t.merge(&[r, r]), [Merged::Applied, Merged::Duplicate]);
        assert_eq!(t.merge(&[r]), [Merged::Duplicate]);
        // Without an id, the same time and rating is the same review, whoever carries an id.
        let bare = review(None, Rating::Good, 0);
        assert_eq!(t.merge(&[bare]), [Merged::Duplicate]);
        let renamed = review(Some("y"), Rating::Good, 0);
        assert_eq!(t.merge(&[renamed]), [Merged::Duplicate]);
        // Another rating at that instant is another review.
        assert_eq!(
            t.merge(&[review(None, Rating::Again, 0)]),
            [Merged::Applied]
        );
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.card.unwrap().reps, 2);
    }

    #[test]
    fn an_id_sent_again_for_another_review_is_refused_and_the_first_stays() {
        let mut t = Table::default();
        t.merge(&[review(Some("x"), Rating::Good, 0)]);
        let card = t.card;
        let elsewhere = NewReview {
            question_id: 2,
            ..review(Some("x"), Rating::Good, 0)
        };
        for other in [
            review(Some("x"), Rating::Easy, 0),
            review(Some("x"), Rating::Good, 24),
            elsewhere,
        ] {
            assert_eq!(t.merge(&[other]), [Merged::ReviewIdReused], "{other:?}");
        }
        assert_eq!(t.card, card);
        assert_eq!(t.rows.len(), 1);
        // A retry the server dated again (sent without a time, or a little ahead of its
        // clock) is the same review.
        let redated = NewReview {
            reviewed_at: at(0) + chrono::Duration::seconds(REVIEW_CLOCK_SKEW_SECS),
            ..review(Some("x"), Rating::Good, 0)
        };
        assert_eq!(t.merge(&[redated]), [Merged::Duplicate]);
        let undated = NewReview {
            reviewed_at: at(5),
            dated_by_client: false,
            ..review(Some("x"), Rating::Good, 0)
        };
        assert_eq!(t.merge(&[undated]), [Merged::Duplicate]);
    }

    #[test]
    fn a_review_of_a_question_that_does_not_exist_is_refused_alone() {
        let missing = NewReview {
            question_id: 9,
            ..review(None, Rating::Good, 0)
        };
        let p = plan(
            &[missing, review(None, Rating::Good, 1)],
            &[1].into(),
            Vec::new(),
            Vec::new(),
            &toy,
        )
        .unwrap();
        assert_eq!(p.outcomes, [Merged::QuestionNotFound, Merged::Applied]);
        assert_eq!(p.inserts.len(), 1);
        assert_eq!(p.cards.keys().copied().collect::<Vec<_>>(), [1]);
    }
}
