//! Load benchmark of the web server on a synthetic index.
//!
//! `cargo bench --bench serve` (`N2G_BENCH_NEURONS`, default 1,000,000;
//! `N2G_BENCH_SECONDS`, default 30; `N2G_BENCH_CLIENTS`, default 16; `N2G_BENCH_KEEP=DIR`
//! keeps the synthetic index in DIR).
//! Builds a store of synthetic neurons with the generator of `benches/search.rs` (graphs,
//! statistics, 4 top examples each) and its search index, serves it on loopback, and
//! runs the clients for the given time over a mix of `/api/query` (the 24 query shapes
//! of the search benchmark), `/api/neuron` and `/api/similar`. Prints requests/s,
//! p50/p99 per route and errors; the size of neuron pages; and, with the default model,
//! `POST /api/predict` on a 64-token prompt at layer 2 of a small real index.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use n2g_index::model::Architecture;
use n2g_index::n2g::{
    Element, EndActivation, Graph, GraphSettings, Line, NeuronEval, NeuronGraph, Prf, Scores,
    KEY_DICTIONARY, KEY_GRAPH_SETTINGS,
};
use n2g_index::serve::{App, Limits, Server};
use n2g_index::store::records::HISTOGRAM_BINS;
use n2g_index::store::{
    Checkpoint, CorpusRecord, Example, ModelRecord, NeuronScan, NeuronStats, RunMeta, ScanProgress,
    ScanSettings, Store, WindowRecord, FORMAT_VERSION, KEY_VOCABULARY,
};
use n2g_index::{BuildOptions, Index, NeuronId, NoProgress};

#[path = "../tests/common/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "search.rs"]
mod search;

use search::{Rng, Synth, LAYERS};

const WINDOWS: u32 = 2000;
const WINDOW: usize = 24;
const EXAMPLES: usize = 4;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn prf(rng: &mut Rng) -> Prf {
    let (precision, recall) = (rng.unit(), rng.unit());
    Prf {
        precision,
        recall,
        f1: 2.0 * precision * recall / (precision + recall).max(1e-9),
        support: 10,
    }
}

fn scores(rng: &mut Rng) -> Scores {
    Scores {
        firing: prf(rng),
        non_firing: prf(rng),
        variance_explained: rng.unit(),
        tokens: 100,
    }
}

/// One synthetic neuron: its scan record (statistics, examples) and its graph.
fn neuron(
    synth: &Synth,
    ids: &HashMap<&str, u32>,
    i: u64,
    per_layer: u64,
) -> (NeuronId, NeuronScan, NeuronGraph) {
    let paths = synth.neuron(i, per_layer);
    let mut rng = Rng(i ^ 0x5eed);
    let lines: Vec<Line> = paths
        .paths
        .iter()
        .map(|p| Line {
            elements: p
                .tokens
                .iter()
                .map(|t| {
                    t.as_deref()
                        .map_or(Element::Ignore, |t| Element::Token(ids[t]))
                })
                .collect(),
            importance: p
                .tokens
                .iter()
                .map(|t| if t.is_some() { 0.8 } else { 0.0 })
                .collect(),
            activation: p.activation,
        })
        .collect();
    let graph = Graph::build(&lines, EndActivation::Mean);
    let eval = NeuronEval {
        graph: scores(&mut rng),
        baseline: scores(&mut rng),
        random_fpr: rng.unit() / 100.0,
        random_fpr_baseline: rng.unit() / 50.0,
        random_tokens: 10_000,
        train_examples: 3,
        test_examples: 1,
        lines: lines.len() as u32,
        variants: 10,
        positive_variants: 5,
        max_activation: 2.0,
    };
    let examples: Vec<Example> = (0..EXAMPLES)
        .map(|e| {
            let activations: Vec<f32> =
                (0..WINDOW).map(|_| rng.unit() as f32 * 2.0 - 0.3).collect();
            let position = 1 + rng.below(WINDOW as u64 - 1) as usize;
            Example {
                window: rng.below(WINDOWS as u64) as u32,
                position: position as u16,
                activation: 2.0 - e as f32 * 0.1,
                activations,
            }
        })
        .collect();
    let mut histogram = vec![0u32; HISTOGRAM_BINS];
    for (b, h) in histogram.iter_mut().enumerate() {
        *h = (rng.below(1000) as f64 * (-((b as f64 - 64.0) / 12.0).powi(2)).exp()) as u32;
    }
    let stats = NeuronStats {
        max: 2.0,
        sum: 1000.0,
        count: 100_000,
        positive: 30_000,
        histogram,
    };
    (
        paths.neuron,
        NeuronScan { examples, stats },
        NeuronGraph { graph, eval },
    )
}

/// Writes the synthetic index of `n` neurons into `dir` and builds its search index.
fn build(dir: &Path, n: u64, synth: &Synth) {
    let per_layer = n.div_ceil(LAYERS);
    let store = Store::open_or_create(dir).expect("store");
    store
        .check_or_set_run(&RunMeta {
            format_version: FORMAT_VERSION,
            model: ModelRecord {
                name: "synthetic".into(),
                path: "/nonexistent/synthetic.gguf".into(),
                sha256: String::new(),
                architecture: Architecture::Llama,
                n_layers: LAYERS as u32,
                n_neurons: per_layer as u32,
                bos_id: None,
            },
            corpus: CorpusRecord {
                paths: vec!["synthetic".into()],
                files: vec!["synthetic".into()],
                fingerprint: String::new(),
                documents: WINDOWS as u64,
                bytes: 0,
                invalid_utf8: 0,
                skipped_lines: 0,
            },
            scan: ScanSettings {
                layers: (0..LAYERS as u32).collect(),
                neurons: (0..per_layer as u32).collect(),
                top_k: EXAMPLES as u32,
                extra_train: 0,
                window: WINDOW as u32,
                batch_size: 1,
                bos: false,
                literal_special: false,
                shard: None,
            },
        })
        .expect("run");
    store
        .put_meta(KEY_VOCABULARY, &synth.tokens)
        .expect("vocabulary");
    store
        .put_meta(KEY_DICTIONARY, &synth.tokens)
        .expect("dictionary");
    store
        .put_meta(KEY_GRAPH_SETTINGS, &GraphSettings::default())
        .expect("settings");
    let mut rng = Rng(3);
    let windows: Vec<(u32, WindowRecord)> = (0..WINDOWS)
        .map(|w| {
            let ids = (0..WINDOW).map(|_| rng.below(2000) as u32).collect();
            (
                w,
                WindowRecord {
                    doc: w,
                    start: 0,
                    ids,
                },
            )
        })
        .collect();
    let ids: HashMap<&str, u32> = synth
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i as u32))
        .collect();
    let progress = ScanProgress {
        complete: true,
        ..ScanProgress::default()
    };
    let mut first = true;
    for start in (0..n).step_by(20_000) {
        let chunk: Vec<_> = (start..(start + 20_000).min(n))
            .map(|i| neuron(synth, &ids, i, per_layer))
            .collect();
        store
            .commit(&Checkpoint {
                progress: Some(&progress),
                neurons: chunk.iter().map(|(id, scan, _)| (*id, scan)).collect(),
                windows: if first { windows.clone() } else { Vec::new() },
                drop_windows: Vec::new(),
            })
            .expect("neurons");
        first = false;
        let graphs: Vec<(NeuronId, &NeuronGraph)> =
            chunk.iter().map(|(id, _, g)| (*id, g)).collect();
        store.put_graphs(&graphs).expect("graphs");
    }
    drop(store);
    Index::reindex(dir).expect("reindex");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The clients' loop: (route, ms, ok) of every request until `end`.
fn client(
    addr: SocketAddr,
    seed: u64,
    n: u64,
    end: Instant,
    queries: Arc<Vec<String>>,
) -> Vec<(usize, f64, bool)> {
    let per_layer = n.div_ceil(LAYERS);
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    while Instant::now() < end {
        let i = rng.below(n);
        let id = format!("{}:{}", i / per_layer, i % per_layer);
        let (route, path) = match rng.below(10) {
            0..=3 => {
                let q = &queries[rng.below(queries.len() as u64) as usize];
                (0, format!("/api/query?q={}&limit=20", url_encode(q)))
            }
            4..=7 => (1, format!("/api/neuron/{id}")),
            _ => (2, format!("/api/similar/{id}?top=10")),
        };
        let t = Instant::now();
        let ok = matches!(http::request(addr, "GET", &path, None), Ok(r) if r.status == 200);
        out.push((route, t.elapsed().as_secs_f64() * 1e3, ok));
    }
    out
}

fn load(addr: SocketAddr, n: u64, synth: &Synth) {
    let seconds = env("N2G_BENCH_SECONDS", 30);
    let clients = env("N2G_BENCH_CLIENTS", 16);
    let mut rng = Rng(11);
    let queries: Arc<Vec<String>> = Arc::new(
        (0..10)
            .flat_map(|_| search::shapes(synth, &mut rng))
            .collect(),
    );
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let queries = queries.clone();
            std::thread::spawn(move || client(addr, 100 + c, n, end, queries))
        })
        .collect();
    let results: Vec<(usize, f64, bool)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "load: {clients} clients, {secs:.1} s, {} requests, {:.0} requests/s, {} errors",
        results.len(),
        results.len() as f64 / secs,
        results.iter().filter(|r| !r.2).count()
    );
    for (route, name, goal) in [
        (0, "/api/query", 20.0),
        (1, "/api/neuron", 20.0),
        (2, "/api/similar", 40.0),
    ] {
        let mut ms: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == route)
            .map(|r| r.1)
            .collect();
        ms.sort_by(f64::total_cmp);
        let errors = results.iter().filter(|r| r.0 == route && !r.2).count();
        let p99 = percentile(&ms, 0.99);
        println!(
            "  {name:<13} {:>7} requests  p50 {:>6.2} ms  p99 {p99:>6.2} ms (goal ≤ {goal} ms, {:.2}× of it)  max {:>7.2} ms  errors {errors}",
            ms.len(),
            percentile(&ms, 0.5),
            p99 / goal,
            ms.last().copied().unwrap_or(0.0),
        );
    }
}

/// The requests that the CLI and the server both answer: 12 queries and 12 neurons.
fn same_requests(n: u64, synth: &Synth) -> Vec<(Vec<String>, String)> {
    let per_layer = n.div_ceil(LAYERS);
    let mut rng = Rng(17);
    let queries = search::shapes(synth, &mut rng);
    let mut out: Vec<(Vec<String>, String)> = queries
        .iter()
        .step_by(2)
        .take(12)
        .map(|q| {
            let args = vec!["query".into(), q.clone(), "--limit".into(), "20".into()];
            (args, format!("/api/query?q={}&limit=20", url_encode(q)))
        })
        .collect();
    for _ in 0..12 {
        let i = rng.below(n);
        let id = format!("{}:{}", i / per_layer, i % per_layer);
        out.push((vec!["show".into(), id.clone()], format!("/api/neuron/{id}")));
    }
    out
}

/// Median wall time of `n2g-index ARGS --json` (a process that opens the index for one
/// answer), per kind (query, show).
fn cli_times(dir: &Path, requests: &[(Vec<String>, String)]) -> [f64; 2] {
    let mut ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (args, _) in requests {
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_n2g-index"))
            .args(args)
            .arg("--json")
            .arg("--index")
            .arg(dir)
            .output()
            .expect("the CLI runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ms[usize::from(args[0] == "show")].push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.map(|mut v| {
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    })
}

/// Median latency of the same requests to the server, one client, one at a time.
fn server_times(addr: SocketAddr, requests: &[(Vec<String>, String)]) -> [f64; 2] {
    let mut ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (args, path) in requests {
        let t = Instant::now();
        let r = http::get(addr, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        ms[usize::from(args[0] == "show")].push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.map(|mut v| {
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    })
}

fn page_sizes(addr: SocketAddr, n: u64) {
    let per_layer = n.div_ceil(LAYERS);
    let mut rng = Rng(5);
    let sizes: Vec<usize> = (0..20)
        .map(|_| {
            let i = rng.below(n);
            http::get(
                addr,
                &format!("/neuron/{}:{}", i / per_layer, i % per_layer),
            )
            .body
            .len()
        })
        .collect();
    let max = sizes.iter().copied().max().unwrap_or(0);
    println!(
        "neuron page: mean {:.1} KB, max {:.1} KB over 20 pages (goal ≤ 150 KB, {:.2}× of it)",
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64 / 1e3,
        max as f64 / 1e3,
        max as f64 / 150e3
    );
}

/// `POST /api/predict` on a 64-token prompt at layer 2 of a small real index.
fn predict(root: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = repo.join("data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !model.exists() {
        println!("predict: skipped (no default model; scripts/setup fetches it)");
        return;
    }
    let mut options = BuildOptions::new(root.join("real"));
    options.corpus = vec![repo.join("data/corpus/fortunes/wisdom")];
    options.layers = Some("2".into());
    options.neurons = "0-7".into();
    let (index, _) = Index::build(&options, &mut NoProgress).expect("small build");
    let loaded = n2g_index::Model::load(&model, &Default::default()).expect("model");
    let app = App::new(index, Some(loaded), Limits::default()).expect("app");
    let server = Server::start(app, "127.0.0.1:0".parse().unwrap(), false).expect("server");
    let words =
        "the quick brown fox jumps over the lazy dog while the capital of France is Paris and ";
    let text: String = words.repeat(4);
    let body = serde_json::json!({"neuron": "2:3", "text": text}).to_string();
    let tokens = http::post(server.addr(), "/api/predict", body.as_bytes()).json()["tokens"]
        .as_array()
        .map_or(0, Vec::len);
    let mut ms = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let r = http::post(server.addr(), "/api/predict", body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "predict: {tokens}-token prompt at layer 2, 30 runs, p50 {:.1} ms, p99 {:.1} ms (goal ≤ 50 ms, {:.2}× of it)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        percentile(&ms, 0.5) / 50.0
    );
    server.stop().unwrap();
}

fn main() {
    let n = env("N2G_BENCH_NEURONS", 1_000_000);
    let synth = Synth::new();
    let root = tempfile::tempdir().expect("temp dir");
    // `N2G_BENCH_KEEP=DIR` builds the synthetic index into DIR and leaves it there (for
    // `benches/python_layer.py`'s `N2G_BENCH_INDEX`).
    let dir = std::env::var_os("N2G_BENCH_KEEP").map_or(root.path().join("index"), PathBuf::from);
    println!(
        "n2g-index serve benchmark: {n} neurons, {} cores",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    let t = Instant::now();
    build(&dir, n, &synth);
    println!("synthetic index: {:.1} s", t.elapsed().as_secs_f64());
    // The same answers from the CLI (one process each) and, below, from the server.
    let same = same_requests(n, &synth);
    let cli = cli_times(&dir, &same);
    let app = App::new(Index::open(&dir).expect("open"), None, Limits::default()).expect("app");
    let server = Server::start(app, "127.0.0.1:0".parse().unwrap(), false).expect("server");
    let addr = server.addr();
    // Warm up: open the search index, touch the store.
    http::get(addr, "/api/query?q=token%3Athe");
    http::get(addr, "/api/neuron/0:0");
    let served = server_times(addr, &same);
    for (kind, i) in [("query", 0), ("neuron", 1)] {
        println!(
            "same {kind} requests, median: server {:.2} ms, CLI process {:.1} ms ({:.0}× the server)",
            served[i],
            cli[i],
            cli[i] / served[i].max(1e-9)
        );
    }
    load(addr, n, &synth);
    page_sizes(addr, n);
    server.stop().unwrap();
    predict(root.path());
}
