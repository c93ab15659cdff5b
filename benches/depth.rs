//! Graph-stage cost at depth, each layer alone against a band of two neighbouring layers
//! (`BatchConfig::band_layers`), measured in the same run: for each of layers 5, 10, 20
//! and 29, the band that holds it (4-5, 10-11, 20-21, 28-29) is scanned once, then its
//! graphs are built from copies of that scan with bands of 1 and of 2 layers, the order
//! alternating from band to band so that drift does not favour one. Prints seconds per
//! neuron, the forward tokens run, and the ratio.
//!
//! With a band of 2, a sequence that neurons of both layers need (the same pruned text of
//! a window both rank high, its masked and substituted rows) runs once, to the deeper
//! layer; how much that saves grows with the neurons that share a chunk.
//!
//! `cargo bench --bench depth` (needs `scripts/setup`). `N2G_BENCH_NEURONS` (default 64)
//! neurons per layer, `N2G_BENCH_LAYERS` (default `5,10,20,29`); `-- --device cuda:0` on a
//! GPU build. The corpus is the `wisdom` fortune file (16,253 tokens).

use std::path::{Path, PathBuf};
use std::time::Instant;

use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec, Windows};
use n2g_index::n2g::{build_graphs, BatchConfig, GraphSettings};
use n2g_index::scan::{run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::Model;
use n2g_index::NoProgress;

mod common;

fn main() {
    n2g_index::model::keep_freed_memory();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = common::load_options();
    let model = Model::load_default(&root, &options).expect("run scripts/setup first");
    let neurons: usize = env_or("N2G_BENCH_NEURONS", "64").parse().expect("a count");
    let layers: Vec<usize> = env_or("N2G_BENCH_LAYERS", "5,10,20,29")
        .split(',')
        .map(|l| l.trim().parse().expect("a layer"))
        .collect();
    let corpus = Corpus::read(&CorpusSpec::new(vec![
        root.join("data/corpus/fortunes/wisdom")
    ]))
    .unwrap();
    let windows = tokenize_windows(&corpus, model.tokenizer(), 64, true).unwrap();
    let settings = GraphSettings {
        mask_token: model.mask_token(),
        ..GraphSettings::default()
    };
    println!(
        "graph stage by depth, {neurons} neurons per layer, corpus {} windows / {} tokens, {} threads, device {}",
        windows.len(),
        windows.total_tokens(),
        rayon::current_num_threads(),
        options.device
    );
    for (i, &layer) in layers.iter().enumerate() {
        let first = layer / 2 * 2;
        let band_layers = vec![first, first + 1];
        let tmp = tempfile::tempdir().unwrap();
        let scanned = tmp.path().join("scanned");
        scan(&model, &windows, &scanned, &band_layers, neurons, &settings);
        let mut modes = [1usize, 2];
        if i % 2 == 1 {
            modes.reverse();
        }
        let mut secs = [0.0f64; 3];
        for band in modes {
            let dir = tmp.path().join(format!("band-{band}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(scanned.join("store.redb"), dir.join("store.redb")).unwrap();
            let store = Store::open_or_create(&dir).unwrap();
            let batch = BatchConfig {
                band_layers: band,
                ..BatchConfig::default()
            };
            let t = Instant::now();
            let report = build_graphs(
                &model,
                &store,
                &windows,
                &settings,
                batch,
                &[],
                &mut NoProgress,
            )
            .unwrap();
            let took = t.elapsed().as_secs_f64();
            assert_eq!(report.built, 2 * neurons);
            secs[band] = took;
            println!(
                "  layers {first}-{} band {band}: {:>7.3} s/neuron ({} sequences run for {} requested, {} tokens, {} passes)",
                first + 1,
                took / (2 * neurons) as f64,
                report.work.run,
                report.work.requested,
                report.work.tokens,
                report.work.passes
            );
        }
        println!(
            "  layers {first}-{}: a band of 2 takes {:.3} of the time of each layer alone ({:.1}% less)",
            first + 1,
            secs[2] / secs[1],
            100.0 * (1.0 - secs[2] / secs[1])
        );
    }
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

/// Scans the first `neurons` of `layers` into a new store at `dir`.
fn scan(
    model: &Model,
    windows: &Windows,
    dir: &Path,
    layers: &[usize],
    neurons: usize,
    settings: &GraphSettings,
) {
    let store = Store::open_or_create(dir).unwrap();
    let top_k = 20 + settings.extra_train;
    let options = ScanOptions::new(layers.to_vec(), (0..neurons).collect(), top_k);
    run_scan(model, windows, &store, &options, &mut NoProgress).unwrap();
}
