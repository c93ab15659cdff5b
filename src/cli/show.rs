//! `n2g-index show L:N`: a neuron's statistics and top examples (and graph, once built).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::render::examples::{sparkline, token_strip, ColorMode};
use crate::store::Store;
use crate::NeuronId;

/// Arguments of `n2g-index show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The neuron, as LAYER:INDEX.
    pub neuron: String,
    /// The index folder.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
    /// Print one JSON object (schema/show.schema.json).
    #[arg(long)]
    pub json: bool,
    /// How many examples to print (default: all kept).
    #[arg(long)]
    pub examples: Option<usize>,
}

/// One example in `--json`.
#[derive(Serialize)]
pub struct ExampleJson {
    /// Window id in the corpus.
    pub window: u32,
    /// Token strings, BOS included as token 0.
    pub tokens: Vec<String>,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Raw activations of the neuron, one per token.
    pub activations: Vec<f32>,
    /// Position of the maximum (never the BOS).
    pub argmax: usize,
    /// The maximum activation (raw).
    pub max: f32,
}

/// The `--json` object of `show`.
#[derive(Serialize)]
pub struct ShowJson {
    /// `L:N`.
    pub neuron: String,
    /// Layer.
    pub layer: usize,
    /// Index within the layer.
    pub index: usize,
    /// Largest activation over the corpus (BOS excluded).
    pub max_activation: f32,
    /// Mean activation over the corpus (BOS excluded).
    pub mean_activation: f64,
    /// Fraction of tokens with activation > 0.
    pub positive_fraction: f64,
    /// Tokens scanned.
    pub tokens: u64,
    /// Top examples, best first.
    pub examples: Vec<ExampleJson>,
}

/// Runs the command.
pub fn run(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let neuron: NeuronId = args.neuron.parse().map_err(anyhow::Error::msg)?;
    let store = Store::open(&args.index)?;
    let run = store
        .run_meta()?
        .context("the index has no build recorded yet")?;
    let Some(scan) = store.neuron_scan(neuron)? else {
        anyhow::bail!(
            "neuron {neuron} is not in this index (layers {:?}, {} neurons per layer)",
            run.scan.layers,
            run.scan.neurons.len()
        );
    };
    let vocabulary: Vec<String> = store
        .meta(crate::store::KEY_VOCABULARY)?
        .context("the index has no vocabulary recorded")?;
    let token = |id: u32| vocabulary.get(id as usize).cloned().unwrap_or_default();
    let shown = args.examples.unwrap_or(scan.examples.len()).min(scan.examples.len());
    let mut examples = Vec::with_capacity(shown);
    for ex in &scan.examples[..shown] {
        let w = store
            .window(ex.window)?
            .with_context(|| format!("window {} missing from the store", ex.window))?;
        examples.push(ExampleJson {
            window: ex.window,
            tokens: w.ids.iter().map(|&i| token(i)).collect(),
            ids: w.ids,
            activations: ex.activations.clone(),
            argmax: ex.position as usize,
            max: ex.activation,
        });
    }
    let stats = &scan.stats;
    let out = ShowJson {
        neuron: neuron.to_string(),
        layer: neuron.layer as usize,
        index: neuron.index as usize,
        max_activation: stats.max,
        mean_activation: stats.mean(),
        positive_fraction: if stats.count == 0 {
            0.0
        } else {
            stats.positive as f64 / stats.count as f64
        },
        tokens: stats.count,
        examples,
    };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mode = ColorMode::detect();
    println!("neuron {} · model {}", out.neuron, run.model.name);
    println!(
        "max {:.3} · mean {:.4} · active (>0) on {:.1}% of {} tokens",
        out.max_activation,
        out.mean_activation,
        100.0 * out.positive_fraction,
        out.tokens
    );
    println!("density (log scale, negative ← 0 → positive): |{}|", sparkline(&stats.histogram));
    println!("\ntop examples (activation, normalised by the max):");
    for (rank, ex) in out.examples.iter().enumerate() {
        // Skip the BOS token in the strip: it is an attention sink, not text.
        let skip = usize::from(run.scan.bos);
        let strip = token_strip(
            &ex.tokens[skip..],
            &ex.activations[skip..],
            ex.argmax - skip,
            out.max_activation,
            mode,
        );
        println!(
            "{:>3}. {:>7.3} ({:.2})  {}",
            rank + 1,
            ex.max,
            ex.max / out.max_activation,
            strip
        );
    }
    Ok(ExitCode::SUCCESS)
}
