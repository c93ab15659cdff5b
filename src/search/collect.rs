//! Collection: the best neurons (reading sorted runs, see [`top_neurons`]), and tantivy
//! collectors of the set of matching neurons and of the matching path documents of
//! chosen neurons.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use roaring::RoaringBitmap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{EnableScoring, Query};
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader};

use super::columns::Columns;
use super::schema::nid;
use super::store::NeuronTable;

/// Rank of a neuron: best path activation, then F1, then the smaller neuron id first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    /// Best matching path activation.
    pub act: f64,
    /// The neuron's F1.
    pub f1: f64,
    /// `layer << 32 | index`.
    pub nid: u64,
}

impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        self.act
            .total_cmp(&o.act)
            .then(self.f1.total_cmp(&o.f1))
            .then(o.nid.cmp(&self.nid))
    }
}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Key {}

/// The `limit` best neurons matching `query`, best first.
///
/// Documents come in sorted runs (`runs`: their lengths, in document order; see
/// `schema`), so the first `limit` distinct neurons met in a run are that run's best, and
/// the reading of a run stops there. The best `limit` over all runs are among the runs'
/// bests (a neuron in the overall top `limit` has fewer than `limit` better neurons in
/// its own run), so merging them is exact.
pub(crate) fn top_neurons(
    searcher: &Searcher,
    columns: &Columns,
    query: &dyn Query,
    runs: &[u32],
    table: &NeuronTable,
    limit: usize,
) -> tantivy::Result<Vec<Key>> {
    let mut found: HashMap<u64, Key> = HashMap::new();
    if limit == 0 {
        return Ok(Vec::new());
    }
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    for reader in searcher.segment_readers() {
        if reader.max_doc() == 0 {
            continue;
        }
        let total: u64 = runs.iter().map(|&r| r as u64).sum();
        if searcher.segment_readers().len() != 1 || total != reader.max_doc() as u64 {
            return Err(tantivy::TantivyError::InternalError(format!(
                "the index has {} segments and {} documents; its runs cover {total}",
                searcher.segment_readers().len(),
                reader.max_doc()
            )));
        }
        let (ord, act) = columns.of(reader)?;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        let mut start: DocId = 0;
        let mut seen: HashSet<u64> = HashSet::with_capacity(limit.min(1024));
        for &len in runs {
            let end = start + len;
            if doc < start {
                doc = scorer.seek(start);
            }
            seen.clear();
            while doc < end {
                let o = ord.first(doc).unwrap_or(0);
                if seen.insert(o) {
                    let r = table.records.get(o as usize).ok_or_else(|| {
                        tantivy::TantivyError::InternalError(format!("ordinal {o} out of range"))
                    })?;
                    let key = Key {
                        act: act.first(doc).unwrap_or(0.0),
                        f1: r.f1 as f64,
                        nid: nid(r.id),
                    };
                    let e = found.entry(key.nid).or_insert(key);
                    if key > *e {
                        *e = key;
                    }
                    if seen.len() >= limit {
                        break;
                    }
                }
                doc = scorer.advance();
            }
            start = end;
        }
    }
    let mut all: Vec<Key> = found.into_values().collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.truncate(limit);
    Ok(all)
}

/// Collects the set of neurons (ordinals) with a matching path.
pub(crate) struct NeuronSet<'a>(pub &'a Columns);

/// The segment part of [`NeuronSet`].
pub(crate) struct NeuronSetSegment {
    ord: Column<u64>,
    set: RoaringBitmap,
}

impl Collector for NeuronSet<'_> {
    type Fruit = RoaringBitmap;
    type Child = NeuronSetSegment;

    fn for_segment(&self, _: SegmentOrdinal, r: &SegmentReader) -> tantivy::Result<Self::Child> {
        Ok(NeuronSetSegment {
            ord: self.0.of(r)?.0,
            set: RoaringBitmap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringBitmap>) -> tantivy::Result<RoaringBitmap> {
        Ok(fruits.into_iter().fold(RoaringBitmap::new(), |a, b| a | b))
    }
}

impl SegmentCollector for NeuronSetSegment {
    type Fruit = RoaringBitmap;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(n) = self.ord.first(doc) {
            self.set.insert(n as u32);
        }
    }

    fn harvest(self) -> RoaringBitmap {
        self.set
    }
}

/// Collects every matching path document: `(ordinal, activation, address)`.
pub(crate) struct MatchedDocs<'a>(pub &'a Columns);

/// The segment part of [`MatchedDocs`].
pub(crate) struct MatchedDocsSegment {
    segment: SegmentOrdinal,
    ord: Column<u64>,
    act: Column<f64>,
    docs: Vec<(u64, f64, DocAddress)>,
}

impl Collector for MatchedDocs<'_> {
    type Fruit = Vec<(u64, f64, DocAddress)>;
    type Child = MatchedDocsSegment;

    fn for_segment(&self, s: SegmentOrdinal, r: &SegmentReader) -> tantivy::Result<Self::Child> {
        let (ord, act) = self.0.of(r)?;
        Ok(MatchedDocsSegment {
            segment: s,
            ord,
            act,
            docs: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<(u64, f64, DocAddress)>>,
    ) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for MatchedDocsSegment {
    type Fruit = Vec<(u64, f64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _: Score) {
        self.docs.push((
            self.ord.first(doc).unwrap_or(0),
            self.act.first(doc).unwrap_or(0.0),
            DocAddress::new(self.segment, doc),
        ));
    }

    fn harvest(self) -> Self::Fruit {
        self.docs
    }
}
