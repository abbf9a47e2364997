//! The knowledge base's synonym table: kept in memory, compiled for searching, replaced as a
//! whole through the API or an import. Searches read it on every query, so it lives behind a
//! lock that readers hold only long enough to clone an `Arc`.

use super::{Result, Service};
use crate::domain::{Precondition, SynonymTable};
use crate::search::Synonyms;
use crate::store::{Store, StoreError};
use std::sync::{Arc, RwLock};

/// The table, its version, and its compiled form.
#[derive(Debug)]
pub struct Loaded {
    pub table: SynonymTable,
    pub version: i64,
    pub compiled: Synonyms,
}

impl Loaded {
    fn new(table: SynonymTable, version: i64) -> Self {
        Self {
            compiled: Synonyms::new(&table),
            table,
            version,
        }
    }
}

pub type Shared = Arc<RwLock<Arc<Loaded>>>;

pub async fn load(store: &Store) -> std::result::Result<Shared, StoreError> {
    let s = store.synonyms().await?;
    Ok(Arc::new(RwLock::new(Arc::new(Loaded::new(
        s.value, s.version,
    )))))
}

/// Re-reads the table when the store holds a newer version than `shared` (another replica
/// replaced it).
pub async fn refresh(store: &Store, shared: &Shared) -> std::result::Result<(), StoreError> {
    let current = shared.read().unwrap_or_else(|p| p.into_inner()).version;
    if store.synonyms_version().await? <= current {
        return Ok(());
    }
    let s = store.synonyms().await?;
    replace_if_newer(shared, Arc::new(Loaded::new(s.value, s.version)));
    Ok(())
}

/// Two writes may commit in one order and get here in the other: the newer stays.
fn replace_if_newer(shared: &Shared, loaded: Arc<Loaded>) {
    let mut current = shared.write().unwrap_or_else(|p| p.into_inner());
    if loaded.version > current.version {
        *current = loaded;
    }
}

/// The built-in sets (which apply unless a table turns them off), each a list of terms that
/// find each other.
pub fn builtin_sets() -> Vec<Vec<String>> {
    crate::search::BUILTIN_SYNONYMS
        .iter()
        .map(|set| set.iter().map(|t| t.to_string()).collect())
        .collect()
}

/// The export's first line, when the table is not the default one.
pub async fn export_line(
    store: &Store,
) -> std::result::Result<Option<serde_json::Value>, StoreError> {
    let s = store.synonyms().await?;
    Ok((s.version > 0).then(|| serde_json::json!({ "synonyms": s.value.to_raw() })))
}

impl Service {
    /// The synonym table in force, with its version (0: never written, the default).
    pub fn synonyms(&self) -> Arc<Loaded> {
        self.synonyms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the table when `expected` admits its current version; the next search uses
    /// it. Returns the new version.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn put_synonyms(&self, table: SynonymTable, expected: &Precondition) -> Result<i64> {
        let version = self.store.put_synonyms(&table, expected).await?;
        replace_if_newer(&self.synonyms, Arc::new(Loaded::new(table, version)));
        Ok(version)
    }

    /// The export's first line, when the table is not the default one.
    pub async fn export_synonyms(&self) -> Result<Option<serde_json::Value>> {
        Ok(export_line(&self.store).await?)
    }
}
