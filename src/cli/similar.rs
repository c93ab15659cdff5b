//! `n2g-index similar`: neurons whose token sets overlap a neuron's, or every similar
//! and subset pair of the model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::Index;
use n2g_index::NeuronId;

/// Arguments of `n2g-index similar`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["neuron", "all"]))]
pub struct SimilarArgs {
    /// The neuron, as LAYER:INDEX.
    pub neuron: Option<String>,
    /// List every similar and subset pair of the model instead.
    #[arg(long)]
    pub all: bool,
    /// How many neurons to show (with a neuron), at least 1.
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub top: usize,
    /// Relation threshold (N2G: 0.9), above 0 and at most 1.
    #[arg(long, default_value_t = 0.9)]
    pub threshold: f64,
    /// The index folder; the search index is DIR/search.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
    /// Print JSON (schema/similar-result.schema.json).
    #[arg(long)]
    pub json: bool,
}

/// Runs `n2g-index similar`.
pub fn run(args: &SimilarArgs) -> anyhow::Result<ExitCode> {
    let target: Option<NeuronId> = match &args.neuron {
        Some(s) => Some(s.parse().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let index = Index::open(&args.index)?;
    match target {
        Some(t) => {
            let hits = index.similar(t, args.top, args.threshold)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
            } else if hits.is_empty() {
                println!("no neuron shares a token with {t}");
            } else {
                println!(
                    "{:<12}  {:>10}  {:>8}  relation",
                    "neuron", "activating", "context"
                );
                for h in hits {
                    println!(
                        "{:<12}  {:>10.3}  {:>8.3}  {}",
                        h.neuron.to_string(),
                        h.activating,
                        h.context,
                        h.relation.name()
                    );
                }
            }
        }
        None => {
            let pairs = index.similar_all(args.threshold)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&pairs)?);
            } else if pairs.is_empty() {
                println!("no similar or subset pairs at threshold {}", args.threshold);
            } else {
                println!(
                    "{:<12}  {:<8}  {:<12}  {:>10}  {:>8}",
                    "a", "relation", "b", "activating", "context"
                );
                for p in pairs {
                    println!(
                        "{:<12}  {:<8}  {:<12}  {:>10.3}  {:>8.3}",
                        p.a.to_string(),
                        p.relation.name(),
                        p.b.to_string(),
                        p.activating,
                        p.context
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
