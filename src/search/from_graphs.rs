//! Feeding the search index from the graph store: every stored graph becomes a
//! [`NeuronPaths`] (its paths as normalised token strings, IGNORE as `None`).

use std::path::{Path, PathBuf};

use super::{NeuronPaths, SearchIndex, SearchPath};
use crate::n2g::{GraphSettings, NeuronGraph, TokenDictionary};
use crate::store::{Store, WriterLock};
use crate::{Error, NeuronId, Result};

/// The search folder of an index folder.
pub fn search_dir(index_dir: &Path) -> PathBuf {
    index_dir.join("search")
}

/// One stored graph as the search layer's input: its paths that predict firing (END
/// activation at least `fire_threshold`; paths quieted on the training windows, see
/// `Graph::quiet_rare_ends`, predict that the neuron does not fire there).
pub fn neuron_paths(
    id: NeuronId,
    g: &NeuronGraph,
    dict: &TokenDictionary,
    fire_threshold: f32,
) -> NeuronPaths {
    NeuronPaths {
        neuron: id,
        f1: g.eval.graph.firing.f1 as f32,
        paths: g
            .graph
            .paths()
            .into_iter()
            .filter(|p| p.activation >= fire_threshold)
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

/// Rebuilds the search index of the index folder `index_dir` from its stored graphs (as
/// `n2g-index reindex`); returns the number of neurons indexed. Reads the store
/// read-only, so readers of the index are never blocked, and holds the folder's writer
/// lock meanwhile: a build or another reindex running there is refused, naming it.
pub fn reindex_folder(index_dir: &Path) -> Result<usize> {
    let store = Store::open_read_only(index_dir)?;
    let _lock = WriterLock::acquire(index_dir, "reindex")?;
    reindex(&store, index_dir)
}

/// Rebuilds the search index of `index_dir` from the graphs in `store`; returns the
/// number of neurons indexed.
pub fn reindex(store: &Store, index_dir: &Path) -> Result<usize> {
    let strings: Vec<String> =
        store
            .meta(crate::n2g::KEY_DICTIONARY)?
            .ok_or_else(|| Error::Store {
                path: store.path().into(),
                message: "no graphs in this index yet: the build has not reached the graph stage"
                    .into(),
            })?;
    let dict = TokenDictionary::from_strings(strings);
    let fire_threshold = store
        .meta::<GraphSettings>(crate::n2g::KEY_GRAPH_SETTINGS)?
        .map_or(0.0, |s| s.fire_threshold);
    let graphs: Vec<(NeuronId, NeuronGraph)> = store.graphs()?;
    let n = graphs.len();
    let input = graphs
        .iter()
        .map(|(id, g)| neuron_paths(*id, g, &dict, fire_threshold));
    SearchIndex::build(&search_dir(index_dir), input).map_err(|e| Error::Store {
        path: search_dir(index_dir),
        message: e.to_string(),
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::n2g::{score, Element, EndActivation, Graph, Line, NeuronEval};

    #[test]
    fn only_paths_that_predict_firing_are_searchable() {
        let dict = TokenDictionary::from_strings(vec!["paris".into(), "the".into()]);
        let line = |elements: Vec<Element>, activation| Line {
            importance: vec![1.0; elements.len()],
            elements,
            activation,
        };
        // "paris" fires (0.8); "the" ends at 0.3, as a quieted END does.
        let lines = [
            line(vec![Element::Token(0)], 0.8),
            line(vec![Element::Token(1)], 0.3),
        ];
        let scores = score(&[], &[], 0.5);
        let graph = NeuronGraph {
            graph: Graph::build(&lines, EndActivation::Mean),
            eval: NeuronEval {
                graph: scores,
                baseline: scores,
                random_fpr: 0.0,
                random_fpr_baseline: 0.0,
                random_tokens: 0,
                train_examples: 0,
                test_examples: 0,
                lines: 2,
                variants: 0,
                positive_variants: 0,
                max_activation: 1.0,
            },
        };
        let id = NeuronId { layer: 0, index: 7 };
        let tokens = |threshold| -> Vec<Vec<Option<String>>> {
            neuron_paths(id, &graph, &dict, threshold)
                .paths
                .into_iter()
                .map(|p| p.tokens)
                .collect()
        };
        assert_eq!(tokens(0.5), vec![vec![Some("paris".to_string())]]);
        assert_eq!(tokens(0.0).len(), 2);
    }
}
