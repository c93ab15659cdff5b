//! `n2g-index merge`: join the indexes of a sharded build into one.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::render::TerminalProgress;
use n2g_index::Index;

/// Arguments of `n2g-index merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The finished shard index folders (`build --shard I/N`, or builds of disjoint
    /// `--layers` / `--neurons` slices of one model, corpus and settings).
    #[arg(required = true, value_name = "SHARD")]
    pub shards: Vec<PathBuf>,
    /// The index folder to write: new, or an earlier merge of the same shards.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the command.
pub fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let bars = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = TerminalProgress::new(bars, args.quiet);
    let (_, report) =
        Index::merge(&args.shards, &args.into, &mut progress).map_err(super::with_flag_names)?;
    if !args.quiet {
        eprintln!(
            "merged {} shards: {} neurons of layers {:?}, {} windows, {} searchable, in {:.1} s into {}",
            report.shards,
            report.neurons,
            report.run.scan.layers,
            report.windows,
            report.searchable,
            report.elapsed.as_secs_f64(),
            args.into.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
