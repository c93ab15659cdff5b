//! Feeding the search index from the graph store: every stored graph becomes a
//! [`NeuronPaths`] (its paths as normalised token strings, IGNORE as `None`).

use std::path::{Path, PathBuf};

use super::{NeuronPaths, SearchIndex, SearchPath};
use crate::n2g::{NeuronGraph, TokenDictionary};
use crate::store::Store;
use crate::{Error, NeuronId, Result};

/// The search folder of an index folder.
pub fn search_dir(index_dir: &Path) -> PathBuf {
    index_dir.join("search")
}

/// One stored graph as the search layer's input.
pub fn neuron_paths(id: NeuronId, g: &NeuronGraph, dict: &TokenDictionary) -> NeuronPaths {
    NeuronPaths {
        neuron: id,
        f1: g.eval.graph.firing.f1 as f32,
        paths: g
            .graph
            .paths()
            .into_iter()
            .map(|p| SearchPath {
                tokens: p
                    .elements
                    .iter()
                    .map(|e| e.token().map(|t| dict.str(t).to_string()))
                    .collect(),
                activation: p.activation,
            })
            .collect(),
    }
}

/// Rebuilds the search index of `index_dir` from the graphs in its store; returns the
/// number of neurons indexed.
pub fn reindex(store: &Store, index_dir: &Path) -> Result<usize> {
    let strings: Vec<String> = store
        .meta(crate::n2g::stage::KEY_DICTIONARY)?
        .ok_or_else(|| Error::Store {
            path: store.path().into(),
            message: "no graphs in this index yet: run `n2g-index build` to the end".into(),
        })?;
    let dict = TokenDictionary::from_strings(strings);
    let graphs: Vec<(NeuronId, NeuronGraph)> = store.graphs()?;
    let n = graphs.len();
    let input = graphs.iter().map(|(id, g)| neuron_paths(*id, g, &dict));
    SearchIndex::build(&search_dir(index_dir), input).map_err(|e| Error::Store {
        path: search_dir(index_dir),
        message: e.to_string(),
    })?;
    Ok(n)
}
