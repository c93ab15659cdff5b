//! Neuron to Graph: explaining one neuron by a trie of the token patterns that make it
//! fire (see `../shared/n2g-algorithm.md`).
//!
//! One file per step: [`prune`] (split and prune), [`pipeline`] (importance,
//! augmentation and lines, batched across neurons), [`augment`] (substitutes),
//! [`graph`] (trie and prediction), [`eval`] (scores), [`stage`] (the whole store).

pub mod augment;
pub mod eval;
pub mod graph;
pub mod pipeline;
pub mod prune;
pub mod runner;
pub mod settings;
pub mod stage;
pub mod tokens;

pub use eval::{score, Prf, Scores, TokenBaseline};
pub use graph::{make_line, ContextToken, Element, EndActivation, Graph, GraphPath, Line};
pub use pipeline::split_examples;
pub use runner::BatchConfig;
pub use settings::{GraphSettings, InvalidSetting, NeuronEval, NeuronGraph};
pub use stage::{build_graphs, vocabulary_dictionary, GraphReport, KEY_GRAPH_SETTINGS};
pub use tokens::{normalize, TokenDictionary};
