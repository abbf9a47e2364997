//! What can go wrong in the service, in the service's own words. The HTTP layer maps each
//! variant to a status and a stable code once (`http/error.rs`); the command line prints the
//! message and its causes.

use crate::domain::{FieldErrors, SizeError};
use crate::store::StoreError;

/// Why a service operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no question with id {0}")]
    QuestionNotFound(i64),
    #[error("no answer with id {0}")]
    AnswerNotFound(i64),
    /// A category looked up (or used as a filter) does not exist.
    #[error("no category `{0}`")]
    CategoryNotFound(String),
    #[error("no question has the tag `{0}`")]
    TagNotFound(String),
    /// A question names a category that does not exist: the write conflicts with the
    /// knowledge base as it is.
    #[error("no category `{0}`; create it first")]
    UnknownCategory(String),
    #[error("category `{0}` already exists")]
    CategoryExists(String),
    /// The caller's precondition names a version that is no longer current.
    #[error("the current version is {current}, not the one expected")]
    VersionMismatch { current: i64 },
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("a session keeps the filters it was created with; do not send filters with it")]
    QuizSessionConflict,
    #[error("no such quiz session, or it has expired")]
    QuizSessionNotFound,
    #[error("every question of this session has been served; start a new session")]
    QuizSessionExhausted,
    #[error("{}", if *.needs_answers { "no question with an answer matches these filters" } else { "no question matches these filters" })]
    QuizNoQuestions { needs_answers: bool },
    #[error("multiple choice needs at least two questions with distinct answers")]
    QuizTooFewQuestions,
    #[error("the ticket was not issued by this server or was altered")]
    InvalidTicket,
    #[error("choice_id is not one of this item's choices")]
    ChoiceNotFound,
    #[error("no key with id {0}")]
    KeyNotFound(i64),
    /// Revoking a key revoked before.
    #[error("key {0} is revoked already")]
    KeyRevoked(i64),
    #[error("a question may have at most {max} answers; this write would make {count}")]
    TooManyAnswers { count: usize, max: usize },
    #[error(
        "a question's text (title, body and answers) may be at most {max} characters; this write would make {chars}"
    )]
    QuestionTooLarge { chars: usize, max: usize },
    /// The review's `review_id` already names another review of this learner.
    #[error(
        "review_id `{0}` already names another review of this learner (another question, rating or time); that one stays"
    )]
    ReviewIdReused(String),
    /// The review's time is too far ahead of the server's clock, or too long ago.
    #[error("{0}")]
    ReviewTimeOutOfRange(String),
    /// Another request with the same idempotency key holds it (this one's claim was taken
    /// over): nothing was written.
    #[error("a request with this Idempotency-Key is still running; retry shortly")]
    IdempotencyKeyInFlight,
    /// A fit of this learner's parameters is queued or running.
    #[error("a fit of this learner's parameters is already queued or running; wait for it")]
    FitInProgress,
    #[error("no webhook with id {0}")]
    WebhookNotFound(i64),
    #[error("no delivery with id {0} for this webhook")]
    DeliveryNotFound(i64),
    #[error("a knowledge base may have at most {0} webhooks; delete one first")]
    TooManyWebhooks(i64),
    /// The URL names (or resolves to) an address deliveries may not go to.
    #[error("{0}")]
    WebhookUrlForbidden(String),
    /// The database cannot be reached (PostgreSQL restarting, the network down): worth a
    /// retry, not a bug.
    #[error("the database cannot be reached; try again shortly")]
    Unavailable(#[source] StoreError),
    /// A bug or an unavailable dependency: not the caller's fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QuestionNotFound(id) => Self::QuestionNotFound(id),
            StoreError::AnswerNotFound(id) => Self::AnswerNotFound(id),
            StoreError::UnknownCategory(slug) => Self::UnknownCategory(slug),
            StoreError::UnknownTag(slug) => Self::TagNotFound(slug),
            StoreError::CategoryExists(slug) => Self::CategoryExists(slug),
            StoreError::VersionMismatch { current } => Self::VersionMismatch { current },
            StoreError::TooLarge(SizeError::TooManyAnswers { count, max }) => {
                Self::TooManyAnswers { count, max }
            }
            StoreError::TooLarge(SizeError::TooLarge { chars, max }) => {
                Self::QuestionTooLarge { chars, max }
            }
            StoreError::Schedule(e) => Self::Internal(e.context("scheduling a review")),
            StoreError::ClaimLost => Self::IdempotencyKeyInFlight,
            e @ StoreError::Db(_) if e.is_unavailable() => Self::Unavailable(e),
            StoreError::Db(e) => Self::Internal(anyhow::Error::new(e).context("database error")),
        }
    }
}

impl From<FieldErrors> for Error {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(anyhow::Error::new(e).context("a background task failed"))
    }
}

impl From<SizeError> for Error {
    fn from(e: SizeError) -> Self {
        match e {
            SizeError::TooManyAnswers { count, max } => Self::TooManyAnswers { count, max },
            SizeError::TooLarge { chars, max } => Self::QuestionTooLarge { chars, max },
        }
    }
}
