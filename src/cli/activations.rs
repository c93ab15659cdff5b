//! `n2g-index activations`: per-token neuron activations of one text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ModelArgs;
use n2g_index::text_activations;

/// Arguments of `n2g-index activations`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["text", "file"]))]
pub struct ActivationsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to run.
    #[arg(long)]
    text: Option<String>,
    /// A file whose whole content is the text to run.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The layer whose MLP neurons are read (with --sae: the SAE's hook layer, which
    /// is the default).
    #[arg(long)]
    layer: Option<usize>,
    /// Neurons to show, e.g. `1,2,3` or `0-7,100` (default: the top neurons per token;
    /// with --json, all neurons).
    #[arg(long)]
    neurons: Option<String>,
    /// How many top neurons to show per token when --neurons is absent.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Do not prepend the BOS token (by default it is, as TransformerLens does).
    #[arg(long)]
    no_bos: bool,
    /// Print one JSON object (schema/activations.schema.json).
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &ActivationsArgs) -> anyhow::Result<ExitCode> {
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => unreachable!("clap requires --text or --file"),
    };
    let model = args.model.load()?;
    let view = text_activations(
        &model,
        &text,
        args.layer,
        args.neurons.as_deref(),
        !args.no_bos,
    )
    .map_err(super::with_flag_names)?;
    if args.json {
        println!("{}", serde_json::to_string(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} · layer {}{} · {} tokens{}",
        view.model,
        view.layer,
        view.units
            .sae
            .as_ref()
            .map(|s| format!(" · SAE latents at {}", s.hook))
            .unwrap_or_default(),
        view.ids.len(),
        if view.bos {
            " (position 0 is BOS: an attention sink, expect outsized values)"
        } else {
            ""
        }
    );
    for (t, (token, row)) in view.tokens.iter().zip(&view.activations).enumerate() {
        let cells: Vec<String> = match &args.neurons {
            Some(_) => view
                .neurons
                .iter()
                .zip(row)
                .map(|(n, v)| format!("{n}:{v:>8.3}"))
                .collect(),
            None => n2g_index::model::top_neurons(row, args.top)
                .into_iter()
                .map(|(n, v)| format!("{n}:{v:.3}"))
                .collect(),
        };
        println!("{t:>4} {:<16} {}", format!("{token:?}"), cells.join("  "));
    }
    Ok(ExitCode::SUCCESS)
}
