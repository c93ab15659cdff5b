//! `n2g-index info`: what an index holds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::store::{Store, FORMAT_VERSION};

/// Arguments of `n2g-index info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The index folder.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

/// Runs the command.
pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.index)?;
    let Some(run) = store.run_meta()? else {
        anyhow::bail!("{}: no build recorded in this index yet", store.path().display());
    };
    let progress = store.scan_progress()?;
    println!("index        {}", args.index.display());
    println!("format       version {FORMAT_VERSION}");
    println!(
        "model        {} ({}, {} layers × {} neurons) sha256 {}",
        run.model.name, run.model.architecture, run.model.n_layers, run.model.n_neurons, run.model.sha256
    );
    println!("             {}", run.model.path);
    println!(
        "corpus       {} ({} files, {} documents, {} bytes) fingerprint {}",
        run.corpus.paths.join(", "),
        run.corpus.files.len(),
        run.corpus.documents,
        run.corpus.bytes,
        &run.corpus.fingerprint[..16.min(run.corpus.fingerprint.len())]
    );
    if run.corpus.invalid_utf8 > 0 || run.corpus.skipped_lines > 0 {
        println!(
            "             {} invalid UTF-8 sequences replaced, {} bad lines skipped",
            run.corpus.invalid_utf8, run.corpus.skipped_lines
        );
    }
    println!(
        "scan         {}: {}/{} tokens, {} windows; top-k {}, window {}, BOS {}",
        if progress.complete { "complete" } else { "INCOMPLETE (re-run build to resume)" },
        progress.tokens_done,
        progress.tokens_total,
        progress.windows_total,
        run.scan.top_k,
        run.scan.window,
        run.scan.bos
    );
    println!(
        "layers       {:?} · {} neurons per layer · {} neurons",
        run.scan.layers,
        run.scan.neurons.len(),
        run.scan.layers.len() * run.scan.neurons.len()
    );
    println!("size on disk {:.1} MiB", dir_size(&args.index) as f64 / (1 << 20) as f64);
    Ok(ExitCode::SUCCESS)
}
