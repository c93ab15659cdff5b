//! The library's face: an [`Index`] is built with [`Index::build`], opened with
//! [`Index::open`], and answers queries, similarity, neuron views, exports and its own
//! description as the view types of [`crate::view`]. The CLI, the web server and the
//! Python package are thin layers over these calls.

mod build;
mod merge;
mod views;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use build::{
    default_corpus_path, default_model_path, BuildOptions, BuildReport, DEFAULT_LAYERS,
};
pub use merge::MergeReport;

use crate::error::{Error, Result};
use crate::model::{Model, UnitSet};
use crate::n2g::{normalize, DenseSkip, GraphSettings, NeuronGraph, TokenDictionary};
use crate::progress::Progress;
use crate::search::SearchIndex;
use crate::store::{RunMeta, Store, KEY_VOCABULARY};
use crate::view::{CheckView, Hit, InfoView, NeuronView, PredictView, SimilarHit, SimilarPair};
use crate::NeuronId;

/// What reading an index's graphs needs besides the graphs: the token dictionary their
/// ids index, and the settings they were built with (for the train/held-out split).
pub(crate) struct GraphMeta {
    /// The token dictionary.
    pub dict: TokenDictionary,
    /// The graph stage's settings.
    pub settings: GraphSettings,
}

/// An index folder opened for reading: its store (scan results, graphs) and, once
/// built, its search index.
pub struct Index {
    dir: PathBuf,
    store: Store,
    run: RunMeta,
    units: UnitSet,
    dense: Option<DenseSkip>,
    vocabulary: Vec<String>,
    graph_meta: Option<GraphMeta>,
    /// The graph stage's band of layers (decides a shard's neurons).
    band: usize,
    /// The search index with the generation name it was opened at.
    search: Mutex<Option<(String, Arc<SearchIndex>)>>,
}

impl Index {
    /// Builds (or resumes) an index as `options` say, reporting to `progress`, and opens
    /// it. A build stopped early (by `progress` or `max_batches`) still returns the
    /// index; [`BuildReport::complete`] says whether it is whole, and the same call
    /// resumes it.
    pub fn build(
        options: &BuildOptions,
        progress: &mut dyn Progress,
    ) -> Result<(Index, BuildReport)> {
        let report = build::build(options, progress)?;
        let index = Index::open(&options.index)?;
        Ok((index, report))
    }

    /// Joins the finished indexes `shards` (the shards of one sharded build, or builds
    /// of disjoint layer / neuron slices) into the index folder `into`, after checking
    /// that they share the model, corpus and settings, do not overlap and leave no
    /// neuron of their layers × neurons out (each named when they do); builds the
    /// search index once over the union. The result equals one build of the union.
    /// Running it again over a finished or killed merge writes the same index.
    pub fn merge(
        shards: &[PathBuf],
        into: &Path,
        progress: &mut dyn Progress,
    ) -> Result<(Index, MergeReport)> {
        let report = merge::merge(shards, into, progress)?;
        Ok((Index::open(into)?, report))
    }

    /// Rebuilds the search index of the index folder `dir` from its stored graphs, into
    /// a new generation that readers switch to atomically. Returns the neurons indexed.
    pub fn reindex(dir: &Path) -> Result<usize> {
        crate::search::reindex_folder(dir)
    }

    /// Opens the index folder `dir`.
    pub fn open(dir: &Path) -> Result<Index> {
        let store = Store::open(dir)?;
        let run = store.run_meta()?.ok_or_else(|| Error::Store {
            path: store.path().into(),
            message: "no build recorded in this index yet".into(),
        })?;
        let vocabulary: Vec<String> = store.meta(KEY_VOCABULARY)?.ok_or_else(|| Error::Store {
            path: store.path().into(),
            message: "the index has no vocabulary recorded".into(),
        })?;
        let graph_meta = load_graph_meta(&store)?;
        let band = crate::n2g::stored_band(&store)?.unwrap_or(1);
        let units = store.units(&run)?;
        let dense = store
            .meta::<DenseSkip>(crate::n2g::KEY_DENSE_SKIPPED)?
            .filter(|d| !d.units.is_empty());
        Ok(Index {
            dir: dir.to_path_buf(),
            store,
            run,
            units,
            dense,
            vocabulary,
            graph_meta,
            band,
            search: Mutex::new(None),
        })
    }

    /// The index folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the index was built from: model, corpus, scan settings.
    pub fn run(&self) -> &RunMeta {
        &self.run
    }

    /// The units the index holds: MLP neurons, or the latents of an SAE (which, at which
    /// hook, with its SHA-256).
    pub fn units(&self) -> &UnitSet {
        &self.units
    }

    /// The units whose graphs the build skipped as dense (`--max-density`), if any.
    pub fn dense(&self) -> Option<&DenseSkip> {
        self.dense.as_ref()
    }

    /// The model's token strings, by id.
    pub fn vocabulary(&self) -> &[String] {
        &self.vocabulary
    }

    /// How many neurons the index covers.
    pub fn neuron_count(&self) -> usize {
        self.run.scan.neuron_count(self.band)
    }

    /// The graph stage's settings, once it has started.
    pub fn graph_settings(&self) -> Option<&GraphSettings> {
        self.graph_meta.as_ref().map(|m| &m.settings)
    }

    /// Checks that `neuron` is one the index covers, or says which it covers.
    pub fn check_neuron(&self, neuron: NeuronId) -> Result<()> {
        let scan = &self.run.scan;
        if scan.covers(neuron, self.band) {
            Ok(())
        } else {
            Err(Error::UnknownNeuron {
                neuron,
                covered: match &scan.shard {
                    None => format!(
                        "layers {:?}, {} neurons per layer",
                        scan.layers,
                        scan.neurons.len()
                    ),
                    Some(shard) => format!(
                        "shard {shard} of layers {:?} × {} neurons: {} neurons",
                        scan.layers,
                        scan.neurons.len(),
                        scan.neuron_count(self.band)
                    ),
                },
            })
        }
    }

    /// Everything the index knows of `neuron`, with its first `examples` top examples
    /// (all kept ones when `None`).
    pub fn neuron(&self, neuron: NeuronId, examples: Option<usize>) -> Result<NeuronView> {
        self.check_neuron(neuron)?;
        let scan = self
            .store
            .neuron_scan(neuron)?
            .ok_or_else(|| Error::UnknownNeuron {
                neuron,
                covered: "the scan has not reached it yet".into(),
            })?;
        let graph: Option<NeuronGraph> = self.store.graph(neuron)?;
        let shown = examples.unwrap_or(scan.examples.len());
        views::neuron_view(self, neuron, &scan, graph.as_ref(), shown)
    }

    /// The graph of `neuron` and the dictionary its token ids index (for drawing it),
    /// or `None` before the graph stage has reached it.
    pub fn graph(&self, neuron: NeuronId) -> Result<Option<(NeuronGraph, &TokenDictionary)>> {
        self.check_neuron(neuron)?;
        let Some(meta) = &self.graph_meta else {
            return Ok(None);
        };
        Ok(self.store.graph(neuron)?.map(|g| (g, &meta.dict)))
    }

    /// The graph of `neuron` as an SVG picture ([`crate::render::svg::graph_svg`], titled
    /// `neuron L:N`, quiet patterns marked at the build's firing threshold), or `None`
    /// before the graph stage has reached it.
    pub fn graph_svg(&self, neuron: NeuronId) -> Result<Option<String>> {
        let fire = self.graph_settings().map_or(0.5, |s| s.fire_threshold);
        Ok(self.graph(neuron)?.map(|(g, dict)| {
            crate::render::svg::graph_svg(&g.graph, dict, fire, &format!("neuron {neuron}"))
        }))
    }

    /// Every scanned neuron's view in id order, with all its examples when `examples`,
    /// handed to `each` one at a time (memory stays one neuron's).
    pub fn export(
        &self,
        examples: bool,
        mut each: impl FnMut(NeuronView) -> Result<()>,
    ) -> Result<()> {
        let graphs: std::collections::HashMap<NeuronId, NeuronGraph> =
            self.store.graphs()?.into_iter().collect();
        for (id, scan) in self.store.neuron_scans()? {
            let shown = if examples { scan.examples.len() } else { 0 };
            each(views::neuron_view(self, id, &scan, graphs.get(&id), shown)?)?;
        }
        Ok(())
    }

    /// What the index holds: model, corpus, scan, size, graph settings, per-layer
    /// evaluation.
    pub fn info(&self) -> Result<InfoView> {
        views::info_view(self)
    }

    /// Reads the whole index and checks every checksum of the store and of the search
    /// index; once the scan is complete, also that every scanned neuron has its record.
    pub fn check(&self) -> Result<CheckView> {
        let progress = self.store.scan_progress()?;
        let counts = self.store.verify()?;
        let found = counts.iter().find(|c| c.0 == "neurons").map_or(0, |c| c.1);
        let expected = self.run.scan.neuron_count(self.band) as u64;
        if progress.complete && found != expected {
            return Err(Error::Store {
                path: self.store.path().into(),
                message: format!(
                    "the store is damaged: {found} neuron records where the completed scan wrote {expected}; build the index again into a new folder"
                ),
            });
        }
        let dir = crate::search::search_dir(&self.dir);
        let search = if dir.join("CURRENT").exists() {
            Some(SearchIndex::open(&dir)?.verify()?)
        } else {
            None
        };
        Ok(CheckView {
            store: counts
                .into_iter()
                .map(|(t, n)| (t.to_string(), n))
                .collect(),
            search,
        })
    }

    /// The search index, opened on first use and opened again when a reindex has
    /// switched the live generation (the search folder's `CURRENT` names it), so that a
    /// long-lived reader sees each generation whole. Calls in flight keep the generation
    /// they started with.
    fn search(&self) -> Result<Arc<SearchIndex>> {
        let dir = crate::search::search_dir(&self.dir);
        let live = std::fs::read_to_string(dir.join("CURRENT")).unwrap_or_default();
        let mut slot = self.search.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((generation, s)) = slot.as_ref() {
            if *generation == live {
                return Ok(s.clone());
            }
        }
        let opened = Arc::new(SearchIndex::open(&dir)?);
        *slot = Some((live, opened.clone()));
        Ok(opened)
    }

    /// The neurons whose graphs match `query` (grammar: `schema/QUERY.md`), best first,
    /// at most `limit`.
    pub fn query(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        let expr = crate::search::parse(query).map_err(crate::search::SearchError::from)?;
        Ok(self.search()?.query_expr(&expr, limit)?)
    }

    /// The `top` neurons whose token sets overlap most with `neuron`'s, each with its
    /// relation (similar / subset / superset at `threshold`, else overlap).
    pub fn similar(&self, neuron: NeuronId, top: usize, threshold: f64) -> Result<Vec<SimilarHit>> {
        self.check_neuron(neuron)?;
        Ok(self.search()?.similar_with(neuron, top, threshold)?)
    }

    /// Every similar and subset pair of the index at `threshold`.
    pub fn similar_all(&self, threshold: f64) -> Result<Vec<SimilarPair>> {
        Ok(self.search()?.similar_all(threshold)?)
    }

    /// What the graph of `neuron` predicts on `text`, beside the neuron's real
    /// activations from `model` (which must be the model the index was built with):
    /// one value per token, BOS included as token 0 when the index's windows start
    /// with it.
    pub fn predict(&self, model: &Model, neuron: NeuronId, text: &str) -> Result<PredictView> {
        self.check_neuron(neuron)?;
        self.check_model(model)?;
        let Some((graph, dict)) = self.graph(neuron)? else {
            let skipped = self.dense().and_then(|d| d.reason(neuron));
            return Err(Error::InvalidRequest(if let Some(why) = skipped {
                format!("{neuron} has no graph: {why}")
            } else {
                format!("neuron {neuron} has no graph yet: the build has not reached it")
            }));
        };
        let max = self.store.neuron_scan(neuron)?.map_or(0.0, |s| s.stats.max);
        // Special tokens in the text are read as the index's windows read them.
        let literal = self.run.scan.literal_special;
        let tokenized = if model.tokenizer().literal_special() == literal {
            model.tokenizer().encode(text, self.run.scan.bos)?
        } else {
            let tokenizer = model.tokenizer().clone().with_literal_special(literal);
            tokenizer.encode(text, self.run.scan.bos)?
        };
        if tokenized.ids.is_empty() {
            return Err(Error::InvalidRequest("the text has no tokens".into()));
        }
        let acts = model.neuron_activations(
            std::slice::from_ref(&tokenized.ids),
            neuron.layer as usize,
            &[neuron.index as usize],
        )?;
        let activations: Vec<f32> = (0..tokenized.ids.len()).map(|t| acts.at(0, t)[0]).collect();
        let dict_ids: Vec<Option<u32>> = tokenized
            .ids
            .iter()
            .map(|&id| {
                let token = self.vocabulary.get(id as usize).map_or("", String::as_str);
                Some(dict.get(&normalize(token)).unwrap_or(u32::MAX))
            })
            .collect();
        let mut predicted = graph.graph.predict_all(&dict_ids);
        let first = usize::from(tokenized.bos);
        predicted[..first].fill(0.0);
        let normalized = activations
            .iter()
            .enumerate()
            .map(|(t, &a)| {
                if t < first || max <= 0.0 {
                    0.0
                } else {
                    a / max
                }
            })
            .collect();
        Ok(PredictView {
            neuron: neuron.to_string(),
            bos: tokenized.bos,
            tokens: tokenized
                .ids
                .iter()
                .map(|&id| model.tokenizer().token_str(id).to_string())
                .collect(),
            ids: tokenized.ids,
            activations,
            normalized,
            predicted,
        })
    }

    /// Refuses a model other than the one the index was built with (another shape or
    /// another vocabulary).
    pub fn check_model(&self, model: &Model) -> Result<()> {
        let info = model.info();
        let run = &self.run.model;
        let same = info.n_layers == run.n_layers as usize
            && info.n_neurons == run.n_neurons as usize
            && model.tokenizer().token_strs() == self.vocabulary.as_slice();
        let units = model.units();
        if same && !units.same_units(&self.units) {
            return Err(Error::InvalidRequest(format!(
                "this index holds {}, but the model reads {}: give the index's SAE (--sae) or none",
                self.units.describe(),
                units.describe()
            )));
        }
        if same {
            Ok(())
        } else {
            Err(Error::InvalidRequest(format!(
                "the model {} is not the one this index was built with ({}, {} layers × {} neurons)",
                info.name, run.name, run.n_layers, run.n_neurons
            )))
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn graph_meta(&self) -> Option<&GraphMeta> {
        self.graph_meta.as_ref()
    }
}

/// The [`GraphMeta`] of a store whose graph stage has started, else `None`.
fn load_graph_meta(store: &Store) -> Result<Option<GraphMeta>> {
    let strings: Option<Vec<String>> = store.meta(crate::n2g::KEY_DICTIONARY)?;
    let settings: Option<GraphSettings> = store.meta(crate::n2g::KEY_GRAPH_SETTINGS)?;
    Ok(match (strings, settings) {
        (Some(strings), Some(settings)) => Some(GraphMeta {
            dict: TokenDictionary::from_strings(strings),
            settings,
        }),
        _ => None,
    })
}

/// The activations of `neurons` (units: every MLP neuron of the layer, or every SAE
/// latent, when `None`) of `layer` on each token of `text`, straight from `model`; BOS
/// is prepended when `bos`. `layer` may be left out for SAE latents (their hook's layer).
pub fn text_activations(
    model: &crate::Model,
    text: &str,
    layer: Option<usize>,
    neurons: Option<&str>,
    bos: bool,
) -> Result<crate::view::ActivationsView> {
    let info = model.info();
    let units = model.units();
    let layer = match (layer, units.only_layer()) {
        (Some(l), Some(hook)) if l != hook => {
            return Err(Error::InvalidOption {
                field: "layer",
                message: format!("{l}: the SAE's latents are read at {} only", units.hook),
            })
        }
        (Some(l), _) => l,
        (None, Some(hook)) => hook,
        (None, None) => {
            return Err(Error::InvalidOption {
                field: "layer",
                message: "is needed: which layer's MLP neurons to read".into(),
            })
        }
    };
    if layer >= info.n_layers {
        return Err(Error::InvalidOption {
            field: "layer",
            message: format!("{layer}: the model has layers 0..={}", info.n_layers - 1),
        });
    }
    let neurons = match neurons {
        Some(spec) => crate::scan::parse_selection(spec, units.per_layer, "neurons")?,
        None => (0..units.per_layer).collect(),
    };
    let tokenized = model.tokenizer().encode(text, bos)?;
    if tokenized.ids.is_empty() {
        return Err(Error::InvalidRequest("the text has no tokens".into()));
    }
    let batch = std::slice::from_ref(&tokenized.ids);
    let activations = if units.sae.is_some() {
        let acts = model.neuron_activations(batch, layer, &neurons)?;
        (0..tokenized.ids.len())
            .map(|t| acts.at(0, t).to_vec())
            .collect()
    } else {
        // The whole layer, as the scan computes it (a selection computed alone differs
        // in the last float32 digits).
        let acts = &model.activations(batch, &[layer])?[0];
        (0..tokenized.ids.len())
            .map(|t| neurons.iter().map(|&n| acts.at(0, t)[n]).collect())
            .collect()
    };
    Ok(crate::view::ActivationsView {
        model: info.name.clone(),
        units: units.clone(),
        layer,
        bos: tokenized.bos,
        tokens: tokenized
            .ids
            .iter()
            .map(|&id| model.tokenizer().token_str(id).to_string())
            .collect(),
        ids: tokenized.ids,
        neurons,
        activations,
    })
}
