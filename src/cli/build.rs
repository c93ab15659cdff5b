//! `n2g-index build`: scan a corpus and build graphs into an index folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ModelArgs;
use crate::corpus::{tokenize_windows, Corpus, CorpusFormat, CorpusSpec, DEFAULT_CORPUS_PATH};
use crate::model::model_sha256;
use crate::n2g::{build_graphs, BatchConfig, EndActivation, GraphSettings};
use crate::scan::{parse_selection, run_scan, ScanOptions};
use crate::store::{CorpusRecord, ModelRecord, RunMeta, ScanSettings, Store, FORMAT_VERSION};

/// What an END node keeps (see `EndActivation`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum EndChoice {
    /// Mean over the lines ending there (default).
    Mean,
    /// Maximum.
    Max,
    /// The first line's (the authors' code).
    First,
}

/// The default layers of `build` (chosen to finish within the 10-minute budget on a
/// 2-core machine with the default model and corpus).
pub const DEFAULT_LAYERS: &str = "0-2";

/// Arguments of `n2g-index build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Corpus files or folders (default: the fortunes fetched by scripts/setup).
    #[arg(long, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// How to read the corpus files.
    #[arg(long, value_enum, default_value_t = CorpusFormat::Auto)]
    pub format: CorpusFormat,
    /// JSON field holding the text in .jsonl files.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Skip (and count) .jsonl lines that are not JSON or lack the text field.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// The index folder to build into (resumed when it holds an unfinished build).
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
    /// Build into a non-empty folder that is not an index (its files are kept).
    #[arg(long)]
    pub force: bool,
    /// Layers: numbers and ranges (`0-2`, `5`, `0,5`, `0-2,7`, `all`).
    #[arg(long, default_value = DEFAULT_LAYERS)]
    pub layers: String,
    /// Neurons in every selected layer: numbers and ranges, or `all`.
    #[arg(long, default_value = "all")]
    pub neurons: String,
    /// Examples kept per neuron (Neuroscope keeps 20).
    #[arg(long, default_value_t = 20)]
    pub top_k: usize,
    /// Windows per neuron ranked after the top-k that only train its graph (never held
    /// out): the scan keeps top-k + this many (the authors: 0).
    #[arg(long, default_value_t = 10)]
    pub extra_train: usize,
    /// Tokens per window (BOS not counted).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Windows per forward batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Batches between checkpoints of the scan.
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: usize,
    /// Do not prepend BOS to windows.
    #[arg(long)]
    pub no_bos: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Graph stage: a position makes a line above this normalised activation.
    #[arg(long, default_value_t = 0.5)]
    pub activation_threshold: f32,
    /// Graph stage: a context token is kept above this importance (the authors: 0.75;
    /// 0.9 measured better firing F1 on the default model, see the README).
    #[arg(long, default_value_t = 0.9)]
    pub importance_threshold: f32,
    /// Evaluation: a token fires at or above this normalised activation.
    #[arg(long, default_value_t = 0.5)]
    pub fire_threshold: f32,
    /// Firing positions of each training window turned into lines: the max plus up to
    /// N-1 others (the authors: 1, the max only).
    #[arg(long, default_value_t = 8)]
    pub seeds_per_example: usize,
    /// Do not test activating tokens alone for a context-free line (the authors' way).
    #[arg(long)]
    pub no_token_alone: bool,
    /// Substitute important context words only, not the activating tokens (the authors'
    /// way).
    #[arg(long)]
    pub no_augment_activating: bool,
    /// Prune: candidate lengths in tokens, ending at the activating one, shortest first
    /// (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "5,10,15,20,25,30")]
    pub prune_lengths: Vec<usize>,
    /// Prune: accept a candidate whose activation dropped by less than this fraction
    /// (`(a - a0) / a0 > -tolerance`); augmentation counts a variant positive by the same.
    #[arg(long, default_value_t = 0.5)]
    pub prune_tolerance: f32,
    /// Prune: tokens of post-context kept after the activating one (same sentence).
    #[arg(long, default_value_t = 5)]
    pub post_context: usize,
    /// Share of the top-k examples that train the graph; the rest are held out.
    #[arg(long, default_value_t = 0.5)]
    pub train_fraction: f32,
    /// Seed of the train / held-out split.
    #[arg(long, default_value_t = GraphSettings::default().seed)]
    pub split_seed: u64,
    /// Substitutes per important word for augmentation (0: off).
    #[arg(long, default_value_t = 5)]
    pub augment: usize,
    /// What a trie END keeps when several lines end there (the authors' code: first).
    #[arg(long, value_enum, default_value_t = EndChoice::Mean)]
    pub end_activation: EndChoice,
    /// An END whose matches in the training windows fire less often than this share
    /// predicts their mean activation instead (0: off, the authors').
    #[arg(long, default_value_t = 0.2)]
    pub end_min_firing: f32,
    /// The token id that masks context for importance (default: the model's pad token,
    /// else EOS).
    #[arg(long)]
    pub mask_token: Option<u32>,
    /// Random corpus windows for the false-positive rate.
    #[arg(long, default_value_t = 32)]
    pub random_windows: usize,
    /// The authors' N2G settings in one flag: `--importance-threshold 0.75
    /// --seeds-per-example 1 --no-token-alone --no-augment-activating --end-activation
    /// first --end-min-firing 0 --extra-train 0` (substitutes still come from the
    /// model's embedding).
    #[arg(long, conflicts_with_all = [
        "importance_threshold", "seeds_per_example", "no_token_alone",
        "no_augment_activating", "end_activation", "end_min_firing", "extra_train",
    ])]
    pub authors: bool,
    /// Neurons whose graph work shares batches.
    #[arg(long, default_value_t = 512)]
    pub graph_chunk: usize,
    /// Tokens per prefix-shared row in the graph stage: masked and substituted rows
    /// share the forward pass of their common prefix (tree attention); 0 turns it off.
    #[arg(long, default_value_t = 96)]
    pub prefix_row_tokens: usize,
    /// Build graphs one neuron and one sequence at a time (the authors' way; slow).
    #[arg(long)]
    pub no_batching: bool,
    /// Stop after the scan (no graphs).
    #[arg(long)]
    pub scan_only: bool,
    /// Stop the scan after this many batches (testing resumption).
    #[arg(long, hide = true)]
    pub max_batches: Option<usize>,
}

/// The default corpus folder, with an error naming scripts/setup when missing.
fn default_corpus() -> anyhow::Result<PathBuf> {
    Ok(super::default_data_path(
        DEFAULT_CORPUS_PATH,
        "default corpus",
    )?)
}

/// The graph settings the options ask for (the mask token still the default's), or an
/// error naming the option whose value cannot work.
fn graph_settings(args: &BuildArgs) -> anyhow::Result<GraphSettings> {
    let choices = if args.authors {
        GraphSettings::authors()
    } else {
        GraphSettings {
            importance_threshold: args.importance_threshold,
            seeds_per_example: args.seeds_per_example,
            token_alone: !args.no_token_alone,
            augment_activating: !args.no_augment_activating,
            end_activation: match args.end_activation {
                EndChoice::Mean => EndActivation::Mean,
                EndChoice::Max => EndActivation::Max,
                EndChoice::First => EndActivation::First,
            },
            end_min_firing: args.end_min_firing,
            extra_train: args.extra_train,
            ..GraphSettings::default()
        }
    };
    Ok::<_, anyhow::Error>(GraphSettings {
        activation_threshold: args.activation_threshold,
        fire_threshold: args.fire_threshold,
        augment: args.augment,
        random_windows: args.random_windows,
        prune_lengths: args.prune_lengths.clone(),
        prune_tolerance: args.prune_tolerance,
        post_context: args.post_context,
        train_fraction: args.train_fraction,
        seed: args.split_seed,
        ..choices
    })
    .and_then(|s| s.validate().map(|()| s).map_err(flag_error))
}

/// A settings error with the field named as the `build` flag that sets it.
fn flag_error(e: crate::n2g::InvalidSetting) -> anyhow::Error {
    let flag = match e.field {
        "seed" => "--split-seed".to_string(),
        "chunk_neurons" => "--graph-chunk".to_string(),
        "neurons_per_layer" => "--neurons".to_string(),
        f => format!("--{}", f.replace('_', "-")),
    };
    anyhow::anyhow!("{flag} {}", e.message)
}

/// Runs the command.
pub fn run(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.top_k > 0, "--top-k must be at least 1");
    anyhow::ensure!(args.window > 0, "--window must be at least 1");
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        args.checkpoint_every > 0,
        "--checkpoint-every must be at least 1"
    );
    let base = graph_settings(args)?;
    let batch = if args.no_batching {
        BatchConfig::unbatched()
    } else {
        BatchConfig {
            chunk_neurons: args.graph_chunk,
            prefix_row_tokens: args.prefix_row_tokens,
            ..BatchConfig::default()
        }
    };
    batch.validate().map_err(flag_error)?;
    ScanOptions {
        top_k: args.top_k + base.extra_train,
        batch_size: args.batch_size,
        checkpoint_every: args.checkpoint_every,
        ..ScanOptions::new(Vec::new(), Vec::new(), 0)
    }
    .validate()
    .map_err(flag_error)?;
    let store = Store::open_for_build(&args.index, args.force)?;
    let model_path = match &args.model.model {
        Some(p) => p.clone(),
        None => super::default_model_path()?,
    };
    let corpus_paths = if args.corpus.is_empty() {
        vec![default_corpus()?]
    } else {
        args.corpus.clone()
    };
    let model = args.model.load_from(&model_path)?;
    let info = model.info().clone();
    let layers = parse_selection(&args.layers, info.n_layers, "--layers")?;
    let neurons = parse_selection(&args.neurons, info.n_neurons, "--neurons")?;
    let spec = CorpusSpec {
        paths: corpus_paths.clone(),
        format: args.format,
        text_field: args.text_field.clone(),
        skip_bad_lines: args.skip_bad_lines,
    };
    let corpus = Corpus::read(&spec)?;
    let windows = tokenize_windows(&corpus, model.tokenizer(), args.window, !args.no_bos)?;
    // The top-k (split into train and held-out) and the windows after it that only train.
    let kept_per_neuron = args.top_k + base.extra_train;
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
            top_k: kept_per_neuron as u32,
            extra_train: base.extra_train as u32,
            window: args.window as u32,
            batch_size: args.batch_size as u32,
            bos: windows.has_bos(),
        },
    };
    store.check_or_set_run(&run)?;
    if store
        .meta::<Vec<String>>(crate::store::KEY_VOCABULARY)?
        .is_none()
    {
        store.put_meta(
            crate::store::KEY_VOCABULARY,
            &model.tokenizer().token_strs(),
        )?;
    }
    let progress = store.scan_progress()?;
    let show_progress = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !args.quiet {
        eprintln!(
            "model {} · corpus {} documents, {} windows, {} tokens · layers {} · {} neurons per layer",
            info.name,
            corpus.documents.len(),
            windows.len(),
            windows.total_tokens(),
            args.layers,
            neurons.len()
        );
        if progress.batches_done > 0 && !progress.complete {
            eprintln!(
                "resuming the scan at batch {}/{} ({} tokens already done)",
                progress.batches_done, progress.batches_total, progress.tokens_done
            );
        }
    }
    let report = run_scan(
        &model,
        &windows,
        &store,
        &ScanOptions {
            layers: layers.clone(),
            neurons: neurons.clone(),
            top_k: kept_per_neuron,
            batch_size: args.batch_size,
            checkpoint_every: args.checkpoint_every,
            progress: show_progress,
            max_batches: args.max_batches,
        },
    )
    .with_context(|| format!("scanning into {}", args.index.display()))?;
    if !args.quiet {
        let secs = report.elapsed.as_secs_f64().max(1e-9);
        eprintln!(
            "scan: {} tokens in {:.1} s ({:.0} tokens/s){}{}",
            report.tokens,
            secs,
            report.tokens as f64 / secs,
            if report.resumed_at > 0 {
                format!(", resumed at batch {}", report.resumed_at)
            } else {
                String::new()
            },
            if corpus.invalid_utf8 > 0 || corpus.skipped_lines > 0 {
                format!(
                    "; {} invalid UTF-8 sequences replaced, {} bad lines skipped",
                    corpus.invalid_utf8, corpus.skipped_lines
                )
            } else {
                String::new()
            }
        );
    }
    if !report.complete {
        eprintln!("scan stopped before the end; run the same command again to resume");
        return Ok(ExitCode::from(3));
    }
    if args.scan_only {
        return Ok(ExitCode::SUCCESS);
    }
    let settings = GraphSettings {
        mask_token: args.mask_token.unwrap_or_else(|| model.mask_token()),
        ..base
    };
    let graphs = build_graphs(&model, &store, &windows, &settings, batch, show_progress)
        .with_context(|| format!("building graphs into {}", args.index.display()))?;
    if !args.quiet {
        let secs = graphs.elapsed.as_secs_f64();
        eprintln!(
            "graphs: {} built in {:.1} s{}{}; {} sequences run for {} requested, {} tokens",
            graphs.built,
            secs,
            if graphs.built > 0 {
                format!(" ({:.3} s per neuron)", secs / graphs.built as f64)
            } else {
                String::new()
            },
            if graphs.skipped > 0 {
                format!(", {} already built", graphs.skipped)
            } else {
                String::new()
            },
            graphs.work.run,
            graphs.work.requested,
            graphs.work.tokens
        );
    }
    let t = std::time::Instant::now();
    let indexed = crate::search::reindex(&store, &args.index)?;
    if !args.quiet {
        eprintln!(
            "search index: {indexed} neurons in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        eprintln!(
            "covered: layers {} of 0-{}, {} neurons each ({} neurons) in {}",
            args.layers,
            info.n_layers - 1,
            neurons.len(),
            layers.len() * neurons.len(),
            args.index.display()
        );
        if layers.len() < info.n_layers {
            eprintln!(
                "the whole model: n2g-index build --layers all --index DIR (add --device cuda:0 on a GPU build: cargo build --release --features cuda)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
