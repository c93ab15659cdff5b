//! Building an index: scan the corpus, build a graph per neuron, index the graphs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::corpus::{tokenize_windows, Corpus, CorpusFormat, CorpusSpec, DEFAULT_CORPUS_PATH};
use crate::error::{Error, Result};
use crate::model::{model_sha256, LoadOptions, Model, UnitSet, DEFAULT_MODEL_PATH};
use crate::n2g::{
    build_graphs, check_count, check_or_set_band, stored_band, BatchConfig, GraphReport,
    GraphSettings, InvalidSetting,
};
use crate::progress::{Progress, Stage};
use crate::scan::{parse_selection, run_scan, ScanOptions, ScanReport};
use crate::shard::Shard;
use crate::store::{
    CorpusRecord, ModelRecord, RunMeta, ScanSettings, Store, FORMAT_VERSION, KEY_VOCABULARY,
};

/// The layers `build` indexes by default.
pub const DEFAULT_LAYERS: &str = "0-2";

/// What to build and how. Start from [`BuildOptions::new`] and set the fields that
/// differ; [`BuildOptions::validate`] (called by [`crate::Index::build`]) refuses values
/// that cannot work, naming the field.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BuildOptions {
    /// The index folder (resumed when it holds an unfinished build).
    pub index: PathBuf,
    /// A GGUF file or a Hugging Face folder; `None`: the default model.
    pub model: Option<PathBuf>,
    /// How to load the model.
    pub load: LoadOptions,
    /// Corpus files or folders; empty: the default corpus.
    pub corpus: Vec<PathBuf>,
    /// How to read the corpus files.
    pub format: CorpusFormat,
    /// The JSON field holding the text in `.jsonl` files.
    pub text_field: String,
    /// Skip (and count) bad `.jsonl` lines instead of stopping.
    pub skip_bad_lines: bool,
    /// Layers: numbers and ranges (`0-2`, `5`, `0,5`, `all`); `None`: [`DEFAULT_LAYERS`]
    /// for MLP neurons, the hook's layer for SAE latents.
    pub layers: Option<String>,
    /// Neurons in every selected layer: numbers and ranges, or `all`.
    pub neurons: String,
    /// Examples kept per neuron.
    pub top_k: usize,
    /// Tokens per window (BOS not counted).
    pub window: usize,
    /// Windows per forward batch of the scan.
    pub batch_size: usize,
    /// Scan batches between checkpoints.
    pub checkpoint_every: usize,
    /// Prepend BOS to windows.
    pub bos: bool,
    /// The graph stage's settings (its `mask_token` is replaced by [`Self::mask_token`]
    /// or the model's default).
    pub graph: GraphSettings,
    /// The token id that masks context; `None`: the model's pad token, else EOS.
    pub mask_token: Option<u32>,
    /// How the graph stage batches its forward passes.
    pub batch: BatchConfig,
    /// Stop after the scan.
    pub scan_only: bool,
    /// Stop the scan after this many batches of this run (testing resumption).
    pub max_batches: Option<usize>,
    /// Build into a non-empty folder that is not an index (its files are kept).
    pub force: bool,
    /// Build no graph for units firing on more than this share of the corpus's tokens
    /// (dense SAE latents, a known bad fit); `None`: build every graph.
    pub max_density: Option<f64>,
    /// Build only this shard of the selected neurons (its `block` must be the graph
    /// stage's `batch.chunk_neurons`); the shards are joined by [`crate::Index::merge`].
    pub shard: Option<Shard>,
    /// Continue an index with the band of layers it was started with
    /// (`batch.band_layers` then applies to new indexes only); `false` refuses an index
    /// started with another band.
    pub keep_index_band: bool,
}

impl BuildOptions {
    /// The defaults of `n2g-index build` into `index`: the default model and corpus,
    /// layers 0–2, every neuron, 20 examples (+10 training-only windows), windows of 64
    /// tokens with BOS.
    pub fn new(index: impl Into<PathBuf>) -> Self {
        BuildOptions {
            index: index.into(),
            model: None,
            load: LoadOptions::default(),
            corpus: Vec::new(),
            format: CorpusFormat::Auto,
            text_field: "text".into(),
            skip_bad_lines: false,
            layers: None,
            neurons: "all".into(),
            top_k: 20,
            window: 64,
            batch_size: 16,
            checkpoint_every: 200,
            bos: true,
            graph: GraphSettings::default(),
            mask_token: None,
            batch: BatchConfig::default(),
            scan_only: false,
            max_batches: None,
            force: false,
            max_density: None,
            shard: None,
            keep_index_band: true,
        }
    }

    /// Refuses option values that cannot work (out of range, NaN, infinite), naming
    /// the field as this struct, [`GraphSettings`] or [`BatchConfig`] names it.
    pub fn validate(&self) -> Result<()> {
        let invalid = |e: InvalidSetting| Error::InvalidOption {
            field: e.field,
            message: e.message,
        };
        check_count("window", self.window, 1, 1 << 16).map_err(invalid)?;
        check_count("top_k", self.top_k, 1, 1 << 16).map_err(invalid)?;
        self.graph.validate().map_err(invalid)?;
        self.batch.validate().map_err(invalid)?;
        let scan = ScanOptions {
            top_k: self.top_k + self.graph.extra_train,
            batch_size: self.batch_size,
            checkpoint_every: self.checkpoint_every,
            ..ScanOptions::new(Vec::new(), Vec::new(), 1)
        };
        scan.validate().map_err(invalid)?;
        if let Some(d) = self.max_density.filter(|d| !(0.0..=1.0).contains(d)) {
            return Err(Error::InvalidOption {
                field: "max_density",
                message: format!("{d}: a share of tokens, from 0 to 1"),
            });
        }
        match &self.shard {
            Some(s) if s.block as usize != self.batch.chunk_neurons => Err(Error::InvalidOption {
                field: "shard",
                message: format!(
                    "{s}: blocks of {} neurons, but the graph stage's chunks are {} neurons: cut the shards in blocks of the chunk",
                    s.block, self.batch.chunk_neurons
                ),
            }),
            Some(s) if s.index >= s.count => Err(Error::InvalidOption {
                field: "shard",
                message: format!("{s}: shards are numbered from 0 to {}", s.count - 1),
            }),
            _ => Ok(()),
        }
    }

    fn model_path(&self) -> Result<PathBuf> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => default_model_path(),
        }
    }

    fn corpus_paths(&self) -> Result<Vec<PathBuf>> {
        if self.corpus.is_empty() {
            Ok(vec![default_corpus_path()?])
        } else {
            Ok(self.corpus.clone())
        }
    }
}

/// What a build did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BuildReport {
    /// What the index is: model, corpus, scan settings.
    pub run: RunMeta,
    /// The units it holds.
    pub units: UnitSet,
    /// The graph stage's band of layers (decides a shard's neurons).
    pub band: usize,
    /// Windows and tokens of the corpus.
    pub windows: usize,
    /// Tokens of the corpus's windows (BOS included).
    pub tokens: u64,
    /// The scan of this run.
    pub scan: ScanReport,
    /// The graph stage of this run (absent when it did not run).
    pub graphs: Option<GraphReport>,
    /// Neurons in the search index, and the time it took (absent when not built).
    pub search: Option<(usize, Duration)>,
}

impl BuildReport {
    /// Whether the index is complete: scanned, every graph built, searchable (or the
    /// scan complete when only the scan was asked for).
    pub fn complete(&self) -> bool {
        self.scan.complete && self.graphs.as_ref().is_none_or(|g| !g.stopped)
    }
}

/// Where the default model is: `data/models/...` under `$N2G_DATA` when set, else in
/// the current folder or one above it (a notebook in a subfolder of the repository), or
/// beside the executable's repository.
pub fn default_model_path() -> Result<PathBuf> {
    default_data_path(DEFAULT_MODEL_PATH, "default model")
}

/// Where the default corpus is (see [`default_model_path`]).
pub fn default_corpus_path() -> Result<PathBuf> {
    default_data_path(DEFAULT_CORPUS_PATH, "default corpus")
}

/// Where a default input fetched by `scripts/setup` is: `rel` (which starts with
/// `data/`) under `$N2G_DATA` when set, else in the current folder or one above it, or
/// beside the executable's repository; an error naming `scripts/setup` when it is
/// nowhere.
fn default_data_path(rel: &str, what: &'static str) -> Result<PathBuf> {
    let rel = PathBuf::from(rel);
    let in_data = rel.strip_prefix("data").unwrap_or(&rel).to_path_buf();
    let candidates: Vec<PathBuf> = match std::env::var_os("N2G_DATA") {
        Some(dir) => vec![PathBuf::from(dir).join(&in_data)],
        None => {
            let mut c = vec![rel.clone()];
            if let Ok(cwd) = std::env::current_dir() {
                c.extend(cwd.ancestors().skip(1).map(|a| a.join(&rel)));
            }
            if let Ok(exe) = std::env::current_exe() {
                c.extend(exe.ancestors().skip(1).map(|a| a.join(&rel)));
            }
            c
        }
    };
    let first = candidates[0].clone();
    candidates
        .into_iter()
        .find(|p| p.exists())
        .ok_or(Error::MissingDefault { what, path: first })
}

/// The layers a build reads: `spec` (default [`DEFAULT_LAYERS`]) for MLP neurons; for
/// SAE latents, the SAE's hook layer, which `spec` may name but not contradict.
fn unit_layers(
    spec: Option<&str>,
    info: &crate::model::ModelInfo,
    units: &UnitSet,
) -> Result<Vec<usize>> {
    let Some(layer) = units.only_layer() else {
        return parse_selection(spec.unwrap_or(DEFAULT_LAYERS), info.n_layers, "layers");
    };
    match spec {
        None => Ok(vec![layer]),
        Some(spec) if parse_selection(spec, info.n_layers, "layers")? == [layer] => Ok(vec![layer]),
        Some(spec) => Err(Error::InvalidOption {
            field: "layers",
            message: format!(
                "`{spec}`: the SAE's latents are read at {} only (leave --layers out)",
                units.hook
            ),
        }),
    }
}

/// Runs (or resumes) a build; see [`crate::Index::build`].
pub(crate) fn build(options: &BuildOptions, progress: &mut dyn Progress) -> Result<BuildReport> {
    options.validate()?;
    // The folder is checked (and its writer lock taken) before the slow loads.
    let store = Store::open_for_build(&options.index, options.force)?;
    let mut batch = options.batch;
    if options.keep_index_band {
        if let Some(band) = stored_band(&store)? {
            batch.band_layers = band;
        } else if store.run_meta()?.is_some() {
            // Started before bands were recorded: each layer alone.
            batch.band_layers = 1;
        }
    }
    let model_path = options.model_path()?;
    let corpus_paths = options.corpus_paths()?;
    let model = Model::load(&model_path, &options.load)?;
    let info = model.info().clone();
    let units = model.units();
    let layers = unit_layers(options.layers.as_deref(), &info, &units)?;
    let neurons = parse_selection(&options.neurons, units.per_layer, "neurons")?;
    let spec = CorpusSpec {
        paths: corpus_paths.clone(),
        format: options.format,
        text_field: options.text_field.clone(),
        skip_bad_lines: options.skip_bad_lines,
    };
    let corpus = Corpus::read(&spec)?;
    let windows = tokenize_windows(&corpus, model.tokenizer(), options.window, options.bos)?;
    let run = RunMeta {
        format_version: FORMAT_VERSION,
        model: ModelRecord {
            name: info.name.clone(),
            path: model_path.display().to_string(),
            sha256: model_sha256(&model_path)?,
            architecture: info.architecture,
            n_layers: info.n_layers as u32,
            n_neurons: info.n_neurons as u32,
            bos_id: if windows.has_bos() { info.bos_id } else { None },
        },
        corpus: CorpusRecord {
            paths: corpus_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            files: corpus
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            fingerprint: corpus.fingerprint.clone(),
            documents: corpus.documents.len() as u64,
            bytes: corpus.bytes,
            invalid_utf8: corpus.invalid_utf8,
            skipped_lines: corpus.skipped_lines,
        },
        scan: ScanSettings {
            layers: layers.iter().map(|&l| l as u32).collect(),
            neurons: neurons.iter().map(|&n| n as u32).collect(),
            // The top-k (split into train and held-out) and the windows after it that
            // only train.
            top_k: (options.top_k + options.graph.extra_train) as u32,
            extra_train: options.graph.extra_train as u32,
            window: options.window as u32,
            batch_size: options.batch_size as u32,
            bos: windows.has_bos(),
            literal_special: model.tokenizer().literal_special(),
            shard: options.shard,
        },
    };
    if run.scan.neuron_count(batch.band_layers) == 0 {
        return Err(Error::InvalidOption {
            field: "shard",
            message: format!(
                "shard {} has no neurons: {} layers × {} neurons in blocks of {} make fewer blocks than shards; use fewer shards",
                options.shard.map(|s| s.to_string()).unwrap_or_default(),
                run.scan.layers.len(),
                run.scan.neurons.len(),
                options.batch.chunk_neurons
            ),
        });
    }
    let had_run = store.run_meta()?.is_some();
    store.check_or_set_units(&run, &units)?;
    store.check_or_set_run(&run)?;
    // The band decides a shard's neurons, so a shard checks it before its scan; an
    // unsharded index records it now and checks it when graphs remain to build.
    if !had_run || options.shard.is_some() {
        check_or_set_band(&store, &batch, had_run)?;
    }
    if store.meta::<Vec<String>>(KEY_VOCABULARY)?.is_none() {
        store.put_meta(KEY_VOCABULARY, &model.tokenizer().token_strs())?;
    }
    let done = store.scan_progress()?;
    progress.note(&format!(
        "model {} · corpus {} documents, {} windows, {} tokens · layers {} · {} {}s per layer",
        info.name,
        corpus.documents.len(),
        windows.len(),
        windows.total_tokens(),
        run.scan.layer_list(),
        neurons.len(),
        units.unit_name()
    ));
    if units.sae.is_some() {
        progress.note(&format!("units: {}", units.describe()));
    }
    if done.batches_done > 0 && !done.complete {
        progress.note(&format!(
            "resuming the scan at batch {}/{} ({} tokens already done)",
            done.batches_done, done.batches_total, done.tokens_done
        ));
    }
    let scan_options = ScanOptions {
        layers,
        neurons,
        top_k: run.scan.top_k as usize,
        batch_size: options.batch_size,
        checkpoint_every: options.checkpoint_every,
        max_batches: options.max_batches,
        shard: options.shard,
        band: batch.band_layers,
    };
    let scan = run_scan(&model, &windows, &store, &scan_options, progress)?;
    let mut report = BuildReport {
        run,
        units: units.clone(),
        band: batch.band_layers,
        windows: windows.len(),
        tokens: windows.total_tokens(),
        scan,
        graphs: None,
        search: None,
    };
    if !report.scan.complete || options.scan_only {
        return Ok(report);
    }
    let settings = GraphSettings {
        mask_token: options.mask_token.unwrap_or_else(|| model.mask_token()),
        ..options.graph.clone()
    };
    let dense = crate::n2g::dense_units(&store, options.max_density)?;
    if !dense.is_empty() {
        progress.note(&format!(
            "skipping the graphs of {} {}s firing on more than {} of the tokens (--max-density): {}",
            dense.len(),
            units.unit_name(),
            options.max_density.unwrap_or(1.0),
            crate::n2g::list_some(&dense, 12)
        ));
    }
    let graphs = build_graphs(&model, &store, &windows, &settings, batch, &dense, progress)?;
    let stopped = graphs.stopped;
    report.graphs = Some(graphs);
    if stopped {
        return Ok(report);
    }
    let clock = Instant::now();
    progress.start(Stage::Search, 0, 0);
    let indexed = crate::search::reindex(&store, &options.index)?;
    progress.finish(Stage::Search, clock.elapsed());
    report.search = Some((indexed, clock.elapsed()));
    Ok(report)
}
