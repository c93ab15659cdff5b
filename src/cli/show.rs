//! `n2g-index show L:N`: a neuron's statistics and top examples (and graph, once built).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::n2g::{GraphSettings, NeuronGraph, TokenDictionary};
use n2g_index::render::examples::{sparkline, token_strip, ColorMode};
use n2g_index::render::{to_dot, to_text};
use n2g_index::view::{ExampleRole, NeuronView};
use n2g_index::Index;
use n2g_index::NeuronId;

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
    /// Output format: text (default), dot (Graphviz, the graph only), svg (the graph as
    /// the web page draws it) or json.
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
    /// The graph as an SVG picture.
    Svg,
    /// One JSON object.
    Json,
}

/// Runs the command.
pub fn run(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let neuron: NeuronId = args.neuron.parse().map_err(anyhow::Error::msg)?;
    let index = Index::open(&args.index)?;
    if args.format == ShowFormat::Dot {
        let Some((g, dict)) = index.graph(neuron)? else {
            anyhow::bail!("neuron {neuron} has no graph yet: run `n2g-index build` to the end");
        };
        print!("{}", to_dot(&g.graph, dict, &format!("neuron {neuron}")));
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == ShowFormat::Svg {
        let Some(svg) = index.graph_svg(neuron)? else {
            anyhow::bail!("neuron {neuron} has no graph yet: run `n2g-index build` to the end");
        };
        print!("{svg}");
        return Ok(ExitCode::SUCCESS);
    }
    let out = index.neuron(neuron, args.examples)?;
    if args.json || args.format == ShowFormat::Json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mode = ColorMode::detect();
    let units = index.units();
    println!(
        "{} {} · model {}{}",
        units.unit_name(),
        out.neuron,
        index.run().model.name,
        units
            .sae
            .as_ref()
            .map(|s| format!(" · SAE {} at {}", s.path.display(), s.hook))
            .unwrap_or_default()
    );
    println!(
        "max {:.3} · mean {:.4} · active (>0) on {:.1}% of {} tokens",
        out.max_activation,
        out.mean_activation,
        100.0 * out.positive_fraction,
        out.tokens
    );
    println!(
        "density (log scale, negative ← 0 → positive): |{}|",
        sparkline(&out.histogram)
    );
    match (index.graph(neuron)?, index.graph_settings()) {
        (Some((g, dict)), Some(settings)) => print_graph(&g, dict, settings, mode),
        _ => match &out.graph_skipped {
            Some(why) => println!("\n(no graph: {why})"),
            None => println!("\n(no graph yet: run `n2g-index build` to the end)"),
        },
    }
    print_examples(&out, index.run().scan.bos, mode);
    Ok(ExitCode::SUCCESS)
}

/// The graph as text, its evaluation, and why it is empty when it is.
fn print_graph(g: &NeuronGraph, dict: &TokenDictionary, settings: &GraphSettings, mode: ColorMode) {
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
        to_text(&g.graph, dict, fire, mode == ColorMode::TrueColor)
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
}

/// The top examples as coloured token strips, held-out ones marked.
fn print_examples(out: &NeuronView, bos: bool, mode: ColorMode) {
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
        let skip = usize::from(bos);
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
            if ex.role == Some(ExampleRole::HeldOut) {
                "H"
            } else {
                " "
            },
            ex.max,
            ex.max / out.max_activation,
            strip
        );
    }
}
