//! `n2g-index reindex`: rebuild the search index from the stored graphs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::Index;

/// Arguments of `n2g-index reindex`.
#[derive(Args, Debug)]
pub struct ReindexArgs {
    /// The index folder.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
}

/// Runs the command.
pub fn run(args: &ReindexArgs) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let n = Index::reindex(&args.index)?;
    eprintln!(
        "search index: {n} neurons in {:.1} s at {}",
        t.elapsed().as_secs_f64(),
        n2g_index::search::search_dir(&args.index).display()
    );
    Ok(ExitCode::SUCCESS)
}
