//! Scan throughput against the bare forward pass, measured in the same run on the same
//! batches: the scan's bookkeeping (top-k, statistics, checkpoints) should cost almost
//! nothing next to the forward pass (the scan should keep at least 90% of the bare
//! forward pass's tokens/s).
//!
//! `cargo bench --bench scan` (needs `scripts/setup`); `-- --device cuda:0` runs it on a GPU
//! (a `--features cuda` build: `scripts/gpu-check`). Layers 0..=2, all 1536 neurons of
//! each, on a fixed slice of the default corpus.

use std::path::PathBuf;
use std::time::Instant;

use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec};
use n2g_index::scan::{batch_plan, run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::Model;
use n2g_index::NoProgress;

mod common;

fn main() {
    // As the CLI runs (see `model::keep_freed_memory`).
    n2g_index::model::keep_freed_memory();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = common::load_options();
    let model = Model::load_default(&root, &options).expect("run scripts/setup first");
    let files = ["wisdom", "science", "work"]
        .iter()
        .map(|f| root.join("data/corpus/fortunes").join(f))
        .collect();
    let corpus = Corpus::read(&CorpusSpec::new(files)).unwrap();
    let windows = tokenize_windows(&corpus, model.tokenizer(), 64, true).unwrap();
    let layers = vec![0, 1, 2];
    let batch_size = 16;
    let tokens = windows.total_tokens() as f64;
    println!(
        "scan vs bare forward: {} windows, {} tokens, layers 0..=2 x 1536 neurons, batch {batch_size}, {} threads, device {}",
        windows.len(),
        tokens,
        rayon::current_num_threads(),
        options.device
    );
    let plan = batch_plan(&windows, batch_size);
    let mut forward = Vec::new();
    let mut scan = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        for batch in &plan {
            let seqs: Vec<Vec<u32>> = batch.iter().map(|&w| windows.get(w).ids.to_vec()).collect();
            std::hint::black_box(model.activations(&seqs, &layers).unwrap());
        }
        forward.push(tokens / t.elapsed().as_secs_f64());
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(tmp.path()).unwrap();
        let t = Instant::now();
        run_scan(
            &model,
            &windows,
            &store,
            &ScanOptions {
                layers: layers.clone(),
                neurons: (0..1536).collect(),
                top_k: 20,
                batch_size,
                checkpoint_every: 200,
                max_batches: None,
                shard: None,
                band: 1,
            },
            &mut NoProgress,
        )
        .unwrap();
        scan.push(tokens / t.elapsed().as_secs_f64());
        println!(
            "  round {round}: bare forward {:>7.0} tokens/s   scan {:>7.0} tokens/s   ratio {:.1}%",
            forward[round],
            scan[round],
            100.0 * scan[round] / forward[round]
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (f, s) = (median(&mut forward), median(&mut scan));
    println!(
        "median: bare forward {f:.0} tokens/s, scan {s:.0} tokens/s, scan = {:.1}% of forward",
        100.0 * s / f
    );
}
