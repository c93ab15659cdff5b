//! The graph stage over a whole store: every scanned neuron without a graph yet gets
//! one, layer by layer, in chunks committed one transaction each (so a killed build
//! never recomputes a committed neuron).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::augment::Substitutes;
use super::pipeline::{ExampleInput, GraphContext, NeuronInput, RandomSample};
use super::prune::shuffled;
use super::runner::{BatchConfig, RunnerStats};
use super::settings::GraphSettings;
use super::tokens::{normalize, TokenDictionary};
use crate::corpus::Windows;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::progress::{Progress, Stage};
use crate::store::{Store, KEY_VOCABULARY};
use crate::NeuronId;

/// Meta key of the token dictionary.
pub const KEY_DICTIONARY: &str = "dictionary";
/// Meta key of the graph settings.
pub const KEY_GRAPH_SETTINGS: &str = "graph_settings";

/// What a graph-stage run did.
#[derive(Clone, Debug, Default)]
pub struct GraphReport {
    /// Graphs built by this run.
    pub built: usize,
    /// Neurons that already had a graph.
    pub skipped: usize,
    /// Time spent.
    pub elapsed: Duration,
    /// Of that, the fixed per-build and per-layer set-up (the substitute index and each
    /// layer's random-window sample), which a whole layer shares across its neurons.
    pub setup: Duration,
    /// Forward work.
    pub work: RunnerStats,
    /// Whether the run stopped early because its caller asked (the rest resumes later).
    pub stopped: bool,
}

/// The dictionary of normalised strings of a vocabulary, and the id of every token.
pub fn vocabulary_dictionary(vocab: &[String]) -> (TokenDictionary, Vec<u32>) {
    let mut dict = TokenDictionary::new();
    let ids = vocab.iter().map(|t| dict.intern(&normalize(t))).collect();
    (dict, ids)
}

/// Meta key of the batch layout of the graph stage ([`BatchConfig`]).
pub const KEY_GRAPH_BATCH: &str = "graph_batch";

/// Records the batch layout of the graph stage, or (when some graphs are stored
/// already: `started`) checks that it equals the recorded one. The layout decides the
/// order of floating-point reductions, so graphs built with another would differ from
/// the stored ones in their last digits.
fn check_or_set_batch(store: &Store, batch: &BatchConfig, started: bool) -> Result<()> {
    match store.meta::<BatchConfig>(KEY_GRAPH_BATCH)? {
        Some(stored) if started && stored != *batch => Err(Error::Incompatible {
            path: store.path().into(),
            message: format!(
                "graphs in this index were started with another batch layout (stored: {} neurons a chunk, {} tokens a batch, prefix rows of {} tokens{}; now: {} neurons a chunk, {} tokens a batch, prefix rows of {} tokens{}); it changes the last digits of the results, so continue with the original layout (neurons a chunk, prefix row tokens, batching), or use a new index folder",
                stored.chunk_neurons,
                stored.max_batch_tokens,
                stored.prefix_row_tokens,
                if stored.batched { "" } else { ", unbatched" },
                batch.chunk_neurons,
                batch.max_batch_tokens,
                batch.prefix_row_tokens,
                if batch.batched { "" } else { ", unbatched" },
            ),
        }),
        Some(stored) if stored == *batch => Ok(()),
        _ => store.put_meta(KEY_GRAPH_BATCH, batch),
    }
}

/// Builds the graphs of every scanned neuron of `store` that has none yet (but those in
/// `dense`), reporting neurons to `progress`; stops after the next committed chunk when `progress` asks.
/// Refuses settings out of range (naming the field) before anything runs, and a batch
/// layout other than the one the stored graphs were built with.
pub fn build_graphs(
    model: &Model,
    store: &Store,
    windows: &Windows,
    settings: &GraphSettings,
    batch: BatchConfig,
    dense: &[(NeuronId, f64)],
    progress: &mut dyn Progress,
) -> Result<GraphReport> {
    let start = Instant::now();
    for check in [settings.validate(), batch.validate()] {
        check.map_err(|e| Error::InvalidRequest(format!("graph settings: {e}")))?;
    }
    match store.meta::<GraphSettings>(KEY_GRAPH_SETTINGS)? {
        Some(stored) if &stored != settings => {
            return Err(Error::Incompatible {
                path: store.path().into(),
                message: format!(
                    "graphs in this index were built with other settings ({stored:?}); use a new --index folder or the original options"
                ),
            })
        }
        Some(_) => {}
        None => store.put_meta(KEY_GRAPH_SETTINGS, settings)?,
    }
    let vocab: Vec<String> = match store.meta(KEY_VOCABULARY)? {
        Some(v) => v,
        None => model.tokenizer().token_strs().to_vec(),
    };
    let (dict, dict_of) = vocabulary_dictionary(&vocab);
    if store.meta::<Vec<String>>(KEY_DICTIONARY)?.is_none() {
        store.put_meta(KEY_DICTIONARY, &dict.strings().to_vec())?;
    }
    let done: std::collections::HashSet<NeuronId> = store.graph_keys()?.into_iter().collect();
    let skip: std::collections::HashSet<NeuronId> = dense.iter().map(|(id, _)| *id).collect();
    let mut scans = store.neuron_scans()?;
    scans.retain(|(id, _)| !skip.contains(id));
    let todo: Vec<_> = scans.iter().filter(|(id, _)| !done.contains(id)).collect();
    if !todo.is_empty() {
        check_or_set_batch(store, &batch, !done.is_empty())?;
    }
    let mut report = GraphReport {
        skipped: scans.len() - todo.len(),
        ..GraphReport::default()
    };
    if todo.is_empty() {
        report.elapsed = start.elapsed();
        return Ok(report);
    }
    let stored_windows: HashMap<u32, Vec<u32>> = store
        .windows()?
        .into_iter()
        .map(|(id, w)| (id, w.ids))
        .collect();
    let first = usize::from(windows.has_bos());
    let ctx = GraphContext {
        model,
        settings,
        batch,
        dict_of: &dict_of,
        vocab: &vocab,
        first,
    };
    let random_ids: Vec<Vec<u32>> = shuffled(windows.len(), settings.seed)
        .into_iter()
        .take(settings.random_windows)
        .map(|w| windows.get(w as u32).ids.to_vec())
        .collect();
    let clock = Instant::now();
    let mut substitutes = Substitutes::new(model, settings.augment)?;
    report.setup += clock.elapsed();
    progress.start(Stage::Graphs, scans.len() as u64, report.skipped as u64);
    let mut layers: Vec<u16> = todo.iter().map(|(id, _)| id.layer).collect();
    layers.dedup();
    let mut eta = DepthEta::new(todo.iter().map(|(id, _)| id.layer));
    'layers: for layer in layers {
        let of_layer: Vec<_> = todo.iter().filter(|(id, _)| id.layer == layer).collect();
        let mut first_chunk_of_layer = true;
        let clock = Instant::now();
        let mut neurons: Vec<usize> = of_layer.iter().map(|(id, _)| id.index as usize).collect();
        neurons.sort_unstable();
        let random = random_sample(model, layer as usize, &random_ids, neurons)?;
        report.setup += clock.elapsed();
        tracing::debug!(
            layer,
            ms = clock.elapsed().as_millis() as u64,
            "random sample"
        );
        for chunk in of_layer.chunks(batch.chunk_neurons.max(1)) {
            let chunk_clock = Instant::now();
            let inputs: Vec<NeuronInput> = chunk
                .iter()
                .map(|(id, scan)| {
                    let examples = scan
                        .examples
                        .iter()
                        .map(|e| {
                            let ids = stored_windows.get(&e.window).cloned().ok_or_else(|| {
                                Error::Store {
                                    path: store.path().into(),
                                    message: format!(
                                        "window {} of neuron {id} is missing",
                                        e.window
                                    ),
                                }
                            })?;
                            Ok(ExampleInput {
                                ids,
                                position: e.position as usize,
                                activation: e.activation,
                                activations: e.activations.clone(),
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok(NeuronInput {
                        id: *id,
                        max: scan.stats.max,
                        examples,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let (graphs, work) =
                ctx.build_chunk(layer as usize, &inputs, &mut substitutes, &random)?;
            store.put_graphs(&graphs)?;
            report.built += graphs.len();
            report.work.requested += work.requested;
            report.work.run += work.run;
            report.work.tokens += work.tokens;
            report.work.sequence_tokens += work.sequence_tokens;
            report.work.passes += work.passes;
            progress.advance(graphs.len() as u64);
            eta.chunk_done(layer, graphs.len(), chunk_clock.elapsed());
            if first_chunk_of_layer {
                first_chunk_of_layer = false;
                if let Some(left) = eta.remaining() {
                    progress.note(&format!(
                        "graphs: layer {layer} at {:.2} s a {}; about {} left (weighted by layer depth)",
                        chunk_clock.elapsed().as_secs_f64() / graphs.len().max(1) as f64,
                        model.units().unit_name(),
                        readable(left)
                    ));
                }
            }
            tracing::info!(layer, built = report.built, "graph chunk committed");
            if progress.should_stop() {
                report.stopped = true;
                break 'layers;
            }
        }
    }
    report.elapsed = start.elapsed();
    progress.finish(Stage::Graphs, report.elapsed);
    Ok(report)
}

/// The activations of `neurons` (sorted) of `layer` on the random windows: the pass
/// computes only their columns of the layer's MLP.
fn random_sample(
    model: &Model,
    layer: usize,
    ids: &[Vec<u32>],
    neurons: Vec<usize>,
) -> Result<RandomSample> {
    let n = neurons.len();
    let mut acts = Vec::with_capacity(ids.len());
    for batch in ids.chunks(16) {
        let a = model.neuron_activations(batch, layer, &neurons)?;
        for (b, seq) in batch.iter().enumerate() {
            let mut v = Vec::with_capacity(seq.len() * n);
            for t in 0..seq.len() {
                v.extend_from_slice(a.at(b, t));
            }
            acts.push(v);
        }
    }
    Ok(RandomSample {
        ids: ids.to_vec(),
        acts,
        neurons,
    })
}

/// Estimates the graph stage's remaining time from the latest chunk, each neuron
/// weighted by `layer + 1` (its passes run up to its layer), so a build of many layers
/// is not promised the speed of its first, shallow ones. (A neuron's cost grows a
/// little faster than its depth over the first layers, so early estimates are low;
/// each layer's first chunk refines it.)
struct DepthEta {
    remaining_cost: u64,
    /// Seconds per cost unit of the latest chunk.
    rate: Option<f64>,
}

impl DepthEta {
    /// An estimate for the neurons of `layers` (one entry a neuron) still to build.
    fn new(layers: impl Iterator<Item = u16>) -> Self {
        DepthEta {
            remaining_cost: layers.map(|l| l as u64 + 1).sum(),
            rate: None,
        }
    }

    /// Records that `neurons` of `layer` took `took`.
    fn chunk_done(&mut self, layer: u16, neurons: usize, took: Duration) {
        let cost = (layer as u64 + 1) * neurons as u64;
        self.remaining_cost = self.remaining_cost.saturating_sub(cost);
        if cost > 0 {
            self.rate = Some(took.as_secs_f64() / cost as f64);
        }
    }

    /// The remaining time at the latest chunk's rate, once something was built.
    fn remaining(&self) -> Option<Duration> {
        self.rate
            .map(|r| Duration::from_secs_f64(r * self.remaining_cost as f64))
    }
}

/// A duration as people read it: `40 s`, `12 min`, `3 h 05 min`.
fn readable(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=99 => format!("{s} s"),
        100..=5999 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod eta_tests {
    use super::*;

    #[test]
    fn remaining_time_weights_neurons_by_depth() {
        // 10 neurons of layer 0 and 10 of layer 9: cost 10 + 100.
        let mut eta = DepthEta::new((0..10).map(|_| 0).chain((0..10).map(|_| 9)));
        assert_eq!(eta.remaining(), None);
        // Layer 0 at 1 s a neuron: layer 9 should take 10 s a neuron, 100 s in all.
        eta.chunk_done(0, 10, Duration::from_secs(10));
        assert_eq!(eta.remaining(), Some(Duration::from_secs(100)));
        // Layer 9 at 20 s a neuron: the rate of the latest chunk counts.
        eta.chunk_done(9, 5, Duration::from_secs(100));
        assert_eq!(eta.remaining(), Some(Duration::from_secs(100)));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(readable(Duration::from_secs(40)), "40 s");
        assert_eq!(readable(Duration::from_secs(720)), "12 min");
        assert_eq!(
            readable(Duration::from_secs(3 * 3600 + 5 * 60 + 9)),
            "3 h 05 min"
        );
    }
}
