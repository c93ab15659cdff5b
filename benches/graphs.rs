//! Graph-stage speed: seconds per neuron for 32 neurons of layer 0 and 32 of layer 2 on
//! the default model, batched across neurons (the default) and, in the same run, the same
//! code with batching off (one neuron at a time, one sequence per forward pass, no
//! sharing — as the authors ran it). Prints both and the ratio.
//!
//! `cargo bench --bench graphs` (needs `scripts/setup`). The corpus is a fixed slice of
//! the default corpus so the scan stays short; the scan is not timed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec};
use n2g_index::n2g::{build_graphs, BatchConfig, GraphSettings};
use n2g_index::scan::{run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::{LoadOptions, Model};

const NEURONS: usize = 32;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model =
        Model::load_default(&root, &LoadOptions::default()).expect("run scripts/setup first");
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
        "graph stage, {NEURONS} neurons per layer, corpus {} windows / {} tokens, {} threads",
        windows.len(),
        windows.total_tokens(),
        rayon::current_num_threads()
    );
    for layer in [0usize, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let scanned = tmp.path().join("scanned");
        {
            let store = Store::open_or_create(&scanned).unwrap();
            run_scan(
                &model,
                &windows,
                &store,
                &ScanOptions {
                    layers: vec![layer],
                    neurons: (0..NEURONS).collect(),
                    top_k: 20 + settings.extra_train,
                    batch_size: 16,
                    checkpoint_every: 1000,
                    progress: false,
                    max_batches: None,
                },
            )
            .unwrap();
        }
        let mut times = Vec::new();
        for (name, batch) in [
            ("batched", BatchConfig::default()),
            (
                "no prefix share",
                BatchConfig {
                    prefix_row_tokens: 0,
                    ..BatchConfig::default()
                },
            ),
            ("one at a time", BatchConfig::unbatched()),
        ] {
            let dir = tmp.path().join(name.replace(' ', "-"));
            copy_store(&scanned, &dir);
            let store = Store::open_or_create(&dir).unwrap();
            let t = Instant::now();
            let report = build_graphs(&model, &store, &windows, &settings, batch, false).unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(report.built, NEURONS);
            println!(
                "  layer {layer} {name:<15} {:>8.4} s/neuron  ({} forward passes, {} sequences of {} tokens, {} tokens run)",
                secs / NEURONS as f64,
                report.work.passes,
                report.work.run,
                report.work.sequence_tokens,
                report.work.tokens
            );
            times.push(secs);
        }
        println!(
            "  layer {layer} batched is {:.1}x faster than one at a time ({:.2}x from prefix sharing)",
            times[2] / times[0],
            times[1] / times[0]
        );
    }
}

fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("store.redb"), to.join("store.redb")).unwrap();
}
