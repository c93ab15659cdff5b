//! `n2g-index predict L:N --text ...`: a neuron's graph on a text, beside the neuron's
//! real activations.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ModelArgs;
use n2g_index::{Index, NeuronId};

/// Arguments of `n2g-index predict`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["text", "file"]))]
pub struct PredictArgs {
    /// The neuron, as LAYER:INDEX.
    neuron: String,
    /// The text.
    #[arg(long)]
    text: Option<String>,
    /// A file holding the text.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The index folder.
    #[arg(long, default_value = "index")]
    index: PathBuf,
    /// The model (default: the one the index was built with).
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object (schema/predict.schema.json).
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let neuron: NeuronId = args.neuron.parse().map_err(anyhow::Error::msg)?;
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => unreachable!("clap requires --text or --file"),
    };
    let index = Index::open(&args.index)?;
    let Some(model) = args.model.load_for(&index)? else {
        anyhow::bail!(
            "the index's model {} is not there: give --model",
            index.run().model.path
        );
    };
    let view = index.predict(&model, neuron, &text)?;
    if args.json {
        println!("{}", serde_json::to_string(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "neuron {} · activation / max beside the graph's prediction",
        view.neuron
    );
    println!(
        "{:>4}  {:<18} {:>9}  {:>6}  {:>9}",
        "pos", "token", "act", "norm", "predicted"
    );
    let first = usize::from(view.bos);
    for t in first..view.ids.len() {
        println!(
            "{t:>4}  {:<18} {:>9.3}  {:>6.3}  {:>9.3}",
            format!("{:?}", view.tokens[t]),
            view.activations[t],
            view.normalized[t],
            view.predicted[t]
        );
    }
    Ok(ExitCode::SUCCESS)
}
