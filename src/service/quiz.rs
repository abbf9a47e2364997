//! Quiz draws, no-repeat sessions and multiple-choice grading.
//!
//! A draw picks random dense slots of the smallest pool that the filters name, and keeps the
//! members that pass the other conditions (other filters, not yet served in the session, has an
//! answer): rejection sampling, which stays uniform over the eligible questions. When too many
//! candidates are rejected it falls back to listing the eligible members of that pool.

use super::{Error, Result, Service};
use crate::domain::{Id, Question, QuizFilter};
use crate::quiz::{Ticket, correct_choice_id, excerpt, sample_slots};
use crate::secret::{new_token, random_hex, sha256_hex};
use crate::store::{Eligibility, Pool, StoreError};
use chrono::{DateTime, Duration, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::HashSet;

/// A session ends after this long without a draw.
pub const SESSION_TTL_HOURS: i64 = 6;
const EXCERPT_CHARS: usize = 120;
const CHOICES: usize = 4;
/// Sampling rounds before falling back to listing the pool.
const ROUNDS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuizMode {
    Flashcard,
    Choice,
}

#[derive(Debug, Clone)]
pub struct DrawRequest {
    pub filter: QuizFilter,
    pub count: usize,
    pub mode: QuizMode,
    pub session: Option<String>,
    pub seed: Option<u64>,
}

/// One option of a multiple-choice item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub text: String,
}

#[derive(Debug)]
pub enum QuizItem {
    Flashcard(Question),
    Choice {
        question: Question,
        choices: Vec<Choice>,
        ticket: String,
    },
}

/// A new session as the client sees it.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub remaining: i64,
    pub expires_at: DateTime<Utc>,
}

/// A session made but not stored yet: what the client will be told is known before the one
/// write that stores it, so a request can say what it answers before that write commits
/// (an idempotency record is written in the same transaction).
#[derive(Debug)]
pub struct PlannedSession {
    pub session: NewSession,
    token_hash: String,
    filter: QuizFilter,
    created_at: DateTime<Utc>,
}

/// The result of grading a multiple-choice answer.
#[derive(Debug)]
pub struct Graded {
    pub correct: bool,
    pub correct_choice_id: String,
    pub answer: String,
}

/// The draw's generator: reproducible from a client's seed, else seeded by the OS.
fn draw_rng(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

impl Service {
    async fn ticket_key(&self) -> Result<Vec<u8>> {
        let key = self
            .ticket_key
            .get_or_try_init(|| async { self.store.secret("ticket").await })
            .await?;
        Ok(key.clone())
    }

    async fn pools_for(&self, f: &QuizFilter) -> Result<Vec<Pool>> {
        match self.store.quiz_pools(f).await {
            Ok(pools) => Ok(pools),
            // A filter names something that does not exist: nothing to draw from.
            Err(StoreError::UnknownCategory(slug)) => Err(Error::CategoryNotFound(slug)),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `k` distinct eligible question ids, uniformly at random.
    async fn draw_ids(
        &self,
        rng: &mut StdRng,
        pools: &[Pool],
        k: usize,
        session: Option<&str>,
        needs_answers: bool,
    ) -> Result<Vec<i64>> {
        let sizes = self.store.pool_sizes(pools).await?;
        let (base_i, n) = sizes
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, s)| *s)
            .unwrap_or((0, 0));
        let base = &pools[base_i];
        let others: Vec<Pool> = pools
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != base_i)
            .map(|(_, p)| p.clone())
            .collect();
        let e = Eligibility {
            other_pools: &others,
            session,
            needs_answers,
        };
        let unconditional = others.is_empty() && session.is_none() && !needs_answers;
        let mut chosen: Vec<i64> = Vec::with_capacity(k);
        let mut tried: HashSet<i64> = HashSet::new();
        for _ in 0..ROUNDS {
            let need = k - chosen.len();
            if need == 0 || tried.len() as i64 >= n {
                break;
            }
            let m = if unconditional { need } else { need * 2 + 8 };
            let slots = sample_slots(rng, n, m, &tried);
            tried.extend(slots.iter().copied());
            let members = self.store.pool_members_at(base, &slots).await?;
            let ok = if unconditional {
                members.iter().copied().collect()
            } else {
                self.store.eligible_among(&members, &e).await?
            };
            for id in members {
                if chosen.len() < k && ok.contains(&id) {
                    chosen.push(id);
                }
            }
        }
        if chosen.len() < k && (tried.len() as i64) < n {
            // Few of the pool are eligible: list them and sample from the rest exactly.
            let taken: HashSet<i64> = chosen.iter().copied().collect();
            let rest: Vec<i64> = self
                .store
                .eligible_in_pool(base, &e)
                .await?
                .into_iter()
                .filter(|id| !taken.contains(id))
                .collect();
            let picks = sample_slots(rng, rest.len() as i64, k - chosen.len(), &HashSet::new());
            chosen.extend(picks.into_iter().map(|s| rest[(s - 1) as usize]));
        }
        Ok(chosen)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(count = req.count, mode = ?req.mode))]
    pub async fn draw(&self, req: DrawRequest) -> Result<Vec<QuizItem>> {
        let mut rng = draw_rng(req.seed);
        let now = Utc::now();
        let needs_answers = req.mode == QuizMode::Choice;
        let ids = match &req.session {
            Some(token) => {
                if !req.filter.is_empty() {
                    return Err(Error::QuizSessionConflict);
                }
                let hash = sha256_hex(token);
                let s = self
                    .store
                    .get_session(&hash, now)
                    .await?
                    .ok_or(Error::QuizSessionNotFound)?;
                let pools = match self.pools_for(&s.filter).await {
                    Ok(p) => p,
                    // The category or tag has gone since the session began: nothing is left.
                    Err(_) => return Err(Error::QuizSessionExhausted),
                };
                let ids = self
                    .draw_ids(&mut rng, &pools, req.count, Some(&hash), needs_answers)
                    .await?;
                if ids.is_empty() {
                    return Err(Error::QuizSessionExhausted);
                }
                let expires = now + Duration::hours(SESSION_TTL_HOURS);
                self.store.mark_served(&hash, &ids, expires).await?
            }
            None => {
                let pools = self.pools_for(&req.filter).await?;
                let ids = self
                    .draw_ids(&mut rng, &pools, req.count, None, needs_answers)
                    .await?;
                if ids.is_empty() {
                    return Err(Error::QuizNoQuestions { needs_answers });
                }
                ids
            }
        };
        let questions = self.store.get_questions(&ids).await?;
        match req.mode {
            QuizMode::Flashcard => Ok(questions.into_iter().map(QuizItem::Flashcard).collect()),
            QuizMode::Choice => {
                let key = self.ticket_key().await?;
                let mut items = Vec::with_capacity(questions.len());
                for q in questions {
                    // Eligibility and loading are two reads: a question whose answers were
                    // deleted in between is left out of this draw rather than failing it.
                    let Some((choices, ticket)) = self.build_choices(&mut rng, &q, &key).await?
                    else {
                        continue;
                    };
                    items.push(QuizItem::Choice {
                        question: q,
                        choices,
                        ticket,
                    });
                }
                if items.is_empty() {
                    return Err(Error::QuizNoQuestions {
                        needs_answers: true,
                    });
                }
                Ok(items)
            }
        }
    }

    /// Four options: the question's own answer and three from other questions, similar ones
    /// in the same category first, then any in the category, then any at all. `None` when
    /// the question has no answer (any more).
    async fn build_choices(
        &self,
        rng: &mut StdRng,
        q: &Question,
        key: &[u8],
    ) -> Result<Option<(Vec<Choice>, String)>> {
        let Some(own) = q.answers.first() else {
            return Ok(None);
        };
        let mut texts = vec![excerpt(&own.body, EXCERPT_CHARS)];
        let mut seen: HashSet<String> = texts.iter().cloned().collect();
        let mut consider = |other: &Question, texts: &mut Vec<String>| {
            if other.id == q.id || texts.len() >= CHOICES {
                return;
            }
            if let Some(a) = other.answers.first() {
                let t = excerpt(&a.body, EXCERPT_CHARS);
                if !t.is_empty() && seen.insert(t.clone()) {
                    texts.push(t);
                }
            }
        };
        for (other, _) in self.similar_to(q, 12).await? {
            if other.category.slug == q.category.slug {
                consider(&other, &mut texts);
            }
        }
        if texts.len() < CHOICES {
            let same_category = QuizFilter {
                category: Some(
                    crate::domain::Slug::parse(&q.category.slug).map_err(anyhow::Error::msg)?,
                ),
                ..QuizFilter::default()
            };
            let same_category = self.store.quiz_pools(&same_category).await?;
            for pools in [same_category, vec![Pool::All]] {
                if texts.len() >= CHOICES {
                    break;
                }
                let ids = self.draw_ids(rng, &pools, 12, None, true).await?;
                for other in self.store.get_questions(&ids).await? {
                    consider(&other, &mut texts);
                }
            }
        }
        if texts.len() < 2 {
            return Err(Error::QuizTooFewQuestions);
        }
        let nonce = random_hex(12);
        let mut choices: Vec<Choice> = texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| Choice {
                id: if i == 0 {
                    correct_choice_id(key, &nonce, q.id)
                } else {
                    random_hex(8)
                },
                text,
            })
            .collect();
        choices.shuffle(rng);
        let ticket = Ticket {
            question_id: q.id,
            nonce,
            choices: choices.iter().map(|c| c.id.clone()).collect(),
        }
        .sign(key);
        Ok(Some((choices, ticket)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn grade(&self, ticket: &str, choice_id: &str) -> Result<Graded> {
        let key = self.ticket_key().await?;
        let t = Ticket::verify(ticket, &key).ok_or(Error::InvalidTicket)?;
        if !t.choices.iter().any(|c| c == choice_id) {
            // A well-formed id that this item never offered: the body is valid, the
            // thing it names does not exist.
            return Err(Error::ChoiceNotFound);
        }
        let correct_choice_id = correct_choice_id(&key, &t.nonce, t.question_id);
        let q = self.store.get_question(question_id(t.question_id)?).await?;
        Ok(Graded {
            correct: choice_id == correct_choice_id,
            correct_choice_id,
            answer: q
                .answers
                .first()
                .map(|a| a.body.clone())
                .unwrap_or_default(),
        })
    }

    /// Checks the filters, counts what the session can serve and makes its token; stores
    /// nothing (see [`Service::open_session`]).
    #[tracing::instrument(skip(self))]
    pub async fn plan_session(&self, filter: &QuizFilter) -> Result<PlannedSession> {
        let pools = self.pools_for(filter).await?;
        let sizes = self.store.pool_sizes(&pools).await?;
        let remaining = if pools.len() == 1 {
            sizes[0]
        } else {
            let (i, _) = sizes
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| **s)
                .unwrap_or((0, &0));
            let others: Vec<Pool> = pools
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.clone())
                .collect();
            let e = Eligibility {
                other_pools: &others,
                ..Default::default()
            };
            self.store.eligible_in_pool(&pools[i], &e).await?.len() as i64
        };
        if remaining == 0 {
            return Err(Error::QuizNoQuestions {
                needs_answers: false,
            });
        }
        let (token, token_hash) = new_token();
        let now = Utc::now();
        let expires_at = now + Duration::hours(SESSION_TTL_HOURS);
        Ok(PlannedSession {
            session: NewSession {
                token,
                remaining,
                expires_at,
            },
            token_hash,
            filter: filter.clone(),
            created_at: now,
        })
    }

    /// Stores a planned session.
    #[tracing::instrument(skip_all)]
    pub async fn open_session(&self, planned: PlannedSession) -> Result<NewSession> {
        self.store
            .create_session(
                &planned.token_hash,
                &planned.filter,
                planned.created_at,
                planned.session.expires_at,
            )
            .await?;
        Ok(planned.session)
    }

    #[tracing::instrument(skip_all)]
    pub async fn end_session(&self, token: &str) -> Result<()> {
        if self.store.delete_session(&sha256_hex(token)).await? {
            Ok(())
        } else {
            Err(Error::QuizSessionNotFound)
        }
    }
}

/// A question id from a body or a ticket: one that can't exist is not found, as an id no
/// question has.
pub(super) fn question_id(raw: i64) -> Result<Id> {
    Id::new(raw).ok_or(Error::QuestionNotFound(raw))
}
