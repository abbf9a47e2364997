//! Categories and tags, the synonym table, and the `meta` facts about the database itself
//! (whether the seed ran, its identity, the secrets every signature is made with): the
//! operations the service calls, written once (the listings sorted by slug take their text
//! from the dialect: `sqlite/meta.rs`, `postgres/meta.rs`).

use super::model::{
    CategoryRow, NewEvent, TagRow, Versioned, Written, decode_synonyms, encode_synonyms,
};
use super::sql::{Conn, WriteKind};
use super::{
    SEEDED, Store, StoreError, StoreResult, decode_error, is_unique_violation, now_micros,
};
use crate::domain::{Category, CategoryName, Precondition, Slug, SynonymTable, TagCount};

/// The key under which the database's identity is kept. It was first stored as a secret, and
/// stays under that key so an existing database keeps its identity (and its replicas' indexes
/// stay valid).
const IDENTITY: &str = "secret:database-id";

impl Store {
    /// Every category with its number of questions, by slug (bytewise).
    pub async fn list_categories(&self) -> StoreResult<Vec<Category>> {
        self.reading(async |c| {
            let sql = c.dialect().meta.list_categories;
            let rows: Vec<CategoryRow> = c.fetch_all(sql, &[]).await?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    pub async fn get_category(&self, slug: &Slug) -> StoreResult<Option<Category>> {
        self.reading(async |c| {
            let row: Option<CategoryRow> = c
                .fetch_optional(
                    "SELECT c.slug, c.name,
                            (SELECT count(*) FROM questions q WHERE q.category_id = c.id)
                              AS question_count
                     FROM categories c WHERE c.slug = $1",
                    &[slug.as_str().into()],
                )
                .await?;
            Ok(row.map(Into::into))
        })
        .await
    }

    /// Creates a category and logs its event; returns it and the event's sequence.
    pub async fn create_category(
        &self,
        slug: &Slug,
        name: &CategoryName,
    ) -> StoreResult<Written<Category>> {
        self.changing(async |c| {
            let now = now_micros();
            let inserted = c
                .execute(
                    "INSERT INTO categories (slug, name, created_at) VALUES ($1, $2, $3)",
                    &[slug.as_str().into(), name.as_str().into(), now.into()],
                )
                .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::CategoryExists(slug.to_string()));
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let value = Category {
                slug: slug.to_string(),
                name: name.as_str().to_string(),
                question_count: 0,
            };
            let seq = c.log_event(&NewEvent::category(&value)?, now).await?;
            Ok(Written { value, seq })
        })
        .await
    }

    /// Tags in use, most used first; tags no question carries any more are left out.
    pub async fn list_tags(&self, limit: i64) -> StoreResult<Vec<TagCount>> {
        self.reading(async |c| {
            let sql = c.dialect().meta.list_tags;
            let rows: Vec<TagRow> = c.fetch_all(sql, &[limit.into()]).await?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// The synonym table and its version (0 while it was never written: the default table).
    pub async fn synonyms(&self) -> StoreResult<Versioned<SynonymTable>> {
        self.reading(async |c| {
            let row: Option<(String, i64)> = c
                .fetch_optional("SELECT body, version FROM synonyms WHERE id = 1", &[])
                .await?;
            Ok(match row {
                None => Versioned {
                    value: SynonymTable::default(),
                    version: 0,
                },
                Some((body, version)) => Versioned {
                    value: decode_synonyms(&body)?,
                    version,
                },
            })
        })
        .await
    }

    /// The synonym table's version alone: replicas poll it to learn of another's write.
    pub async fn synonyms_version(&self) -> StoreResult<i64> {
        self.reading(async |c| synonyms_version(c).await).await
    }

    /// Replaces the table when `expected` admits the current version; returns the new version.
    pub async fn put_synonyms(
        &self,
        table: &SynonymTable,
        expected: &Precondition,
    ) -> StoreResult<i64> {
        self.writing(WriteKind::Synonyms, async |c| {
            let current = synonyms_version(c).await?;
            if !expected.admits(current) {
                return Err(StoreError::VersionMismatch { current });
            }
            c.execute(
                "INSERT INTO synonyms (id, body, version) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET body = $1, version = $2",
                &[
                    encode_synonyms(table)?.as_str().into(),
                    (current + 1).into(),
                ],
            )
            .await?;
            Ok(current + 1)
        })
        .await
    }

    /// A random secret kept in the database (e.g. the ticket signing key), created on first
    /// use: every replica signs and checks with the same one.
    pub async fn secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let stored = self
            .meta_once(&format!("secret:{name}"), crate::secret::random_hex(32))
            .await?;
        Ok(hex::decode(stored).map_err(decode_error)?)
    }

    /// The database's identity: random, made on first use, the same for every replica. An
    /// index records the identity of the database it follows, and is rebuilt when moved to
    /// another.
    pub async fn database_id(&self) -> StoreResult<String> {
        self.meta_once(IDENTITY, crate::secret::random_hex(32))
            .await
    }

    /// True once the seed has been loaded, or the database held questions before it could be.
    pub async fn seed_done(&self) -> StoreResult<bool> {
        self.reading(async |c| {
            Ok(c.value(
                "SELECT EXISTS (SELECT 1 FROM meta WHERE key = $1)
                     OR EXISTS (SELECT 1 FROM questions)",
                &[SEEDED.into()],
            )
            .await?
            .unwrap_or(false))
        })
        .await
    }

    /// Records that the seed was loaded, so deleting every question later never brings it back.
    pub async fn mark_seed_done(&self) -> StoreResult<()> {
        self.meta_once(SEEDED, chrono::Utc::now().to_rfc3339())
            .await?;
        Ok(())
    }

    /// The `meta` value under `key`, set to `value` first if there is none. Of two replicas
    /// setting it at once, the first insert wins and both read that one.
    async fn meta_once(&self, key: &str, value: String) -> StoreResult<String> {
        self.write(async |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[key.into(), value.as_str().into()],
            )
            .await?;
            Ok(
                c.fetch_one::<(String,)>("SELECT value FROM meta WHERE key = $1", &[key.into()])
                    .await?
                    .0,
            )
        })
        .await
    }
}

async fn synonyms_version(c: &mut Conn<'_>) -> StoreResult<i64> {
    Ok(c.value("SELECT version FROM synonyms WHERE id = 1", &[])
        .await?
        .unwrap_or(0))
}
