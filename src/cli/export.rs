//! `n2g-index export`: one JSON line per neuron (the `show --json` objects).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::show::{load_graph_meta, neuron_json};
use crate::store::Store;

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
    let store = Store::open(&args.index)?;
    let vocabulary: Vec<String> = store
        .meta(crate::store::KEY_VOCABULARY)?
        .context("the index has no vocabulary recorded")?;
    let graphs: std::collections::HashMap<crate::NeuronId, crate::n2g::NeuronGraph> =
        store.graphs()?.into_iter().collect();
    let meta = if graphs.is_empty() {
        None
    } else {
        Some(load_graph_meta(&store)?)
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (id, scan) in store.neuron_scans()? {
        let shown = if args.examples {
            scan.examples.len()
        } else {
            0
        };
        let obj = neuron_json(
            &store,
            &vocabulary,
            meta.as_ref(),
            id,
            &scan,
            graphs.get(&id),
            shown,
        )?;
        serde_json::to_writer(&mut out, &obj)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
