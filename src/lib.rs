//! n2g-index: a neuron search engine for language-model interpretability.
//!
//! Data flows one way: [`model`] (a transformer runtime that reads MLP neuron
//! activations) → scan → graphs → store → search. The command-line tool in
//! [`cli`] is a thin layer over this library.

pub mod cli;
pub mod corpus;
mod error;
pub mod model;
pub mod n2g;
mod neuron;
pub mod render;
pub mod scan;
pub mod search;
pub mod store;

pub use error::{Error, Result};
pub use model::{
    Architecture, DeviceSpec, LayerActivations, LoadOptions, Model, ModelInfo, TextTokenizer,
    TokenizedText,
};
pub use neuron::NeuronId;
