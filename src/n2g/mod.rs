//! Neuron to Graph: explaining one neuron by a trie of the token patterns that make it
//! fire (the algorithm as implemented, and how it departs from the paper:
//! `docs/N2G.md`).
//!
//! One file per step: `prune` (split and prune), `chunk` (seeds, importance,
//! augmentation and lines, batched across the neurons of a chunk), `pipeline` (a
//! chunk's inputs and evaluation), `augment` (substitutes), `graph` (trie and
//! prediction), `eval` (scores), `stage` (the whole store).

mod augment;
mod chunk;
mod density;
mod eval;
mod graph;
mod pipeline;
mod prune;
mod runner;
mod settings;
mod stage;
mod tokens;

pub use density::{dense_units, density, list_some, DenseSkip, KEY_DENSE_SKIPPED};
pub use eval::{score, Prf, Scores, TokenBaseline};
pub use graph::{make_line, ContextToken, Element, EndActivation, Graph, GraphPath, Line};
pub use pipeline::split_examples;
pub use runner::BatchConfig;
pub(crate) use settings::check_count;
pub use settings::{GraphSettings, InvalidSetting, NeuronEval, NeuronGraph};
pub use stage::{
    build_graphs, check_or_set_band, stored_band, vocabulary_dictionary, GraphReport,
    KEY_DICTIONARY, KEY_GRAPH_BAND, KEY_GRAPH_BATCH, KEY_GRAPH_SETTINGS,
};
pub use tokens::{normalize, TokenDictionary};
