//! The `meta` key-value table: facts about the database itself, such as whether the seed ran.

use super::{Store, StoreResult};

const SEEDED: &str = "seeded_at";

impl Store {
    /// True once the seed has been loaded, or the database held questions before it could be.
    pub async fn seed_done(&self) -> StoreResult<bool> {
        let flag: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(SEEDED)
            .fetch_optional(&self.read)
            .await?;
        if flag.is_some() {
            return Ok(true);
        }
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM questions)")
            .fetch_one(&self.read)
            .await?;
        Ok(any)
    }

    /// Records that the seed was loaded, so deleting every question later never brings it back.
    pub async fn mark_seed_done(&self) -> StoreResult<()> {
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(SEEDED)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
