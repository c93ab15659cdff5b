//! SAE latents as units, end to end on the default model: an SAELens folder whose
//! JumpReLU latents are planted at `blocks.0.hook_resid_pre` (the token embedding, for
//! Llama) fires exactly on its token (checked against the embedding in float64), a build
//! over it finds each planted latent first for `query token:…`, a dense latent is
//! skipped by `--max-density` and named, and an index is never continued with another
//! SAE.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use candle_core::{DType, Device, Tensor};
use n2g_index::{LoadOptions, Model};

mod common;
use common::{bin, root, SMALL_CORPUS};

/// Latents of the test SAE.
const D_SAE: usize = 32;
/// The planted latents, one per chosen token.
const PLANTED: [usize; 3] = [5, 17, 26];
/// A latent that fires on every token (density 1).
const DENSE: usize = 30;

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_slice(&ok(out).stdout).unwrap()
}

/// The planted SAE: its folder's weights, and for each planted latent its token id and
/// the token's string.
struct Planted {
    tokens: Vec<(usize, u32, String)>,
    /// `[vocab][hidden]` embedding rows, f64.
    embed: Vec<Vec<f64>>,
    /// Encoder columns, `[D_SAE][hidden]`, and thresholds.
    w: Vec<Vec<f64>>,
    threshold: Vec<f64>,
}

/// Frequent word tokens of the small corpus (lower-case letters only, 3 or more), most
/// frequent first.
fn frequent_words(model: &Model) -> Vec<u32> {
    let text = std::fs::read_to_string(root().join(SMALL_CORPUS)).unwrap();
    let ids = model.tokenizer().encode(&text, false).unwrap().ids;
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    let mut words: Vec<(usize, u32)> = counts
        .into_iter()
        .filter(|&(id, n)| {
            let s = model.tokenizer().token_str(id);
            let w = s.trim_start();
            n >= 5 && w.len() >= 3 && w.chars().all(|c| c.is_ascii_lowercase())
        })
        .map(|(id, n)| (n, id))
        .collect();
    words.sort_by(|a, b| b.cmp(a));
    words.into_iter().map(|(_, id)| id).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Writes the SAE into `dir` (SAELens layout) with `threshold_shift` added to every
/// random latent's threshold (another SAE when non-zero).
fn plant(model: &Model, dir: &Path, threshold_shift: f64) -> Planted {
    let embed: Vec<Vec<f64>> = model
        .embedding_matrix()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(f64::from).collect())
        .collect();
    let hidden = embed[0].len();
    let mut w = vec![vec![0.0; hidden]; D_SAE];
    let mut threshold = vec![0.0; D_SAE];
    let mut b_enc = vec![0.0f64; D_SAE];
    let mut tokens = Vec::new();
    let mut candidates = frequent_words(model).into_iter();
    for &latent in &PLANTED {
        // A token whose own projection clears every other token's by a margin.
        let (id, col, thr) = candidates
            .by_ref()
            .find_map(|id| {
                let e = &embed[id as usize];
                let norm = dot(e, e).sqrt();
                let col: Vec<f64> = e.iter().map(|x| x / norm).collect();
                let best_other = embed
                    .iter()
                    .enumerate()
                    .filter(|&(v, _)| v != id as usize)
                    .map(|(_, r)| dot(r, &col))
                    .fold(f64::NEG_INFINITY, f64::max);
                (best_other < 0.8 * norm).then_some((id, col, (norm + best_other) / 2.0))
            })
            .expect("a separable frequent token");
        w[latent] = col;
        threshold[latent] = thr;
        let s = model.tokenizer().token_str(id).trim().to_string();
        tokens.push((latent, id, s));
    }
    // Random latents firing on a few percent of the vocabulary; the dense one on all.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    for latent in (0..D_SAE).filter(|l| !PLANTED.contains(l) && *l != DENSE) {
        w[latent] = (0..hidden).map(|_| next()).collect();
        let mut pre: Vec<f64> = embed.iter().map(|r| dot(r, &w[latent])).collect();
        pre.sort_by(f64::total_cmp);
        threshold[latent] = pre[pre.len() * 97 / 100] + threshold_shift;
    }
    b_enc[DENSE] = 1.0;
    threshold[DENSE] = 0.5;
    write_saelens(dir, &w, &b_enc, &threshold);
    Planted {
        tokens,
        embed,
        w,
        threshold,
    }
}

/// An SAELens folder: `cfg.json` + `sae_weights.safetensors`.
fn write_saelens(dir: &Path, w: &[Vec<f64>], b_enc: &[f64], threshold: &[f64]) {
    std::fs::create_dir_all(dir).unwrap();
    let hidden = w[0].len();
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    // W_enc is [d_in, d_sae]: column j is latent j's direction.
    let mut enc = vec![0f32; hidden * D_SAE];
    for (j, col) in w.iter().enumerate() {
        for (i, &x) in col.iter().enumerate() {
            enc[i * D_SAE + j] = x as f32;
        }
    }
    let dec: Vec<f32> = (0..D_SAE * hidden)
        .map(|k| enc[(k % hidden) * D_SAE + k / hidden])
        .collect();
    let cpu = Device::Cpu;
    let tensors: HashMap<String, Tensor> = [
        ("W_enc", Tensor::from_vec(enc, (hidden, D_SAE), &cpu)),
        ("W_dec", Tensor::from_vec(dec, (D_SAE, hidden), &cpu)),
        ("b_enc", Tensor::from_vec(f32s(b_enc), D_SAE, &cpu)),
        ("b_dec", Tensor::from_vec(vec![0f32; hidden], hidden, &cpu)),
        ("threshold", Tensor::from_vec(f32s(threshold), D_SAE, &cpu)),
    ]
    .into_iter()
    .map(|(k, t)| (k.to_string(), t.unwrap()))
    .collect();
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    let cfg = serde_json::json!({
        "architecture": "jumprelu",
        "d_in": hidden,
        "d_sae": D_SAE,
        "dtype": "float32",
        "model_name": "SmolLM2-135M-Instruct",
        "hook_name": "blocks.0.hook_resid_pre",
        "hook_layer": 0,
        "apply_b_dec_to_input": false,
        "normalize_activations": "none",
    });
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

#[test]
fn planted_sae_latents_are_found_by_their_token() {
    let model = Model::load_default(root(), &LoadOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sae = tmp.path().join("sae");
    let planted = plant(&model, &sae, 0.0);
    let sae_arg = sae.to_str().unwrap();

    // The latents on a text, against the embedding in float64: latent j at a token with
    // embedding e is relu(e·w_j + b_enc) where that exceeds the threshold, else 0.
    let text = std::fs::read_to_string(root().join(SMALL_CORPUS)).unwrap();
    let text: String = text.chars().take(600).collect();
    let view = json(
        bin()
            .args(["activations", "--sae", sae_arg, "--json", "--text", &text])
            .output()
            .unwrap(),
    );
    assert_eq!(view["units"]["kind"], "sae_latents");
    assert_eq!(view["layer"], 0);
    let ids: Vec<u32> = serde_json::from_value(view["ids"].clone()).unwrap();
    let acts: Vec<Vec<f64>> = serde_json::from_value(view["activations"].clone()).unwrap();
    assert_eq!(acts[0].len(), D_SAE);
    let mut fired = vec![0usize; D_SAE];
    for (t, &id) in ids.iter().enumerate() {
        for j in 0..D_SAE {
            let b = if j == DENSE { 1.0 } else { 0.0 };
            let pre = dot(&planted.embed[id as usize], &planted.w[j]) + b;
            // SAELens's JumpReLU: relu(pre) where pre > threshold.
            let want = if pre > planted.threshold[j] {
                pre.max(0.0)
            } else {
                0.0
            };
            let got = acts[t][j];
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "token {t} (id {id}) latent {j}: {got} vs float64 {want}"
            );
            fired[j] += usize::from(got > 0.0);
        }
    }
    for (latent, id, _) in &planted.tokens {
        let on_token = ids.iter().filter(|&&i| i == *id).count();
        assert_eq!(
            fired[*latent], on_token,
            "latent {latent} fires on its token only"
        );
    }

    // Build over the SAE: the planted latent is the first hit for its token.
    let index = tmp.path().join("index");
    let build = |sae: &str| {
        bin()
            .args(["build", "--sae", sae, "--corpus", SMALL_CORPUS, "--quiet"])
            .args(["--max-density", "0.5", "--graph-chunk", "16", "--index"])
            .arg(&index)
            .output()
            .unwrap()
    };
    ok(build(sae_arg));
    for (latent, _, token) in &planted.tokens {
        let hits = json(
            bin()
                .args(["query", &format!("token:{token}"), "--json", "--index"])
                .arg(&index)
                .output()
                .unwrap(),
        );
        assert_eq!(
            hits[0]["neuron"],
            format!("0:{latent}"),
            "token:{token} → {hits}"
        );
    }
    let info = json(
        bin()
            .args(["info", "--json", "--index"])
            .arg(&index)
            .output()
            .unwrap(),
    );
    let units = &info["units"];
    assert_eq!(units["kind"], "sae_latents");
    assert_eq!(units["hook"], "blocks.0.hook_resid_pre");
    assert_eq!(units["sae"]["d_sae"], D_SAE);
    assert_eq!(units["sae"]["format"], "sae_lens");
    assert_eq!(units["sae"]["architecture"], "jump_relu");
    assert_eq!(units["sae"]["sha256"].as_str().unwrap().len(), 64);
    // Skipped: exactly the latents above 50% density (the dense one among them), and
    // those have no graph.
    let skipped: Vec<String> = serde_json::from_value(info["skipped_dense"].clone()).unwrap();
    assert!(skipped.contains(&format!("0:{DENSE}")), "{skipped:?}");
    let export = ok(bin()
        .args(["export", "--index"])
        .arg(&index)
        .output()
        .unwrap());
    for line in String::from_utf8(export.stdout).unwrap().lines() {
        let unit: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = unit["neuron"].as_str().unwrap().to_string();
        let dense = unit["positive_fraction"].as_f64().unwrap() > 0.5;
        assert_eq!(skipped.contains(&id), dense, "{id}: {unit}");
        assert_eq!(unit["graph"].is_null(), dense, "{id}");
        assert_eq!(unit["unit_kind"], "sae_latents");
    }
    assert_eq!(info["neurons"], D_SAE);
    let show = String::from_utf8(
        ok(bin()
            .args(["show", &format!("0:{DENSE}"), "--index"])
            .arg(&index)
            .output()
            .unwrap())
        .stdout,
    )
    .unwrap();
    assert!(
        show.contains("latent 0:30") && show.contains("dense"),
        "{show}"
    );
    let shown = json(
        bin()
            .args(["show", &format!("0:{}", PLANTED[0]), "--json", "--index"])
            .arg(&index)
            .output()
            .unwrap(),
    );
    assert_eq!(shown["unit_kind"], "sae_latents");

    // Another SAE (other thresholds) never continues this index; a neuron build neither.
    let other = tmp.path().join("other");
    plant(&model, &other, 0.25);
    for out in [
        build(other.to_str().unwrap()),
        bin()
            .args([
                "build",
                "--corpus",
                SMALL_CORPUS,
                "--layers",
                "0",
                "--quiet",
            ])
            .arg("--index")
            .arg(&index)
            .output()
            .unwrap(),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("SAE latents"),
            "{err}"
        );
    }
    // The refused builds changed nothing.
    let again = json(
        bin()
            .args(["info", "--json", "--index"])
            .arg(&index)
            .output()
            .unwrap(),
    );
    assert_eq!(again["units"], info["units"]);
}

#[test]
fn sae_that_does_not_fit_the_model_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let sae = tmp.path().join("narrow");
    let w = vec![vec![0.1; 64]; D_SAE];
    write_saelens(&sae, &w, &[0.0; D_SAE], &[0.0; D_SAE]);
    let out = bin()
        .args([
            "activations",
            "--sae",
            sae.to_str().unwrap(),
            "--text",
            "hi",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("narrow") && err.contains("64") && err.contains("576"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The latents of an SAE on a model end to end against float64 numpy
/// (`scripts/reference/tiny_sae_on_model.py`: the tiny Llama's reference hook values
/// encoded by SAELens's JumpReLU), on every latent of every token.
#[test]
fn tiny_model_latents_match_the_float64_reference() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/sae/tiny_llama_jumprelu_latents.json"))
            .unwrap(),
    )
    .unwrap();
    let options = LoadOptions {
        sae: Some(root().join("fixtures/sae/saelens_jumprelu")),
        ..LoadOptions::default()
    };
    let model = Model::load(root().join("fixtures/tiny/llama"), &options).unwrap();
    assert_eq!(model.units().hook, "blocks.2.hook_resid_post");
    let threshold: Vec<f64> = serde_json::from_value(fixture["threshold"].clone()).unwrap();
    let mut compared = 0;
    for text in fixture["texts"].as_array().unwrap() {
        let ids: Vec<u32> = serde_json::from_value(text["ids"].clone()).unwrap();
        let pre: Vec<Vec<f64>> = serde_json::from_value(text["pre"].clone()).unwrap();
        let want: Vec<Vec<f64>> = serde_json::from_value(text["latents"].clone()).unwrap();
        let acts = &model.activations(std::slice::from_ref(&ids), &[2]).unwrap()[0];
        let selected = [3usize, 50, 111];
        let some = model
            .neuron_activations(std::slice::from_ref(&ids), 2, &selected)
            .unwrap();
        for (t, row) in want.iter().enumerate() {
            for (j, &w) in row.iter().enumerate() {
                // f32 rounding may flip a latent whose pre-activation sits on its threshold.
                if (pre[t][j] - threshold[j]).abs() < 1e-4 {
                    continue;
                }
                let got = f64::from(acts.get(0, t, j));
                assert!(
                    (got - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "token {t} latent {j}: {got} vs float64 {w}"
                );
                compared += 1;
            }
            for (i, &j) in selected.iter().enumerate() {
                let (a, b) = (some.get(0, t, i), acts.get(0, t, j));
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "latent {j}: {a} vs {b}"
                );
            }
        }
    }
    assert!(compared > 2000, "{compared}");
    // Latents are read at the hook's layer only.
    let e = model.activations(&[vec![1u32, 2, 3]], &[1]).unwrap_err();
    assert!(e.to_string().contains("blocks.2.hook_resid_post"), "{e}");
}

/// Every reading command on an SAE index (a TopK SAE over the tiny Llama): query,
/// similar, show, export, info, and `predict`, which loads the index's SAE with the
/// model and gives the latent's real activation (checked against `activations --sae`).
#[test]
fn every_reader_works_on_a_topk_sae_index() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let index_arg = index.to_str().unwrap();
    let sae = "fixtures/sae/saelens_topk";
    let run = |args: &[&str]| -> String {
        String::from_utf8(ok(bin().args(args).output().unwrap()).stdout).unwrap()
    };
    run(&[
        "build",
        "--model",
        "fixtures/tiny/llama",
        "--sae",
        sae,
        "--corpus",
        SMALL_CORPUS,
        "--neurons",
        "0-23",
        "--quiet",
        "--index",
        index_arg,
    ]);
    // Layers other than the hook's are refused, `0-2` as any other.
    let out = bin()
        .args([
            "build",
            "--model",
            "fixtures/tiny/llama",
            "--sae",
            sae,
            "--layers",
            "0-2",
        ])
        .args(["--corpus", SMALL_CORPUS, "--quiet", "--index"])
        .arg(tmp.path().join("other"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--layers `0-2`"),
        "{err}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&run(&["info", "--json", "--index", index_arg])).unwrap();
    assert_eq!(info["units"]["hook"], "blocks.0.hook_resid_post");
    assert_eq!(
        info["units"]["sae"]["architecture"],
        serde_json::json!({"top_k": {"k": 8}})
    );
    assert_eq!(info["neurons"], 24);
    let hits: serde_json::Value = serde_json::from_str(&run(&[
        "query", "layer:0", "--json", "--limit", "100", "--index", index_arg,
    ]))
    .unwrap();
    let with_graph = hits.as_array().unwrap().len();
    assert!(with_graph > 0 && with_graph <= 24, "{hits}");
    let first = hits[0]["neuron"].as_str().unwrap().to_string();
    run(&["similar", &first, "--json", "--index", index_arg]);
    let export = run(&["export", "--index", index_arg]);
    assert_eq!(export.lines().count(), 24);
    let shown: serde_json::Value =
        serde_json::from_str(&run(&["show", &first, "--json", "--index", index_arg])).unwrap();
    assert_eq!(shown["unit_kind"], "sae_latents");
    let text = "The fox ran into the village.";
    let predicted: serde_json::Value = serde_json::from_str(&run(&[
        "predict", &first, "--text", text, "--json", "--index", index_arg,
    ]))
    .unwrap();
    let latent = first.split(':').nth(1).unwrap();
    let direct: serde_json::Value = serde_json::from_str(&run(&[
        "activations",
        "--model",
        "fixtures/tiny/llama",
        "--sae",
        sae,
        "--neurons",
        latent,
        "--text",
        text,
        "--json",
    ]))
    .unwrap();
    let from_predict: Vec<f64> = serde_json::from_value(predicted["activations"].clone()).unwrap();
    let from_activations: Vec<Vec<f64>> =
        serde_json::from_value(direct["activations"].clone()).unwrap();
    assert_eq!(from_predict.len(), from_activations.len());
    for (a, b) in from_predict.iter().zip(&from_activations) {
        assert!(
            (a - b[0]).abs() <= 1e-5 * a.abs().max(1.0),
            "{a} vs {}",
            b[0]
        );
    }
    // Without the SAE the model reads neurons: predict refuses it, naming the SAE.
    let out = bin()
        .args(["predict", &first, "--text", text, "--index", index_arg])
        .args([
            "--model",
            "fixtures/tiny/llama",
            "--sae",
            "fixtures/sae/saelens_standard",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("SAE latents"),
        "{err}"
    );
}
