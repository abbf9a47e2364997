//! What a learner owns: their progress (statistics in their own time zone), their review
//! history, their erasure, their settings, and the FSRS parameters fitted to their reviews.
//!
//! Fits run in the background, one at a time per replica, on a thread pool of one thread at
//! the lowest CPU priority (the `fsrs` crate's optimiser uses rayon; given the global pool it
//! would take every core from searches). A fit is claimed in the database, so on several
//! replicas each learner is fitted by one of them; a fitter that dies is taken over after
//! [`FIT_STALE`].

use super::{Error, Result, Service};
use crate::domain::LearnerId;
use crate::domain::learners::{
    CardStates, DayCount, FORECAST_DAYS, FitState, LearnerSettings, SettingsInput, Stats, streaks,
};
use crate::quiz::Schedule;
use crate::store::{FitReview, HistoryRow};
use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Microseconds in a quarter hour: every time zone's midnights fall on one.
const QUARTER_US: i64 = 900_000_000;
/// A fit not finished after this long is taken to have died with its fitter.
const FIT_STALE: Duration = Duration::from_secs(30 * 60);
/// The fitter looks for queued fits at least this often (another replica may queue one).
const FIT_POLL: Duration = Duration::from_secs(10);
/// Reviews before the first automatic fit; afterwards a fit follows each doubling.
pub const AUTO_FIT_REVIEWS: i64 = 64;

/// Where a stream of a learner's history stands.
#[derive(Debug, Default, Clone)]
pub struct HistoryStream {
    after: (i64, i64, i64),
    previous: Option<HistoryRow>,
}

/// The background fitter of one replica.
#[derive(Debug)]
pub(super) struct Fitter {
    owner: String,
    wake: Notify,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Default for Fitter {
    fn default() -> Self {
        Self {
            owner: format!("{}-{}", std::process::id(), crate::secret::random_hex(6)),
            wake: Notify::new(),
            stop: watch::channel(false).0,
            task: std::sync::Mutex::new(None),
        }
    }
}

impl Fitter {
    pub(super) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Service {
    pub async fn learner_settings(&self, learner: &LearnerId) -> Result<LearnerSettings> {
        Ok(self.store.learner_settings(learner.as_str()).await?)
    }

    /// Sets a learner's retention, longest interval and time zone; their next reviews are
    /// scheduled with them (cards already scheduled keep their due dates until reviewed).
    pub async fn put_learner_settings(
        &self,
        learner: &LearnerId,
        input: &SettingsInput,
    ) -> Result<LearnerSettings> {
        Ok(self
            .store
            .put_learner_settings(learner.as_str(), input)
            .await?)
    }

    /// Queues a fit of the learner's FSRS parameters to their reviews.
    pub async fn request_fit(&self, learner: &LearnerId) -> Result<LearnerSettings> {
        if !self.store.request_fit(learner.as_str()).await? {
            return Err(Error::FitInProgress);
        }
        self.fitter.wake.notify_one();
        self.learner_settings(learner).await
    }

    /// The schedule a learner's reviews follow: their parameters and settings.
    pub(super) async fn schedule_of(&self, learner: &LearnerId) -> Result<Schedule> {
        let s = self.store.learner_settings(learner.as_str()).await?;
        if s.parameters.is_none()
            && s.maximum_interval_days == i64::from(crate::quiz::MAXIMUM_INTERVAL_DAYS)
            && (s.desired_retention - crate::domain::learners::DEFAULT_RETENTION).abs() < 1e-9
        {
            return Ok(Schedule::standard());
        }
        let parameters = s.parameters.unwrap_or_default();
        let interval = u32::try_from(s.maximum_interval_days).unwrap_or(u32::MAX);
        match Schedule::new(&parameters, s.desired_retention as f32, interval) {
            Ok(schedule) => Ok(schedule),
            // Parameters the crate no longer takes: the defaults, with the learner's settings.
            Err(e) => {
                tracing::warn!(learner = learner.as_str(), error = %e, "fitted parameters refused; using the defaults");
                Ok(Schedule::new(&[], s.desired_retention as f32, interval)?)
            }
        }
    }

    /// After reviews were recorded: queues a fit when the learner has reached the first
    /// threshold, or twice the reviews of their last fit.
    pub(super) async fn maybe_fit(&self, learner: &LearnerId) -> Result<()> {
        let s = self.store.learner_settings(learner.as_str()).await?;
        if s.fit != FitState::Idle {
            return Ok(());
        }
        let count = self.store.review_count(learner.as_str()).await?;
        let due = match s.fitted_reviews {
            None => count >= AUTO_FIT_REVIEWS,
            Some(last) => count >= (2 * last).max(AUTO_FIT_REVIEWS),
        };
        if due && self.store.request_fit(learner.as_str()).await? {
            self.fitter.wake.notify_one();
        }
        Ok(())
    }

    /// Erases everything kb holds of a learner (cards, reviews, settings, stored idempotent
    /// answers) and refuses the learner tokens issued until now.
    pub async fn erase_learner(&self, learner: &LearnerId) -> Result<u64> {
        let mark = self.erasure_mark(learner).await?;
        Ok(self.store.erase_learner(learner.as_str(), &mark).await?)
    }

    /// A page of a learner's review history, after row `after`.
    pub async fn review_history(
        &self,
        learner: &LearnerId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<HistoryRow>> {
        Ok(self
            .store
            .review_history(learner.as_str(), after, limit)
            .await?)
    }

    /// The next part of a learner's whole history for a stream: card by card, each card's
    /// reviews in time order, with the state before each filled in from the row before.
    /// `from` is where the last part ended (start with [`HistoryStream::default`]); an empty
    /// part ends the history.
    pub async fn review_history_part(
        &self,
        learner: &LearnerId,
        from: &mut HistoryStream,
        limit: i64,
    ) -> Result<Vec<HistoryRow>> {
        let mut rows = self
            .store
            .review_history_by_card(learner.as_str(), from.after, limit)
            .await?;
        for r in &mut rows {
            if let Some(prev) = from
                .previous
                .take()
                .filter(|p| p.question_id == r.question_id)
            {
                r.before_stability = prev.stability;
                r.before_difficulty = prev.difficulty;
                r.before_reviewed_at = Some(prev.reviewed_at);
                r.before_interval_days = Some(prev.interval_days);
            }
            from.after = (r.question_id, r.reviewed_at, r.id);
            from.previous = Some(r.clone());
        }
        Ok(rows)
    }

    /// A learner's progress over the last `days` days of their calendar in `tz`, as of now.
    pub async fn stats(&self, learner: &LearnerId, days: i64, tz: Tz) -> Result<Stats> {
        self.stats_at(learner, days, tz, Utc::now()).await
    }

    async fn stats_at(
        &self,
        learner: &LearnerId,
        days: i64,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Stats> {
        let today = now.with_timezone(&tz).date_naive();
        let first = today - Days::days(days - 1);
        let since = start_of(tz, first);
        let quarters = self
            .store
            .period_quarters(learner.as_str(), since.timestamp_micros())
            .await?;
        let mut counts: Vec<DayCount> = (0..days)
            .map(|i| DayCount {
                date: first + Days::days(i),
                reviews: 0,
                again: 0,
            })
            .collect();
        let (mut due_reviews, mut recalled) = (0i64, 0i64);
        for q in &quarters {
            let date = local_date(tz, q.quarter * QUARTER_US);
            if let Some(slot) = counts.get_mut(day_index(first, date)) {
                slot.reviews += q.reviews;
                slot.again += q.again;
            }
            due_reviews += q.due_reviews;
            recalled += q.recalled;
        }
        let active = self.store.review_quarter_hours(learner.as_str()).await?;
        let active: BTreeSet<NaiveDate> = active
            .iter()
            .map(|q| local_date(tz, q * QUARTER_US))
            .collect();
        let active: Vec<NaiveDate> = active.into_iter().collect();
        let (streak_current, streak_longest) = streaks(&active, today);
        let horizon = start_of(tz, today + Days::days(FORECAST_DAYS));
        let figures = self
            .store
            .card_figures(learner.as_str(), horizon.timestamp_micros())
            .await?;
        let states = CardStates {
            new: (figures.questions - figures.cards).max(0),
            learning: figures.learning,
            relearning: figures.relearning,
            review: figures.cards - figures.learning - figures.relearning,
        };
        let mut forecast: Vec<(NaiveDate, i64)> = (0..FORECAST_DAYS)
            .map(|i| (today + Days::days(i), 0))
            .collect();
        for (quarter, due) in &figures.due_quarters {
            // Overdue cards are due today.
            let date = local_date(tz, quarter * QUARTER_US).max(today);
            if let Some(slot) = forecast.get_mut(day_index(today, date)) {
                slot.1 += due;
            }
        }
        let next_due = figures.next_due;
        Ok(Stats {
            days: counts,
            streak_current,
            streak_longest,
            retention: (due_reviews > 0).then(|| recalled as f64 / due_reviews as f64),
            cards: states,
            forecast,
            next_due_at: next_due.and_then(DateTime::<Utc>::from_timestamp_micros),
        })
    }

    /// Starts this replica's fitter.
    pub fn start_fitter(&self) {
        let service = self.clone();
        let stop = self.fitter.stop.subscribe();
        let task = tokio::spawn(async move { fit_loop(service, stop).await });
        if let Ok(mut slot) = self.fitter.task.lock() {
            *slot = Some(task);
        }
    }
}

/// The first instant of `date` in `tz` (a day that starts in a DST gap starts at its first
/// existing instant).
fn start_of(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.with_timezone(&Utc)
        }
        chrono::LocalResult::None => tz
            .from_local_datetime(&(midnight + Days::hours(1)))
            .earliest()
            .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

fn local_date(tz: Tz, micros: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// Position of `date` in a run of days starting at `first` (`usize::MAX` before it).
fn day_index(first: NaiveDate, date: NaiveDate) -> usize {
    usize::try_from((date - first).num_days()).unwrap_or(usize::MAX)
}

/// The fitter: claims queued fits one at a time and runs each on the low-priority pool.
async fn fit_loop(service: Service, mut stop: watch::Receiver<bool>) {
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "kb-fsrs-fit".into())
        .start_handler(|_| lower_priority())
        .build()
    {
        Ok(pool) => Arc::new(pool),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the parameter fitter");
            return;
        }
    };
    let owner = service.fitter.owner.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let stale = Utc::now() - FIT_STALE;
        match service
            .store
            .claim_fit(&owner, stale.timestamp_micros())
            .await
        {
            Ok(Some(learner)) => {
                if let Err(e) = run_fit(&service, &pool, &owner, &learner).await {
                    tracing::warn!(%learner, error = %e, "a parameter fit failed");
                    let _ = service
                        .store
                        .finish_fit(&learner, &owner, None, 0, Some("the fit failed"))
                        .await;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look for parameter fits"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = service.fitter.wake.notified() => {}
            () = tokio::time::sleep(FIT_POLL) => {}
        }
    }
}

async fn run_fit(
    service: &Service,
    pool: &Arc<rayon::ThreadPool>,
    owner: &str,
    learner: &str,
) -> Result<()> {
    let reviews = service.store.fit_reviews(learner).await?;
    let count = reviews.len() as i64;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pool = pool.clone();
    pool.spawn(move || {
        let _ = tx.send(fit(&reviews));
    });
    let outcome = rx
        .await
        .map_err(|_| Error::Internal(anyhow::anyhow!("the fitter thread went away")))?;
    match outcome {
        Fit::Fitted(parameters) => {
            tracing::info!(%learner, reviews = count, "fitted FSRS parameters");
            service
                .store
                .finish_fit(learner, owner, Some(&parameters), count, None)
                .await?;
        }
        Fit::Kept(why) => {
            service
                .store
                .finish_fit(learner, owner, None, count, Some(&why))
                .await?;
        }
    }
    Ok(())
}

/// What a fit came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    Fitted(Vec<f32>),
    /// The defaults stay, for this reason.
    Kept(String),
}

/// The training items of a review log (card by card, in time order): for each review after a
/// card's first, the card's history up to it, with the days between reviews.
pub fn training_items(reviews: &[FitReview]) -> Vec<fsrs::FSRSItem> {
    let mut items = Vec::new();
    let mut history: Vec<fsrs::FSRSReview> = Vec::new();
    let mut card: Option<(i64, i64)> = None;
    for r in reviews {
        let rating = match r.rating.as_str() {
            "again" => 1,
            "hard" => 2,
            "good" => 3,
            _ => 4,
        };
        let delta_t = match card {
            Some((q, last)) if q == r.question_id => {
                u32::try_from((r.reviewed_at - last) / 86_400_000_000).unwrap_or(0)
            }
            _ => {
                history.clear();
                0
            }
        };
        history.push(fsrs::FSRSReview { rating, delta_t });
        card = Some((r.question_id, r.reviewed_at));
        if history.len() >= 2 {
            items.push(fsrs::FSRSItem {
                reviews: history.clone(),
            });
        }
    }
    items
}

/// Fits FSRS parameters to a review log with the crate's optimiser (CPU-bound: call it off the
/// async runtime).
pub fn fit(reviews: &[FitReview]) -> Fit {
    let items = training_items(reviews);
    if items.is_empty() {
        return Fit::Kept("no card has been reviewed twice yet".into());
    }
    let input = fsrs::ComputeParametersInput {
        train_set: items,
        ..Default::default()
    };
    match fsrs::compute_parameters(input) {
        Ok(p) if p.as_slice() == fsrs::DEFAULT_PARAMETERS.as_slice() => {
            Fit::Kept("too few reviews for the optimiser to improve on the defaults yet".into())
        }
        Ok(p) => Fit::Fitted(p),
        Err(fsrs::FSRSError::NotEnoughData) => Fit::Kept("too few reviews to fit yet".into()),
        Err(e) => Fit::Kept(format!("the optimiser declined: {e:?}")),
    }
}

/// Puts the calling thread at the lowest CPU priority, so a fit takes only what searches leave.
/// Nice 19 alone is not enough: the scheduler still lets a nice thread finish its slice before
/// a woken search thread runs, which put search p99 half again higher while fits ran (see
/// docs/benchmarks.md#learners). `SCHED_IDLE` yields to any other thread at once; nice 19
/// stays as the fallback where the policy is refused.
fn lower_priority() {
    // SAFETY: both calls change only the scheduling of the calling thread (pid 0 and who 0
    // name the calling thread on Linux); the parameter lives across the call.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(q: i64, rating: &str, day: i64) -> FitReview {
        FitReview {
            question_id: q,
            rating: rating.into(),
            reviewed_at: day * 86_400_000_000,
        }
    }

    #[test]
    fn each_review_after_a_cards_first_is_a_training_item_with_its_history() {
        let items = training_items(&[
            review(1, "good", 0),
            review(1, "again", 3),
            review(1, "good", 4),
            review(2, "easy", 1),
        ]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].reviews.len(), 2);
        assert_eq!(items[0].reviews[1].delta_t, 3);
        assert_eq!(
            items[1]
                .reviews
                .iter()
                .map(|r| r.rating)
                .collect::<Vec<_>>(),
            [3, 1, 3]
        );
    }

    #[test]
    fn a_log_without_a_second_review_keeps_the_defaults() {
        assert!(matches!(fit(&[review(1, "good", 0)]), Fit::Kept(_)));
    }

    #[test]
    fn days_start_at_local_midnight() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let d: NaiveDate = "2026-12-05".parse().unwrap();
        assert_eq!(start_of(tz, d).to_rfc3339(), "2026-12-04T16:00:00+00:00");
        assert_eq!(local_date(tz, start_of(tz, d).timestamp_micros()), d);
    }
}
