//! Loads the bundled knowledge base (`seed/seed.json`) into a database that has never had one,
//! through the importer: the seed is validated and written exactly as an imported file is.

use super::Service;
use crate::domain::import::{BulkAnswer, BulkQuestion};
use crate::domain::{CategoryName, Difficulty, Slug};
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

type ParsedSeed = (Vec<(Slug, CategoryName)>, Vec<BulkQuestion>);

/// The seed's categories, validated, and its questions as bulk lines (validated on import).
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
        .into_iter()
        .map(|q| BulkQuestion {
            id: None,
            external_id: None,
            category_name: file
                .categories
                .iter()
                .find(|c| c.slug == q.category)
                .map(|c| c.name.clone()),
            title: q.title,
            body: q.body,
            category: q.category,
            tags: q.tags,
            difficulty: Some(q.difficulty.as_str().to_string()),
            answers: q
                .answers
                .into_iter()
                .map(|a| BulkAnswer {
                    body: a.body,
                    created_at: None,
                    updated_at: None,
                })
                .collect(),
            created_at: None,
            updated_at: None,
        })
        .collect();
    Ok((categories, questions))
}

impl Service {
    /// Loads the seed unless it was loaded before or the database already holds questions.
    #[tracing::instrument(skip(self))]
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
        let mut importer = self.importer();
        for (i, q) in questions.into_iter().enumerate() {
            importer.push_question(i as u64 + 1, q).await?;
        }
        let report = importer.finish().await?;
        if let Some(e) = report.errors.first() {
            return Err(anyhow!(
                "seed/seed.json: question {}: {}",
                e.line,
                e.message
            ));
        }
        self.store.mark_seed_done().await?;
        Ok(SeedReport::Loaded {
            questions: report.created as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::import::validate;

    #[test]
    fn the_bundled_seed_holds_29_valid_questions_with_answers() {
        let (categories, questions) = super::parse_seed().unwrap();
        assert_eq!(categories.len(), 2);
        assert_eq!(questions.len(), 29);
        for q in questions {
            let item = validate(q).unwrap();
            assert!(!item.question.answers.is_empty());
        }
    }
}
