//! Loads the bundled knowledge base (`seed/seed.json`) into a database that has never had one.

use super::Service;
use crate::domain::{CategoryName, Difficulty, Markdown, NewQuestion, QuestionTitle, Slug, Tags};
use crate::store::StoreError;
use anyhow::{Context, anyhow};
use serde::Deserialize;

/// The seed, compiled into the binary so a fresh checkout needs no data files at run time.
const SEED_JSON: &str = include_str!("../../seed/seed.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    categories: Vec<SeedCategory>,
    questions: Vec<SeedQuestion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedCategory {
    slug: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedQuestion {
    title: String,
    #[serde(default)]
    body: Option<String>,
    category: String,
    #[serde(default)]
    tags: Vec<String>,
    difficulty: Difficulty,
    answers: Vec<SeedAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedAnswer {
    body: String,
}

/// What loading the seed did.
#[derive(Debug, PartialEq, Eq)]
pub enum SeedReport {
    Loaded { questions: usize },
    AlreadyDone,
}

type ParsedSeed = (Vec<(Slug, CategoryName)>, Vec<NewQuestion>);

fn parse_seed() -> anyhow::Result<ParsedSeed> {
    let file: SeedFile = serde_json::from_str(SEED_JSON).context("seed/seed.json is malformed")?;
    let bad = |what: &str, e: String| anyhow!("seed/seed.json: {what}: {e}");
    let categories = file
        .categories
        .iter()
        .map(|c| {
            Ok((
                Slug::parse(&c.slug).map_err(|e| bad(&c.slug, e))?,
                CategoryName::parse(&c.name).map_err(|e| bad(&c.slug, e))?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let questions = file
        .questions
        .iter()
        .map(|q| {
            Ok(NewQuestion {
                title: QuestionTitle::parse(&q.title).map_err(|e| bad(&q.title, e))?,
                body: q
                    .body
                    .as_deref()
                    .map(Markdown::parse)
                    .transpose()
                    .map_err(|e| bad(&q.title, e))?,
                category: Slug::parse(&q.category).map_err(|e| bad(&q.title, e))?,
                tags: Tags::parse(&q.tags).map_err(|e| bad(&q.title, format!("{e:?}")))?,
                difficulty: q.difficulty,
                answers: q
                    .answers
                    .iter()
                    .map(|a| Markdown::parse(&a.body))
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(&q.title, e))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((categories, questions))
}

impl Service {
    /// Loads the seed unless it was loaded before or the database already holds questions.
    pub async fn load_seed(&self) -> anyhow::Result<SeedReport> {
        if self.store.seed_done().await? {
            return Ok(SeedReport::AlreadyDone);
        }
        let (categories, questions) = parse_seed()?;
        for (slug, name) in &categories {
            match self.store.create_category(slug, name).await {
                Ok(_) | Err(StoreError::CategoryExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut last_seq = 0;
        for q in &questions {
            last_seq = self.store.create_question(q).await?.seq;
        }
        self.indexing.wait_for(last_seq).await;
        self.store.mark_seed_done().await?;
        Ok(SeedReport::Loaded {
            questions: questions.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundled_seed_parses_into_29_valid_questions() {
        let (categories, questions) = super::parse_seed().unwrap();
        assert_eq!(categories.len(), 2);
        assert_eq!(questions.len(), 29);
        assert!(questions.iter().all(|q| !q.answers.is_empty()));
    }
}
