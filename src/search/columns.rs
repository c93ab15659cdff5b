//! Per-segment and per-neuron columns that the query's collector and its neuron-level
//! conditions both read.

use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::{Searcher, SegmentReader};

/// The fast-field columns of each segment (`ord`, `act`), opened once per index: opening
/// the activation column reads its whole block index.
#[derive(Clone)]
pub(crate) struct Columns(Vec<(SegmentId, Column<u64>, Column<f64>)>);

impl std::fmt::Debug for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Columns({} segments)", self.0.len())
    }
}

impl Columns {
    /// The columns of every segment of `searcher`.
    pub fn open(searcher: &Searcher) -> tantivy::Result<Self> {
        let mut v = Vec::new();
        for r in searcher.segment_readers() {
            let ff = r.fast_fields();
            v.push((r.segment_id(), ff.u64("ord")?, ff.f64("act")?));
        }
        Ok(Columns(v))
    }

    /// The `ord` and `act` columns of `reader`'s segment.
    pub fn of(&self, reader: &SegmentReader) -> tantivy::Result<(Column<u64>, Column<f64>)> {
        match self.0.iter().find(|c| c.0 == reader.segment_id()) {
            Some((_, o, a)) => Ok((o.clone(), a.clone())),
            None => {
                let ff = reader.fast_fields();
                Ok((ff.u64("ord")?, ff.f64("act")?))
            }
        }
    }
}

/// Per-neuron figures by ordinal, for neuron-level tests.
#[derive(Debug)]
pub(crate) struct NeuronColumns {
    /// Firing F1 by ordinal.
    pub f1: Vec<f32>,
    /// Layer by ordinal.
    pub layer: Vec<u16>,
}
