//! Building the view types from stored records.

use std::collections::BTreeMap;
use std::path::Path;

use super::Index;
use crate::error::{Error, Result};
use crate::n2g::{split_examples, GraphSettings, NeuronGraph, TokenDictionary};
use crate::store::{NeuronScan, FORMAT_VERSION};
use crate::view::{
    ActivatingView, ContextView, ExampleRole, ExampleView, GraphView, InfoView, LayerEvalView,
    NeuronView, SettingsPreset,
};
use crate::NeuronId;

/// The view of a graph: its tokens as strings, paths, activations.
pub fn graph_view(g: &NeuronGraph, dict: &TokenDictionary) -> GraphView {
    let tok = |id: u32| dict.str(id).to_string();
    let mut activating: Vec<ActivatingView> = g
        .graph
        .activating()
        .into_iter()
        .map(|(t, a)| ActivatingView {
            token: tok(t),
            activation: a,
        })
        .collect();
    activating.sort_by(|a, b| {
        b.activation
            .total_cmp(&a.activation)
            .then(a.token.cmp(&b.token))
    });
    let paths = g.graph.paths();
    GraphView {
        activating,
        context: g
            .graph
            .context()
            .into_iter()
            .map(|c| ContextView {
                token: tok(c.token),
                depth: c.depth,
                importance: c.importance,
            })
            .collect(),
        path_activations: paths.iter().map(|p| p.activation).collect(),
        paths: paths
            .iter()
            .map(|p| {
                p.elements
                    .iter()
                    .map(|e| e.token().map_or_else(|| "*".to_string(), tok))
                    .collect()
            })
            .collect(),
        nodes: g.graph.node_count(),
    }
}

/// The view of `neuron` with its first `examples` examples.
pub fn neuron_view(
    index: &Index,
    neuron: NeuronId,
    scan: &NeuronScan,
    graph: Option<&NeuronGraph>,
    examples: usize,
) -> Result<NeuronView> {
    let vocabulary = index.vocabulary();
    let token = |id: u32| vocabulary.get(id as usize).cloned().unwrap_or_default();
    let meta = index.graph_meta();
    let shown = examples.min(scan.examples.len());
    let held_out = graph
        .and(meta)
        .map(|m| split_examples(neuron, scan.examples.len(), &m.settings).1);
    let mut out_examples = Vec::with_capacity(shown);
    for (e, ex) in scan.examples[..shown].iter().enumerate() {
        let w = index
            .store()
            .window(ex.window)?
            .ok_or_else(|| Error::Store {
                path: index.store().path().into(),
                message: format!("window {} of neuron {neuron} is missing", ex.window),
            })?;
        out_examples.push(ExampleView {
            window: ex.window,
            tokens: w.ids.iter().map(|&i| token(i)).collect(),
            ids: w.ids,
            activations: ex.activations.clone(),
            argmax: ex.position as usize,
            max: ex.activation,
            role: held_out.as_ref().map(|h| {
                if h.binary_search(&e).is_ok() {
                    ExampleRole::HeldOut
                } else {
                    ExampleRole::Train
                }
            }),
        });
    }
    let stats = &scan.stats;
    Ok(NeuronView {
        neuron: neuron.to_string(),
        layer: neuron.layer as usize,
        index: neuron.index as usize,
        unit_kind: index.units().kind,
        graph_skipped: index.dense().and_then(|d| d.reason(neuron)),
        max_activation: stats.max,
        mean_activation: stats.mean(),
        positive_fraction: crate::n2g::density(stats),
        tokens: stats.count,
        examples: out_examples,
        graph: graph.zip(meta).map(|(g, m)| graph_view(g, &m.dict)),
        eval: graph.map(|g| g.eval.clone()),
        histogram: stats.histogram.to_vec(),
    })
}

/// The description of `index`.
pub fn info_view(index: &Index) -> Result<InfoView> {
    let store = index.store();
    let run = index.run();
    let graphs: Vec<(NeuronId, NeuronGraph)> = store.graphs()?;
    let settings = index.graph_settings().cloned();
    Ok(InfoView {
        index: index.dir().display().to_string(),
        format_version: FORMAT_VERSION,
        units: index.units().clone(),
        max_density: index.dense().map(|d| d.max_density),
        skipped_dense: index
            .dense()
            .map(|d| d.units.iter().map(|(id, _)| id.to_string()).collect())
            .unwrap_or_default(),
        model: run.model.clone(),
        corpus: run.corpus.clone(),
        scan: run.scan.clone(),
        progress: store.scan_progress()?,
        neurons: index.neuron_count(),
        size_bytes: dir_size(index.dir()),
        graphs: graphs.len(),
        preset: settings.as_ref().map(preset),
        mask_token: settings.as_ref().map(|s| {
            index
                .vocabulary()
                .get(s.mask_token as usize)
                .cloned()
                .unwrap_or_else(|| "?".into())
        }),
        graph_settings: settings,
        layers: layer_means(&graphs),
    })
}

/// Which preset `s` is: the defaults, the paper's, or neither (the mask token, which
/// depends on the model, is not compared).
pub fn preset(s: &GraphSettings) -> SettingsPreset {
    let with_mask = |preset: GraphSettings| GraphSettings {
        mask_token: s.mask_token,
        ..preset
    };
    if *s == with_mask(GraphSettings::default()) {
        SettingsPreset::Defaults
    } else if *s == with_mask(GraphSettings::authors()) {
        SettingsPreset::Authors
    } else {
        SettingsPreset::Custom
    }
}

/// Per-layer means of the graphs' evaluation.
pub fn layer_means(graphs: &[(NeuronId, NeuronGraph)]) -> Vec<LayerEvalView> {
    let mut by_layer: BTreeMap<u16, (LayerEvalView, f64, f64)> = BTreeMap::new();
    for (id, g) in graphs {
        let e = &g.eval;
        let (s, positive, variants) = by_layer.entry(id.layer).or_default();
        s.neurons += 1;
        s.precision += e.graph.firing.precision;
        s.recall += e.graph.firing.recall;
        s.f1 += e.graph.firing.f1;
        s.baseline_f1 += e.baseline.firing.f1;
        s.variance_explained += e.graph.variance_explained;
        s.baseline_variance_explained += e.baseline.variance_explained;
        s.random_fpr += e.random_fpr;
        s.random_fpr_baseline += e.random_fpr_baseline;
        s.non_firing_f1 += e.graph.non_firing.f1;
        s.lines += e.lines as f64;
        *positive += e.positive_variants as f64;
        *variants += e.variants as f64;
    }
    by_layer
        .into_iter()
        .map(|(layer, (s, positive, variants))| {
            let n = s.neurons as f64;
            LayerEvalView {
                layer,
                neurons: s.neurons,
                precision: s.precision / n,
                recall: s.recall / n,
                f1: s.f1 / n,
                baseline_f1: s.baseline_f1 / n,
                non_firing_f1: s.non_firing_f1 / n,
                variance_explained: s.variance_explained / n,
                baseline_variance_explained: s.baseline_variance_explained / n,
                random_fpr: s.random_fpr / n,
                random_fpr_baseline: s.random_fpr_baseline / n,
                lines: s.lines / n,
                variants_kept: if variants > 0.0 {
                    positive / variants
                } else {
                    0.0
                },
            }
        })
        .collect()
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(std::result::Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
