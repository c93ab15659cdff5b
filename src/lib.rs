//! n2g-index: a neuron search engine for language-model interpretability.
//!
//! One indexing pass over a corpus builds a *Neuron to Graph* (N2G) graph for every
//! MLP neuron of a model: which tokens make it fire, and which earlier tokens it needs
//! as context. The graphs go into an embedded store and a search index, which then
//! answer questions about the whole model in milliseconds.
//!
//! The face of the library is [`Index`]:
//!
//! ```no_run
//! use n2g_index::{BuildOptions, Index, NeuronId, NoProgress};
//!
//! # fn main() -> n2g_index::Result<()> {
//! // Build (or resume) an index of layers 0-2 of the default model and corpus.
//! let (index, _report) = Index::build(&BuildOptions::new("index"), &mut NoProgress)?;
//! // Or open one that exists.
//! let index = Index::open("index".as_ref())?;
//! for hit in index.query("token:Paris context:capital", 10)? {
//!     println!("{} {:.3}", hit.neuron, hit.score);
//! }
//! let view = index.neuron(NeuronId::new(2, 1066), Some(5))?;
//! let similar = index.similar(NeuronId::new(2, 1066), 10, 0.9)?;
//! # Ok(()) }
//! ```
//!
//! Every answer is one of the serialisable types of [`view`], which the command line's
//! `--json`, the web server and the Python package all print. Long calls report to a
//! [`Progress`] the caller supplies; the library itself prints nothing.
//!
//! Data flows one way: [`model`] (a transformer runtime that reads MLP neuron
//! activations) → [`corpus`] → [`scan`] → [`n2g`] → [`store`] → [`search`], with
//! [`render`] drawing for people, and `serve` (cargo feature `serve`, on by default) the
//! web face over an [`Index`]. Lower layers stay public for tools that need them.

pub mod corpus;
mod error;
mod index;
pub mod model;
pub mod n2g;
mod neuron;
mod progress;
pub mod render;
pub mod scan;
pub mod search;
#[cfg(feature = "serve")]
pub mod serve;
mod shard;
pub mod store;
pub mod view;

pub use error::{Error, Result};
pub use index::{
    default_corpus_path, default_model_path, text_activations, BuildOptions, BuildReport, Index,
    MergeReport, DEFAULT_LAYERS,
};
pub use model::{
    Architecture, DeviceSpec, LayerActivations, LoadOptions, Model, ModelInfo, TextTokenizer,
    TokenizedText,
};
pub use neuron::NeuronId;
pub use progress::{NoProgress, Progress, Stage};
pub use shard::{Shard, MAX_SHARDS};
