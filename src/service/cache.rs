//! Rendered representations of questions, kept in memory for reads by id. Derived data like
//! the search index: it can always be dropped, and it is never stale. Every write invalidates
//! the question before it is acknowledged (and the indexer invalidates whatever the change log
//! says changed, which covers writes by other processes). A read that raced a write does not
//! put its older row back: inserts carry the write epoch they read under, and an insert whose
//! epoch has moved on is dropped.

use bytes::Bytes;
use moka::sync::Cache;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One question as the API renders it, with the version its ETag names.
#[derive(Debug)]
pub struct Rendered {
    pub version: i64,
    pub body: Bytes,
}

pub struct RenderCache {
    cache: Cache<i64, std::sync::Arc<Rendered>>,
    /// Bumped by every invalidation; a read records it before going to the database.
    epoch: AtomicU64,
    /// Readers check the epoch and insert under the read side; writers bump it and invalidate
    /// under the write side, so no stale insert can slip between a bump and its invalidation.
    gate: RwLock<()>,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .finish()
    }
}

impl RenderCache {
    /// A cache holding at most `max_bytes` of rendered bodies (0: nothing is cached).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, v: &std::sync::Arc<Rendered>| {
                    // The body plus what an entry costs beside it.
                    u32::try_from(v.body.len() + 64).unwrap_or(u32::MAX)
                })
                .build(),
            epoch: AtomicU64::new(0),
            gate: RwLock::new(()),
        }
    }

    pub fn get(&self, id: i64) -> Option<std::sync::Arc<Rendered>> {
        self.cache.get(&id)
    }

    /// The epoch to pass to [`Self::insert`], read before the database is.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `value` unless something was invalidated since `epoch` was read.
    pub fn insert(&self, id: i64, epoch: u64, value: std::sync::Arc<Rendered>) {
        let _read = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.cache.insert(id, value);
        }
    }

    pub fn invalidate(&self, ids: impl IntoIterator<Item = i64>) {
        let _write = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for id in ids {
            self.cache.invalidate(&id);
        }
    }

    /// Forgets everything (the changes in between are not known, e.g. after a rebuild).
    pub fn invalidate_all(&self) {
        let _write = self.gate.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }

    /// Bytes held (after pending evictions), for tests of the bound.
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_distinct_ids_leave_the_cache_within_its_bound() {
        const BOUND: u64 = 256 * 1024;
        let cache = RenderCache::new(BOUND);
        let body = Bytes::from(vec![b'x'; 300]);
        for id in 0..1_000_000 {
            let epoch = cache.epoch();
            let value = std::sync::Arc::new(Rendered {
                version: 1,
                body: body.clone(),
            });
            cache.insert(id, epoch, value);
            if id % 100_000 == 0 {
                assert!(cache.weighted_size() <= BOUND, "after {id} ids");
            }
        }
        let held = cache.weighted_size();
        assert!(held > 0 && held <= BOUND, "{held} bytes held");
        assert!(cache.cache.entry_count() <= BOUND / 364 + 1);
    }
}
