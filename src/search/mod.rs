//! The search engine (step 9 of N2G): a tantivy index with one document per graph
//! path, a query language ([`query`]), and roaring-bitmap token postings for neuron
//! similarity ([`similar`]). Semantics and grammar: `schema/QUERY.md`.
//!
//! On disk, a search folder holds `CURRENT` (the name of the live generation), `LOCK`
//! (held while a build runs) and one `gen-*` folder per generation with `FORMAT`,
//! `tantivy/` and `search.redb`. A build writes a new generation beside the live one and
//! switches `CURRENT` atomically, so readers never see a half-built index.

mod build;
pub mod classes;
mod collect;
mod columns;
mod compile;
mod from_graphs;
mod hit_paths;
mod index;
mod postings;
mod predicate;
mod print;
pub mod query;
mod read_only;
mod runs;
mod schema;
pub mod similar;
mod store;

pub use crate::error::SearchError;
pub use classes::Class;
pub use from_graphs::{neuron_paths, reindex, reindex_folder, search_dir};
pub use hit_paths::{HitPath, HitPaths};
pub use index::{Hit, SearchIndex, MANY_HITS};
pub use query::{parse, Expr, ParseError};
pub use similar::{Relation, SimilarHit, SimilarPair};

use crate::NeuronId;

/// The format written into each generation's `FORMAT` file and checked on open.
pub const FORMAT: &str = "n2g-index search format 3";

/// Result type of the search layer.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// One path of a neuron's graph, as the search layer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchPath {
    /// `tokens[0]` is the activating token, then context walking backwards (depth 1,
    /// 2, ...); `None` = IGNORE (any token). Strings are already N2G-normalised.
    pub tokens: Vec<Option<String>>,
    /// Normalised END activation of this path (0..~1).
    pub activation: f32,
}

/// A neuron with its firing F1 and its graph's paths: the input of
/// [`SearchIndex::build`].
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronPaths {
    /// The neuron.
    pub neuron: NeuronId,
    /// The graph's firing F1 on held-out examples.
    pub f1: f32,
    /// The graph's paths.
    pub paths: Vec<SearchPath>,
}
