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
use crate::model::{LayerPick, Model};
use crate::progress::{Progress, Stage};
use crate::store::{NeuronScan, Store, KEY_VOCABULARY};
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

/// Meta key of [`BatchConfig::band_layers`] (absent: 1, as in stores built before
/// bands).
pub const KEY_GRAPH_BAND: &str = "graph_band";

/// The band of layers a store's graphs are (or will be) built with.
pub fn stored_band(store: &Store) -> Result<Option<usize>> {
    Ok(store.meta::<u32>(KEY_GRAPH_BAND)?.map(|b| b as usize))
}

/// Records the band of layers when the store has none yet (a new build), or checks that
/// it equals the recorded one (1 when the store predates bands but was `started`): the
/// band decides which neurons share a chunk, and so which neurons a shard owns.
pub fn check_or_set_band(store: &Store, batch: &BatchConfig, started: bool) -> Result<()> {
    let stored = match stored_band(store)? {
        Some(b) => b,
        None if started => 1,
        None => return store.put_meta(KEY_GRAPH_BAND, &(batch.band_layers as u32)),
    };
    if stored != batch.band_layers {
        return Err(Error::Incompatible {
            path: store.path().into(),
            message: format!(
                "this index is built with bands of {stored} layer(s) a chunk (now {}); continue with --graph-band {stored}, or use a new index folder",
                batch.band_layers
            ),
        });
    }
    Ok(())
}

/// Records the batch layout of the graph stage, or (when some graphs are stored
/// already: `started`) checks that it equals the recorded one. The layout decides the
/// order of floating-point reductions, so graphs built with another would differ from
/// the stored ones in their last digits.
fn check_or_set_batch(store: &Store, batch: &BatchConfig, started: bool) -> Result<()> {
    check_or_set_band(store, batch, started)?;
    match store.meta::<BatchConfig>(KEY_GRAPH_BATCH)? {
        Some(mut stored) => {
            stored.band_layers = batch.band_layers;
            if started && stored != *batch {
                return Err(Error::Incompatible {
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
                });
            }
            if stored == *batch {
                return Ok(());
            }
            store.put_meta(KEY_GRAPH_BATCH, batch)
        }
        None => store.put_meta(KEY_GRAPH_BATCH, batch),
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
    let slots = layer_slots(&scans);
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
    let mut eta = DepthEta::new(todo.iter().map(|(id, _)| id.layer));
    'bands: for band in bands(&todo, &batch) {
        let clock = Instant::now();
        let mut ids: Vec<NeuronId> = band.iter().flatten().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let random = random_sample(model, &random_ids, ids)?;
        report.setup += clock.elapsed();
        let layers = match (band.first(), band.last()) {
            (Some(f), Some(l)) if f[0].0.layer != l[0].0.layer => {
                format!("layers {}-{}", f[0].0.layer, l[0].0.layer)
            }
            _ => format!("layer {}", band[0][0].0.layer),
        };
        tracing::debug!(
            layers,
            ms = clock.elapsed().as_millis() as u64,
            "random sample"
        );
        let mut first_chunk = true;
        for chunk in band_chunks(&band, batch.chunk_neurons.max(1), &slots) {
            let chunk_clock = Instant::now();
            let inputs: Vec<NeuronInput> = chunk
                .iter()
                .map(|(id, scan)| neuron_input(store, &stored_windows, *id, scan))
                .collect::<Result<Vec<_>>>()?;
            let (graphs, work) = ctx.build_chunk(&inputs, &mut substitutes, &random)?;
            store.put_graphs(&graphs)?;
            report.built += graphs.len();
            report.work.add(&work);
            progress.advance(graphs.len() as u64);
            eta.chunk_done(chunk.iter().map(|(id, _)| id.layer), chunk_clock.elapsed());
            if first_chunk {
                first_chunk = false;
                if let Some(left) = eta.remaining() {
                    progress.note(&format!(
                        "graphs: {layers} at {:.2} s a {}; about {} left (weighted by layer depth)",
                        chunk_clock.elapsed().as_secs_f64() / graphs.len().max(1) as f64,
                        model.units().unit_name(),
                        readable(left)
                    ));
                }
            }
            tracing::info!(layers, built = report.built, "graph chunk committed");
            if progress.should_stop() {
                report.stopped = true;
                break 'bands;
            }
        }
    }
    report.elapsed = start.elapsed();
    progress.finish(Stage::Graphs, report.elapsed);
    Ok(report)
}

/// One neuron still to build, as the store has its scan.
type Todo<'s> = &'s (NeuronId, NeuronScan);

/// The neurons to build, by band of neighbouring layers (see
/// [`BatchConfig::band_layers`]) and within a band by layer (ascending), each layer's
/// neurons in store order.
fn bands<'s>(todo: &[Todo<'s>], batch: &BatchConfig) -> Vec<Vec<Vec<Todo<'s>>>> {
    let mut out: Vec<Vec<Vec<Todo<'s>>>> = Vec::new();
    for &t in todo {
        let layer = t.0.layer as usize;
        let same_band = out
            .last()
            .and_then(|b| b.last())
            .is_some_and(|l| batch.band_of(l[0].0.layer as usize) == batch.band_of(layer));
        if !same_band {
            out.push(Vec::new());
        }
        let band = out.last_mut().expect("pushed");
        match band.last_mut() {
            Some(l) if l[0].0.layer as usize == layer => l.push(t),
            _ => band.push(vec![t]),
        }
    }
    out
}

/// Each scanned neuron's slot: its position among its layer's scanned neurons (`scans`
/// in store order, units the build skips as dense included).
fn layer_slots(scans: &[(NeuronId, NeuronScan)]) -> HashMap<NeuronId, usize> {
    let mut slots = HashMap::with_capacity(scans.len());
    let mut layer = None;
    let mut next = 0;
    for (id, _) in scans {
        if layer != Some(id.layer) {
            (layer, next) = (Some(id.layer), 0);
        }
        slots.insert(*id, next);
        next += 1;
    }
    slots
}

/// The chunks of a band: chunk `c` holds the neurons of slots `c * chunk` to
/// `(c + 1) * chunk` of every layer of the band ([`layer_slots`]), those left to build.
/// Cut by slot rather than by what is left, chunks are the same blocks in a resumed
/// build (a committed chunk is a whole one), in a build that skips dense units, and in
/// every shard of a build ([`crate::Shard`] deals the same blocks).
fn band_chunks<'s>(
    band: &[Vec<Todo<'s>>],
    chunk: usize,
    slots: &HashMap<NeuronId, usize>,
) -> Vec<Vec<Todo<'s>>> {
    let mut chunks: std::collections::BTreeMap<usize, Vec<Todo<'s>>> = Default::default();
    for &t in band.iter().flatten() {
        let slot = slots.get(&t.0).copied().unwrap_or_default();
        chunks.entry(slot / chunk).or_default().push(t);
    }
    chunks.into_values().collect()
}

/// A neuron's graph-stage input: its top examples with their stored windows.
fn neuron_input(
    store: &Store,
    windows: &HashMap<u32, Vec<u32>>,
    id: NeuronId,
    scan: &NeuronScan,
) -> Result<NeuronInput> {
    let examples = scan
        .examples
        .iter()
        .map(|e| {
            let ids = windows
                .get(&e.window)
                .cloned()
                .ok_or_else(|| Error::Store {
                    path: store.path().into(),
                    message: format!("window {} of neuron {id} is missing", e.window),
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
        id,
        max: scan.stats.max,
        examples,
    })
}

/// The activations of `neurons` (sorted; of one layer or of a band) on the random
/// windows: one pass to the deepest of their layers, computing only the deepest layer's
/// neurons' columns of its MLP.
fn random_sample(model: &Model, ids: &[Vec<u32>], neurons: Vec<NeuronId>) -> Result<RandomSample> {
    let mut by_layer: Vec<(usize, Vec<usize>)> = Vec::new();
    for id in &neurons {
        match by_layer.last_mut() {
            Some((l, n)) if *l == id.layer as usize => n.push(id.index as usize),
            _ => by_layer.push((id.layer as usize, vec![id.index as usize])),
        }
    }
    let picks: Vec<LayerPick> = by_layer.iter().map(|(l, n)| (*l, n.as_slice())).collect();
    let mut acts = Vec::with_capacity(ids.len());
    for batch in ids.chunks(16) {
        let a = model.picked_activations(batch, &picks)?;
        for (b, seq) in batch.iter().enumerate() {
            let mut v = Vec::with_capacity(seq.len() * neurons.len());
            for t in 0..seq.len() {
                for layer in &a {
                    v.extend_from_slice(layer.at(b, t));
                }
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

    /// Records that a chunk of neurons of `layers` (one entry a neuron) took `took`.
    fn chunk_done(&mut self, layers: impl Iterator<Item = u16>, took: Duration) {
        let cost: u64 = layers.map(|l| l as u64 + 1).sum();
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
        eta.chunk_done([0; 10].into_iter(), Duration::from_secs(10));
        assert_eq!(eta.remaining(), Some(Duration::from_secs(100)));
        // Layer 9 at 20 s a neuron: the rate of the latest chunk counts.
        eta.chunk_done([9; 5].into_iter(), Duration::from_secs(100));
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
