//! `n2g-index similar`: neurons whose token sets overlap a neuron's, or every similar
//! and subset pair of the model.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::search::SearchIndex;
use crate::NeuronId;

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

#[derive(Serialize)]
struct JsonHit {
    neuron: String,
    activating: f32,
    context: f32,
    relation: &'static str,
}

#[derive(Serialize)]
struct JsonPair {
    a: String,
    b: String,
    activating: f32,
    context: f32,
    relation: &'static str,
}

/// Runs `n2g-index similar`.
pub fn run(args: &SimilarArgs) -> anyhow::Result<ExitCode> {
    let target: Option<NeuronId> = match &args.neuron {
        Some(s) => Some(s.parse().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let dir = args.index.join("search");
    let index = SearchIndex::open(&dir)?;
    match target {
        Some(t) => {
            let hits = index.similar_with(t, args.top, args.threshold)?;
            if args.json {
                let rows: Vec<JsonHit> = hits
                    .iter()
                    .map(|h| JsonHit {
                        neuron: h.neuron.to_string(),
                        activating: h.activating,
                        context: h.context,
                        relation: h.relation.name(),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
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
            let pairs = index
                .similar_all(args.threshold)
                .with_context(|| format!("similar --all over {}", dir.display()))?;
            if args.json {
                let rows: Vec<JsonPair> = pairs
                    .iter()
                    .map(|p| JsonPair {
                        a: p.a.to_string(),
                        b: p.b.to_string(),
                        activating: p.activating,
                        context: p.context,
                        relation: p.relation.name(),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
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
