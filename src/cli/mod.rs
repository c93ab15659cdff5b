//! The `n2g-index` command line: a thin layer over the library.

mod activations;
mod build;
mod export;
mod info;
pub mod query;
mod reindex;
mod show;
pub mod similar;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::model::{DeviceSpec, LoadOptions, Model, DEFAULT_MODEL_PATH};
use crate::{Error, Result};

/// n2g-index: build Neuron-to-Graph explanations of every MLP neuron of a language
/// model and search them.
#[derive(Parser, Debug)]
#[command(name = "n2g-index", version, about, long_about = None)]
pub struct Cli {
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
    /// A neuron's graph, scores and top examples.
    Show(show::ShowArgs),
    /// Per-token MLP neuron activations of a text, straight from the model.
    Activations(activations::ActivationsArgs),
    /// What an index holds: model, corpus, layers, neurons, format version, size.
    Info(info::InfoArgs),
    /// Write one JSON line per neuron: id, statistics, graph, evaluation.
    Export(export::ExportArgs),
}

/// Model options shared by the commands that load a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A GGUF file (Llama family) or a Hugging Face folder (llama, gpt2, gpt_neox).
    /// Default: the SmolLM2-135M-Instruct GGUF fetched by scripts/setup.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A tokenizer.json to use instead of the model's own tokenizer.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Device: cpu, cuda:N (built with --features cuda) or metal:N (--features metal).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Keep GGUF weights quantized (less memory, slower on CPU, not exact).
    #[arg(long)]
    pub quantized: bool,
    /// Tokenize special tokens written in a text (`<|im_start|>`) as their characters,
    /// not as their one id (the model's own tokenizer maps each to its id).
    #[arg(long)]
    pub literal_special: bool,
}

impl ModelArgs {
    /// Loads the chosen model, or the default one with an error naming scripts/setup.
    pub fn load(&self) -> Result<Model> {
        match &self.model {
            Some(path) => self.load_from(path),
            None => self.load_from(&default_model_path()?),
        }
    }

    /// Loads the model at `path` with these options.
    pub fn load_from(&self, path: &std::path::Path) -> Result<Model> {
        let options = LoadOptions {
            device: self.device.parse::<DeviceSpec>()?,
            quantized: self.quantized,
            tokenizer: self.tokenizer.clone(),
            literal_special: self.literal_special,
        };
        Model::load(path, &options)
    }
}

/// Where the default model is (see [`default_data_path`]).
pub fn default_model_path() -> Result<PathBuf> {
    default_data_path(DEFAULT_MODEL_PATH, "default model")
}

/// Where a default input fetched by `scripts/setup` is: `rel` (which starts with
/// `data/`) under `$N2G_DATA` when set, else in the current folder or beside the
/// executable's repository; an error naming `scripts/setup` when it is nowhere.
pub fn default_data_path(rel: &str, what: &'static str) -> Result<PathBuf> {
    let rel = PathBuf::from(rel);
    let in_data = rel.strip_prefix("data").unwrap_or(&rel).to_path_buf();
    let candidates: Vec<PathBuf> = match std::env::var_os("N2G_DATA") {
        Some(dir) => vec![PathBuf::from(dir).join(&in_data)],
        None => {
            let mut c = vec![rel.clone()];
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

/// Parses the arguments and runs the command; errors go to stderr with exit code 1.
pub fn main() -> ExitCode {
    crate::model::keep_freed_memory();
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
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by `: `, leaving out a cause whose text an outer
/// message already quotes (many errors print their source in their own message).
fn error_message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
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
        Command::Show(args) => show::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Export(args) => export::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_quoted_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(crate::Error::io("/data/x.txt", io)).context("reading");
        assert_eq!(error_message(&e), "reading: /data/x.txt: gone");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_message(&e), "outer: inner");
    }
}
