//! The in-memory vector index of search by meaning: one quantised vector per question, with
//! the question's category, tags and difficulty so filters apply here as they do in the
//! keyword index.
//!
//! Exact search: every vector is scored (a dot product over `i8` codes, one scale per vector),
//! which at 384 dimensions reads 38 MB for 100k questions; `docs/benchmarks.md` has what that
//! costs and where an approximate index would start to pay. A question is searchable here once
//! it has both a vector and its fields; either may arrive first (vectors come from the
//! embeddings table, fields from the change log).

use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

/// Filters as the keyword side has them.
#[derive(Debug, Default, Clone, Copy)]
pub struct VectorFilter<'a> {
    pub category: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub difficulty: Option<&'a str>,
}

/// The fields of a question filters look at.
#[derive(Debug, Clone)]
pub struct VectorFields {
    pub category: String,
    pub tags: Vec<String>,
    pub difficulty: String,
}

#[derive(Debug, Clone, Default)]
struct Meta {
    present: bool,
    category: u32,
    difficulty: u32,
    tags: Vec<u32>,
}

#[derive(Default)]
struct Inner {
    dim: usize,
    slot_of: HashMap<i64, usize>,
    /// Slot → question id (0: free).
    ids: Vec<i64>,
    /// Slot → `dim` codes.
    codes: Vec<i8>,
    /// Slot → `words` 64-bit words: the codes' signs, for the approximate scan.
    bits: Vec<u64>,
    words: usize,
    /// Slot → the factor turning a code dot product into a cosine share (0: no vector).
    scales: Vec<f32>,
    meta: Vec<Meta>,
    free: Vec<usize>,
    names: HashMap<String, u32>,
    /// Name id - 1 → name.
    named: Vec<String>,
    /// Questions with a vector (searchable or waiting for their fields).
    vectors: usize,
}

impl Inner {
    fn name(&mut self, s: &str) -> u32 {
        if let Some(&n) = self.names.get(s) {
            return n;
        }
        self.named.push(s.to_string());
        let n = self.named.len() as u32;
        self.names.insert(s.to_string(), n);
        n
    }

    /// The value of name id `n`, without its kind prefix.
    fn value(&self, n: u32) -> String {
        self.named
            .get(n as usize - 1)
            .map(|s| s[2..].to_string())
            .unwrap_or_default()
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        self.names.get(s).copied()
    }

    fn slot(&mut self, id: i64) -> usize {
        if let Some(&s) = self.slot_of.get(&id) {
            return s;
        }
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                self.ids.push(0);
                self.codes.extend(std::iter::repeat_n(0, self.dim));
                self.bits.extend(std::iter::repeat_n(0, self.words));
                self.scales.push(0.0);
                self.meta.push(Meta::default());
                self.ids.len() - 1
            }
        };
        self.ids[s] = id;
        self.slot_of.insert(id, s);
        s
    }

    fn release(&mut self, id: i64) {
        if let Some(s) = self.slot_of.remove(&id) {
            if self.scales[s] != 0.0 {
                self.vectors -= 1;
            }
            self.ids[s] = 0;
            self.scales[s] = 0.0;
            self.meta[s] = Meta::default();
            self.free.push(s);
        }
    }
}

/// Vectors of one model, searched exactly.
#[derive(Default)]
pub struct VectorIndex {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("vectors", &self.len())
            .finish_non_exhaustive()
    }
}

/// `v` as `i8` codes and the scale that turns codes back into values.
fn quantise(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let k = 127.0 / max;
    (
        v.iter().map(|x| (x * k).round() as i8).collect(),
        max / 127.0,
    )
}

fn dot_portable(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum()
}

/// 16 codes at a time: sign-extended to 16 bits, multiplied and added in pairs into 32-bit
/// lanes (`vpmaddwd`), which is what the portable loop does not become by itself.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let chunks = n / 16;
    let mut acc = _mm256_setzero_si256();
    for i in 0..chunks {
        // SAFETY: `i * 16 + 16 <= n`, within both slices; unaligned loads are allowed.
        let (x, y) = unsafe {
            (
                _mm_loadu_si128(a.as_ptr().add(i * 16) as *const __m128i),
                _mm_loadu_si128(b.as_ptr().add(i * 16) as *const __m128i),
            )
        };
        let prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(x), _mm256_cvtepi8_epi16(y));
        acc = _mm256_add_epi32(acc, prod);
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 bytes, as the store writes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    lanes.iter().sum::<i32>() + dot_portable(&a[chunks * 16..n], &b[chunks * 16..n])
}

fn dot_fn() -> fn(&[i8], &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return |a, b| unsafe { dot_avx2(a, b) };
    }
    dot_portable
}

/// A hit ordered by score, for the heap of the best `k` (lowest on top).
#[derive(PartialEq)]
struct Scored(f32, i64);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed, so the heap's top is the worst kept hit; ties keep the lower id.
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl VectorIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Questions with a vector.
    pub fn len(&self) -> usize {
        self.inner.read().expect("vector index lock").vectors
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dimension of the vectors held (0 while none is).
    pub fn dim(&self) -> usize {
        self.inner.read().expect("vector index lock").dim
    }

    /// Drops every vector, keeping the fields (the model in use changed).
    pub fn clear_vectors(&self) {
        let mut inner = self.inner.write().expect("vector index lock");
        inner.codes.clear();
        inner.bits.clear();
        inner.words = 0;
        inner.scales.fill(0.0);
        inner.dim = 0;
        inner.vectors = 0;
    }

    /// The fields of each of `ids` that has them.
    pub fn fields_of(&self, ids: &[i64]) -> Vec<VectorFields> {
        let inner = self.inner.read().expect("vector index lock");
        ids.iter()
            .filter_map(|id| {
                let m = &inner.meta[*inner.slot_of.get(id)?];
                m.present.then(|| VectorFields {
                    category: inner.value(m.category),
                    tags: m.tags.iter().map(|t| inner.value(*t)).collect(),
                    difficulty: inner.value(m.difficulty),
                })
            })
            .collect()
    }

    /// Sets the vector of question `id`; false (and nothing changed) when its dimension is not
    /// the index's.
    pub fn set_vector(&self, id: i64, v: &[f32]) -> bool {
        let mut inner = self.inner.write().expect("vector index lock");
        if inner.dim == 0 {
            if !inner.ids.is_empty() && inner.codes.is_empty() {
                // Slots made for fields before any vector: give them room now.
                let n = inner.ids.len();
                inner.codes = vec![0; n * v.len()];
                inner.bits = vec![0; n * v.len().div_ceil(64)];
            }
            inner.dim = v.len();
            inner.words = v.len().div_ceil(64);
        }
        if v.len() != inner.dim {
            return false;
        }
        let s = inner.slot(id);
        let (codes, scale) = quantise(v);
        let (dim, words) = (inner.dim, inner.words);
        inner.codes[s * dim..(s + 1) * dim].copy_from_slice(&codes);
        inner.bits[s * words..(s + 1) * words].copy_from_slice(&signs(&codes));
        if inner.scales[s] == 0.0 && scale != 0.0 {
            inner.vectors += 1;
        }
        inner.scales[s] = scale;
        true
    }

    /// Sets the fields of question `id` (a change the keyword index applied too).
    pub fn set_fields(&self, id: i64, f: &VectorFields) {
        let mut inner = self.inner.write().expect("vector index lock");
        let category = inner.name(&format!("c:{}", f.category));
        let difficulty = inner.name(&format!("d:{}", f.difficulty));
        let tags = f
            .tags
            .iter()
            .map(|t| inner.name(&format!("t:{t}")))
            .collect();
        let s = inner.slot(id);
        inner.meta[s] = Meta {
            present: true,
            category,
            difficulty,
            tags,
        };
    }

    /// Forgets question `id` (deleted).
    pub fn remove(&self, id: i64) {
        self.inner.write().expect("vector index lock").release(id);
    }

    /// The vector of question `id` as held (dequantised), if it has one.
    pub fn vector(&self, id: i64) -> Option<Vec<f32>> {
        let inner = self.inner.read().expect("vector index lock");
        let s = *inner.slot_of.get(&id)?;
        let scale = inner.scales[s];
        if scale == 0.0 {
            return None;
        }
        let dim = inner.dim;
        Some(
            inner.codes[s * dim..(s + 1) * dim]
                .iter()
                .map(|c| f32::from(*c) * scale)
                .collect(),
        )
    }

    /// The `k` questions nearest to `query` (cosine, best first) among those passing `filter`,
    /// leaving out `except`. Empty when the query's dimension is not the index's. Exact below
    /// [`APPROXIMATE_FROM`] questions, approximate from there on.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: VectorFilter<'_>,
        except: Option<i64>,
    ) -> Vec<(i64, f32)> {
        let n = self.inner.read().expect("vector index lock").ids.len();
        if n >= APPROXIMATE_FROM {
            self.search_approximate(query, k, filter, except)
        } else {
            self.search_exact(query, k, filter, except)
        }
    }

    /// Every vector scored.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: VectorFilter<'_>,
        except: Option<i64>,
    ) -> Vec<(i64, f32)> {
        let inner = self.inner.read().expect("vector index lock");
        let Some(wanted) = inner.wanted(query, k, filter) else {
            return Vec::new();
        };
        let (q, q_scale) = quantise(query);
        let dot = dot_fn();
        let dim = inner.dim;
        let inner = &*inner;
        // The best `k` of slots `from..to`.
        let scan = |from: usize, to: usize| -> BinaryHeap<Scored> {
            let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
            for s in from..to {
                let id = inner.ids[s];
                if !inner.passes(s, &wanted) || Some(id) == except {
                    continue;
                }
                let score = dot(&q, &inner.codes[s * dim..(s + 1) * dim]) as f32
                    * inner.scales[s]
                    * q_scale;
                push(&mut heap, k, Scored(score, id));
            }
            heap
        };
        best(split(inner.ids.len(), scan), k)
    }

    /// The signs of every vector compared with the query's (a Hamming distance over 48 bytes
    /// instead of a dot product over 384), and the closest `RESCORED × k` (at least 4,000)
    /// scored exactly.
    pub fn search_approximate(
        &self,
        query: &[f32],
        k: usize,
        filter: VectorFilter<'_>,
        except: Option<i64>,
    ) -> Vec<(i64, f32)> {
        let inner = self.inner.read().expect("vector index lock");
        let Some(wanted) = inner.wanted(query, k, filter) else {
            return Vec::new();
        };
        let (q, q_scale) = quantise(query);
        let q_bits = signs(&q);
        let (dim, words) = (inner.dim, inner.words);
        let inner = &*inner;
        let m = (k * RESCORED).max(4000);
        // The `m` slots of `from..to` whose signs differ least from the query's (a max-heap
        // on the distance, so its top is the worst kept).
        let scan = |from: usize, to: usize| -> BinaryHeap<(u32, usize)> {
            let mut heap: BinaryHeap<(u32, usize)> = BinaryHeap::with_capacity(m + 1);
            for s in from..to {
                if !inner.passes(s, &wanted) || Some(inner.ids[s]) == except {
                    continue;
                }
                let d: u32 = inner.bits[s * words..(s + 1) * words]
                    .iter()
                    .zip(&q_bits)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum();
                if heap.len() < m {
                    heap.push((d, s));
                } else if heap.peek().is_some_and(|w| d < w.0) {
                    heap.pop();
                    heap.push((d, s));
                }
            }
            heap
        };
        let near = split(inner.ids.len(), scan);
        let dot = dot_fn();
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for (_, s) in near {
            let score =
                dot(&q, &inner.codes[s * dim..(s + 1) * dim]) as f32 * inner.scales[s] * q_scale;
            push(&mut heap, k, Scored(score, inner.ids[s]));
        }
        best(heap, k)
    }
}

/// The filter's values as name ids.
struct Wanted {
    category: Option<u32>,
    tag: Option<u32>,
    difficulty: Option<u32>,
}

impl Inner {
    /// The filter as name ids, or `None` when nothing can match (no vectors, a query of
    /// another dimension, or a filter value no question has).
    fn wanted(&self, query: &[f32], k: usize, filter: VectorFilter<'_>) -> Option<Wanted> {
        if self.dim == 0 || query.len() != self.dim || k == 0 {
            return None;
        }
        let want = |prefix: &str, v: Option<&str>| -> Option<Option<u32>> {
            match v {
                None => Some(None),
                Some(v) => self.lookup(&format!("{prefix}{v}")).map(Some),
            }
        };
        Some(Wanted {
            category: want("c:", filter.category)?,
            tag: want("t:", filter.tag)?,
            difficulty: want("d:", filter.difficulty)?,
        })
    }

    /// Slot `s` has a vector and fields, and they pass the filter.
    fn passes(&self, s: usize, w: &Wanted) -> bool {
        let m = &self.meta[s];
        self.scales[s] != 0.0
            && m.present
            && w.category.is_none_or(|c| c == m.category)
            && w.difficulty.is_none_or(|d| d == m.difficulty)
            && w.tag.is_none_or(|t| m.tags.contains(&t))
    }
}

/// The sign bits of `codes`, 64 to a word.
fn signs(codes: &[i8]) -> Vec<u64> {
    let mut out = vec![0u64; codes.len().div_ceil(64)];
    for (i, c) in codes.iter().enumerate() {
        if *c > 0 {
            out[i / 64] |= 1 << (i % 64);
        }
    }
    out
}

fn push(heap: &mut BinaryHeap<Scored>, k: usize, hit: Scored) {
    if heap.len() < k {
        heap.push(hit);
    } else if heap.peek().is_some_and(|w| hit.0 > w.0) {
        heap.pop();
        heap.push(hit);
    }
}

/// The best `k` of `heap`, best first (ties: the lower id).
fn best(heap: BinaryHeap<Scored>, k: usize) -> Vec<(i64, f32)> {
    let mut out: Vec<(i64, f32)> = heap.into_iter().map(|Scored(s, id)| (id, s)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    out
}

/// `scan` over slots `0..n`: in two halves at once from [`PARALLEL_FROM`] slots (a scan reads
/// every code once, and two cores read it faster than one), the halves' heaps merged.
fn split<T: Ord + Send>(
    n: usize,
    scan: impl Fn(usize, usize) -> BinaryHeap<T> + Sync,
) -> BinaryHeap<T> {
    if n < PARALLEL_FROM {
        return scan(0, n);
    }
    let (mut a, b) = rayon::join(|| scan(0, n / 2), || scan(n / 2, n));
    a.extend(b);
    a
}

/// From this many questions on, a search is approximate (docs/benchmarks.md: where the exact
/// scan stops fitting a search's budget on two cores).
pub const APPROXIMATE_FROM: usize = 300_000;
/// Candidates per wanted hit that the approximate search scores exactly.
const RESCORED: usize = 40;

/// Questions from which a search scans in two halves at once.
const PARALLEL_FROM: usize = 20_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn fields(category: &str, tags: &[&str]) -> VectorFields {
        VectorFields {
            category: category.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            difficulty: "easy".into(),
        }
    }

    #[test]
    fn the_nearest_come_first_with_their_cosines() {
        let idx = VectorIndex::new();
        for (id, v) in [
            (1, [1.0, 0.0, 0.0]),
            (2, [0.7, 0.7, 0.0]),
            (3, [0.0, 0.0, 1.0]),
        ] {
            idx.set_vector(id, &unit(&v));
            idx.set_fields(id, &fields("go", &[]));
        }
        let hits = idx.search(&unit(&[1.0, 0.1, 0.0]), 2, VectorFilter::default(), None);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((hits[0].1 - 0.995).abs() < 0.02, "{hits:?}");
    }

    #[test]
    fn filters_and_missing_fields_keep_questions_out() {
        let idx = VectorIndex::new();
        idx.set_vector(1, &unit(&[1.0, 0.0]));
        idx.set_fields(1, &fields("go", &["gc"]));
        idx.set_vector(2, &unit(&[1.0, 0.1]));
        idx.set_fields(2, &fields("dist", &[]));
        idx.set_vector(3, &unit(&[1.0, 0.2]));
        let q = unit(&[1.0, 0.0]);
        let all = idx.search(&q, 10, VectorFilter::default(), None);
        assert_eq!(all.len(), 2, "question 3 has no fields yet");
        let go = VectorFilter {
            category: Some("go"),
            ..Default::default()
        };
        assert_eq!(idx.search(&q, 10, go, None), vec![all[0]]);
        let tag = VectorFilter {
            tag: Some("gc"),
            ..Default::default()
        };
        assert_eq!(idx.search(&q, 10, tag, None).len(), 1);
        let none = VectorFilter {
            category: Some("nothing"),
            ..Default::default()
        };
        assert!(idx.search(&q, 10, none, None).is_empty());
        assert_eq!(
            idx.search(&q, 10, VectorFilter::default(), Some(1)).len(),
            1
        );
    }

    #[test]
    fn the_approximate_search_scores_exactly_what_it_keeps_and_filters_alike() {
        let idx = VectorIndex::new();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 2001) as f32 / 1000.0 - 1.0
        };
        for id in 1..=600 {
            let v: Vec<f32> = (0..96).map(|_| next()).collect();
            idx.set_vector(id, &unit(&v));
            idx.set_fields(id, &fields(if id % 3 == 0 { "go" } else { "dist" }, &[]));
        }
        let q = unit(&(0..96).map(|_| next()).collect::<Vec<_>>());
        // Fewer questions than it rescores: the same as exact.
        let all = VectorFilter::default();
        assert_eq!(
            idx.search_approximate(&q, 10, all, None),
            idx.search_exact(&q, 10, all, None)
        );
        let go = VectorFilter {
            category: Some("go"),
            ..Default::default()
        };
        let hits = idx.search_approximate(&q, 50, go, Some(3));
        assert_eq!(hits.len(), 50);
        assert!(hits.iter().all(|(id, _)| id % 3 == 0 && *id != 3));
    }

    #[test]
    fn the_fast_dot_product_agrees_with_the_plain_one() {
        let a: Vec<i8> = (0..389).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..389).map(|i| ((i * 91) % 255 - 127) as i8).collect();
        assert_eq!(dot_fn()(&a, &b), dot_portable(&a, &b));
        assert_eq!(dot_fn()(&a[..3], &b[..3]), dot_portable(&a[..3], &b[..3]));
    }

    #[test]
    fn removing_frees_the_slot_and_a_wrong_dimension_is_refused() {
        let idx = VectorIndex::new();
        idx.set_vector(1, &unit(&[1.0, 0.0]));
        idx.set_fields(1, &fields("go", &[]));
        assert!(!idx.set_vector(2, &unit(&[1.0, 0.0, 0.0])));
        assert_eq!(idx.len(), 1);
        idx.remove(1);
        assert_eq!(idx.len(), 0);
        assert!(
            idx.search(&unit(&[1.0, 0.0]), 5, VectorFilter::default(), None)
                .is_empty()
        );
        assert!(
            idx.search(&[1.0, 0.0, 0.0], 5, VectorFilter::default(), None)
                .is_empty()
        );
    }
}
