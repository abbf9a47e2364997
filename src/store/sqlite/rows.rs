//! The one way kb writes a question's rows: a new question (single create or a batch of an
//! import) goes through [`insert_new`], a change through [`apply_patch`]. Both keep tags,
//! answers, quiz pools and the index change log in step inside the caller's transaction.

use super::quiz::sync_pools;
use crate::domain::{Markdown, QuestionPatch, QuestionSize, Tags};
use crate::store::model::{NewRows, Pool};
use crate::store::{StoreError, StoreResult};
use serde_json::json;
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// Rows for `json_each`, serialized as they are pushed (tuples become JSON arrays), without
/// building a `serde_json::Value` tree first.
struct JsonRows(Vec<u8>);

impl JsonRows {
    fn new() -> Self {
        Self(vec![b'['])
    }

    fn push(&mut self, row: &impl serde::Serialize) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        serde_json::to_writer(&mut self.0, row).expect("rows serialize");
    }

    fn is_empty(&self) -> bool {
        self.0.len() == 1
    }

    fn finish(mut self) -> String {
        self.0.push(b']');
        String::from_utf8(self.0).expect("serde_json writes UTF-8")
    }
}

pub(super) async fn category_id(conn: &mut SqliteConnection, slug: &str) -> StoreResult<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM categories WHERE slug = ?")
        .bind(slug)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.0)
        .ok_or_else(|| StoreError::UnknownCategory(slug.to_string()))
}

async fn set_tags(conn: &mut SqliteConnection, question_id: i64, tags: &Tags) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM question_tags WHERE question_id = ?")
        .bind(question_id)
        .execute(&mut *conn)
        .await?;
    for (position, slug) in tags.as_slice().iter().enumerate() {
        // DO UPDATE (a no-op) rather than DO NOTHING so RETURNING yields the existing id too.
        let (tag_id,): (i64,) = sqlx::query_as(
            "INSERT INTO tags (slug) VALUES (?) ON CONFLICT (slug) DO UPDATE SET slug = excluded.slug
             RETURNING id",
        )
        .bind(slug.as_str())
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query("INSERT INTO question_tags (question_id, tag_id, position) VALUES (?, ?, ?)")
            .bind(question_id)
            .bind(tag_id)
            .bind(position as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn insert_answer(
    conn: &mut SqliteConnection,
    question_id: i64,
    body: &Markdown,
    now: i64,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO answers (question_id, body, created_at, updated_at) VALUES (?, ?, ?, ?)
         RETURNING id",
    )
    .bind(question_id)
    .bind(body.as_str())
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Appends to the index change log; the caller's transaction makes it atomic with the write.
pub(super) async fn record_change(
    conn: &mut SqliteConnection,
    question_id: i64,
    now: i64,
) -> sqlx::Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO index_changes (question_id, created_at) VALUES (?, ?) RETURNING seq",
    )
    .bind(question_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq)
}

/// A question's answers changed: its representation (and so its ETag) changed too.
pub(super) async fn touch_question(
    conn: &mut SqliteConnection,
    question_id: i64,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE questions SET version = version + 1, updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(question_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The stored size of a question (zero when it does not exist).
pub(super) async fn question_size(
    conn: &mut SqliteConnection,
    id: i64,
) -> sqlx::Result<QuestionSize> {
    // length() counts characters of TEXT, as the domain does.
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT (SELECT count(*) FROM answers WHERE question_id = ?1),
                length(title) + coalesce(length(body), 0)
                  + coalesce((SELECT sum(length(body)) FROM answers WHERE question_id = ?1), 0)
         FROM questions WHERE id = ?1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(
        row.map_or(QuestionSize::default(), |(answers, chars)| QuestionSize {
            answers: answers as usize,
            chars: chars as usize,
        }),
    )
}

/// Applies a non-empty merge patch to an existing question, bumps its version and logs the
/// change; returns the change's sequence.
pub(super) async fn apply_patch(
    conn: &mut SqliteConnection,
    id: i64,
    patch: &QuestionPatch,
    now: i64,
) -> StoreResult<i64> {
    let before = question_size(conn, id).await?;
    let category = match &patch.category {
        Some(slug) => Some(category_id(conn, slug.as_str()).await?),
        None => None,
    };
    sqlx::query(
        "UPDATE questions SET
            title = coalesce(?1, title),
            body = CASE WHEN ?2 THEN ?3 ELSE body END,
            category_id = coalesce(?4, category_id),
            difficulty = coalesce(?5, difficulty),
            updated_at = ?6,
            version = version + 1
         WHERE id = ?7",
    )
    .bind(patch.title.as_ref().map(|t| t.as_str()))
    .bind(patch.body.is_some())
    .bind(
        patch
            .body
            .as_ref()
            .and_then(|b| b.as_ref().map(|b| b.as_str())),
    )
    .bind(category)
    .bind(patch.difficulty.map(|d| d.as_str()))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if let Some(tags) = &patch.tags {
        set_tags(conn, id, tags).await?;
    }
    if let Some(answers) = &patch.answers {
        sqlx::query("DELETE FROM answers WHERE question_id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for a in answers {
            insert_answer(conn, id, a, now).await?;
        }
    }
    question_size(conn, id).await?.check_growth(before)?;
    sync_pools(conn, id).await?;
    Ok(record_change(conn, id, now).await?)
}

/// Inserts new questions with their tags, answers, quiz-pool slots and change-log entries, in
/// a fixed number of set-based statements whatever their number (rows travel as JSON arrays
/// through `json_each`). Returns the new ids, in the order of `items`, and the last change
/// sequence.
pub(super) async fn insert_new(
    conn: &mut SqliteConnection,
    items: &[NewRows<'_>],
    now: i64,
) -> StoreResult<(Vec<i64>, i64)> {
    // Tags: create the missing ones, then map every slug to its id.
    let mut slugs: Vec<&str> = items
        .iter()
        .flat_map(|i| i.question.tags.as_slice().iter().map(|t| t.as_str()))
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    let slugs_json = serde_json::to_string(&slugs).expect("slugs serialize");
    sqlx::query(
        "INSERT INTO tags (slug) SELECT value FROM json_each(?) WHERE true
         ON CONFLICT (slug) DO NOTHING",
    )
    .bind(&slugs_json)
    .execute(&mut *conn)
    .await?;
    let tag_ids: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT t.slug, t.id FROM json_each(?) j JOIN tags t ON t.slug = j.value",
    )
    .bind(&slugs_json)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();

    // Ids are assigned here, not by SQLite, so the rows below can refer to them without
    // reading them back. AUTOINCREMENT's high-water mark covers deleted ids: none is reused.
    let (base,): (i64,) = sqlx::query_as(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'questions'), 0),
                    coalesce((SELECT max(id) FROM questions), 0))",
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut questions = JsonRows::new();
    let mut answers = JsonRows::new();
    let mut question_tags = JsonRows::new();
    let mut pools: Vec<(Pool, i64)> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let id = base + 1 + n as i64;
        let q = item.question;
        questions.push(&(
            id,
            q.title.as_str(),
            q.body.as_ref().map(|b| b.as_str()),
            item.category_id,
            q.difficulty.as_str(),
            item.created_at,
            item.updated_at,
            item.external_id,
            item.import_hash,
        ));
        for (a, (created, updated)) in q.answers.iter().zip(&item.answer_times) {
            answers.push(&(id, a.as_str(), created, updated));
        }
        let mut tags = Vec::with_capacity(q.tags.as_slice().len());
        for (position, tag) in q.tags.as_slice().iter().enumerate() {
            let tag_id = tag_ids[tag.as_str()];
            question_tags.push(&(id, tag_id, position));
            tags.push(tag_id);
        }
        for pool in Pool::of(item.category_id, q.difficulty, &tags) {
            pools.push((pool, id));
        }
    }
    sqlx::query(
        "INSERT INTO questions (id, title, body, category_id, difficulty, created_at, updated_at,
                                external_id, import_hash)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6, value ->> 7, value ->> 8
         FROM json_each(?)",
    )
    .bind(questions.finish())
    .execute(&mut *conn)
    .await?;
    if !answers.is_empty() {
        sqlx::query(
            "INSERT INTO answers (question_id, body, created_at, updated_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)",
        )
        .bind(answers.finish())
        .execute(&mut *conn)
        .await?;
    }
    if !question_tags.is_empty() {
        sqlx::query(
            "INSERT INTO question_tags (question_id, tag_id, position)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
        )
        .bind(question_tags.finish())
        .execute(&mut *conn)
        .await?;
    }
    append_to_pools(conn, &pools).await?;
    let ids: Vec<i64> = (1..=items.len() as i64).map(|n| base + n).collect();
    sqlx::query(
        "INSERT INTO index_changes (question_id, created_at) SELECT value, ? FROM json_each(?)",
    )
    .bind(now)
    .bind(serde_json::to_string(&ids).expect("ids serialize"))
    .execute(&mut *conn)
    .await?;
    let (seq,): (i64,) =
        sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'")
            .fetch_one(&mut *conn)
            .await?;
    Ok((ids, seq))
}

/// Gives each (pool, question) pair the next dense slot of its pool.
async fn append_to_pools(conn: &mut SqliteConnection, pairs: &[(Pool, i64)]) -> StoreResult<()> {
    let pairs: Vec<(String, i64)> = pairs.iter().map(|(p, id)| (p.key(), *id)).collect();
    let mut names: Vec<&str> = pairs.iter().map(|(p, _)| p.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut sizes: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT p.pool, p.size FROM json_each(?) j JOIN quiz_pools p ON p.pool = j.value",
    )
    .bind(serde_json::to_string(&names).expect("pools serialize"))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut slots = JsonRows::new();
    for (pool, id) in &pairs {
        let size = sizes.entry(pool.clone()).or_insert(0);
        *size += 1;
        slots.push(&(pool, *size, id));
    }
    sqlx::query(
        "INSERT INTO quiz_slots (pool, slot, question_id)
         SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
    )
    .bind(slots.finish())
    .execute(&mut *conn)
    .await?;
    let sizes: Vec<serde_json::Value> = sizes.iter().map(|(p, s)| json!([p, s])).collect();
    sqlx::query(
        "INSERT INTO quiz_pools (pool, size) SELECT value ->> 0, value ->> 1 FROM json_each(?)
         WHERE true ON CONFLICT (pool) DO UPDATE SET size = excluded.size",
    )
    .bind(serde_json::Value::Array(sizes).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
