//! `n2g-index activations`: per-token neuron activations of one text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::ModelArgs;

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
    /// The layer whose MLP neurons are read.
    #[arg(long)]
    layer: usize,
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

/// The `--json` output: `activations[t][j]` is neuron `neurons[j]` at token `t`.
#[derive(Serialize)]
struct ActivationsJson<'a> {
    model: String,
    layer: usize,
    bos: bool,
    ids: &'a [u32],
    tokens: Vec<&'a str>,
    neurons: Vec<usize>,
    activations: Vec<Vec<f32>>,
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
    let info = model.info();
    anyhow::ensure!(
        args.layer < info.n_layers,
        "--layer {}: the model has layers 0..={}",
        args.layer,
        info.n_layers - 1
    );
    let tokenized = model.tokenizer().encode(&text, !args.no_bos)?;
    anyhow::ensure!(!tokenized.ids.is_empty(), "the text has no tokens");
    let acts = model.activations(std::slice::from_ref(&tokenized.ids), &[args.layer])?;
    let acts = &acts[0];
    let tokens: Vec<&str> = tokenized
        .ids
        .iter()
        .map(|&id| model.tokenizer().token_str(id))
        .collect();
    let chosen = match &args.neurons {
        Some(spec) => Some(crate::scan::parse_selection(
            spec,
            info.n_neurons,
            "--neurons",
        )?),
        None => None,
    };
    if args.json {
        let neurons = chosen.unwrap_or_else(|| (0..info.n_neurons).collect());
        let activations = (0..tokenized.ids.len())
            .map(|t| {
                let row = acts.at(0, t);
                neurons.iter().map(|&n| row[n]).collect()
            })
            .collect();
        let out = ActivationsJson {
            model: info.name.clone(),
            layer: args.layer,
            bos: tokenized.bos,
            ids: &tokenized.ids,
            tokens,
            neurons,
            activations,
        };
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} · layer {} · {} tokens{}",
        info.name,
        args.layer,
        tokenized.ids.len(),
        if tokenized.bos {
            " (position 0 is BOS: an attention sink, expect outsized values)"
        } else {
            ""
        }
    );
    for (t, token) in tokens.iter().enumerate() {
        let row = acts.at(0, t);
        let cells: Vec<String> = match &chosen {
            Some(ns) => ns.iter().map(|&n| format!("{n}:{:>8.3}", row[n])).collect(),
            None => crate::model::top_neurons(row, args.top)
                .into_iter()
                .map(|(n, v)| format!("{n}:{v:.3}"))
                .collect(),
        };
        println!("{t:>4} {:<16} {}", format!("{token:?}"), cells.join("  "));
    }
    Ok(ExitCode::SUCCESS)
}
