//! Neuron to Graph: explaining one neuron by a trie of the token patterns that make it
//! fire (see `../shared/n2g-algorithm.md`).

pub mod eval;
pub mod graph;
pub mod tokens;

pub use eval::{score, Prf, Scores, TokenBaseline};
pub use graph::{make_line, ContextToken, Element, EndActivation, Graph, GraphPath, Line};
pub use tokens::{normalize, TokenDictionary};
