//! Facets: how many matches have each category, tag and difficulty, read from the fast-field
//! columns while the matches are counted (`collect.rs`).
//!
//! Shaped as a tantivy `Collector` (counts per segment, merged) although counting drives it by
//! hand: a column's term ordinals mean something only within its segment, so each segment's
//! counts are resolved to strings once, when it is done.

use std::collections::BTreeMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts per value over the whole result set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub category: BTreeMap<String, u64>,
    pub tag: BTreeMap<String, u64>,
    pub difficulty: BTreeMap<String, u64>,
}

/// Counts category, tag and difficulty values over every matching document, straight from
/// the fast-field columns (term ordinals, resolved to strings once per segment).
pub(super) struct FacetCollector;

pub(super) struct SegmentFacets {
    columns: [Option<StrColumn>; 3],
    counts: [Vec<u64>; 3],
}

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = SegmentFacets;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFacets> {
        let ff = reader.fast_fields();
        let columns = [ff.str("category")?, ff.str("tag")?, ff.str("difficulty")?];
        let counts = columns
            .each_ref()
            .map(|c| vec![0; c.as_ref().map_or(0, |c| c.num_terms())]);
        Ok(SegmentFacets { columns, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Facets>) -> tantivy::Result<Facets> {
        let mut out = Facets::default();
        for f in fruits {
            for (into, from) in [
                (&mut out.category, f.category),
                (&mut out.tag, f.tag),
                (&mut out.difficulty, f.difficulty),
            ] {
                for (k, v) in from {
                    *into.entry(k).or_default() += v;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = Facets;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (column, counts) in self.columns.iter().zip(self.counts.iter_mut()) {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    counts[ord as usize] += 1;
                }
            }
        }
    }

    fn harvest(self) -> Facets {
        let [category, tag, difficulty] = std::array::from_fn(|i| {
            let mut map = BTreeMap::new();
            if let Some(column) = &self.columns[i] {
                let mut name = String::new();
                for (ord, n) in self.counts[i].iter().enumerate().filter(|(_, n)| **n > 0) {
                    if column.ord_to_str(ord as u64, &mut name).unwrap_or(false) {
                        map.insert(name.clone(), *n);
                    }
                }
            }
            map
        });
        Facets {
            category,
            tag,
            difficulty,
        }
    }
}
