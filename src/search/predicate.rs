//! Conditions that are not term postings: neuron-level tests (excluded neurons, F1)
//! through the `ord` fast field, applied to the documents of the other clauses
//! ([`Filtered`]), and activation comparisons, which the sorted runs turn into document
//! ranges ([`ActRange`]).

use std::sync::Arc;

use roaring::RoaringBitmap;
use tantivy::columnar::Column;
use tantivy::query::{AllScorer, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

use super::columns::{Columns, NeuronColumns};
use super::query::Cmp;

/// A per-document test: neuron-level, through the `ord` fast field.
#[derive(Clone, Debug)]
pub(crate) enum Condition {
    /// The neuron is not in the set (ordinals).
    Exclude(Arc<RoaringBitmap>),
    /// The neuron's F1 passes the comparison.
    F1(Arc<NeuronColumns>, Cmp),
    /// The neuron's layer passes the comparison.
    Layer(Arc<NeuronColumns>, Cmp),
}

/// The documents of `inner` (of the whole segment when `None`) that pass every
/// condition. The conditions only test the documents `inner` reaches, so they never
/// scan ahead on their own.
#[derive(Debug)]
pub(crate) struct Filtered {
    /// The documents to test.
    pub inner: Option<Box<dyn Query>>,
    /// The tests.
    pub conditions: Vec<Condition>,
    /// The fast-field columns.
    pub columns: Arc<Columns>,
}

impl Clone for Filtered {
    fn clone(&self) -> Self {
        Filtered {
            inner: self.inner.as_ref().map(|q| q.box_clone()),
            conditions: self.conditions.clone(),
            columns: self.columns.clone(),
        }
    }
}

impl Query for Filtered {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(FilteredWeight {
            inner: self.inner.as_ref().map(|q| q.weight(scoring)).transpose()?,
            conditions: self.conditions.clone(),
            columns: self.columns.clone(),
        }))
    }
}

struct FilteredWeight {
    inner: Option<Box<dyn Weight>>,
    conditions: Vec<Condition>,
    columns: Arc<Columns>,
}

impl Weight for FilteredWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let inner: Box<dyn Scorer> = match &self.inner {
            Some(w) => w.scorer(reader, boost)?,
            None => Box::new(AllScorer::new(reader.max_doc())),
        };
        let ord = self.columns.of(reader)?.0;
        let mut set = FilteredDocSet {
            inner,
            ord,
            conditions: self.conditions.clone(),
        };
        set.settle();
        Ok(Box::new(ConstScorer::new(set, boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain_match(self.scorer(reader, 1.0)?, doc, "Filtered")
    }
}

struct FilteredDocSet {
    inner: Box<dyn Scorer>,
    ord: Column<u64>,
    conditions: Vec<Condition>,
}

impl FilteredDocSet {
    fn holds(&self, doc: DocId) -> bool {
        let Some(o) = self.ord.first(doc) else {
            return false;
        };
        self.conditions.iter().all(|c| match c {
            Condition::Exclude(set) => !set.contains(o as u32),
            Condition::F1(n, cmp) => n.f1.get(o as usize).is_some_and(|&f| cmp.holds(f as f64)),
            Condition::Layer(n, cmp) => n
                .layer
                .get(o as usize)
                .is_some_and(|&l| cmp.holds(l as f64)),
        })
    }

    /// Moves on from the current document of `inner` to the first that passes.
    fn settle(&mut self) -> DocId {
        let mut doc = self.inner.doc();
        while doc != TERMINATED && !self.holds(doc) {
            doc = self.inner.advance();
        }
        doc
    }
}

impl DocSet for FilteredDocSet {
    fn advance(&mut self) -> DocId {
        self.inner.advance();
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target);
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
}

/// The paths whose activation passes a comparison; `runs` are the run lengths of the
/// segment (activation descending within each run).
#[derive(Clone, Debug)]
pub(crate) struct ActRange {
    /// The comparison.
    pub cmp: Cmp,
    /// The run lengths.
    pub runs: Arc<Vec<u32>>,
    /// The fast-field columns.
    pub columns: Arc<Columns>,
}

impl Query for ActRange {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for ActRange {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let act = self.columns.of(reader)?.1;
        let mut set = RangesDocSet {
            ranges: act_ranges(&act, self.cmp, &self.runs, reader.max_doc()),
            at: 0,
            doc: 0,
        };
        set.settle();
        Ok(Box::new(ConstScorer::new(set, boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain_match(self.scorer(reader, 1.0)?, doc, "ActRange")
    }
}

/// The documents whose activation passes `cmp`: in each run (activation descending) they
/// form one range, found by binary search. Runs that do not cover `max_doc` exactly are
/// not trusted: then every document is tested.
fn act_ranges(act: &Column<f64>, cmp: Cmp, runs: &[u32], max_doc: DocId) -> Vec<(DocId, DocId)> {
    let value = |d: DocId| act.first(d).unwrap_or(f64::NAN);
    if runs.iter().map(|&r| r as u64).sum::<u64>() != max_doc as u64 {
        return (0..max_doc)
            .filter(|&d| cmp.holds(value(d)))
            .map(|d| (d, d + 1))
            .collect();
    }
    // holds(x) == below_top(x) && above_bottom(x); along a run (x descending) the first
    // is false, then true; the second true, then false.
    let below_top = |x: f64| match cmp {
        Cmp::Lt(v) => x < v,
        Cmp::Le(v) | Cmp::Eq(v) => x <= v,
        Cmp::Between(_, b) => x <= b,
        Cmp::Ge(_) | Cmp::Gt(_) => true,
    };
    let above_bottom = |x: f64| match cmp {
        Cmp::Ge(v) | Cmp::Eq(v) => x >= v,
        Cmp::Gt(v) => x > v,
        Cmp::Between(a, _) => x >= a,
        Cmp::Lt(_) | Cmp::Le(_) => true,
    };
    // the first document of [lo, hi) where `p` is false (p: true, then false)
    let first_false = |mut lo: DocId, mut hi: DocId, p: &dyn Fn(f64) -> bool| {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if p(value(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let mut ranges = Vec::new();
    let mut start = 0;
    for &len in runs {
        let end = start + len;
        let a = first_false(start, end, &|x| !below_top(x));
        let b = first_false(a, end, &above_bottom);
        if a < b {
            ranges.push((a, b));
        }
        start = end;
    }
    ranges
}

/// A docset of sorted, disjoint document ranges.
struct RangesDocSet {
    ranges: Vec<(DocId, DocId)>,
    at: usize,
    doc: DocId,
}

impl RangesDocSet {
    /// Moves to the first document >= `self.doc` inside a range.
    fn settle(&mut self) -> DocId {
        while let Some(&(a, b)) = self.ranges.get(self.at) {
            if self.doc < b {
                self.doc = self.doc.max(a);
                return self.doc;
            }
            self.at += 1;
        }
        self.doc = TERMINATED;
        TERMINATED
    }
}

impl DocSet for RangesDocSet {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.doc += 1;
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc == TERMINATED || target >= TERMINATED {
            self.doc = TERMINATED;
            return TERMINATED;
        }
        if target > self.doc {
            self.doc = target;
            let rest = &self.ranges[self.at..];
            self.at += rest.partition_point(|&(_, b)| b <= target);
        }
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.ranges.iter().map(|&(a, b)| b - a).sum()
    }
}

/// A constant-score explanation when `scorer` reaches `doc`.
fn explain_match(
    mut scorer: Box<dyn Scorer>,
    doc: DocId,
    name: &'static str,
) -> tantivy::Result<Explanation> {
    if scorer.seek(doc) != doc {
        return Err(tantivy::TantivyError::InvalidArgument(format!(
            "document {doc} does not match"
        )));
    }
    Ok(Explanation::new(name, 1.0))
}
