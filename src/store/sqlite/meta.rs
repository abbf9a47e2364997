//! The `meta` key-value table: facts about the database itself (whether the seed ran) and the
//! secrets every signature is made with.

use super::SqliteStore;
use crate::store::{SEEDED, StoreResult, decode_error};

impl SqliteStore {
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

    pub async fn mark_seed_done(&self) -> StoreResult<()> {
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(SEEDED)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let key = format!("secret:{name}");
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(&key)
            .bind(crate::secret::random_hex(32))
            .execute(&self.write)
            .await?;
        let (stored,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(&key)
            .fetch_one(&self.write)
            .await?;
        Ok(hex::decode(stored).map_err(decode_error)?)
    }
}
