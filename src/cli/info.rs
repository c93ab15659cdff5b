//! `n2g-index info`: what an index holds.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::n2g::{EndActivation, GraphSettings};
use n2g_index::view::{InfoView, LayerEvalView, SettingsPreset};
use n2g_index::Index;

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
    /// Print one JSON object (schema/info.schema.json).
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&args.index)?;
    let info = index.info()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print_info(&info);
    }
    if args.check {
        let check = index.check()?;
        let values: Vec<String> = check
            .store
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        println!(
            "\ncheck        store: {} values match their checksums ({})",
            check.store.iter().map(|c| c.1).sum::<u64>(),
            values.join(", ")
        );
        match check.search {
            Some((files, values)) => println!(
                "             search index: {files} tantivy files and {values} redb values match their checksums"
            ),
            None => println!("             search index: none (built after the graphs)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_info(info: &InfoView) {
    let (run_model, corpus, scan, progress) =
        (&info.model, &info.corpus, &info.scan, &info.progress);
    let unit = info.units.unit_name();
    println!("index        {}", info.index);
    println!("format       version {}", info.format_version);
    println!(
        "model        {} ({}, {} layers × {} neurons) sha256 {}",
        run_model.name,
        run_model.architecture,
        run_model.n_layers,
        run_model.n_neurons,
        run_model.sha256
    );
    println!("             {}", run_model.path);
    println!("units        {}", info.units.describe());
    if let Some(max) = info.max_density {
        println!(
            "             {} graphs skipped as dense (firing on more than {max} of the tokens, --max-density): {}{}",
            info.skipped_dense.len(),
            info.skipped_dense[..info.skipped_dense.len().min(12)].join(", "),
            if info.skipped_dense.len() > 12 { ", …" } else { "" }
        );
    }
    println!(
        "corpus       {} ({} files, {} documents, {} bytes) fingerprint {}",
        corpus.paths.join(", "),
        corpus.files.len(),
        corpus.documents,
        corpus.bytes,
        &corpus.fingerprint[..16.min(corpus.fingerprint.len())]
    );
    if corpus.invalid_utf8 > 0 || corpus.skipped_lines > 0 {
        println!(
            "             {} invalid UTF-8 sequences replaced, {} bad lines skipped",
            corpus.invalid_utf8, corpus.skipped_lines
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
        scan.top_k,
        scan.window,
        scan.bos
    );
    println!(
        "tokenizer    special tokens in the text {}",
        if scan.literal_special {
            "as their characters (--literal-special)"
        } else {
            "as their ids, as the model's own tokenizer"
        }
    );
    println!(
        "layers       {:?} · {} {unit}s per layer · {} {unit}s{}",
        scan.layers,
        scan.neurons.len(),
        info.neurons,
        scan.shard
            .map(|s| format!(" (shard {s}, blocks of {})", s.block))
            .unwrap_or_default()
    );
    println!(
        "size on disk {:.1} MiB",
        info.size_bytes as f64 / (1 << 20) as f64
    );
    if info.graphs == 0 {
        println!("graphs       none yet");
        return;
    }
    let settings = info.graph_settings.as_ref();
    if let (Some(s), Some(preset)) = (settings, info.preset) {
        println!(
            "settings     {}",
            describe_settings(s, preset, info.mask_token.as_deref().unwrap_or("?"))
        );
    }
    let extra = settings.map_or(0, |s| s.extra_train);
    let top = (scan.top_k as usize).saturating_sub(extra);
    let fraction = settings.map_or(0.5, |s| s.train_fraction);
    let (part, rest) = if fraction == 0.5 {
        ("half".to_string(), "the other half")
    } else {
        (format!("{:.0}% of", fraction * 100.0), "the rest")
    };
    println!(
        "graphs       {} of {} {unit}s; trained on {part} the top {top} windows{}; held-out: {rest}, means per {unit}:\n",
        info.graphs,
        info.neurons,
        if extra > 0 {
            format!(" and the next {extra}")
        } else {
            String::new()
        }
    );
    print!("{}", eval_table(&info.layers));
}

/// One line naming the graph settings of an index: which preset they are (the defaults,
/// the paper's, or neither) and every value.
fn describe_settings(s: &GraphSettings, preset: SettingsPreset, mask: &str) -> String {
    let preset = match preset {
        SettingsPreset::Defaults => "the defaults",
        SettingsPreset::Authors => "the paper's (--authors)",
        SettingsPreset::Custom => "custom",
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
        mask,
        s.random_windows,
        s.extra_train,
    )
}

/// Per-layer means of the graph evaluation, graph beside the per-token baseline.
fn eval_table(layers: &[LayerEvalView]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "layer  neurons  firing P   R     F1  (baseline F1)  non-firing F1  1-MSE/Var (baseline)  random FPR (baseline)  lines  variants kept"
    );
    for s in layers {
        let _ = writeln!(
            out,
            "{:>5}  {:>7}  {:>8.3} {:>5.3} {:>5.3}  ({:>5.3})        {:>5.3}          {:>6.3} ({:>6.3})       {:>6.4} ({:>6.4})      {:>5.1}  {:>5.1}%",
            s.layer,
            s.neurons,
            s.precision,
            s.recall,
            s.f1,
            s.baseline_f1,
            s.non_firing_f1,
            s.variance_explained,
            s.baseline_variance_explained,
            s.random_fpr,
            s.random_fpr_baseline,
            s.lines,
            100.0 * s.variants_kept
        );
    }
    out
}
