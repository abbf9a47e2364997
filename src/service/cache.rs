//! Rendered representations of questions, kept in memory for reads by id. Derived data like
//! the search index: it can always be dropped, and it is never stale. Every write invalidates
//! the question before it is acknowledged (and the indexer invalidates whatever the change log
//! says changed, which covers writes by other processes). A read that raced a write does not
//! put its older row back: inserts carry the write epoch they read under, and an insert whose
//! epoch has moved on is dropped.

use bytes::Bytes;
use moka::sync::Cache;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// One question as the API renders it, with the version its ETag names.
#[derive(Debug)]
pub struct Rendered {
    pub version: i64,
    pub body: Bytes,
}

/// What the cache holds for a question: its body compressed with the dictionary (once there
/// is one), or as it is.
struct Packed {
    version: i64,
    /// The body's length before compression; `None` when `data` is the body itself.
    raw_len: Option<u32>,
    data: Bytes,
}

/// What an entry costs beside its bytes (key, handles, the cache's own bookkeeping).
const ENTRY_OVERHEAD: usize = 128;
/// Bodies collected before a dictionary is trained from them, and the dictionary's size.
const TRAIN_SAMPLES: usize = 1000;
const DICT_BYTES: usize = 32 * 1024;
const LEVEL: i32 = 3;

/// A zstd dictionary trained on the knowledge base's own rendered questions: what questions
/// share (field names, categories, common words) is stored once, so a 1 KB body packs into a
/// few hundred bytes where compressing it alone would barely halve it.
struct Dict {
    cdict: zstd_safe::CDict<'static>,
    ddict: zstd_safe::DDict<'static>,
}

#[derive(Default)]
struct Samples {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
}

thread_local! {
    /// Compression and decompression state, one of each per thread, reused.
    static CONTEXTS: RefCell<(Option<zstd_safe::CCtx<'static>>, Option<zstd_safe::DCtx<'static>>)> =
        const { RefCell::new((None, None)) };
}

pub struct RenderCache {
    cache: Cache<i64, Arc<Packed>>,
    /// Bumped by every invalidation; a read records it before going to the database.
    epoch: AtomicU64,
    /// Readers check the epoch and insert under the read side; writers bump it and invalidate
    /// under the write side, so no stale insert can slip between a bump and its invalidation.
    gate: RwLock<()>,
    dict: Arc<OnceLock<Dict>>,
    samples: Mutex<Samples>,
    training: AtomicBool,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .field("dictionary", &self.dict.get().is_some())
            .finish()
    }
}

impl RenderCache {
    /// A cache holding at most `max_bytes` of packed bodies and their bookkeeping (0: nothing
    /// is cached).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, v: &Arc<Packed>| {
                    u32::try_from(v.data.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                .build(),
            epoch: AtomicU64::new(0),
            gate: RwLock::new(()),
            dict: Arc::default(),
            samples: Mutex::default(),
            training: AtomicBool::new(false),
        }
    }

    /// The question's rendered body, unpacked.
    pub fn get(&self, id: i64) -> Option<Arc<Rendered>> {
        let packed = self.cache.get(&id)?;
        let body = match packed.raw_len {
            None => packed.data.clone(),
            Some(len) => unpack(&packed.data, len as usize, &self.dict.get()?.ddict)?,
        };
        Some(Arc::new(Rendered {
            version: packed.version,
            body,
        }))
    }

    /// Packs a body: compressed once there is a dictionary, as it is until then (and a sample
    /// towards the dictionary).
    fn pack(&self, value: &Rendered) -> Packed {
        if let Some(dict) = self.dict.get()
            && let Some(data) = compress(&value.body, &dict.cdict)
            && data.len() < value.body.len()
        {
            return Packed {
                version: value.version,
                raw_len: u32::try_from(value.body.len()).ok(),
                data,
            };
        }
        self.sample(&value.body);
        Packed {
            version: value.version,
            raw_len: None,
            data: value.body.clone(),
        }
    }

    /// Keeps a body for training; trains on a thread of its own once there are enough.
    fn sample(&self, body: &[u8]) {
        if self.dict.get().is_some() || self.training.load(Ordering::Relaxed) {
            return;
        }
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.bytes.extend_from_slice(body);
        samples.sizes.push(body.len());
        if samples.sizes.len() < TRAIN_SAMPLES || self.training.swap(true, Ordering::AcqRel) {
            return;
        }
        let taken = std::mem::take(&mut *samples);
        drop(samples);
        let dict = self.dict.clone();
        let spawned = std::thread::Builder::new()
            .name("kb-cache-dict".into())
            .spawn(move || {
                let mut buf: Vec<u8> = Vec::with_capacity(DICT_BYTES);
                match zstd_safe::train_from_buffer(&mut buf, &taken.bytes, &taken.sizes) {
                    Ok(_) => {
                        let cdict = zstd_safe::CDict::try_create(&buf, LEVEL);
                        let ddict = zstd_safe::DDict::try_create(&buf);
                        if let (Some(cdict), Some(ddict)) = (cdict, ddict) {
                            let _ = dict.set(Dict { cdict, ddict });
                        }
                    }
                    // Too little variety to learn from (a handful of near-identical bodies):
                    // bodies stay as they are.
                    Err(code) => tracing::debug!(
                        error = zstd_safe::get_error_name(code),
                        "no dictionary for the question cache"
                    ),
                }
            });
        if spawned.is_err() {
            tracing::debug!("could not start training the question cache's dictionary");
        }
    }

    /// The epoch to pass to [`Self::insert`], read before the database is.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `value` unless something was invalidated since `epoch` was read.
    pub fn insert(&self, id: i64, epoch: u64, value: &Rendered) {
        // A cache of no bytes (`KB_CACHE_MB=0`) keeps nothing: no packing to throw away.
        if self.cache.policy().max_capacity() == Some(0)
            || self.epoch.load(Ordering::Acquire) != epoch
        {
            return;
        }
        let packed = Arc::new(self.pack(value));
        let _read = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.cache.insert(id, packed);
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

    /// Questions held.
    pub fn entries(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Bytes held (after pending evictions), for tests of the bound.
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

fn compress(body: &[u8], cdict: &zstd_safe::CDict<'static>) -> Option<Bytes> {
    CONTEXTS.with_borrow_mut(|(cctx, _)| {
        let cctx = match cctx {
            Some(c) => c,
            None => cctx.insert(zstd_safe::CCtx::try_create()?),
        };
        let mut out: Vec<u8> = Vec::with_capacity(zstd_safe::compress_bound(body.len()));
        cctx.compress_using_cdict(&mut out, body, cdict).ok()?;
        out.shrink_to_fit();
        Some(Bytes::from(out))
    })
}

fn unpack(data: &[u8], len: usize, ddict: &zstd_safe::DDict<'static>) -> Option<Bytes> {
    CONTEXTS.with_borrow_mut(|(_, dctx)| {
        let dctx = match dctx {
            Some(d) => d,
            None => dctx.insert(zstd_safe::DCtx::try_create()?),
        };
        let mut out: Vec<u8> = Vec::with_capacity(len);
        let n = dctx.decompress_using_ddict(&mut out, data, ddict).ok()?;
        (n == len).then(|| Bytes::from(out))
    })
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
            let value = Rendered {
                version: 1,
                body: body.clone(),
            };
            cache.insert(id, epoch, &value);
            if id % 100_000 == 0 {
                assert!(cache.weighted_size() <= BOUND, "after {id} ids");
            }
        }
        let held = cache.weighted_size();
        assert!(held > 0 && held <= BOUND, "{held} bytes held");
        assert!(cache.cache.entry_count() <= BOUND / ENTRY_OVERHEAD as u64 + 1);
    }

    fn question_like(id: i64) -> Bytes {
        let words = [
            "调度",
            "goroutine",
            "内存",
            "channel",
            "锁",
            "GC",
            "栈",
            "sync.Map",
        ];
        let w = |k: i64| words[(id * 7 + k * 3).rem_euclid(8) as usize];
        Bytes::from(format!(
            r#"{{"id":{id},"title":"{} 的实现 {}","category":{{"slug":"golang","name":"Go"}},"answers":[{{"id":{},"body":"{} 与 {} 的区别在于 {}，面试里常问 {}。"}}]}}"#,
            w(1),
            w(2),
            id * 3,
            w(3),
            w(4),
            w(5),
            w(6)
        ))
    }

    #[test]
    fn bodies_come_back_byte_for_byte_and_smaller_once_a_dictionary_is_trained() {
        let cache = RenderCache::new(64 * 1024 * 1024);
        for id in 0..TRAIN_SAMPLES as i64 {
            let value = Rendered {
                version: 1,
                body: question_like(id),
            };
            cache.insert(id, cache.epoch(), &value);
        }
        // Training runs on a thread of its own; give it up to a minute.
        for _ in 0..6000 {
            if cache.dict.get().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(cache.dict.get().is_some(), "a dictionary was trained");
        let (mut raw, mut packed) = (0, 0);
        for id in 5000..6000 {
            let body = question_like(id);
            raw += body.len();
            cache.insert(
                id,
                cache.epoch(),
                &Rendered {
                    version: 2,
                    body: body.clone(),
                },
            );
            let got = cache.get(id).expect("just inserted");
            assert_eq!(got.body, body);
            assert_eq!(got.version, 2);
            packed += cache.cache.get(&id).unwrap().data.len();
        }
        assert!(packed * 2 < raw, "{packed} bytes packed from {raw}");
        // Entries from before the dictionary still read back as they were.
        assert_eq!(cache.get(3).unwrap().body, question_like(3));
    }
}
