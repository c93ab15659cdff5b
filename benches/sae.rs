//! SAE latents against MLP neurons, measured in the same run on the default model:
//!
//! 1. the scan of a 16,384-latent JumpReLU SAE at `blocks.15.hook_resid_post` against
//!    the bare forward pass to that hook plus the encoder GEMM on the host (goal: the
//!    scan keeps at least 85% of their tokens/s);
//! 2. graphs per latent against graphs per neuron at the same layer (16 of each).
//!
//! `cargo bench --bench sae` (needs `scripts/setup`); `-- --device cuda:0` on a GPU build.
//! The SAE has random weights (a real one cannot be fetched here): the cost of a scan
//! does not depend on the values, and the thresholds are set so a latent fires on a few
//! percent of tokens, as trained SAEs' latents do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use n2g_index::corpus::{tokenize_windows, Corpus, CorpusSpec, Windows};
use n2g_index::model::Hook;
use n2g_index::n2g::{build_graphs, BatchConfig, GraphSettings};
use n2g_index::scan::{batch_plan, run_scan, ScanOptions};
use n2g_index::store::Store;
use n2g_index::{LoadOptions, Model, NoProgress};

mod common;

const LAYER: usize = 15;
const D_SAE: usize = 16_384;

/// A random JumpReLU SAE in SAELens layout: unit-norm encoder columns, thresholds at
/// 2.5 times the residual stream's typical projection.
fn write_sae(dir: &Path, d_in: usize, resid_norm: f64) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let mut enc: Vec<f32> = (0..d_in * D_SAE).map(|_| next()).collect();
    for j in 0..D_SAE {
        let norm: f32 = (0..d_in)
            .map(|i| enc[i * D_SAE + j].powi(2))
            .sum::<f32>()
            .sqrt();
        for i in 0..d_in {
            enc[i * D_SAE + j] /= norm;
        }
    }
    // A unit direction's projection of a vector of norm r is about r / sqrt(d_in).
    let typical = (resid_norm / (d_in as f64).sqrt()) as f32;
    let cpu = Device::Cpu;
    let tensors: HashMap<String, Tensor> = [
        ("W_enc", Tensor::from_vec(enc.clone(), (d_in, D_SAE), &cpu)),
        (
            "W_dec",
            Tensor::from_vec(enc, (d_in, D_SAE), &cpu).and_then(|t| t.t()?.contiguous()),
        ),
        ("b_enc", Tensor::zeros(D_SAE, candle_core::DType::F32, &cpu)),
        ("b_dec", Tensor::zeros(d_in, candle_core::DType::F32, &cpu)),
        ("threshold", Tensor::full(2.5 * typical, D_SAE, &cpu)),
    ]
    .into_iter()
    .map(|(k, t)| (k.to_string(), t.unwrap()))
    .collect();
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    let cfg = serde_json::json!({
        "architecture": "jumprelu", "d_in": d_in, "d_sae": D_SAE, "dtype": "float32",
        "hook_name": format!("blocks.{LAYER}.hook_resid_post"), "hook_layer": LAYER,
        "apply_b_dec_to_input": false, "normalize_activations": "none",
    });
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Tokens/s of the bare pass to the hook plus the encoder GEMM (ReLU'd on the host).
fn bare_rate(model: &Model, windows: &Windows, plan: &[Vec<u32>], w_enc: &Tensor) -> f64 {
    let hook: Hook = format!("blocks.{LAYER}.hook_resid_post").parse().unwrap();
    let t = Instant::now();
    for batch in plan {
        let seqs: Vec<Vec<u32>> = batch.iter().map(|&w| windows.get(w).ids.to_vec()).collect();
        let h = model.hook_activations(&seqs, hook).unwrap();
        let x = Tensor::from_vec(h.data, (h.batch * h.seq_len, h.n_neurons), &Device::Cpu);
        let pre = x.unwrap().matmul(w_enc).unwrap().relu().unwrap();
        std::hint::black_box(pre.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
    windows.total_tokens() as f64 / t.elapsed().as_secs_f64()
}

/// Tokens/s of the scan of every latent.
fn scan_rate(model: &Model, windows: &Windows) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path()).unwrap();
    let t = Instant::now();
    let options = ScanOptions::new(vec![LAYER], (0..D_SAE).collect(), 30);
    run_scan(model, windows, &store, &options, &mut NoProgress).unwrap();
    windows.total_tokens() as f64 / t.elapsed().as_secs_f64()
}

/// Seconds per unit of the graph stage for the first 16 units of `model`.
fn graph_seconds(model: &Model, windows: &Windows, units: usize) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_or_create(tmp.path()).unwrap();
    let chosen: Vec<usize> = (0..units).step_by(units / 16).take(16).collect();
    let options = ScanOptions::new(vec![LAYER], chosen.clone(), 30);
    run_scan(model, windows, &store, &options, &mut NoProgress).unwrap();
    let settings = GraphSettings {
        mask_token: model.mask_token(),
        ..GraphSettings::default()
    };
    let t = Instant::now();
    let batch = BatchConfig::default();
    build_graphs(
        model,
        &store,
        windows,
        &settings,
        batch,
        &[],
        &mut NoProgress,
    )
    .unwrap();
    t.elapsed().as_secs_f64() / chosen.len() as f64
}

fn main() {
    n2g_index::model::keep_freed_memory();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = common::load_options();
    let model = Model::load_default(&root, &options).expect("run scripts/setup first");
    let corpus = Corpus::read(&CorpusSpec::new(vec![
        root.join("data/corpus/fortunes/wisdom")
    ]));
    let windows = tokenize_windows(&corpus.unwrap(), model.tokenizer(), 64, true).unwrap();
    let plan = batch_plan(&windows, 16);
    let d_in = model.info().hidden_size;
    // The residual stream's typical norm at the hook, from one batch.
    let hook: Hook = format!("blocks.{LAYER}.hook_resid_post").parse().unwrap();
    let seqs: Vec<Vec<u32>> = plan[0]
        .iter()
        .map(|&w| windows.get(w).ids.to_vec())
        .collect();
    let h = model.hook_activations(&seqs, hook).unwrap();
    let norms: Vec<f64> = h
        .data
        .chunks(d_in)
        .map(|r| r.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt())
        .collect();
    let resid_norm = norms.iter().sum::<f64>() / norms.len() as f64;
    let tmp = tempfile::tempdir().unwrap();
    write_sae(tmp.path(), d_in, resid_norm);
    let w_enc =
        candle_core::safetensors::load(tmp.path().join("sae_weights.safetensors"), &Device::Cpu)
            .unwrap()
            .remove("W_enc")
            .unwrap();
    let sae_options = LoadOptions {
        sae: Some(tmp.path().to_path_buf()),
        ..options.clone()
    };
    let sae_model = Model::load_default(&root, &sae_options).unwrap();
    println!(
        "SAE scan vs bare forward + encoder GEMM: {} windows, {} tokens, blocks.{LAYER}.hook_resid_post, {D_SAE} latents, {} threads, device {}",
        windows.len(),
        windows.total_tokens(),
        rayon::current_num_threads(),
        options.device
    );
    let (mut bare, mut scan) = (Vec::new(), Vec::new());
    for round in 0..3 {
        bare.push(bare_rate(&model, &windows, &plan, &w_enc));
        scan.push(scan_rate(&sae_model, &windows));
        println!(
            "  round {round}: bare {:>6.0} tokens/s   scan {:>6.0} tokens/s   ratio {:.1}%",
            bare[round],
            scan[round],
            100.0 * scan[round] / bare[round]
        );
    }
    let (b, s) = (median(&mut bare), median(&mut scan));
    println!(
        "median: scan = {:.1}% of bare forward + GEMM (goal >= 85%)",
        100.0 * s / b
    );
    let neuron = graph_seconds(&model, &windows, model.info().n_neurons);
    let latent = graph_seconds(&sae_model, &windows, D_SAE);
    println!(
        "graphs at layer {LAYER}: {neuron:.2} s a neuron, {latent:.2} s a latent ({:.2}x)",
        latent / neuron
    );
}
