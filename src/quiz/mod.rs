//! Quiz logic that needs neither the database nor the index: random slot sampling, signed
//! multiple-choice tickets, answer excerpts, and FSRS scheduling. Unit-tested here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::seq::index;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashSet;

pub use crate::domain::Rating;

type HmacSha256 = Hmac<Sha256>;

/// `m` distinct slots from `1..=n` not in `taken`, uniformly at random, in random order.
pub fn sample_slots(rng: &mut impl Rng, n: i64, m: usize, taken: &HashSet<i64>) -> Vec<i64> {
    let mut taken: Vec<i64> = taken
        .iter()
        .copied()
        .filter(|s| (1..=n).contains(s))
        .collect();
    taken.sort_unstable();
    let free = n.max(0) as usize - taken.len();
    // The k-th free slot (0-based) is k + 1 shifted past every taken slot at or below it.
    index::sample(rng, free, m.min(free))
        .into_iter()
        .map(|k| {
            let mut slot = k as i64 + 1;
            for &t in &taken {
                if t <= slot {
                    slot += 1;
                } else {
                    break;
                }
            }
            slot
        })
        .collect()
}

/// What a multiple-choice ticket carries. The right choice is not in it: it is derived from
/// the nonce with the server's key, so a client can neither read nor choose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    #[serde(rename = "q")]
    pub question_id: i64,
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "c")]
    pub choices: Vec<String>,
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The id of the right choice for this nonce and question: 16 hex digits, shaped exactly like
/// the random ids of the other choices.
pub fn correct_choice_id(key: &[u8], nonce: &str, question_id: i64) -> String {
    let mut m = mac(key);
    m.update(b"kb-choice\0");
    m.update(nonce.as_bytes());
    m.update(&question_id.to_be_bytes());
    hex::encode(&m.finalize().into_bytes()[..8])
}

impl Ticket {
    /// `payload.signature`, both base64url.
    pub fn sign(&self, key: &[u8]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("ticket serializes"));
        let mut m = mac(key);
        m.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The ticket, if `raw` was signed with `key` and not altered (constant-time check).
    pub fn verify(raw: &str, key: &[u8]) -> Option<Ticket> {
        let (payload, sig) = raw.trim().split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut m = mac(key);
        m.update(payload.as_bytes());
        m.verify_slice(&sig).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// The opening of an answer, at most `max` characters, for a multiple-choice option: the first
/// non-empty line, shortened at a character boundary with an ellipsis.
pub fn excerpt(answer: &str, max: usize) -> String {
    let line = answer
        .lines()
        .map(|l| l.trim().trim_start_matches(['●', '○', '-', '*', ' ']))
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Memory state after a review, and when to review next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduled {
    pub stability: f32,
    pub difficulty: f32,
    pub interval_days: f64,
    pub due: DateTime<Utc>,
}

/// Retention FSRS aims for unless a learner chose another: the chance of still recalling the
/// answer when it is due.
pub const DESIRED_RETENTION: f32 = 0.9;
/// The longest interval unless a learner chose another (FSRS's own default: 100 years).
pub const MAXIMUM_INTERVAL_DAYS: u32 = 36_500;

/// How one learner is scheduled: FSRS parameters (the defaults, or fitted to their reviews),
/// the retention aimed for and the longest interval.
#[derive(Debug, Clone)]
pub struct Schedule {
    fsrs: std::sync::Arc<fsrs::FSRS>,
    pub retention: f32,
    pub maximum_interval_days: u32,
}

impl Schedule {
    /// `parameters` empty: FSRS's defaults.
    pub fn new(
        parameters: &[f32],
        retention: f32,
        maximum_interval_days: u32,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            fsrs: std::sync::Arc::new(fsrs::FSRS::new(parameters)?),
            retention,
            maximum_interval_days,
        })
    }

    /// Everyone's schedule before they choose: default parameters, 90 %, 100 years.
    pub fn standard() -> Self {
        static STANDARD: std::sync::OnceLock<Schedule> = std::sync::OnceLock::new();
        STANDARD
            .get_or_init(|| {
                Schedule::new(&[], DESIRED_RETENTION, MAXIMUM_INTERVAL_DAYS)
                    .expect("FSRS takes its default parameters")
            })
            .clone()
    }

    /// The next state after `rating`, given the previous state (`None` for a first review)
    /// and when that review was.
    pub fn next(
        &self,
        previous: Option<(f32, f32, DateTime<Utc>)>,
        rating: Rating,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Scheduled> {
        next_state(self, previous, rating, now)
    }
}

/// FSRS with its default parameters: the next state after `rating`, given the previous state
/// (`None` for a first review) and when that review was.
pub fn schedule(
    previous: Option<(f32, f32, DateTime<Utc>)>,
    rating: Rating,
    now: DateTime<Utc>,
) -> anyhow::Result<Scheduled> {
    Schedule::standard().next(previous, rating, now)
}

fn next_state(
    schedule: &Schedule,
    previous: Option<(f32, f32, DateTime<Utc>)>,
    rating: Rating,
    now: DateTime<Utc>,
) -> anyhow::Result<Scheduled> {
    let fsrs = &schedule.fsrs;
    let (memory, elapsed) = match previous {
        Some((stability, difficulty, last)) => (
            Some(fsrs::MemoryState {
                stability,
                difficulty,
            }),
            (now - last).num_days().max(0) as u32,
        ),
        None => (None, 0),
    };
    let next = fsrs.next_states(memory, schedule.retention, elapsed)?;
    let state = match rating {
        Rating::Again => next.again,
        Rating::Hard => next.hard,
        Rating::Good => next.good,
        Rating::Easy => next.easy,
    };
    let interval_days = f64::from(state.interval)
        .max(0.0)
        .min(f64::from(schedule.maximum_interval_days));
    let due = now + Duration::milliseconds((interval_days * 86_400_000.0) as i64);
    Ok(Scheduled {
        stability: state.memory.stability,
        difficulty: state.memory.difficulty,
        interval_days,
        due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_slots_are_distinct_in_range_and_avoid_taken_ones() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        let taken: HashSet<i64> = [3, 5].into();
        for m in [1, 3, 8, 20] {
            let s = sample_slots(&mut rng, 10, m, &taken);
            let set: HashSet<i64> = s.iter().copied().collect();
            assert_eq!(set.len(), s.len());
            assert_eq!(s.len(), m.min(8));
            assert!(s.iter().all(|x| (1..=10).contains(x) && !taken.contains(x)));
        }
        assert!(sample_slots(&mut rng, 0, 5, &HashSet::new()).is_empty());
        let all = sample_slots(&mut rng, 6, 6, &[2].into());
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 3, 4, 5, 6], "every free slot, none taken");
    }

    #[test]
    fn tickets_verify_only_when_untouched_and_signed_with_the_key() {
        let t = Ticket {
            question_id: 7,
            nonce: "abc".into(),
            choices: vec!["1".into(), "2".into()],
        };
        let raw = t.sign(b"key");
        assert_eq!(Ticket::verify(&raw, b"key"), Some(t.clone()));
        assert_eq!(Ticket::verify(&raw, b"other key"), None);
        let forged = Ticket {
            question_id: 8,
            ..t
        };
        let (_, sig) = raw.split_once('.').unwrap();
        let (payload, _) = forged
            .sign(b"attacker")
            .split_once('.')
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .unwrap();
        assert_eq!(Ticket::verify(&format!("{payload}.{sig}"), b"key"), None);
        assert_eq!(Ticket::verify("garbage", b"key"), None);
    }

    #[test]
    fn the_right_choice_id_depends_on_key_nonce_and_question() {
        let a = correct_choice_id(b"k", "n", 1);
        assert_eq!(a.len(), 16);
        assert_eq!(a, correct_choice_id(b"k", "n", 1));
        assert_ne!(a, correct_choice_id(b"k2", "n", 1));
        assert_ne!(a, correct_choice_id(b"k", "n2", 1));
        assert_ne!(a, correct_choice_id(b"k", "n", 2));
    }

    #[test]
    fn excerpts_take_the_first_line_without_its_bullet() {
        assert_eq!(excerpt("\n● make 和 new\n● 其他", 50), "make 和 new");
        assert_eq!(excerpt("一二三四五六", 3), "一二三…");
    }

    #[test]
    fn better_ratings_give_longer_intervals() {
        let now = Utc::now();
        let first: Vec<f64> = [Rating::Again, Rating::Hard, Rating::Good, Rating::Easy]
            .iter()
            .map(|r| schedule(None, *r, now).unwrap().interval_days)
            .collect();
        assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
        let good = schedule(None, Rating::Good, now).unwrap();
        let later = now + Duration::days(good.interval_days.ceil() as i64);
        let second = schedule(
            Some((good.stability, good.difficulty, now)),
            Rating::Good,
            later,
        )
        .unwrap();
        assert!(
            second.interval_days > good.interval_days,
            "reviews that go well space out"
        );
        let lapse = schedule(
            Some((good.stability, good.difficulty, now)),
            Rating::Again,
            later,
        )
        .unwrap();
        assert!(lapse.interval_days < second.interval_days);
    }
}
