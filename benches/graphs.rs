//! Graph-stage speed: seconds per neuron for 32 neurons of layer 0 and 32 of layer 2 on
//! the default model, batched across neurons (the default) and, in the same run, the same
//! code with batching off (one neuron at a time, one sequence per forward pass, no
//! sharing), and one neuron at a time with each phase's sequences of that neuron batched
//! together. The authors ran one neuron at a time, each prune candidate alone and the
//! masked rows of one text as one batch: between those two, so the two ratios bracket
//! the speed-up over their way. Prints all and the ratios. The default trains each
//! graph on 20 windows (half the top 20 and the 10 ranked after them); the batched run
//! is repeated with the authors' training size (half the top 20 only) for the per-neuron
//! figures compared with the authors' PyTorch run (benches/RESULTS.md).
//!
//! Each line also gives the time per neuron without the fixed set-up (the substitute
//! index and the layer's random-window sample), which a whole layer's 1,536 neurons share
//! but which these 32 pay alone; ratios use the whole times.
//!
//! `cargo bench --bench graphs` (needs `scripts/setup`); `-- --device cuda:0` runs it on a GPU
//! (a `--features cuda` build: `scripts/gpu-check`). The corpus is a fixed slice of
//! the default corpus so the scan stays short; the scan is not timed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec, Windows};
use n2g_index::n2g::{build_graphs, BatchConfig, GraphSettings};
use n2g_index::scan::{run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::Model;
use n2g_index::NoProgress;

mod common;

const NEURONS: usize = 32;

fn main() {
    // As the CLI runs (see `model::keep_freed_memory`).
    n2g_index::model::keep_freed_memory();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = common::load_options();
    let model = Model::load_default(&root, &options).expect("run scripts/setup first");
    let files = ["computers", "cookie"]
        .iter()
        .map(|f| root.join("data/corpus/fortunes").join(f))
        .collect();
    let corpus = Corpus::read(&CorpusSpec::new(files)).unwrap();
    let windows = tokenize_windows(&corpus, model.tokenizer(), 64, true).unwrap();
    let settings = GraphSettings {
        mask_token: model.mask_token(),
        ..GraphSettings::default()
    };
    println!(
        "graph stage, {NEURONS} neurons per layer, corpus {} windows / {} tokens, {} threads, device {}",
        windows.len(),
        windows.total_tokens(),
        rayon::current_num_threads(),
        options.device
    );
    // The authors' training size: the top 20 split in halves, no extra windows.
    let authors_size = GraphSettings {
        extra_train: 0,
        ..settings.clone()
    };
    for layer in [0usize, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let mut times = Vec::new();
        // An untimed run first, so that no timed one pays the process's warm-up (heap
        // growth, first-touch page faults).
        for (name, settings, batch) in [
            ("warm-up", &settings, BatchConfig::default()),
            ("batched", &settings, BatchConfig::default()),
            (
                "no prefix share",
                &settings,
                BatchConfig {
                    prefix_row_tokens: 0,
                    ..BatchConfig::default()
                },
            ),
            ("one at a time", &settings, BatchConfig::unbatched()),
            (
                "per neuron batch",
                &settings,
                BatchConfig {
                    chunk_neurons: 1,
                    prefix_row_tokens: 0,
                    ..BatchConfig::default()
                },
            ),
            ("batched, 10 train", &authors_size, BatchConfig::default()),
        ] {
            let top_k = 20 + settings.extra_train;
            let scanned = tmp.path().join(format!("scanned-{top_k}"));
            if !scanned.exists() {
                scan(&model, &windows, &scanned, layer, top_k);
            }
            let dir = tmp.path().join(name.replace([' ', ','], "-"));
            copy_store(&scanned, &dir);
            let store = Store::open_or_create(&dir).unwrap();
            let t = Instant::now();
            let report = build_graphs(
                &model,
                &store,
                &windows,
                settings,
                batch,
                &[],
                &mut NoProgress,
            )
            .unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(report.built, NEURONS);
            if name == "warm-up" {
                continue;
            }
            println!(
                "  layer {layer} {name:<17} {:>8.4} s/neuron  ({:.4} without the {:.2} s set-up a whole layer shares; {} forward passes, {} sequences of {} tokens, {} tokens run)",
                secs / NEURONS as f64,
                (secs - report.setup.as_secs_f64()) / NEURONS as f64,
                report.setup.as_secs_f64(),
                report.work.passes,
                report.work.run,
                report.work.sequence_tokens,
                report.work.tokens
            );
            times.push(secs);
        }
        println!(
            "  layer {layer} batched is {:.1}x faster than one at a time and {:.1}x faster than one neuron at a time with each phase's sequences batched ({:.2}x from prefix sharing); the authors' training size (10 windows, not 20) takes {:.2}x the default's time",
            times[2] / times[0],
            times[3] / times[0],
            times[1] / times[0],
            times[4] / times[0]
        );
    }
}

/// Scans `layer`'s first neurons into a new store at `dir`, keeping `top_k` windows each.
fn scan(model: &Model, windows: &Windows, dir: &Path, layer: usize, top_k: usize) {
    let store = Store::open_or_create(dir).unwrap();
    let options = ScanOptions::new(vec![layer], (0..NEURONS).collect(), top_k);
    run_scan(model, windows, &store, &options, &mut NoProgress).unwrap();
}

fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("store.redb"), to.join("store.redb")).unwrap();
}
