//! `n2g-index build`: scan a corpus and build graphs into an index folder.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::ModelArgs;
use n2g_index::corpus::CorpusFormat;
use n2g_index::n2g::{BatchConfig, EndActivation, GraphSettings};
use n2g_index::render::TerminalProgress;
use n2g_index::{BuildOptions, BuildReport, Index, Shard};

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
    /// Build shard I of N (from 0) of the selected neurons into this folder, e.g.
    /// `--shard ${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}`; join the shards
    /// with `n2g-index merge`. Shards are whole graph chunks, balanced by layer depth.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Layers: numbers and ranges (`0-2`, `5`, `0,5`, `0-2,7`, `all`) [default: 0-2; with
    /// --sae, the SAE's hook layer].
    #[arg(long)]
    pub layers: Option<String>,
    /// Build no graph for units firing on more than this share of the corpus's tokens
    /// (dense SAE latents fit badly); `info` and `show` name the ones skipped.
    #[arg(long, value_name = "SHARE")]
    pub max_density: Option<f64>,
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
    /// 0.9 measured better firing F1 on the default model, see docs/N2G.md).
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
    /// Neurons of a layer whose graph work shares batches (a chunk; with --graph-band,
    /// the same slice of each layer of a band runs as one chunk).
    #[arg(long, default_value_t = 512)]
    pub graph_chunk: usize,
    /// Tokens per prefix-shared row in the graph stage: masked and substituted rows
    /// share the forward pass of their common prefix (tree attention); 0 turns it off.
    #[arg(long, default_value_t = 96)]
    pub prefix_row_tokens: usize,
    /// Neighbouring layers whose graph chunks run together (layers 0-1, 2-3, ... for
    /// 2, the default for a new index): a sequence that neurons of both layers need runs
    /// once, to the deeper, and the shallower layer reads the pass on its way. 1 runs
    /// every layer alone. Left out, an index continues with the band it was started
    /// with; given, another is refused.
    #[arg(long, value_name = "LAYERS")]
    pub graph_band: Option<usize>,
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

/// The graph settings the options ask for (the mask token is set by the build).
fn graph_settings(args: &BuildArgs) -> GraphSettings {
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
    GraphSettings {
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
    }
}

/// The library's build options these arguments ask for.
fn build_options(args: &BuildArgs) -> anyhow::Result<BuildOptions> {
    let mut o = BuildOptions::new(&args.index);
    o.model = args.model.model.clone();
    o.load = args.model.load_options();
    o.corpus = args.corpus.clone();
    o.format = args.format;
    o.text_field = args.text_field.clone();
    o.skip_bad_lines = args.skip_bad_lines;
    o.layers = args.layers.clone();
    o.neurons = args.neurons.clone();
    o.top_k = args.top_k;
    o.window = args.window;
    o.batch_size = args.batch_size;
    o.checkpoint_every = args.checkpoint_every;
    o.bos = !args.no_bos;
    o.graph = graph_settings(args);
    o.mask_token = args.mask_token;
    o.batch = if args.no_batching {
        BatchConfig::unbatched()
    } else {
        BatchConfig {
            chunk_neurons: args.graph_chunk,
            prefix_row_tokens: args.prefix_row_tokens,
            band_layers: args
                .graph_band
                .unwrap_or(BatchConfig::default().band_layers),
            ..BatchConfig::default()
        }
    };
    o.keep_index_band = args.graph_band.is_none();
    o.scan_only = args.scan_only;
    o.force = args.force;
    o.max_density = args.max_density;
    o.max_batches = args.max_batches;
    if let Some(text) = &args.shard {
        let shard = Shard::parse(text, o.batch.chunk_neurons)
            .map_err(|m| anyhow::anyhow!("--shard {m}"))?;
        o.shard = Some(shard);
    }
    Ok(o)
}

/// Runs the command.
pub fn run(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let options = build_options(args)?;
    let bars = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = TerminalProgress::new(bars, args.quiet);
    let (_, report) = Index::build(&options, &mut progress).map_err(super::with_flag_names)?;
    if !args.quiet {
        print_summary(args, &report);
    }
    if !report.scan.complete {
        eprintln!("scan stopped before the end; run the same command again to resume");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines `build` prints on stderr after each stage.
fn print_summary(args: &BuildArgs, report: &BuildReport) {
    let scan = &report.scan;
    let corpus = &report.run.corpus;
    let secs = scan.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "scan: {} tokens in {:.1} s ({:.0} tokens/s){}{}",
        scan.tokens,
        secs,
        scan.tokens as f64 / secs,
        if scan.resumed_at > 0 {
            format!(", resumed at batch {}", scan.resumed_at)
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
    if let Some(graphs) = &report.graphs {
        let secs = graphs.elapsed.as_secs_f64();
        eprintln!(
            "graphs: {} built in {:.1} s{}{}; {} sequences run for {} requested, {} tokens",
            graphs.built,
            secs,
            if graphs.built > 0 {
                format!(
                    " ({:.3} s per {})",
                    secs / graphs.built as f64,
                    report.units.unit_name()
                )
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
    let Some((indexed, elapsed)) = report.search else {
        return;
    };
    eprintln!(
        "search index: {indexed} {}s in {:.1} s",
        report.units.unit_name(),
        elapsed.as_secs_f64()
    );
    let run = &report.run;
    let layers = run.scan.layers.len();
    eprintln!(
        "covered: layers {} of 0-{}, {} {}s each ({} in all{}) in {}",
        run.scan.layer_list(),
        run.model.n_layers - 1,
        run.scan.neurons.len(),
        report.units.unit_name(),
        run.scan.neuron_count(report.band),
        run.scan
            .shard
            .map(|s| format!(" in shard {s}"))
            .unwrap_or_default(),
        args.index.display()
    );
    if layers < run.model.n_layers as usize && report.units.sae.is_none() {
        eprintln!(
            "the whole model: n2g-index build --layers all --index DIR (add --device cuda:0 on a GPU build: cargo build --release --features cuda)"
        );
    }
}
