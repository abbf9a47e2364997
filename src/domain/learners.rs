//! What a learner owns besides their reviews: the settings their schedule follows, and the
//! figures of their progress, parsed and shaped here once.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The retention aimed for unless a learner chose another.
pub const DEFAULT_RETENTION: f64 = 0.9;
/// The retention a learner may aim for.
pub const RETENTION_MIN: f64 = 0.70;
pub const RETENTION_MAX: f64 = 0.97;
/// The longest interval a learner may allow, in days.
pub const INTERVAL_MAX_DAYS: i64 = 36_500;
/// Days of history stats may cover.
pub const STATS_DAYS_MAX: i64 = 365;
/// Days of the due forecast.
pub const FORECAST_DAYS: i64 = 30;

/// A retention between [`RETENTION_MIN`] and [`RETENTION_MAX`].
pub fn parse_retention(v: f64) -> Result<f64, String> {
    if v.is_finite() && (RETENTION_MIN..=RETENTION_MAX).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a number from {RETENTION_MIN} to {RETENTION_MAX} (the share of answers still recalled when a question is due)"
        ))
    }
}

/// A maximum interval from 1 to [`INTERVAL_MAX_DAYS`] days.
pub fn parse_interval(v: i64) -> Result<i64, String> {
    if (1..=INTERVAL_MAX_DAYS).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a whole number of days from 1 to {INTERVAL_MAX_DAYS}"
        ))
    }
}

/// An IANA time zone name (`Asia/Shanghai`, `UTC`).
pub fn parse_time_zone(raw: &str) -> Result<Tz, String> {
    if raw.len() > 64 {
        return Err("must be an IANA time zone name such as Asia/Shanghai".into());
    }
    raw.parse::<Tz>().map_err(|_| {
        format!(
            "`{raw}` is not an IANA time zone name (such as Asia/Shanghai, Europe/Berlin or UTC)"
        )
    })
}

/// Days of history for stats, 1 to [`STATS_DAYS_MAX`].
pub fn parse_days(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|d| (1..=STATS_DAYS_MAX).contains(d))
        .ok_or_else(|| format!("must be a whole number from 1 to {STATS_DAYS_MAX}"))
}

/// A learner's settings as their schedule follows them.
#[derive(Debug, Clone)]
pub struct LearnerSettings {
    pub desired_retention: f64,
    pub maximum_interval_days: i64,
    pub time_zone: Tz,
    /// Fitted FSRS parameters; `None`: the defaults.
    pub parameters: Option<Vec<f32>>,
    pub fitted_at: Option<DateTime<Utc>>,
    /// Reviews the fitted parameters were fitted from.
    pub fitted_reviews: Option<i64>,
    /// Why the last fit kept the defaults.
    pub fit_note: Option<String>,
    pub fit: FitState,
}

impl Default for LearnerSettings {
    fn default() -> Self {
        Self {
            desired_retention: DEFAULT_RETENTION,
            maximum_interval_days: i64::from(crate::quiz::MAXIMUM_INTERVAL_DAYS),
            time_zone: Tz::UTC,
            parameters: None,
            fitted_at: None,
            fitted_reviews: None,
            fit_note: None,
            fit: FitState::Idle,
        }
    }
}

/// What a learner may set.
#[derive(Debug, Clone)]
pub struct SettingsInput {
    pub desired_retention: f64,
    pub maximum_interval_days: i64,
    pub time_zone: Tz,
}

/// Where a learner's parameter fit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitState {
    Idle,
    /// Asked for, waiting for the fitter.
    Queued,
    Running,
}

impl FitState {
    pub fn as_str(self) -> &'static str {
        match self {
            FitState::Idle => "idle",
            FitState::Queued => "queued",
            FitState::Running => "running",
        }
    }
}

/// Reviews on one day of the learner's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub date: NaiveDate,
    pub reviews: i64,
    /// Of them, rated `again`.
    pub again: i64,
}

/// Cards by the state of their memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardStates {
    /// Questions never reviewed.
    pub new: i64,
    /// Reviewed once, and not yet remembered for a day (the interval is under a day).
    pub learning: i64,
    /// Remembered for a day or more.
    pub review: i64,
    /// Reviewed more than once, and the interval is back under a day: forgotten, being
    /// relearned.
    pub relearning: i64,
}

/// A learner's progress, as `GET /api/v1/learners/{learner}/stats` answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub days: Vec<DayCount>,
    pub streak_current: i64,
    pub streak_longest: i64,
    /// Share of the period's reviews of due cards (made at or after the due time) not rated
    /// `again`; `None` without any.
    pub retention: Option<f64>,
    pub cards: CardStates,
    /// Cards due per day from today on (overdue ones today).
    pub forecast: Vec<(NaiveDate, i64)>,
    pub next_due_at: Option<DateTime<Utc>>,
}

/// The current and longest run of consecutive days in `days` (sorted, distinct), the current
/// one ending `today` or, when nothing was reviewed yet today, yesterday.
pub fn streaks(days: &[NaiveDate], today: NaiveDate) -> (i64, i64) {
    let mut longest = 0;
    let mut run = 0;
    let mut prev: Option<NaiveDate> = None;
    for &d in days {
        run = match prev {
            Some(p) if p.succ_opt() == Some(d) => run + 1,
            _ => 1,
        };
        longest = longest.max(run);
        prev = Some(d);
    }
    let current = match prev {
        Some(last) if last == today || last.succ_opt() == Some(today) => run,
        _ => 0,
    };
    (current, longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_streak_counts_consecutive_days_and_survives_until_today_ends() {
        let days = [
            d("2026-11-01"),
            d("2026-11-02"),
            d("2026-11-03"),
            d("2026-11-10"),
            d("2026-11-11"),
        ];
        assert_eq!(streaks(&days, d("2026-11-11")), (2, 3));
        assert_eq!(
            streaks(&days, d("2026-11-12")),
            (2, 3),
            "not yet reviewed today"
        );
        assert_eq!(streaks(&days, d("2026-11-13")), (0, 3));
        assert_eq!(streaks(&[], d("2026-11-13")), (0, 0));
    }

    #[test]
    fn settings_are_bounded_and_time_zones_are_iana_names() {
        assert!(parse_retention(0.7).is_ok() && parse_retention(0.97).is_ok());
        assert!(parse_retention(0.69).is_err() && parse_retention(0.98).is_err());
        assert!(parse_retention(f64::NAN).is_err());
        assert!(parse_interval(0).is_err() && parse_interval(36_501).is_err());
        assert_eq!(
            parse_time_zone("Asia/Shanghai").unwrap(),
            Tz::Asia__Shanghai
        );
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(parse_days("0").is_err() && parse_days("366").is_err() && parse_days("30").is_ok());
    }
}
