//! Forward-pass throughput of the default model against the machine's GEMM rate.
//!
//! `cargo bench --bench forward` (needs `scripts/setup`). Criterion measures tokens/s for
//! a 16 × 64 batch through layers 0..=2 and through all layers, and a plain candle f32
//! matmul of the MLP's shape; the summary at the end states the forward pass as a
//! fraction of that GEMM rate, measured in the same run (absolute times on a shared
//! machine are noise, the ratio is not).

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use n2g_index::{LoadOptions, Model};

const BATCH: usize = 16;
const SEQ: usize = 64;

fn model() -> Model {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Model::load_default(root, &LoadOptions::default()).expect("run scripts/setup first")
}

fn batch(model: &Model) -> Vec<Vec<u32>> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/corpus/fortunes/wisdom"),
    )
    .expect("run scripts/setup first");
    let ids = model.tokenizer().encode(&text, false).unwrap().ids;
    let bos = model.info().bos_id.unwrap();
    (0..BATCH)
        .map(|b| {
            let mut s = vec![bos];
            s.extend_from_slice(&ids[b * (SEQ - 1)..(b + 1) * (SEQ - 1)]);
            s
        })
        .collect()
}

/// Multiply-adds of the linear layers executed for `layers_run` blocks when stopping
/// after the MLP up/gate projection of the last one (SmolLM2 shape: 3 KV heads of 64).
fn linear_flops(model: &Model, layers_run: usize) -> f64 {
    let i = model.info();
    let (h, ff, kv) = (i.hidden_size as f64, i.n_neurons as f64, 192.0);
    let attn = h * (h + kv + kv + h);
    let per_layer = attn + 3.0 * h * ff;
    let last = attn + 2.0 * h * ff;
    let macs = per_layer * (layers_run as f64 - 1.0) + last;
    2.0 * macs * (BATCH * SEQ) as f64
}

fn median_time(mut f: impl FnMut(), runs: usize) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    // As the CLI runs (see `model::keep_freed_memory`).
    n2g_index::model::keep_freed_memory();
    let model = model();
    let seqs = batch(&model);
    let n_layers = model.info().n_layers;
    let all: Vec<usize> = (0..n_layers).collect();
    let (h, ff) = (model.info().hidden_size, model.info().n_neurons);
    let x = Tensor::randn(0f32, 1.0, (BATCH * SEQ, h), &Device::Cpu).unwrap();
    let w = Tensor::randn(0f32, 1.0, (h, ff), &Device::Cpu).unwrap();

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    {
        let mut g = c.benchmark_group("forward");
        g.throughput(Throughput::Elements((BATCH * SEQ) as u64));
        g.bench_function(BenchmarkId::new("16x64", "layers 0..=2"), |b| {
            b.iter(|| model.activations(&seqs, &[0, 1, 2]).unwrap())
        });
        g.bench_function(BenchmarkId::new("16x64", "all layers"), |b| {
            b.iter(|| model.activations(&seqs, &all).unwrap())
        });
        g.finish();
        let mut g = c.benchmark_group("gemm");
        g.throughput(Throughput::Elements((2 * BATCH * SEQ * h * ff) as u64));
        g.bench_function("f32 [1024x576]x[576x1536]", |b| {
            b.iter(|| x.matmul(&w).unwrap())
        });
        g.finish();
    }
    c.final_summary();

    // Ratios measured in one run.
    let gemm = median_time(|| drop(x.matmul(&w).unwrap()), 30);
    let gemm_rate = 2.0 * (BATCH * SEQ * h * ff) as f64 / gemm.as_secs_f64();
    let f3 = median_time(|| drop(model.activations(&seqs, &[0, 1, 2]).unwrap()), 7);
    let fa = median_time(|| drop(model.activations(&seqs, &all).unwrap()), 3);
    let tokens = (BATCH * SEQ) as f64;
    println!(
        "\nsummary (batch {BATCH} x {SEQ} tokens, {} threads)",
        rayon::current_num_threads()
    );
    println!("  GEMM f32 MLP shape      {:8.1} GFLOP/s", gemm_rate / 1e9);
    for (name, t, layers) in [("layers 0..=2", f3, 3), ("all layers  ", fa, n_layers)] {
        let rate = linear_flops(&model, layers) / t.as_secs_f64();
        println!(
            "  forward {name}    {:8.0} tokens/s  {:6.1} GFLOP/s in linear layers = {:.0}% of GEMM",
            tokens / t.as_secs_f64(),
            rate / 1e9,
            100.0 * rate / gemm_rate
        );
    }
}
