//! The scan against brute force: every window run alone through the model, all
//! activations sorted; the stored top-k and statistics must agree.

use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec};
use n2g_index::scan::{run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::NoProgress;
use n2g_index::{LoadOptions, Model, NeuronId};

mod common;
use common::root;

fn corpus() -> Corpus {
    Corpus::read(&CorpusSpec::new(vec![root().join("fixtures/corpus/mixed")])).unwrap()
}

#[test]
fn stored_top_k_equals_brute_force() {
    let model = Model::load_default(root(), &LoadOptions::default()).unwrap();
    let corpus = corpus();
    // Window 16 cuts the longer documents into several windows, short last ones kept.
    let windows = tokenize_windows(&corpus, model.tokenizer(), 16, true).unwrap();
    assert!(windows.len() > corpus.documents.len());
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path()).unwrap();
    let layers = vec![0, 29];
    let neurons: Vec<usize> = (0..48).chain([700, 1200, 1535]).collect();
    let k = 5;
    let report = run_scan(
        &model,
        &windows,
        &store,
        &ScanOptions {
            layers: layers.clone(),
            neurons: neurons.clone(),
            top_k: k,
            batch_size: 3,
            checkpoint_every: 2,
            max_batches: None,
            shard: None,
            band: 1,
        },
        &mut NoProgress,
    )
    .unwrap();
    assert!(report.complete);

    // Brute force: each window alone, every activation kept.
    let mut per_window = Vec::new(); // [window][layer] -> activations
    for w in windows.iter() {
        per_window.push(model.activations(&[w.ids.to_vec()], &layers).unwrap());
    }
    let mut compared = 0;
    for (li, &layer) in layers.iter().enumerate() {
        for &n in &neurons {
            // (max, argmax) of every window, BOS (position 0) excluded.
            let mut ranked: Vec<(f32, u32, u16)> = Vec::new();
            let (mut count, mut sum, mut max) = (0u64, 0f64, f32::NEG_INFINITY);
            for (wid, acts) in per_window.iter().enumerate() {
                let a = &acts[li];
                let len = a.lengths[0];
                let mut best = (f32::NEG_INFINITY, 0u16);
                for t in 1..len {
                    let v = a.get(0, t, n);
                    if v > best.0 {
                        best = (v, t as u16);
                    }
                    count += 1;
                    sum += v as f64;
                    max = max.max(v);
                }
                ranked.push((best.0, wid as u32, best.1));
            }
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let stored = store.neuron_scan(NeuronId::new(layer, n)).unwrap().unwrap();
            assert_eq!(stored.examples.len(), k);
            for (ex, want) in stored.examples.iter().zip(&ranked) {
                assert_eq!(ex.window, want.1, "{layer}:{n} window");
                assert_eq!(ex.position, want.2, "{layer}:{n} position");
                let tol = 1e-4 * (1.0 + want.0.abs());
                assert!((ex.activation - want.0).abs() <= tol, "{layer}:{n} value");
                // The stored activation trace equals the brute-force one.
                let a = &per_window[want.1 as usize][li];
                assert_eq!(ex.activations.len(), a.lengths[0]);
                for (t, &v) in ex.activations.iter().enumerate() {
                    let w = a.get(0, t, n);
                    assert!((v - w).abs() <= 1e-4 * (1.0 + w.abs()), "{layer}:{n} trace");
                }
                // The window's tokens are stored and equal the corpus window.
                let rec = store.window(ex.window).unwrap().unwrap();
                assert_eq!(rec.ids, windows.get(ex.window).ids);
            }
            assert_eq!(stored.stats.count, count);
            assert!((stored.stats.max - max).abs() <= 1e-4 * (1.0 + max.abs()));
            let mean = sum / count as f64;
            assert!((stored.stats.mean() - mean).abs() <= 1e-4 * (1.0 + mean.abs()));
            assert_eq!(
                stored
                    .stats
                    .histogram
                    .iter()
                    .map(|&c| c as u64)
                    .sum::<u64>(),
                count
            );
            compared += 1;
        }
    }
    assert_eq!(compared, layers.len() * neurons.len());
    // Exactly the referenced windows are stored.
    let mut referenced: Vec<u32> = store
        .neuron_scans()
        .unwrap()
        .iter()
        .flat_map(|(_, s)| s.examples.iter().map(|e| e.window).collect::<Vec<_>>())
        .collect();
    referenced.sort_unstable();
    referenced.dedup();
    assert_eq!(store.window_ids().unwrap(), referenced);
}

#[test]
fn same_inputs_give_the_same_store_and_resume_matches() {
    let model = Model::load_default(root(), &LoadOptions::default()).unwrap();
    let corpus = corpus();
    let windows = tokenize_windows(&corpus, model.tokenizer(), 12, true).unwrap();
    let options = ScanOptions {
        layers: vec![1],
        neurons: (0..64).collect(),
        top_k: 4,
        batch_size: 2,
        checkpoint_every: 3,
        max_batches: None,
        shard: None,
        band: 1,
    };
    let dumps: Vec<String> = (0..2)
        .map(|_| {
            let tmp = tempfile::tempdir().unwrap();
            let store = Store::open_or_create(tmp.path()).unwrap();
            run_scan(&model, &windows, &store, &options, &mut NoProgress).unwrap();
            store.dump().unwrap()
        })
        .collect();
    assert_eq!(dumps[0], dumps[1]);
    // Stop after 4 batches (one checkpoint at 3 plus the stop), then resume in steps.
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path()).unwrap();
    let first = run_scan(
        &model,
        &windows,
        &store,
        &ScanOptions {
            max_batches: Some(4),
            ..options.clone()
        },
        &mut NoProgress,
    )
    .unwrap();
    assert!(!first.complete);
    let second = run_scan(
        &model,
        &windows,
        &store,
        &ScanOptions {
            max_batches: Some(5),
            ..options.clone()
        },
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(second.resumed_at, 4);
    let last = run_scan(&model, &windows, &store, &options, &mut NoProgress).unwrap();
    assert!(last.complete);
    assert_eq!(store.dump().unwrap(), dumps[0]);
}
