//! What fitting a learner's FSRS parameters is worth, and what it costs, on a synthetic learner
//! whose memory is known (documented in docs/benchmarks.md#learners).
//!
//! The learner: FSRS with parameters of their own (they forget faster than FSRS's defaults
//! assume: initial stabilities × 0.4, stability growth × 0.7), studying 25 new questions a day
//! and every question kb's standard schedule says is due (default parameters, 90 %). Whether
//! they recall is drawn from their true retrievability; recalled answers are rated good (80 %),
//! hard or easy (10 % each), forgotten ones again. The log is then what kb would hold.
//!
//! Reported: log loss and RMSE (bins) of the defaults, of the learner's true parameters (the
//! floor), and of parameters fitted by kb's fit (the `fsrs` optimiser) evaluated on reviews
//! after those it was fitted on (time-series splits: the honest, out-of-sample figure); and the
//! time of one fit over the whole log on one thread, as kb runs it.
//!
//!   cargo bench --bench fit                 # 10,000 and 100,000 reviews
//!   FIT_REVIEWS=20000 cargo bench --bench fit

use fsrs::{FSRS, MemoryState};
use kb::store::FitReview;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const DAY_US: i64 = 86_400_000_000;

fn true_parameters() -> Vec<f32> {
    let mut w = fsrs::DEFAULT_PARAMETERS.to_vec();
    for s in w.iter_mut().take(4) {
        *s *= 0.4;
    }
    w[8] *= 0.7;
    w
}

struct Card {
    truth: Option<MemoryState>,
    belief: Option<MemoryState>,
    last: i64,
    due: i64,
}

/// A review log of about `target` reviews, card by card in time order.
fn simulate(target: usize, seed: u64) -> Vec<FitReview> {
    let truth = FSRS::new(&true_parameters()).expect("parameters");
    let standard = FSRS::new(&[]).expect("defaults");
    let decay = true_parameters()[20];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cards: Vec<Card> = Vec::new();
    let mut log: Vec<FitReview> = Vec::new();
    let mut day = 0i64;
    while log.len() < target {
        for _ in 0..25 {
            cards.push(Card {
                truth: None,
                belief: None,
                last: day,
                due: day,
            });
        }
        for (id, card) in cards.iter_mut().enumerate() {
            if card.due > day || log.len() >= target {
                continue;
            }
            let elapsed = (day - card.last).max(0) as u32;
            let recalled = match card.truth {
                None => rng.random::<f32>() >= 0.2,
                Some(s) => {
                    rng.random::<f32>() < fsrs::current_retrievability(s, elapsed as f32, decay)
                }
            };
            let rating = if !recalled {
                1
            } else {
                match rng.random::<f32>() {
                    x if x < 0.1 => 2,
                    x if x < 0.2 => 4,
                    _ => 3,
                }
            };
            let pick = |n: fsrs::NextStates| match rating {
                1 => n.again,
                2 => n.hard,
                3 => n.good,
                _ => n.easy,
            };
            card.truth =
                Some(pick(truth.next_states(card.truth, 0.9, elapsed).expect("truth")).memory);
            let next = pick(
                standard
                    .next_states(card.belief, 0.9, elapsed)
                    .expect("schedule"),
            );
            card.belief = Some(next.memory);
            card.last = day;
            card.due = day + (next.interval.round() as i64).max(1);
            log.push(FitReview {
                question_id: id as i64,
                rating: ["again", "hard", "good", "easy"][rating as usize - 1].to_string(),
                reviewed_at: day * DAY_US,
            });
        }
        day += 1;
    }
    log.sort_by_key(|r| (r.question_id, r.reviewed_at));
    log
}

fn main() {
    let sizes: Vec<usize> = match std::env::var("FIT_REVIEWS") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000],
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    println!(
        "| reviews | training items | defaults: log loss / RMSE | fitted, out of sample: log loss / RMSE | true parameters: log loss / RMSE | one fit (1 thread) | kb's fit |"
    );
    println!("|---:|---:|---|---|---|---:|---|");
    for n in sizes {
        let log = simulate(n, 7);
        let items = kb::service::training_items(&log);
        let eval = |w: &[f32]| {
            let m = FSRS::new(w)
                .expect("parameters")
                .evaluate(items.clone(), |_| true)
                .expect("evaluates");
            format!("{:.4} / {:.4}", m.log_loss, m.rmse_bins)
        };
        let defaults = eval(&[]);
        let floor = eval(&true_parameters());
        // Not on the one-thread pool: the evaluation sends each split to rayon and waits on a
        // channel, which one thread cannot do at once (it deadlocks).
        let split = fsrs::evaluate_with_time_series_splits(
            fsrs::ComputeParametersInput {
                train_set: items.clone(),
                ..Default::default()
            },
            |_| true,
        );
        let fitted = match split {
            Ok(m) => format!("{:.4} / {:.4}", m.log_loss, m.rmse_bins),
            Err(e) => format!("{e:?}"),
        };
        let started = Instant::now();
        let outcome = pool.install(|| kb::service::fit_parameters(&log));
        let secs = started.elapsed().as_secs_f64();
        let kind = match outcome {
            kb::service::Fit::Fitted(_) => "fitted".to_string(),
            kb::service::Fit::Kept(why) => format!("kept the defaults: {why}"),
        };
        println!(
            "| {} | {} | {defaults} | {fitted} | {floor} | {secs:.1} s | {kind} |",
            log.len(),
            items.len()
        );
    }
}
