//! Neuron to Graph: explaining one neuron by a trie of the token patterns that make it
//! fire (see `../shared/n2g-algorithm.md`).

pub mod tokens;

pub use tokens::{normalize, TokenDictionary};
