//! The quiz: random draws, no-repeat sessions and multiple-choice grading.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, PathText, Query};
use super::idempotency::json_reply;
use super::shared::{AnswerOut, Filter, QuestionSummary, parse_limit};
use crate::domain::{Difficulty, FieldErrors};
use crate::idempotency;
use crate::service::{DrawRequest, QuizItem, QuizMode, SessionRow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuizParams {
    /// How many questions, 1–50; fewer come back when fewer match.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 50, default = 10)]
    pub count: Option<String>,
    /// Only this category (slug); an unknown one is 422.
    #[param(value_type = String, required = false, format = "kb:slug")]
    pub category: Option<String>,
    /// Only questions with this tag; an unknown one is 422.
    #[param(value_type = String, required = false, format = "kb:slug")]
    pub tag: Option<String>,
    #[param(value_type = Difficulty, required = false)]
    pub difficulty: Option<String>,
    /// `flashcard` (question with its answers, the default) or `choice` (four options).
    #[param(value_type = String, required = false, pattern = "^(flashcard|choice)$")]
    pub mode: Option<String>,
    /// A session token from `POST /api/v1/quiz/sessions`: never repeat a question. Do not
    /// combine with filters; the session keeps its own.
    #[param(value_type = String, required = false)]
    pub session: Option<String>,
    /// Makes the draw reproducible (same seed, same data, same questions).
    #[param(value_type = i64, required = false, minimum = 0, maximum = 9223372036854775807_i64)]
    pub seed: Option<String>,
}

/// One option of a multiple-choice item. Nothing in it tells whether it is the right one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChoiceOut {
    #[schema(example = "9f2c41d07a5b3e18")]
    pub id: String,
    #[schema(example = "make返回的还是引用类型本身；而new返回的是指向类型的指针。")]
    pub text: String,
}

/// A drawn question: with its answers (flashcard) or with choices and a ticket (choice).
#[derive(Debug, Serialize, ToSchema)]
pub struct QuizItemOut {
    pub question: QuestionSummary,
    /// Flashcard mode: the question's answers, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<AnswerOut>>,
    /// Choice mode: 2–4 options in random order; 4 whenever the knowledge base has three
    /// other questions with distinct answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<ChoiceOut>>,
    /// Choice mode: send back with the chosen option to `POST /api/v1/quiz/answers`. Signed;
    /// it does not reveal the right option and cannot be altered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuizResponse {
    /// Distinct questions.
    pub items: Vec<QuizItemOut>,
}

impl QuizParams {
    fn parse(self) -> Result<DrawRequest, FieldErrors> {
        let mut e = FieldErrors::new();
        let filter = Filter::one_tag(&mut e, &self.category, &self.tag, &self.difficulty);
        let count = e.check("count", parse_limit(self.count.as_deref(), 10, 50));
        let mode = match self.mode.as_deref() {
            None | Some("flashcard") => Some(QuizMode::Flashcard),
            Some("choice") => Some(QuizMode::Choice),
            Some(_) => {
                e.push("mode", "must be `flashcard` or `choice`");
                None
            }
        };
        let seed = match self.seed.as_deref() {
            None => None,
            Some(s) => e.check(
                "seed",
                s.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(|n| n as u64)
                    .ok_or_else(|| "must be an integer from 0 to 2^63 - 1".to_string()),
            ),
        };
        let session = self.session.filter(|s| !s.is_empty());
        e.finish()?;
        Ok(DrawRequest {
            filter,
            count: count.unwrap_or(10) as usize,
            mode: mode.unwrap_or(QuizMode::Flashcard),
            session,
            seed,
        })
    }
}

/// Draw a quiz
///
/// Distinct questions drawn uniformly at random from those matching the filters; the cost does
/// not grow with the number of questions. With `session`, no question repeats until the
/// session's pool is exhausted (then 409 `quiz_session_exhausted`). In `choice` mode only
/// questions with an answer are drawn, and each comes with options and a ticket.
#[utoipa::path(
    get, path = "/api/v1/quiz", tag = "quiz",
    params(QuizParams),
    responses(
        (status = 200, description = "The drawn questions", body = QuizResponse),
        (status = 404, description = "No question matches (`quiz_no_questions`), an unknown category or tag (`category_not_found`, `tag_not_found`), or no such session (`quiz_session_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The session is exhausted (`quiz_session_exhausted`), filters were sent with a session (`quiz_session_conflict`), or too few questions for options (`quiz_too_few_questions`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn draw_quiz(
    State(state): State<AppState>,
    Query(params): Query<QuizParams>,
) -> ApiResult<axum::Json<QuizResponse>> {
    let req = params.parse()?;
    let items = state.service.draw(req).await?;
    Ok(axum::Json(QuizResponse {
        items: items
            .into_iter()
            .map(|item| match item {
                QuizItem::Flashcard(q) => {
                    let answers = q.answers.clone().into_iter().map(AnswerOut::from).collect();
                    QuizItemOut {
                        question: q.into(),
                        answers: Some(answers),
                        choices: None,
                        ticket: None,
                    }
                }
                QuizItem::Choice {
                    question,
                    choices,
                    ticket,
                } => QuizItemOut {
                    question: question.into(),
                    answers: None,
                    choices: Some(
                        choices
                            .into_iter()
                            .map(|c| ChoiceOut {
                                id: c.id,
                                text: c.text,
                            })
                            .collect(),
                    ),
                    ticket: Some(ticket),
                },
            })
            .collect(),
    }))
}

/// Body of `POST /api/v1/quiz/sessions`: the filters the session draws from.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"category": "golang", "difficulty": "hard"}))]
pub struct CreateSession {
    #[schema(value_type = Option<String>, required = false, format = "kb:slug")]
    pub category: Option<String>,
    #[schema(value_type = Option<String>, required = false, format = "kb:slug")]
    pub tag: Option<String>,
    #[schema(value_type = Option<Difficulty>, required = false)]
    pub difficulty: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    /// Unguessable (256 random bits); pass as `session` to `GET /api/v1/quiz`.
    pub token: String,
    /// Questions the session can still serve.
    #[schema(example = 23)]
    pub remaining: i64,
    /// Six hours after the last draw; every draw extends it.
    pub expires_at: DateTime<Utc>,
}

/// Start a quiz session
///
/// A session never serves a question twice. It is stored in the database, survives restarts,
/// and expires after six hours without a draw.
#[utoipa::path(
    post, path = "/api/v1/quiz/sessions", tag = "quiz",
    request_body(content = CreateSession, content_type = "application/json"),
    responses(
        (status = 201, description = "The session", body = SessionOut),
        (status = 404, description = "No question matches the filters, or an unknown category or tag", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_session(
    State(state): State<AppState>,
    Json(body): Json<CreateSession>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let filter = Filter::one_tag(&mut e, &body.category, &body.tag, &body.difficulty);
    e.finish()?;
    // The answer is known before the session is stored, and recorded as it is stored.
    let planned = state.service.plan_session(&filter).await?;
    let s = &planned.session;
    let reply = json_reply(
        StatusCode::CREATED,
        &SessionOut {
            token: s.token.clone(),
            remaining: s.remaining,
            expires_at: s.expires_at,
        },
        &[],
    );
    let recorded = reply.clone();
    idempotency::reply_with(move |_: &SessionRow| recorded);
    state.service.open_session(planned).await?;
    Ok(reply.into_response())
}

/// End a quiz session
#[utoipa::path(
    delete, path = "/api/v1/quiz/sessions/{token}", tag = "quiz",
    params(("token" = String, Path, description = "The session token")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such session, or it has expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn end_session(
    State(state): State<AppState>,
    PathText(token): PathText,
) -> ApiResult<StatusCode> {
    state.service.end_session(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/quiz/answers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeRequest {
    /// The item's `ticket`.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub ticket: Option<String>,
    /// The `id` of the chosen option.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub choice_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GradeOut {
    pub correct: bool,
    pub correct_choice_id: String,
    /// The question's answer in full (Markdown).
    pub answer: String,
}

/// Grade a multiple-choice answer
#[utoipa::path(
    post, path = "/api/v1/quiz/answers", tag = "quiz",
    request_body(content = GradeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The verdict", body = GradeOut),
        (status = 404, description = "A forged or altered ticket (`invalid_ticket`), a choice the item did not offer (`choice_not_found`), or the question was deleted since the draw", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or malformed fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn grade(
    State(state): State<AppState>,
    Json(body): Json<GradeRequest>,
) -> ApiResult<axum::Json<GradeOut>> {
    let mut e = FieldErrors::new();
    if body.ticket.as_deref().is_none_or(str::is_empty) {
        e.push("ticket", "is required");
    }
    if body.choice_id.as_deref().is_none_or(str::is_empty) {
        e.push("choice_id", "is required");
    }
    e.finish()?;
    let (Some(ticket), Some(choice)) = (body.ticket, body.choice_id) else {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "ticket and choice_id are required",
        ));
    };
    let g = state.service.grade(&ticket, &choice).await?;
    Ok(axum::Json(GradeOut {
        correct: g.correct,
        correct_choice_id: g.correct_choice_id,
        answer: g.answer,
    }))
}
