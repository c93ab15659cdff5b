//! `n2g-index export`: one JSON line per neuron (the `show --json` objects).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::Index;

/// Arguments of `n2g-index export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The index folder.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
    /// Include the top examples (tokens and activations) of every neuron.
    #[arg(long)]
    pub examples: bool,
}

/// Runs the command.
pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&args.index)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    index.export(args.examples, |view| {
        serde_json::to_writer(&mut out, &view)
            .map_err(|e| n2g_index::Error::io("stdout", e.into()))?;
        out.write_all(b"\n")
            .map_err(|e| n2g_index::Error::io("stdout", e))
    })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
