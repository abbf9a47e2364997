//! Validated domain types, parsed once at the edge so the rest of the code never re-checks.
//!
//! Each `parse` returns a human-readable message on failure; callers attach the field name.

pub mod changes;
mod fields;
pub mod import;
pub mod keys;
pub mod learners;
mod net;
mod question;
pub mod synonyms;
pub mod webhooks;

pub use fields::{FieldError, FieldErrors};
pub use net::Net;
pub use question::{QuestionDraft, parse_answers, parse_tags};
pub use synonyms::{RawSynonymSet, RawSynonymTable, SynonymSet, SynonymTable};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

pub const TITLE_MAX_CHARS: usize = 500;
pub const BODY_MAX_CHARS: usize = 100_000;
pub const TAGS_MAX: usize = 20;
pub const SLUG_MAX_CHARS: usize = 50;
pub const CATEGORY_NAME_MAX_CHARS: usize = 100;
/// Answers one question may have.
pub const ANSWERS_MAX: usize = 100;
/// Characters of one question's title, body and answers together: what a write re-indexes and
/// a read renders stays proportionate.
pub const QUESTION_MAX_CHARS: usize = 500_000;

/// The rules above as JSON Schema patterns, for the OpenAPI document: the same rules the
/// parsers below enforce, so a schema-valid value is never refused and the other way round.
pub mod patterns {
    /// [`super::Slug`]: `[a-z0-9]` words joined by single `-`.
    pub const SLUG: &str = "^[a-z0-9]+(-[a-z0-9]+)*$";
    /// One line of text with something other than whitespace: [`super::QuestionTitle`],
    /// [`super::CategoryName`], [`super::keys::KeyName`] (no control characters but tab).
    pub const LINE: &str =
        r"^[^\x00-\x08\x0A-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0A-\x1F\x7F-\x9F]*$";
    /// [`super::LearnerId`].
    pub const LEARNER: &str = "^[A-Za-z0-9_-]{1,64}$";
    /// [`super::ReviewId`]: printable ASCII, no spaces.
    pub const REVIEW_ID: &str = "^[!-~]{1,64}$";
    /// [`super::Markdown`]: like [`LINE`], but newlines are allowed.
    pub const MARKDOWN: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";
}

/// NUL and other C0/C1 controls (other than tab and newlines) are never legitimate in
/// stored text and break many downstream consumers, so they are refused rather than stored.
pub(crate) fn check_controls(s: &str, allow_newlines: bool) -> Result<(), String> {
    let bad = s
        .chars()
        .find(|&c| c.is_control() && !(c == '\t' || (allow_newlines && (c == '\n' || c == '\r'))));
    match bad {
        Some(c) => Err(format!(
            "must not contain control character U+{:04X}",
            c as u32
        )),
        None => Ok(()),
    }
}

/// The question itself: 1–500 characters after trimming, one line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionTitle(String);

impl QuestionTitle {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        let n = t.chars().count();
        if n == 0 || n > TITLE_MAX_CHARS {
            return Err(format!(
                "must be 1 to {TITLE_MAX_CHARS} characters after trimming (got {n})"
            ));
        }
        check_controls(t, false)?;
        Ok(Self(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Markdown text: a question's optional detail or an answer, 1–100,000 characters, kept as
/// given (no trimming: whitespace can be meaningful in Markdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markdown(String);

impl Markdown {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n = raw.chars().count();
        if raw.trim().is_empty() || n > BODY_MAX_CHARS {
            return Err(format!(
                "must be 1 to {BODY_MAX_CHARS} characters and not only whitespace (got {n})"
            ));
        }
        check_controls(raw, true)?;
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A lowercase slug: `[a-z0-9]` words joined by single `-`, 1–50 characters. Input is trimmed
/// and lowercased first, so `GC` and ` gc ` name the same tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_ascii_lowercase();
        let n = s.chars().count();
        if n == 0 || n > SLUG_MAX_CHARS {
            return Err(format!(
                "must be 1 to {SLUG_MAX_CHARS} characters (got {n})"
            ));
        }
        let valid = s.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if !valid {
            return Err(
                "must be lowercase letters and digits, words joined by single hyphens (like `write-barrier`)"
                    .into(),
            );
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of tags: at most 20 distinct slugs, in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<Slug>);

impl Tags {
    /// Returns per-item errors as `(index, message)` so callers can point at `tags[i]`.
    pub fn parse(raw: &[String]) -> Result<Self, Vec<(Option<usize>, String)>> {
        let mut errors = Vec::new();
        let mut out: Vec<Slug> = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            match Slug::parse(t) {
                Ok(s) if !out.contains(&s) => out.push(s),
                Ok(_) => {}
                Err(e) => errors.push((Some(i), e)),
            }
        }
        if out.len() > TAGS_MAX {
            errors.push((
                None,
                format!("at most {TAGS_MAX} distinct tags (got {})", out.len()),
            ));
        }
        if errors.is_empty() {
            Ok(Self(out))
        } else {
            Err(errors)
        }
    }
    pub fn as_slice(&self) -> &[Slug] {
        &self.0
    }
}

/// A category's display name: 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryName(String);

impl CategoryName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        let n = t.chars().count();
        if n == 0 || n > CATEGORY_NAME_MAX_CHARS {
            return Err(format!(
                "must be 1 to {CATEGORY_NAME_MAX_CHARS} characters after trimming (got {n})"
            ));
        }
        check_controls(t, false)?;
        Ok(Self(t.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How hard a question is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    #[default]
    Medium,
    Hard,
}

impl Difficulty {
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "easy" => Ok(Self::Easy),
            "medium" => Ok(Self::Medium),
            "hard" => Ok(Self::Hard),
            _ => Err("must be one of `easy`, `medium`, `hard`".into()),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Easy => "easy",
            Self::Medium => "medium",
            Self::Hard => "hard",
        }
    }
}

/// A resource id: a positive 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(i64);

impl Id {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            _ => Err(format!(
                "`{}` is not a positive integer id",
                raw.escape_debug()
            )),
        }
    }
    pub fn new(n: i64) -> Option<Self> {
        (n > 0).then_some(Self(n))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an API key may do. `admin` grants everything; `write` and `learners` each grant
/// `read` and their own area (content, learners' reviews).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    /// Acting for learners: any learner's reviews and due list, and learner tokens.
    Learners,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Learners, Scope::Admin];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "learners" => Ok(Self::Learners),
            "admin" => Ok(Self::Admin),
            _ => Err("must be one of `read`, `write`, `learners`, `admin`".into()),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Learners => "learners",
            Self::Admin => "admin",
        }
    }
    /// Whether a key of this scope may do what `needed` allows.
    pub fn grants(self, needed: Scope) -> bool {
        self == needed || self == Self::Admin || needed == Self::Read
    }
}

/// A request quota: `units` of cost per `window_secs` seconds, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub units: u32,
    pub window_secs: u32,
}

impl Rate {
    /// `600/min`, `100/s`, `36000/h`, or `600/60s`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || format!("`{raw}` is not a rate like `600/min`, `20/s` or `5000/h`");
        let (units, per) = raw.trim().split_once('/').ok_or_else(bad)?;
        let units: u32 = units
            .trim()
            .parse()
            .ok()
            .filter(|u| *u > 0)
            .ok_or_else(bad)?;
        let window_secs = match per.trim() {
            "s" | "sec" | "second" => 1,
            "min" | "m" | "minute" => 60,
            "h" | "hour" => 3600,
            other => other
                .strip_suffix('s')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(bad)?,
        };
        Ok(Self { units, window_secs })
    }

    /// Units per minute, as stored with a key; a rate beyond what a `u32` counts per minute
    /// is as good as unlimited, and kept as the most it counts.
    pub fn per_minute(self) -> u32 {
        let n = (u64::from(self.units) * 60).div_ceil(u64::from(self.window_secs));
        n.clamp(1, u64::from(u32::MAX)) as u32
    }

    /// A key's stored quota as `kb keys` and the API show it, in a form [`Rate::parse`] takes
    /// back: `1200/min`.
    pub fn per_minute_text(per_minute: u32) -> String {
        format!("{per_minute}/min")
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.units, self.window_secs)
    }
}

/// A learner: an opaque client-chosen id of 1–64 characters from `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerId(String);

impl LearnerId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(format!(
                "`{}` is not 1 to 64 characters of [A-Za-z0-9_-]",
                raw.escape_debug()
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A self-graded recall rating. The order of the variants (`again < hard < good < easy`) is
/// also how two reviews of one card at the same instant are ordered in its log.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Again,
    Hard,
    Good,
    Easy,
}

impl Rating {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "again" => Ok(Self::Again),
            "hard" => Ok(Self::Hard),
            "good" => Ok(Self::Good),
            "easy" => Ok(Self::Easy),
            _ => Err("must be one of `again`, `hard`, `good`, `easy`".into()),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Again => "again",
            Self::Hard => "hard",
            Self::Good => "good",
            Self::Easy => "easy",
        }
    }
}

/// Characters a client's review id may have.
pub const REVIEW_ID_MAX_CHARS: usize = 64;
/// Reviews one batch may carry: a device's backlog of weeks in one request, one transaction
/// that stays well under a second.
pub const REVIEW_BATCH_MAX: usize = 1000;

/// A client's id for one review, so that uploading it twice applies it once: 1–64 printable
/// ASCII characters without spaces, compared exactly. Whatever a client already names its
/// reviews with fits (a UUID, a ULID, base64, `phone-7:1234`); spaces and anything beyond
/// ASCII are refused, since an id that looks the same but is not would defeat the point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReviewId(String);

impl ReviewId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=REVIEW_ID_MAX_CHARS).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(format!(
                "must be 1 to {REVIEW_ID_MAX_CHARS} printable ASCII characters without spaces"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

/// A client's `Idempotency-Key`: 1–255 printable ASCII characters (space to `~`), compared
/// byte for byte. The draft's quoted form (`"…"`) is a key like any other, quotes included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > IDEMPOTENCY_KEY_MAX_CHARS {
            return Err(format!(
                "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} characters; this one \
                 has {}",
                raw.len()
            ));
        }
        if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err("Idempotency-Key must be printable ASCII (space to `~`)".into());
        }
        // Checked just above: every byte is ASCII.
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How far ahead of the server's clock a client's review time may be (and then counts as now).
pub const REVIEW_CLOCK_SKEW_SECS: i64 = 300;
/// How old a synced review may be.
pub const REVIEW_MAX_AGE_DAYS: i64 = 365;

/// When a review happened, as a client reports it: never in the future beyond a little clock
/// skew (which counts as now), never more than a year old, so every time kb stores and emits
/// has a four-digit year. The message says which bound was crossed.
pub fn check_review_time(t: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if t > now + chrono::Duration::seconds(REVIEW_CLOCK_SKEW_SECS) {
        return Err(format!(
            "reviewed_at is in the future (more than {REVIEW_CLOCK_SKEW_SECS} s ahead of the server's clock)"
        ));
    }
    if t < now - chrono::Duration::days(REVIEW_MAX_AGE_DAYS) {
        return Err(format!(
            "reviewed_at is more than {REVIEW_MAX_AGE_DAYS} days ago"
        ));
    }
    Ok(t.min(now))
}

/// A new question, fully validated.
#[derive(Debug, Clone)]
pub struct NewQuestion {
    pub title: QuestionTitle,
    pub body: Option<Markdown>,
    pub category: Slug,
    pub tags: Tags,
    pub difficulty: Difficulty,
    pub answers: Vec<Markdown>,
}

/// A question too big to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("a question may have at most {max} answers (this would make {count})")]
    TooManyAnswers { count: usize, max: usize },
    #[error(
        "a question's title, body and answers may have at most {max} characters together (this would make {chars})"
    )]
    TooLarge { chars: usize, max: usize },
}

/// How big a question is: its answers, and the characters of its title, body and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuestionSize {
    pub answers: usize,
    pub chars: usize,
}

impl QuestionSize {
    pub fn of(q: &NewQuestion) -> Self {
        Self {
            answers: q.answers.len(),
            chars: q.title.as_str().chars().count()
                + q.body.as_ref().map_or(0, |b| b.as_str().chars().count())
                + q.answers
                    .iter()
                    .map(|a| a.as_str().chars().count())
                    .sum::<usize>(),
        }
    }

    /// Whether a write may take a question from `before` to this size. A question already over
    /// a limit (stored before the limits existed) keeps working: it may shrink or stay, but
    /// not grow.
    pub fn check_growth(self, before: QuestionSize) -> Result<(), SizeError> {
        if self.answers > ANSWERS_MAX && self.answers > before.answers {
            return Err(SizeError::TooManyAnswers {
                count: self.answers,
                max: ANSWERS_MAX,
            });
        }
        if self.chars > QUESTION_MAX_CHARS && self.chars > before.chars {
            return Err(SizeError::TooLarge {
                chars: self.chars,
                max: QUESTION_MAX_CHARS,
            });
        }
        Ok(())
    }
}

/// A validated merge patch of a question: `None` keeps the field as it is.
#[derive(Debug, Clone, Default)]
pub struct QuestionPatch {
    pub title: Option<QuestionTitle>,
    /// `Some(None)` clears the body.
    pub body: Option<Option<Markdown>>,
    pub category: Option<Slug>,
    pub tags: Option<Tags>,
    pub difficulty: Option<Difficulty>,
    /// Replaces the whole list of answers, as merge patch replaces arrays.
    pub answers: Option<Vec<Markdown>>,
}

impl QuestionPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.body.is_none()
            && self.category.is_none()
            && self.tags.is_none()
            && self.difficulty.is_none()
            && self.answers.is_none()
    }
}

/// What an `If-Match` header allows a write to overwrite.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// No `If-Match`, or `If-Match: *`.
    #[default]
    Any,
    /// Only these versions (possibly none, when every tag given was for something else).
    OneOf(Vec<i64>),
}

impl Precondition {
    pub fn admits(&self, current_version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(versions) => versions.contains(&current_version),
        }
    }
}

/// A question as stored, with its category, tags and answers.
///
/// Serialized exactly as the API renders a question (the change feed stores this rendering at
/// commit, and a test compares it with `GET /questions/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    pub id: i64,
    pub title: String,
    pub body: Option<String>,
    pub category: CategoryRef,
    pub tags: Vec<String>,
    pub difficulty: Difficulty,
    pub answers: Vec<Answer>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// The importer's stable id, for questions that came from a bulk import.
    pub external_id: Option<String>,
}

/// An answer as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub id: i64,
    pub question_id: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The category a question belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryRef {
    pub slug: String,
    pub name: String,
}

/// A category with the number of questions in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub question_count: i64,
}

/// A tag with the number of questions carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    pub slug: String,
    pub question_count: i64,
}

/// Filters of the question list.
#[derive(Debug, Clone, Default)]
pub struct QuestionFilter {
    pub category: Option<Slug>,
    /// All must match.
    pub tags: Vec<Slug>,
    pub difficulty: Option<Difficulty>,
    pub updated_since: Option<DateTime<Utc>>,
}

/// The filters of a quiz draw or session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuizFilter {
    pub category: Option<Slug>,
    pub tag: Option<Slug>,
    pub difficulty: Option<Difficulty>,
}

impl QuizFilter {
    pub fn is_empty(&self) -> bool {
        self.category.is_none() && self.tag.is_none() && self.difficulty.is_none()
    }
}

/// A search as a client asked for it: the text, filters and page, all validated.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub category: Option<Slug>,
    pub tag: Option<Slug>,
    pub difficulty: Option<Difficulty>,
    pub limit: usize,
    pub offset: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(
            QuestionTitle::parse("  GMP 指的是什么？ ")
                .unwrap()
                .as_str(),
            "GMP 指的是什么？"
        );
        assert!(QuestionTitle::parse("   ").is_err());
        assert!(QuestionTitle::parse(&"测".repeat(500)).is_ok());
        assert!(QuestionTitle::parse(&"测".repeat(501)).is_err());
        assert!(QuestionTitle::parse("a\0b").is_err());
        assert!(QuestionTitle::parse("two\nlines").is_err());
    }

    #[test]
    fn idempotency_keys_are_1_to_255_printable_ascii_bytes() {
        assert_eq!(IdempotencyKey::parse(b"a b~").unwrap().as_str(), "a b~");
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        for bad in [&b"tab\there"[..], b"del\x7f", "键".as_bytes(), b"nul\0"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn markdown_keeps_whitespace_but_refuses_nul() {
        assert_eq!(Markdown::parse("  x\n").unwrap().as_str(), "  x\n");
        assert!(Markdown::parse(" \n ").is_err());
        assert!(Markdown::parse("a\u{0}").is_err());
        assert!(Markdown::parse(&"x".repeat(BODY_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn slugs_are_lowercased_and_strict() {
        assert_eq!(Slug::parse(" GC ").unwrap().as_str(), "gc");
        assert_eq!(
            Slug::parse("write-barrier").unwrap().as_str(),
            "write-barrier"
        );
        for bad in ["", "-a", "a-", "a--b", "a b", "垃圾", "a_b", "a.b"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tags_are_deduplicated_and_capped() {
        let t = Tags::parse(&["GC".into(), "gc".into(), "map".into()]).unwrap();
        assert_eq!(t.as_slice().len(), 2);
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).is_err());
        let errs = Tags::parse(&["ok".into(), "not ok".into()]).unwrap_err();
        assert_eq!(errs[0].0, Some(1));
    }

    #[test]
    fn scopes_grant_read_and_their_own_area_and_admin_grants_all() {
        use Scope::*;
        assert!(Write.grants(Read) && Learners.grants(Read) && Admin.grants(Learners));
        assert!(!Write.grants(Learners) && !Learners.grants(Write) && !Read.grants(Write));
        assert!(!Write.grants(Admin));
    }

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(
            Rate::parse("600/min").unwrap(),
            Rate {
                units: 600,
                window_secs: 60
            }
        );
        assert_eq!(Rate::parse("20/s").unwrap().per_minute(), 1200);
        assert_eq!(Rate::parse("90/30s").unwrap().window_secs, 30);
        assert_eq!(Rate::parse("4000000000/s").unwrap().per_minute(), u32::MAX);
        let shown = Rate::per_minute_text(Rate::parse("50/s").unwrap().per_minute());
        assert_eq!(shown, "3000/min");
        assert_eq!(Rate::parse(&shown).unwrap().per_minute(), 3000);
        for bad in ["", "0/min", "10", "10/fortnight", "-1/s", "10/0s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn review_times_are_bounded_by_the_clock() {
        let now = Utc::now();
        let ok = |raw: &str| {
            let t = DateTime::parse_from_rfc3339(raw)
                .unwrap()
                .with_timezone(&Utc);
            check_review_time(t, now)
        };
        assert!(ok("0000-01-01T00:00:00+23:59").is_err());
        assert!(ok("1500-01-01T00:00:00Z").is_err());
        assert!(ok("2999-01-01T00:00:00Z").is_err());
        let a_minute_ahead = (now + chrono::Duration::seconds(60)).to_rfc3339();
        assert_eq!(
            ok(&a_minute_ahead).unwrap(),
            now,
            "small skew counts as now"
        );
        let an_hour_ago = now - chrono::Duration::hours(1);
        assert_eq!(ok(&an_hour_ago.to_rfc3339()).unwrap(), an_hour_ago);
    }

    #[test]
    fn review_ids_are_printable_ascii_without_spaces() {
        for good in [
            "0b6f6c1e-2f59-4c1b-9d1a-3e5f7a9b1c2d",
            "phone-7:1234",
            "a",
            "K+/=",
            &"x".repeat(64),
        ] {
            assert_eq!(ReviewId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", " a", "a b", "a\n", "é", "\u{0}", &"x".repeat(65)] {
            assert!(ReviewId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_must_be_positive_integers() {
        assert_eq!(Id::parse("7").unwrap().get(), 7);
        for bad in ["0", "-1", "abc", "1.5", "99999999999999999999", ""] {
            assert!(Id::parse(bad).is_err(), "{bad:?}");
        }
    }
}
