//! The one parser of a question as clients write it: the create endpoint, the importer (and so
//! the seed) all turn their input into a [`QuestionDraft`] and validate it here.

use super::{Difficulty, FieldErrors, Markdown, NewQuestion, QuestionTitle, Slug, Tags};

/// A question as a client sent it, before validation. Every part is optional so that a
/// missing one is reported together with the others.
#[derive(Debug, Default, Clone)]
pub struct QuestionDraft<'a> {
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
    pub category: Option<&'a str>,
    pub tags: &'a [String],
    /// `None`: the default difficulty.
    pub difficulty: Option<&'a str>,
    /// Each answer's text, or why there is none (`"is required"`, `"cannot be null"`).
    pub answers: Vec<Result<&'a str, &'static str>>,
}

impl NewQuestion {
    /// Validates every field, reporting all that are wrong (`title`, `tags[2]`,
    /// `answers[0].body`, …).
    pub fn parse(draft: &QuestionDraft<'_>) -> Result<NewQuestion, FieldErrors> {
        let mut e = FieldErrors::new();
        let title = e.required("title", draft.title, QuestionTitle::parse);
        let body = match draft.body {
            Some(b) => e.check("body", Markdown::parse(b)).map(Some),
            None => Some(None),
        };
        let category = e.required("category", draft.category, Slug::parse);
        let tags = parse_tags(&mut e, draft.tags);
        let difficulty = match draft.difficulty {
            Some(d) => e.check("difficulty", Difficulty::parse(d)),
            None => Some(Difficulty::default()),
        };
        let answers = parse_answers(&mut e, &draft.answers);
        match (title, body, category, tags, difficulty, answers) {
            (
                Some(title),
                Some(body),
                Some(category),
                Some(tags),
                Some(difficulty),
                Some(answers),
            ) if e.is_empty() => Ok(NewQuestion {
                title,
                body,
                category,
                tags,
                difficulty,
                answers,
            }),
            _ => Err(e),
        }
    }
}

/// Tags, with each bad one reported as `tags[i]` and too many as `tags`.
pub fn parse_tags(errors: &mut FieldErrors, raw: &[String]) -> Option<Tags> {
    Tags::parse(raw)
        .map_err(|es| {
            for (i, e) in es {
                match i {
                    Some(i) => errors.push(format!("tags[{i}]"), e),
                    None => errors.push("tags", e),
                }
            }
        })
        .ok()
}

/// Answers, with each bad one reported as `answers[i].body`.
pub fn parse_answers(
    errors: &mut FieldErrors,
    raw: &[Result<&str, &'static str>],
) -> Option<Vec<Markdown>> {
    let parsed: Vec<Option<Markdown>> = raw
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let field = format!("answers[{i}].body");
            match a {
                Ok(text) => errors.check(&field, Markdown::parse(text)),
                Err(why) => {
                    errors.push(field, *why);
                    None
                }
            }
        })
        .collect();
    parsed.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_reports_every_bad_field_at_once() {
        let tags = vec!["Bad Tag".to_string()];
        let draft = QuestionDraft {
            title: Some(" "),
            tags: &tags,
            difficulty: Some("extreme"),
            answers: vec![Ok("fine"), Err("cannot be null")],
            ..Default::default()
        };
        let err = NewQuestion::parse(&draft).unwrap_err();
        let fields: Vec<_> = err.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "title",
                "category",
                "tags[0]",
                "difficulty",
                "answers[1].body"
            ]
        );
    }

    #[test]
    fn a_good_draft_parses_with_defaults() {
        let q = NewQuestion::parse(&QuestionDraft {
            title: Some(" GMP 是什么？ "),
            category: Some("golang"),
            answers: vec![Ok("G、M、P")],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.title.as_str(), "GMP 是什么？");
        assert_eq!(q.difficulty, Difficulty::Medium);
        assert_eq!(q.answers.len(), 1);
    }
}
