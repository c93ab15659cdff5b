//! The `n2g-index` command line: a thin layer over the library.

mod activations;
mod build;
mod export;
mod info;
mod merge;
mod predict;
mod query;
mod reindex;
#[cfg(feature = "serve")]
mod serve;
mod show;
mod similar;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use n2g_index::model::{DeviceSpec, Hook, LoadOptions, Model};
use n2g_index::Error;
use n2g_index::Index;

/// n2g-index: build Neuron-to-Graph explanations of every MLP neuron of a language
/// model and search them.
#[derive(Parser, Debug)]
#[command(name = "n2g-index", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan a corpus with a model and build an N2G graph for every selected neuron.
    Build(Box<build::BuildArgs>),
    /// Search the index: neurons whose graphs match a query such as
    /// "token:Paris context:capital".
    Query(query::QueryArgs),
    /// Neurons whose activating and context tokens overlap those of LAYER:INDEX, or
    /// every similar and subset pair (--all).
    Similar(similar::SimilarArgs),
    /// Rebuild the search index from the stored graphs.
    Reindex(reindex::ReindexArgs),
    /// Join the indexes of a sharded build (build --shard I/N) into one index.
    Merge(merge::MergeArgs),
    /// A neuron's graph, scores and top examples.
    Show(show::ShowArgs),
    /// Per-token MLP neuron activations of a text, straight from the model.
    Activations(activations::ActivationsArgs),
    /// What an index holds: model, corpus, layers, neurons, format version, size.
    Info(info::InfoArgs),
    /// Write one JSON line per neuron: id, statistics, graph, evaluation.
    Export(export::ExportArgs),
    /// A neuron's graph on a text: its prediction at each token beside the neuron's
    /// real activation.
    Predict(predict::PredictArgs),
    /// Serve the index in a browser: search, neuron pages with graph pictures, a
    /// prompt box, and a JSON API. Listens on 127.0.0.1:8080 (this machine only)
    /// unless --bind says otherwise.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
}

/// Model options shared by the commands that load a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A GGUF file (llama, gemma, gemma2, qwen2, qwen3) or a Hugging Face folder (those,
    /// mistral, gpt2, gpt_neox).
    /// Default: the SmolLM2-135M-Instruct GGUF fetched by scripts/setup.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A tokenizer.json to use instead of the model's own tokenizer.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Device: cpu, cuda:N (built with --features cuda) or metal:N (--features metal).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Keep GGUF weights quantized (less memory, slower on CPU, not exact).
    #[arg(long)]
    pub quantized: bool,
    /// Tokenize special tokens written in a text (`<|im_start|>`) as their characters,
    /// not as their one id (the model's own tokenizer maps each to its id).
    #[arg(long)]
    pub literal_special: bool,
    /// A sparse autoencoder whose latents are the units instead of the MLP neurons: a
    /// SAELens folder (cfg.json + sae_weights.safetensors), a Gemma Scope params.npz
    /// or an EleutherAI sparsify folder (cfg.json + sae.safetensors).
    #[arg(long, value_name = "PATH")]
    pub sae: Option<PathBuf>,
    /// The hook point the SAE reads, as TransformerLens names it
    /// (blocks.L.hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|
    /// hook_mlp_out|mlp.hook_post|ln2.hook_normalized); needed when the SAE's file does
    /// not say it (Gemma Scope).
    #[arg(long, value_name = "NAME")]
    pub hook: Option<Hook>,
}

impl ModelArgs {
    /// The library's load options these arguments ask for.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            device: self.device,
            quantized: self.quantized,
            tokenizer: self.tokenizer.clone(),
            literal_special: self.literal_special,
            sae: self.sae.clone(),
            hook: self.hook,
        }
    }

    /// Loads the chosen model, or the default one.
    pub fn load(&self) -> anyhow::Result<Model> {
        let path = match &self.model {
            Some(path) => path.clone(),
            None => n2g_index::default_model_path().map_err(with_flag_names)?,
        };
        Model::load(&path, &self.load_options()).map_err(with_flag_names)
    }

    /// The model (and SAE) an index was built with, unless these arguments name others:
    /// `None` when the recorded model file is not there.
    pub fn load_for(&self, index: &Index) -> anyhow::Result<Option<Model>> {
        let mut args = self.clone();
        if args.model.is_none() {
            let recorded = PathBuf::from(&index.run().model.path);
            if !recorded.exists() {
                return Ok(None);
            }
            args.model = Some(recorded);
        }
        if let (None, Some(sae)) = (&args.sae, &index.units().sae) {
            args.sae = Some(sae.path.clone());
            args.hook = Some(sae.hook);
        }
        args.load().map(Some)
    }
}

/// Parses the arguments and runs the command; errors go to stderr with exit code 1.
pub fn main() -> ExitCode {
    n2g_index::model::keep_freed_memory();
    die_quietly_on_closed_pipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("N2G_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tantivy=off")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`| head`) is not an error for the user.
            let broken_pipe = e.chain().any(|c| {
                let io = match c.downcast_ref::<Error>() {
                    Some(Error::Io { error, .. }) => Some(error),
                    _ => c.downcast_ref::<std::io::Error>(),
                };
                io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by `: `, with the command to run where the library's
/// error calls for one.
fn error_message(e: &anyhow::Error) -> String {
    let mut message = format!("{e:#}");
    let hint = e.chain().find_map(|c| match c.downcast_ref::<Error>()? {
        Error::Search(s) => search_hint(s),
        Error::InvalidRequest(m) if m.contains("no GPU support") => {
            Some("build it with `cargo build --release --features cuda` (or `metal`)")
        }
        _ => None,
    });
    if let Some(hint) = hint {
        message.push_str(": ");
        message.push_str(hint);
    }
    message
}

/// A library error as the CLI shows it: an option's field name becomes its flag.
fn with_flag_names(e: Error) -> anyhow::Error {
    match e {
        Error::InvalidOption { field, message } => {
            let flag = match field {
                "seed" => "split-seed".to_string(),
                "chunk_neurons" => "graph-chunk".to_string(),
                "band_layers" => "graph-band".to_string(),
                "neurons_per_layer" => "neurons".to_string(),
                f => f.replace('_', "-"),
            };
            anyhow::anyhow!("--{flag} {message}")
        }
        e => e.into(),
    }
}

/// The command that mends a search index error, if one does.
fn search_hint(e: &n2g_index::search::SearchError) -> Option<&'static str> {
    use n2g_index::search::SearchError as S;
    match e {
        S::Missing { .. } | S::Format { .. } | S::Unreadable { .. } => {
            Some("run `n2g-index reindex`")
        }
        _ => None,
    }
}

/// Restores the default action of SIGPIPE (Rust ignores it, so every `println!` into a
/// pipe whose reader has gone, as in `n2g-index export | head`, would panic): the
/// process then ends quietly, as other Unix tools do.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_DFL at start-up, before any thread
    // is spawned, installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Activations(args) => activations::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Query(args) => query::run(&args),
        Command::Similar(args) => similar::run(&args),
        Command::Reindex(args) => reindex::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Predict(args) => predict::run(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_printed_once_and_hints_added() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(n2g_index::Error::io("/data/x.txt", io)).context("reading");
        assert_eq!(error_message(&e), "reading: /data/x.txt: gone");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_message(&e), "outer: inner");
        let missing = n2g_index::search::SearchError::Missing {
            path: "/i/search".into(),
        };
        let e = anyhow::Error::new(n2g_index::Error::from(missing));
        assert!(
            error_message(&e).ends_with("run `n2g-index reindex`"),
            "{e}"
        );
    }
}
