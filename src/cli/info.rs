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
    /// Also read every stored value and every search index file and check their
    /// checksums (reads the whole index); exits non-zero naming the first damaged one.
    #[arg(long)]
    pub check: bool,
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
        anyhow::bail!(
            "{}: no build recorded in this index yet",
            store.path().display()
        );
    };
    let progress = store.scan_progress()?;
    println!("index        {}", args.index.display());
    println!("format       version {FORMAT_VERSION}");
    println!(
        "model        {} ({}, {} layers × {} neurons) sha256 {}",
        run.model.name,
        run.model.architecture,
        run.model.n_layers,
        run.model.n_neurons,
        run.model.sha256
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
        "scan         {}: {}/{} tokens, {} windows; {} windows kept per neuron, window {}, BOS {}",
        if progress.complete {
            "complete"
        } else {
            "INCOMPLETE (re-run build to resume)"
        },
        progress.tokens_done,
        progress.tokens_total,
        progress.windows_total,
        run.scan.top_k,
        run.scan.window,
        run.scan.bos
    );
    println!(
        "tokenizer    special tokens in the text {}",
        if run.scan.literal_special {
            "as their characters (--literal-special)"
        } else {
            "as their ids, as the model's own tokenizer"
        }
    );
    println!(
        "layers       {:?} · {} neurons per layer · {} neurons",
        run.scan.layers,
        run.scan.neurons.len(),
        run.scan.layers.len() * run.scan.neurons.len()
    );
    println!(
        "size on disk {:.1} MiB",
        dir_size(&args.index) as f64 / (1 << 20) as f64
    );
    let graphs: Vec<(crate::NeuronId, crate::n2g::NeuronGraph)> = store.graphs()?;
    if graphs.is_empty() {
        println!("graphs       none yet");
    } else {
        let settings = store.meta::<crate::n2g::GraphSettings>(crate::n2g::KEY_GRAPH_SETTINGS)?;
        let extra = settings.as_ref().map_or(0, |s| s.extra_train);
        if let Some(settings) = &settings {
            let vocab: Vec<String> = store
                .meta(crate::store::KEY_VOCABULARY)?
                .unwrap_or_default();
            println!("settings     {}", describe_settings(settings, &vocab));
        }
        let top = (run.scan.top_k as usize).saturating_sub(extra);
        let fraction = settings.as_ref().map_or(0.5, |s| s.train_fraction);
        let (part, rest) = if fraction == 0.5 {
            ("half".to_string(), "the other half")
        } else {
            (format!("{:.0}% of", fraction * 100.0), "the rest")
        };
        println!(
            "graphs       {} of {} neurons; trained on {part} the top {top} windows{}; held-out: {rest}, means per neuron:\n",
            graphs.len(),
            run.scan.layers.len() * run.scan.neurons.len(),
            if extra > 0 {
                format!(" and the next {extra}")
            } else {
                String::new()
            }
        );
        print!("{}", eval_table(&graphs));
    }
    if args.check {
        let expected = progress
            .complete
            .then_some((run.scan.layers.len() * run.scan.neurons.len()) as u64);
        check(&store, &args.index, expected)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--check`: every checksum of the store and, when built, of the search index; and,
/// once the scan is complete, one neuron record for each of the `neurons` it covered (a
/// damaged tree page could hide records without failing a checksum).
fn check(store: &Store, index: &Path, neurons: Option<u64>) -> anyhow::Result<()> {
    let counts = store.verify()?;
    let found = counts.iter().find(|c| c.0 == "neurons").map_or(0, |c| c.1);
    if let Some(expected) = neurons.filter(|&n| n != found) {
        anyhow::bail!(
            "{}: the store is damaged: {found} neuron records where the completed scan wrote {expected}; build the index again into a new --index folder",
            store.path().display()
        );
    }
    let values: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    println!(
        "\ncheck        store: {} values match their checksums ({})",
        counts.iter().map(|c| c.1).sum::<u64>(),
        values.join(", ")
    );
    let dir = index.join("search");
    if dir.join("CURRENT").exists() {
        let (files, values) = crate::search::SearchIndex::open(&dir)?.verify()?;
        println!(
            "             search index: {files} tantivy files and {values} redb values match their checksums"
        );
    } else {
        println!("             search index: none (built after the graphs)");
    }
    Ok(())
}

/// One line naming the graph settings of an index: which preset they are (the defaults,
/// the paper's, or neither) and every value.
fn describe_settings(s: &crate::n2g::GraphSettings, vocab: &[String]) -> String {
    use crate::n2g::{EndActivation, GraphSettings};
    let with_mask = |preset: GraphSettings| GraphSettings {
        mask_token: s.mask_token,
        ..preset
    };
    let preset = if *s == with_mask(GraphSettings::default()) {
        "the defaults"
    } else if *s == with_mask(GraphSettings::authors()) {
        "the paper's (--authors)"
    } else {
        "custom"
    };
    let lengths: Vec<String> = s.prune_lengths.iter().map(|l| l.to_string()).collect();
    format!(
        "{preset}: activation {} · importance {} · fire {} · seeds per window {} · substitutes per word {}{} · token alone {} · END {}{} · prune lengths {} at {}% · post-context {} · train fraction {} · mask token {} {:?} · {} random windows · {} extra training windows",
        s.activation_threshold,
        s.importance_threshold,
        s.fire_threshold,
        s.seeds_per_example,
        s.augment,
        if s.augment_activating { " (activating tokens too)" } else { "" },
        if s.token_alone { "on" } else { "off" },
        match s.end_activation {
            EndActivation::Mean => "mean",
            EndActivation::Max => "max",
            EndActivation::First => "first",
        },
        if s.end_min_firing > 0.0 {
            format!(", quiet below {}% firing", s.end_min_firing * 100.0)
        } else {
            String::new()
        },
        lengths.join(","),
        s.prune_tolerance * 100.0,
        s.post_context,
        s.train_fraction,
        s.mask_token,
        vocab.get(s.mask_token as usize).map_or("?", String::as_str),
        s.random_windows,
        s.extra_train,
    )
}

/// Per-layer means of the graph evaluation, graph beside the per-token baseline.
pub fn eval_table(graphs: &[(crate::NeuronId, crate::n2g::NeuronGraph)]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    #[derive(Default)]
    struct Sum {
        n: usize,
        gp: f64,
        gr: f64,
        gf: f64,
        bf: f64,
        gv: f64,
        bv: f64,
        fpr: f64,
        bfpr: f64,
        nf: f64,
        lines: f64,
        pos: f64,
        var: f64,
    }
    let mut by_layer: BTreeMap<u16, Sum> = BTreeMap::new();
    for (id, g) in graphs {
        let e = &g.eval;
        let s = by_layer.entry(id.layer).or_default();
        s.n += 1;
        s.gp += e.graph.firing.precision;
        s.gr += e.graph.firing.recall;
        s.gf += e.graph.firing.f1;
        s.bf += e.baseline.firing.f1;
        s.gv += e.graph.variance_explained;
        s.bv += e.baseline.variance_explained;
        s.fpr += e.random_fpr;
        s.bfpr += e.random_fpr_baseline;
        s.nf += e.graph.non_firing.f1;
        s.lines += e.lines as f64;
        s.pos += e.positive_variants as f64;
        s.var += e.variants as f64;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "layer  neurons  firing P   R     F1  (baseline F1)  non-firing F1  1-MSE/Var (baseline)  random FPR (baseline)  lines  variants kept"
    );
    for (layer, s) in &by_layer {
        let n = s.n as f64;
        let _ = writeln!(
            out,
            "{layer:>5}  {:>7}  {:>8.3} {:>5.3} {:>5.3}  ({:>5.3})        {:>5.3}          {:>6.3} ({:>6.3})       {:>6.4} ({:>6.4})      {:>5.1}  {:>5.1}%",
            s.n,
            s.gp / n,
            s.gr / n,
            s.gf / n,
            s.bf / n,
            s.nf / n,
            s.gv / n,
            s.bv / n,
            s.fpr / n,
            s.bfpr / n,
            s.lines / n,
            if s.var > 0.0 { 100.0 * s.pos / s.var } else { 0.0 }
        );
    }
    out
}
