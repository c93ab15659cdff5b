//! End to end on the real default model: scan a small corpus, build graphs for a few
//! neurons of layer 0, check they are non-empty, predict their own training maxima and
//! beat the per-token baseline on held-out examples in total; batching and prefix
//! sharing give the same graphs as one sequence at a time.

use std::path::PathBuf;

use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec};
use n2g_index::n2g::{build_graphs, BatchConfig, GraphSettings, NeuronGraph};
use n2g_index::scan::{run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::NoProgress;
use n2g_index::{LoadOptions, Model, NeuronId};

#[test]
fn graphs_of_layer_0_beat_the_token_baseline() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load_default(&root, &LoadOptions::default()).unwrap();
    let files = ["wisdom", "science"]
        .iter()
        .map(|f| root.join("data/corpus/fortunes").join(f))
        .collect();
    let corpus = Corpus::read(&CorpusSpec::new(files)).unwrap();
    let windows = tokenize_windows(&corpus, model.tokenizer(), 64, true).unwrap();
    let neurons: Vec<usize> = (0..64).collect();
    let settings = GraphSettings {
        mask_token: model.mask_token(),
        ..GraphSettings::default()
    };
    // The top 20 (split into train and held-out halves) and the extra training windows.
    let tmp = scanned(
        &model,
        &windows,
        &[0],
        neurons.len(),
        20 + settings.extra_train,
    );
    let store = Store::open_or_create(tmp.path()).unwrap();
    let report = build_graphs(
        &model,
        &store,
        &windows,
        &settings,
        BatchConfig::default(),
        &[],
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(report.built, neurons.len());
    // A second run finds everything built and recomputes nothing.
    let again = build_graphs(
        &model,
        &store,
        &windows,
        &settings,
        BatchConfig::default(),
        &[],
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!((again.built, again.skipped), (0, neurons.len()));

    let graphs: Vec<(NeuronId, NeuronGraph)> = store.graphs().unwrap();
    assert_eq!(graphs.len(), neurons.len());
    let non_empty = graphs.iter().filter(|(_, g)| !g.graph.is_empty()).count();
    assert!(
        non_empty * 4 >= graphs.len() * 3,
        "only {non_empty} non-empty graphs"
    );
    let (mut f1, mut base, mut quieted) = (0.0, 0.0, 0);
    for (id, g) in &graphs {
        let e = &g.eval;
        // Half the top 20 held out, the other half and the extra windows train.
        assert_eq!(e.test_examples, 10, "{id}");
        assert_eq!(e.train_examples as usize, 10 + settings.extra_train, "{id}");
        assert!(e.graph.tokens > 0);
        assert!((0.0..=1.0).contains(&e.random_fpr));
        f1 += e.graph.firing.f1;
        base += e.baseline.firing.f1;
        // Every path starts with an activating token; its END holds the mean of lines
        // that fired (above the activation threshold) or, quieted because it matched
        // mostly where the neuron did not fire in the training windows, the mean there.
        for p in g.graph.paths() {
            assert!(p.elements[0].token().is_some());
            assert!(
                p.activation > settings.activation_threshold
                    || p.activation < settings.fire_threshold,
                "{id}: {p:?}"
            );
            quieted += usize::from(p.activation < settings.fire_threshold);
        }
    }
    eprintln!(
        "layer 0, 64 neurons: mean firing F1 {:.3}, token baseline {:.3}, {quieted} paths quieted",
        f1 / 64.0,
        base / 64.0
    );
    assert!(f1 > base, "graph F1 {f1} <= baseline {base}");
}

#[test]
fn graph_settings_cannot_change_midway() {
    let (model, windows) = model_and_mixed_windows();
    let tmp = scanned(&model, &windows, &[0], 4, 4);
    let store = Store::open_or_create(tmp.path()).unwrap();
    let settings = GraphSettings::default();
    build_graphs(
        &model,
        &store,
        &windows,
        &settings,
        BatchConfig::default(),
        &[],
        &mut NoProgress,
    )
    .unwrap();
    let other = GraphSettings {
        importance_threshold: 0.5,
        ..settings
    };
    let err = build_graphs(
        &model,
        &store,
        &windows,
        &other,
        BatchConfig::default(),
        &[],
        &mut NoProgress,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("other settings"), "{err}");
}

/// The default model and the `fixtures/corpus/mixed` corpus in windows of 32 tokens.
fn model_and_mixed_windows() -> (Model, n2g_index::corpus::Windows) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = Model::load_default(&root, &LoadOptions::default()).unwrap();
    let corpus = Corpus::read(&CorpusSpec::new(vec![root.join("fixtures/corpus/mixed")])).unwrap();
    let windows = tokenize_windows(&corpus, model.tokenizer(), 32, true).unwrap();
    (model, windows)
}

/// A store (in a temporary folder) with the scan of neurons `0..neurons` of `layers`
/// done, keeping the top `top_k` windows.
fn scanned(
    model: &Model,
    windows: &n2g_index::corpus::Windows,
    layers: &[usize],
    neurons: usize,
    top_k: usize,
) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path()).unwrap();
    let options = ScanOptions {
        batch_size: 8,
        ..ScanOptions::new(layers.to_vec(), (0..neurons).collect(), top_k)
    };
    run_scan(model, windows, &store, &options, &mut NoProgress).unwrap();
    tmp
}

/// Layers 0 and 1 (one band of two): batching, prefix sharing and running the two
/// layers' chunks together change the work done, not the graphs.
#[test]
fn batching_and_prefix_sharing_change_speed_not_graphs() {
    let (model, windows) = model_and_mixed_windows();
    let settings = GraphSettings {
        mask_token: model.mask_token(),
        // 6 of the 8 examples split, 2 train only.
        extra_train: 2,
        ..GraphSettings::default()
    };
    let configs = [
        BatchConfig {
            band_layers: 2,
            ..BatchConfig::default()
        },
        BatchConfig {
            band_layers: 1,
            ..BatchConfig::default()
        },
        BatchConfig {
            prefix_row_tokens: 0,
            band_layers: 1,
            ..BatchConfig::default()
        },
        BatchConfig::unbatched(),
    ];
    let mut built: Vec<Vec<(NeuronId, NeuronGraph)>> = Vec::new();
    let mut tokens = Vec::new();
    for config in configs {
        let dir = scanned(&model, &windows, &[0, 1], 12, 8);
        let store = Store::open_or_create(dir.path()).unwrap();
        let report = build_graphs(
            &model,
            &store,
            &windows,
            &settings,
            config,
            &[],
            &mut NoProgress,
        )
        .unwrap();
        tokens.push(report.work.tokens);
        built.push(store.graphs().unwrap());
    }
    // A band runs a sequence both layers need once; prefix sharing runs fewer tokens
    // for the same sequences.
    assert!(tokens[0] < tokens[1], "tokens run {tokens:?}");
    assert!(tokens[1] < tokens[2], "tokens run {tokens:?}");
    // Float rounding differs between batch shapes, so a value right at a threshold may
    // flip; all but one neuron must have the very same graph paths, and the scores stay
    // close.
    for other in &built[1..] {
        assert_eq!(other.len(), built[0].len());
        let mut differ = 0;
        for ((id, a), (id2, b)) in built[0].iter().zip(other) {
            assert_eq!(id, id2);
            let paths = |g: &NeuronGraph| -> Vec<Vec<n2g_index::n2g::Element>> {
                g.graph.paths().into_iter().map(|p| p.elements).collect()
            };
            if paths(a) != paths(b) {
                differ += 1;
            }
            let (fa, fb) = (a.eval.graph.firing.f1, b.eval.graph.firing.f1);
            assert!((fa - fb).abs() < 0.2, "{id}: F1 {fa} vs {fb}");
        }
        eprintln!("{differ} of {} graphs differ", built[0].len());
        assert!(differ <= 2, "{differ} of {} graphs differ", built[0].len());
    }
}
