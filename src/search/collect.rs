//! tantivy collectors: the best neurons (grouping path documents by neuron), the set of
//! matching neurons, and the matching path documents of chosen neurons.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use roaring::RoaringTreemap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

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

/// Collects the `limit` best neurons.
pub(crate) struct TopNeurons {
    /// How many neurons to keep.
    pub limit: usize,
}

/// The segment part of [`TopNeurons`].
pub(crate) struct TopNeuronsSegment {
    limit: usize,
    act: Column<f64>,
    f1: Column<f64>,
    nid: Column<u64>,
    best: HashMap<u64, Key>,
    ranked: BTreeSet<Key>,
}

impl Collector for TopNeurons {
    type Fruit = Vec<Key>;
    type Child = TopNeuronsSegment;

    fn for_segment(&self, _: SegmentOrdinal, r: &SegmentReader) -> tantivy::Result<Self::Child> {
        let ff = r.fast_fields();
        Ok(TopNeuronsSegment {
            limit: self.limit,
            act: ff.f64("act")?,
            f1: ff.f64("f1")?,
            nid: ff.u64("nid")?,
            best: HashMap::new(),
            ranked: BTreeSet::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Key>>) -> tantivy::Result<Vec<Key>> {
        let mut best: HashMap<u64, Key> = HashMap::new();
        for k in fruits.into_iter().flatten() {
            let e = best.entry(k.nid).or_insert(k);
            if k > *e {
                *e = k;
            }
        }
        let mut all: Vec<Key> = best.into_values().collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(self.limit);
        Ok(all)
    }
}

impl SegmentCollector for TopNeuronsSegment {
    type Fruit = Vec<Key>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.limit == 0 {
            return;
        }
        let act = self.act.first(doc).unwrap_or(0.0);
        let full = self.ranked.len() >= self.limit;
        if full && act < self.ranked.first().expect("full").act {
            return;
        }
        let key = Key {
            act,
            f1: self.f1.first(doc).unwrap_or(0.0),
            nid: self.nid.first(doc).unwrap_or(0),
        };
        if let Some(old) = self.best.get(&key.nid).copied() {
            if key > old {
                self.ranked.remove(&old);
                self.ranked.insert(key);
                self.best.insert(key.nid, key);
            }
            return;
        }
        if full {
            let min = *self.ranked.first().expect("full");
            if key <= min {
                return;
            }
            self.ranked.remove(&min);
            self.best.remove(&min.nid);
        }
        self.ranked.insert(key);
        self.best.insert(key.nid, key);
    }

    fn harvest(self) -> Vec<Key> {
        self.ranked.into_iter().collect()
    }
}

/// Collects the set of neurons (`nid`) with a matching path.
pub(crate) struct NeuronSet;

/// The segment part of [`NeuronSet`].
pub(crate) struct NeuronSetSegment {
    nid: Column<u64>,
    set: RoaringTreemap,
}

impl Collector for NeuronSet {
    type Fruit = RoaringTreemap;
    type Child = NeuronSetSegment;

    fn for_segment(&self, _: SegmentOrdinal, r: &SegmentReader) -> tantivy::Result<Self::Child> {
        Ok(NeuronSetSegment {
            nid: r.fast_fields().u64("nid")?,
            set: RoaringTreemap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringTreemap>) -> tantivy::Result<RoaringTreemap> {
        Ok(fruits.into_iter().fold(RoaringTreemap::new(), |a, b| a | b))
    }
}

impl SegmentCollector for NeuronSetSegment {
    type Fruit = RoaringTreemap;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(n) = self.nid.first(doc) {
            self.set.insert(n);
        }
    }

    fn harvest(self) -> RoaringTreemap {
        self.set
    }
}

/// Collects every matching path document: `(nid, activation, address)`.
pub(crate) struct MatchedDocs;

/// The segment part of [`MatchedDocs`].
pub(crate) struct MatchedDocsSegment {
    segment: SegmentOrdinal,
    nid: Column<u64>,
    act: Column<f64>,
    docs: Vec<(u64, f64, DocAddress)>,
}

impl Collector for MatchedDocs {
    type Fruit = Vec<(u64, f64, DocAddress)>;
    type Child = MatchedDocsSegment;

    fn for_segment(&self, s: SegmentOrdinal, r: &SegmentReader) -> tantivy::Result<Self::Child> {
        Ok(MatchedDocsSegment {
            segment: s,
            nid: r.fast_fields().u64("nid")?,
            act: r.fast_fields().f64("act")?,
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
            self.nid.first(doc).unwrap_or(0),
            self.act.first(doc).unwrap_or(0.0),
            DocAddress::new(self.segment, doc),
        ));
    }

    fn harvest(self) -> Self::Fruit {
        self.docs
    }
}
