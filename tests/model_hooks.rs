//! Every TransformerLens hook point of every architecture against float64 numpy:
//! `scripts/reference/tiny_hooks.py` (the tiny Hugging Face models, layers 0 and 2) and
//! `scripts/reference/smollm2_hooks.py` (the default model, layer 3), never values
//! copied from this crate's output.

use n2g_index::model::{Hook, HookPoint};
use n2g_index::{LoadOptions, Model};
use serde_json::Value;

mod common;
mod model_support;
use common::root;
use model_support::{fixture, floats, ids};

/// The rows of a `[tokens][dims]` JSON array.
fn table(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// For every dimension of `reference` (`[tokens][dims]`, the first dims of the hook's
/// width): max |ours - ref| over the tokens is at most `tol` times max |ref|. Returns
/// the worst relative error.
fn compare(what: &str, ours: &[Vec<f32>], reference: &[Vec<f64>], tol: f64) -> f64 {
    assert_eq!(ours.len(), reference.len(), "{what}: tokens");
    let mut worst = 0.0f64;
    for d in 0..reference[0].len() {
        let scale = reference
            .iter()
            .fold(0.0f64, |m, r| m.max(r[d].abs()))
            .max(1e-6);
        let err = ours
            .iter()
            .zip(reference)
            .fold(0.0f64, |m, (o, r)| m.max((o[d] as f64 - r[d]).abs()));
        let rel = err / scale;
        assert!(
            rel <= tol,
            "{what} dim {d}: relative error {rel:.2e} > {tol:.0e}"
        );
        worst = worst.max(rel);
    }
    worst
}

/// The values of one hook for the reference texts (one padded batch), as
/// `[text][token][dim]`, checked to have the hook's width.
fn run_hook(model: &Model, texts: &[Value], hook: Hook) -> Vec<Vec<Vec<f32>>> {
    let batch: Vec<Vec<u32>> = texts.iter().map(|t| ids(&t["ids"])).collect();
    let acts = model.hook_activations(&batch, hook).unwrap();
    assert_eq!(acts.layer, hook.layer);
    assert_eq!(acts.n_neurons, model.hook_width(hook.point), "{hook}");
    (0..batch.len())
        .map(|b| {
            (0..batch[b].len())
                .map(|t| acts.at(b, t).to_vec())
                .collect()
        })
        .collect()
}

/// Every hook point at every recorded layer of a tiny model equals its `hooks.json`.
fn tiny(name: &str) {
    let dir = format!("fixtures/tiny/{name}");
    let model = Model::load(root().join(&dir), &LoadOptions::default()).unwrap();
    let reference = fixture(&format!("{dir}/hooks.json"));
    let texts = reference["texts"].as_array().unwrap();
    let layers = ids(&reference["layers"]);
    let mut worst = 0.0f64;
    let mut checked = 0;
    for &layer in &layers {
        for point in HookPoint::ALL {
            let hook = Hook {
                layer: layer as usize,
                point,
            };
            let key = hook.to_string();
            if name == "gpt_neox" && point == HookPoint::ResidMid {
                assert!(texts[0]["hooks"].get(&key).is_none());
                continue;
            }
            let ours = run_hook(&model, texts, hook);
            for (b, text) in texts.iter().enumerate() {
                let want = table(&text["hooks"][&key]);
                assert_eq!(want[0].len(), model.hook_width(point), "{name} {key}");
                let what = format!("{name} text {b} {key}");
                worst = worst.max(compare(&what, &ours[b], &want, 1e-4));
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        layers.len() * texts.len() * 7 - usize::from(name == "gpt_neox") * 4
    );
    eprintln!("{name}: {checked} hook values, worst relative error {worst:.2e}");
}

/// Llama (RMSNorm, GQA, RoPE).
#[test]
fn tiny_llama_hooks_match_reference() {
    tiny("llama");
}

/// GPT-2 (LayerNorm with bias, learned positions, biased projections).
#[test]
fn tiny_gpt2_hooks_match_reference() {
    tiny("gpt2");
}

/// GPT-NeoX (parallel residual: ln2 of the block input, no resid_mid).
#[test]
fn tiny_gpt_neox_hooks_match_reference() {
    tiny("gpt_neox");
}

/// Gemma (`1 + w` norms: ln2 is before the multiplier).
#[test]
fn tiny_gemma_hooks_match_reference() {
    tiny("gemma");
}

/// Gemma 2 (attention and MLP outputs after their post-norms; bf16 weights).
#[test]
fn tiny_gemma2_hooks_match_reference() {
    tiny("gemma2");
}

/// Qwen 2 (q/k/v biases, sliding window from layer 1).
#[test]
fn tiny_qwen2_hooks_match_reference() {
    tiny("qwen2");
}

/// Qwen 3 (q/k norms, bf16 weights).
#[test]
fn tiny_qwen3_hooks_match_reference() {
    tiny("qwen3");
}

/// Mistral (sliding window on every layer).
#[test]
fn tiny_mistral_hooks_match_reference() {
    tiny("mistral");
}

/// The default model's hooks at one middle layer: the first dims of each vector and
/// the norm of the whole vector.
#[test]
fn smollm2_hooks_match_reference() {
    let model = Model::load_default(root(), &LoadOptions::default()).unwrap_or_else(|e| {
        panic!("{e}\n(the test command runs scripts/setup first; run it by hand)")
    });
    let reference = fixture("fixtures/reference/smollm2_hooks.json");
    let texts = reference["texts"].as_array().unwrap();
    let layer = reference["layer"].as_u64().unwrap() as usize;
    let names = texts[0]["hooks"].as_object().unwrap();
    assert_eq!(names.len(), 6);
    for key in names.keys() {
        let hook: Hook = key.parse().unwrap();
        assert_eq!(hook.layer, layer);
        let ours = run_hook(&model, texts, hook);
        for (b, text) in texts.iter().enumerate() {
            let want = table(&text["hooks"][key]["values"]);
            let what = format!("smollm2 text {b} {key}");
            let worst = compare(&what, &ours[b], &want, 1e-4);
            let norms: Vec<Vec<f32>> = ours[b]
                .iter()
                .map(|v| vec![v.iter().map(|x| x * x).sum::<f32>().sqrt()])
                .collect();
            let want_norms: Vec<Vec<f64>> = floats(&text["hooks"][key]["norms"])
                .into_iter()
                .map(|n| vec![n])
                .collect();
            compare(&format!("{what} norm"), &norms, &want_norms, 1e-4);
            eprintln!("{what}: worst relative error {worst:.2e}");
        }
    }
}

/// GPT-NeoX's parallel residual has no `hook_resid_mid`: refused by name.
#[test]
fn gpt_neox_resid_mid_is_refused() {
    let model = Model::load(
        root().join("fixtures/tiny/gpt_neox"),
        &LoadOptions::default(),
    )
    .unwrap();
    let hook = "blocks.1.hook_resid_mid".parse().unwrap();
    let e = model.hook_activations(&[[0u32, 5, 7]], hook).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("gpt_neox") && e.contains("hook_resid_mid"),
        "{e}"
    );
}

/// A layer the model lacks is refused, and widths follow the hook point.
#[test]
fn out_of_range_layer_is_refused() {
    let model = Model::load(root().join("fixtures/tiny/llama"), &LoadOptions::default()).unwrap();
    let hook = Hook {
        layer: 3,
        point: HookPoint::ResidPost,
    };
    let e = model.hook_activations(&[[0u32, 5]], hook).unwrap_err();
    assert!(e.to_string().contains("layer 3 out of range"), "{e}");
    assert_eq!(model.hook_width(HookPoint::MlpPost), 64);
    assert_eq!(model.hook_width(HookPoint::Ln2Normalized), 32);
}
