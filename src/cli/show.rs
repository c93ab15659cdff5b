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
    /// Output format: text (default), dot (Graphviz, the graph only) or json.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
    /// How many examples to print (default: all kept).
    #[arg(long)]
    pub examples: Option<usize>,
}

/// Output formats of `show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    /// Readable text with colours on a truecolor terminal.
    Text,
    /// Graphviz DOT of the graph.
    Dot,
    /// One JSON object.
    Json,
}

/// An activating token of the graph in `--json`.
#[derive(Serialize)]
pub struct ActivatingJson {
    /// Normalised token string.
    pub token: String,
    /// Highest normalised END activation below it.
    pub activation: f32,
}

/// A context token of the graph in `--json`.
#[derive(Serialize)]
pub struct ContextJson {
    /// Normalised token string.
    pub token: String,
    /// Distance from the activating token (1 = directly before it).
    pub depth: u16,
    /// Max importance.
    pub importance: f32,
}

/// The graph in `--json`.
#[derive(Serialize)]
pub struct GraphJson {
    /// Activating tokens, strongest first.
    pub activating: Vec<ActivatingJson>,
    /// Context tokens by depth.
    pub context: Vec<ContextJson>,
    /// Every path from the activating token backwards, `*` for IGNORE.
    pub paths: Vec<Vec<String>>,
    /// END activation of each path.
    pub path_activations: Vec<f32>,
    /// Trie nodes.
    pub nodes: usize,
}

/// The graph and evaluation of a neuron as JSON objects.
pub fn graph_json(g: &crate::n2g::NeuronGraph, dict: &crate::n2g::TokenDictionary) -> GraphJson {
    let tok = |id: u32| dict.str(id).to_string();
    let mut activating: Vec<ActivatingJson> = g
        .graph
        .activating()
        .into_iter()
        .map(|(t, a)| ActivatingJson {
            token: tok(t),
            activation: a,
        })
        .collect();
    activating.sort_by(|a, b| {
        b.activation
            .total_cmp(&a.activation)
            .then(a.token.cmp(&b.token))
    });
    let paths = g.graph.paths();
    GraphJson {
        activating,
        context: g
            .graph
            .context()
            .into_iter()
            .map(|c| ContextJson {
                token: tok(c.token),
                depth: c.depth,
                importance: c.importance,
            })
            .collect(),
        path_activations: paths.iter().map(|p| p.activation).collect(),
        paths: paths
            .iter()
            .map(|p| {
                p.elements
                    .iter()
                    .map(|e| e.token().map_or_else(|| "*".to_string(), tok))
                    .collect()
            })
            .collect(),
        nodes: g.graph.node_count(),
    }
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
    /// `train` or `held_out` in the graph stage's split (absent before graphs are built).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
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
    /// Top examples, best first (absent from `export` without `--examples`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<ExampleJson>,
    /// The N2G graph, once built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphJson>,
    /// Its evaluation (schema/show.schema.json), once built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<crate::n2g::NeuronEval>,
}

/// The `show --json` object of a neuron, with its first `examples` examples.
pub fn neuron_json(
    store: &Store,
    vocabulary: &[String],
    meta: Option<&GraphMeta>,
    neuron: NeuronId,
    scan: &crate::store::NeuronScan,
    graph: Option<&crate::n2g::NeuronGraph>,
    examples: usize,
) -> anyhow::Result<ShowJson> {
    let token = |id: u32| vocabulary.get(id as usize).cloned().unwrap_or_default();
    let shown = examples.min(scan.examples.len());
    let held_out = graph
        .and(meta)
        .map(|m| crate::n2g::split_examples(neuron, scan.examples.len(), &m.settings).1);
    let mut out_examples = Vec::with_capacity(shown);
    for (e, ex) in scan.examples[..shown].iter().enumerate() {
        let w = store
            .window(ex.window)?
            .with_context(|| format!("window {} missing from the store", ex.window))?;
        out_examples.push(ExampleJson {
            window: ex.window,
            tokens: w.ids.iter().map(|&i| token(i)).collect(),
            ids: w.ids,
            activations: ex.activations.clone(),
            argmax: ex.position as usize,
            max: ex.activation,
            role: held_out.as_ref().map(|h| {
                if h.binary_search(&e).is_ok() {
                    "held_out"
                } else {
                    "train"
                }
            }),
        });
    }
    let stats = &scan.stats;
    Ok(ShowJson {
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
        examples: out_examples,
        graph: graph.zip(meta).map(|(g, m)| graph_json(g, &m.dict)),
        eval: graph.map(|g| g.eval.clone()),
    })
}

/// What reading an index's graphs needs besides the graphs: the token dictionary their
/// ids index, and the settings they were built with (for the train/held-out split).
pub struct GraphMeta {
    /// The token dictionary.
    pub dict: crate::n2g::TokenDictionary,
    /// The graph stage's settings.
    pub settings: crate::n2g::GraphSettings,
}

/// Loads the [`GraphMeta`] of an index whose graph stage has started.
pub fn load_graph_meta(store: &Store) -> anyhow::Result<GraphMeta> {
    let strings: Vec<String> = store
        .meta(crate::n2g::stage::KEY_DICTIONARY)?
        .context("the index has no token dictionary (graphs not built yet)")?;
    let settings = store
        .meta(crate::n2g::KEY_GRAPH_SETTINGS)?
        .context("the index has no graph settings (graphs not built yet)")?;
    Ok(GraphMeta {
        dict: crate::n2g::TokenDictionary::from_strings(strings),
        settings,
    })
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
    let graph: Option<crate::n2g::NeuronGraph> = store.graph(neuron)?;
    let meta = match &graph {
        Some(_) => Some(load_graph_meta(&store)?),
        None => None,
    };
    if args.format == ShowFormat::Dot {
        let (Some(g), Some(GraphMeta { dict: d, .. })) = (&graph, &meta) else {
            anyhow::bail!("neuron {neuron} has no graph yet: run `n2g-index build` to the end");
        };
        print!(
            "{}",
            crate::render::to_dot(&g.graph, d, &format!("neuron {neuron}"))
        );
        return Ok(ExitCode::SUCCESS);
    }
    let shown = args.examples.unwrap_or(scan.examples.len());
    let out = neuron_json(
        &store,
        &vocabulary,
        meta.as_ref(),
        neuron,
        &scan,
        graph.as_ref(),
        shown,
    )?;
    let stats = &scan.stats;
    if args.json || args.format == ShowFormat::Json {
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
    println!(
        "density (log scale, negative ← 0 → positive): |{}|",
        sparkline(&stats.histogram)
    );
    if let (
        Some(g),
        Some(GraphMeta {
            dict: d, settings, ..
        }),
    ) = (&graph, &meta)
    {
        let fire = settings.fire_threshold;
        println!(
            "\ngraph ({} nodes): activating tokens and the context behind them{}",
            g.graph.node_count(),
            if g.graph.paths().iter().any(|p| p.activation < fire) {
                " ([quiet]: a pattern that mostly did not fire in the training windows)"
            } else {
                ""
            }
        );
        print!(
            "{}",
            crate::render::to_text(&g.graph, d, fire, mode == ColorMode::TrueColor)
        );
        let e = &g.eval;
        if e.lines == 0 {
            println!(
                "  (empty: no token of the {} training windows reached {} of the max activation, so no line was made; the held-out windows may hold the strongest examples)",
                e.train_examples, settings.activation_threshold
            );
        }
        println!(
            "\nheld-out top examples ({} windows): firing precision {:.3} recall {:.3} F1 {:.3} (token baseline F1 {:.3}); 1-MSE/Var {:.3} (baseline {:.3})",
            e.test_examples,
            e.graph.firing.precision,
            e.graph.firing.recall,
            e.graph.firing.f1,
            e.baseline.firing.f1,
            e.graph.variance_explained,
            e.baseline.variance_explained
        );
        println!(
            "random windows ({} tokens): false-positive rate {:.4} (baseline {:.4}); {} lines, {} of {} augmented variants kept firing",
            e.random_tokens, e.random_fpr, e.random_fpr_baseline, e.lines, e.positive_variants, e.variants
        );
    } else {
        println!("\n(no graph yet: run `n2g-index build` to the end)");
    }
    println!(
        "\ntop examples (activation, normalised by the max{}):",
        if out.examples.iter().any(|e| e.role.is_some()) {
            "; H = held out from training"
        } else {
            ""
        }
    );
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
            "{:>3}.{} {:>7.3} ({:.2})  {}",
            rank + 1,
            if ex.role == Some("held_out") {
                "H"
            } else {
                " "
            },
            ex.max,
            ex.max / out.max_activation,
            strip
        );
    }
    Ok(ExitCode::SUCCESS)
}
