//! The model runtime against an independent oracle: activations computed in float64 by
//! `scripts/reference/` (numpy, the `gguf` dequantizer, llama.cpp's tokenizer), never
//! values copied from this crate's output.
//!
//! Needs the default model: `scripts/setup` (the test command runs it first).
//! `N2G_TEST_DEVICE=cuda:0` runs the models on a GPU (a `--features cuda` build; see
//! `scripts/gpu-check`).

use std::path::Path;

use n2g_index::{DeviceSpec, Error, LoadOptions, Model};

mod common;
mod model_support;
use common::root;
use model_support::{compare_activations, fixture, floats, ids, tiny_model, Run};

/// The load options of every model here: on the device named by `N2G_TEST_DEVICE`
/// (`cuda:0` on a GPU build, see `scripts/gpu-check`), else on the CPU.
fn options() -> LoadOptions {
    let device = std::env::var("N2G_TEST_DEVICE").map_or(DeviceSpec::Cpu, |s| {
        s.parse()
            .unwrap_or_else(|e| panic!("N2G_TEST_DEVICE={s}: {e}"))
    });
    LoadOptions {
        device,
        ..LoadOptions::default()
    }
}

fn default_model(options: &LoadOptions) -> Model {
    Model::load_default(root(), options).unwrap_or_else(|e| {
        panic!(
            "{e}\n(the test command runs scripts/setup first; run it by hand to fetch the model)"
        )
    })
}

#[test]
fn smollm2_activations_match_float64_reference() {
    let model = default_model(&options());
    let reference = fixture("fixtures/reference/smollm2_activations.json");
    let texts = reference["texts"].as_array().unwrap();
    assert!(texts.len() >= 8);
    for t in texts {
        let ours = model
            .tokenizer()
            .encode(t["text"].as_str().unwrap(), true)
            .unwrap();
        assert_eq!(ours.ids, ids(&t["ids"]), "token ids of {}", t["name"]);
        assert!(ours.bos);
    }
    compare_activations(&model, texts, false, 1e-3, Run::Plain);
    compare_activations(&model, texts, false, 1e-3, Run::Selected);
    compare_activations(&model, texts, false, 1e-3, Run::Picked);
}

#[test]
fn smollm2_prefix_shared_rows_match_float64_reference() {
    let model = default_model(&options());
    let reference = fixture("fixtures/reference/smollm2_activations.json");
    compare_activations(
        &model,
        reference["texts"].as_array().unwrap(),
        false,
        1e-3,
        Run::Packed,
    );
}

/// llama.cpp's ids (`special = false`): those of literal special tokens, and of the
/// default on every text without a special token.
#[test]
fn smollm2_tokenizer_matches_llama_cpp() {
    let model = default_model(&options());
    let literal = model.tokenizer().clone().with_literal_special(true);
    let cases = fixture("fixtures/reference/smollm2_tokenizer.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let ours = literal.encode(text, false).unwrap();
        assert_eq!(ours.ids, ids(&case["ids"]), "literal ids of {text:?}");
        if !text.contains("<|im_start|>") {
            let default = model.tokenizer().encode(text, false).unwrap();
            assert_eq!(default, ours, "ids of {text:?}");
        }
        // Offsets cover the text and the token strings put it back together.
        let joined: Vec<u8> = ours
            .ids
            .iter()
            .flat_map(|&id| model.tokenizer().decode(&[id]).unwrap().into_bytes())
            .collect();
        if text.is_ascii() {
            assert_eq!(String::from_utf8(joined).unwrap(), text);
        }
    }
    let bos = model.tokenizer().encode("The", true).unwrap();
    assert_eq!(bos.ids, vec![1, 504]);
    assert_eq!(bos.offsets, vec![(0, 0), (0, 3)]);
}

#[test]
fn smollm2_next_token_matches_reference() {
    let model = default_model(&options());
    let reference = fixture("fixtures/reference/smollm2_next_token.json");
    let seq = ids(&reference["ids"]);
    let top = model
        .next_token_top_k(std::slice::from_ref(&seq), 10)
        .unwrap();
    let last = &top[0][seq.len() - 1];
    let want_ids = ids(&reference["top_ids"]);
    let want_logits = floats(&reference["top_logits"]);
    // The top 5 are separated by more than the tolerance; compare them exactly.
    for i in 0..5 {
        assert_eq!(last[i].0, want_ids[i], "rank {i}");
        assert!((last[i].1 as f64 - want_logits[i]).abs() <= 1e-3 * want_logits[0].abs());
    }
    assert_eq!(model.tokenizer().token_str(last[0].0), " Paris");
}

#[test]
fn batch_equals_single_sequences() {
    let model = default_model(&options());
    let texts = [
        "A short one.",
        "A rather longer sentence, so that the others are padded on the right.",
        "12 34",
    ];
    let seqs: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| model.tokenizer().encode(t, true).unwrap().ids)
        .collect();
    let layers = [0, 7, 29];
    let batched = model.activations(&seqs, &layers).unwrap();
    for (b, seq) in seqs.iter().enumerate() {
        let single = model
            .activations(std::slice::from_ref(seq), &layers)
            .unwrap();
        for (l, (one, many)) in single.iter().zip(&batched).enumerate() {
            assert_eq!(many.lengths[b], seq.len());
            for t in 0..seq.len() {
                for (x, y) in one.at(0, t).iter().zip(many.at(b, t)) {
                    let tol = 1e-4 * (1.0 + x.abs());
                    assert!(
                        (x - y).abs() <= tol,
                        "layer {} seq {b} pos {t}: {x} vs {y}",
                        layers[l]
                    );
                }
            }
        }
    }
}

#[test]
fn quantized_path_stays_close() {
    let exact = default_model(&options());
    let quant = default_model(&LoadOptions {
        quantized: true,
        ..options()
    });
    let seq = exact
        .tokenizer()
        .encode("The quick brown fox jumps over the lazy dog.", true)
        .unwrap()
        .ids;
    let a = &exact.activations(std::slice::from_ref(&seq), &[2]).unwrap()[0];
    let b = &quant.activations(std::slice::from_ref(&seq), &[2]).unwrap()[0];
    // Pearson correlation over non-BOS positions: the quantized matmul rounds
    // activations to 8 bits, so it is close but not exact.
    let xs: Vec<f64> = (1..seq.len())
        .flat_map(|t| a.at(0, t).to_vec())
        .map(f64::from)
        .collect();
    let ys: Vec<f64> = (1..seq.len())
        .flat_map(|t| b.at(0, t).to_vec())
        .map(f64::from)
        .collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let corr = cov / (vx * vy).sqrt();
    assert!(corr > 0.98, "correlation {corr}");
    // Selected neurons on the quantized path are the same columns.
    let picked = [1535, 7, 700];
    let c = quant
        .neuron_activations(std::slice::from_ref(&seq), 2, &picked)
        .unwrap();
    for t in 0..seq.len() {
        for (i, &n) in picked.iter().enumerate() {
            assert!((c.get(0, t, i) - b.get(0, t, n)).abs() <= 1e-5 * (1.0 + b.get(0, t, n).abs()));
        }
    }
    assert!(quant
        .neuron_activations(std::slice::from_ref(&seq), 2, &[1536])
        .is_err());
}

fn tiny(arch: &str) {
    let dir = format!("fixtures/tiny/{arch}");
    tiny_model(&dir, &dir, arch, &options());
}

#[test]
fn tiny_llama_matches_reference() {
    tiny("llama");
}

/// A Llama GGUF of the Llama 2 / 3.1 kind, written by the `gguf` package
/// (`scripts/reference/tiny_gguf.py`): SentencePiece tokenizer (ids from the
/// `sentencepiece` library), Llama 3.1 RoPE divisors in `rope_freqs.weight`, a head size
/// other than hidden / heads, Q8_0 weights. `sentencepiece` reads `<s>` in a text as
/// its characters, so the tokenizer runs with literal special tokens.
#[test]
fn tiny_gguf_sentencepiece_llama31_matches_reference() {
    let literal = LoadOptions {
        literal_special: true,
        ..options()
    };
    tiny_model(
        "fixtures/tiny/gguf/model.gguf",
        "fixtures/tiny/gguf",
        "llama",
        &literal,
    );
    shows_leading_spaces("fixtures/tiny/gguf/model.gguf");
}

/// The same kind of GGUF with every weight matrix in another GGUF type (F16 embedding,
/// BF16 LM head; Q2_K to Q6_K, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16 and BF16 in the blocks),
/// written by `scripts/reference/tiny_gguf_types.py`; the reference reads the weights
/// with the `gguf` package's own dequantizer.
#[test]
fn tiny_gguf_of_many_weight_types_matches_reference() {
    tiny_model(
        "fixtures/tiny/gguf_types/model.gguf",
        "fixtures/tiny/gguf_types",
        "llama",
        &options(),
    );
}

/// SentencePiece tokens show their leading space (" The"), as byte-level ones do,
/// though the decoders drop it from a text's first token.
fn shows_leading_spaces(model: &str) {
    let model = Model::load(root().join(model), &options()).unwrap();
    let tok = model.tokenizer();
    let ids = tok.encode("The fox ran", false).unwrap().ids;
    let shown: Vec<&str> = ids.iter().map(|&i| tok.token_str(i)).collect();
    assert_eq!(shown.concat(), " The fox ran", "{shown:?}");
    assert_eq!(tok.decode(&ids).unwrap().trim_start(), "The fox ran");
}

/// The same weights as a Hugging Face folder with `rope_scaling.rope_type = "llama3"`
/// and `head_dim` in config.json, and a tokenizer.json converted from the
/// SentencePiece model: the same reference.
#[test]
fn tiny_hf_llama31_matches_reference() {
    tiny_model(
        "fixtures/tiny/llama31_hf",
        "fixtures/tiny/gguf",
        "llama",
        &options(),
    );
    shows_leading_spaces("fixtures/tiny/llama31_hf");
}

/// A GGUF holding a tensor a plain Llama block lacks is refused, naming the tensor,
/// rather than run without it.
#[test]
fn gguf_with_unknown_tensors_is_refused() {
    expect_bad_model(
        &root().join("fixtures/tiny/gguf/extra.gguf"),
        "blk.0.attn_q.bias",
    );
}

#[test]
fn tiny_gpt2_matches_reference() {
    tiny("gpt2");
}

#[test]
fn tiny_gpt_neox_matches_reference() {
    tiny("gpt_neox");
}

fn expect_bad_model(path: &Path, needle: &str) {
    match Model::load(path, &options()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(needle), "error `{msg}` lacks `{needle}`");
            assert!(
                msg.contains(&path.display().to_string())
                    || msg.contains(path.file_name().unwrap().to_str().unwrap()),
                "error `{msg}` does not name the file"
            );
        }
    }
}

#[test]
fn truncated_or_corrupt_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A GGUF cut in the middle of its tensor data.
    let gguf = std::fs::read(root().join(n2g_index::model::DEFAULT_MODEL_PATH)).unwrap();
    let cut = tmp.path().join("cut.gguf");
    std::fs::write(&cut, &gguf[..gguf.len() / 2]).unwrap();
    expect_bad_model(&cut, "truncated");
    // A GGUF cut inside its header.
    let head = tmp.path().join("head.gguf");
    std::fs::write(&head, &gguf[..1000]).unwrap();
    expect_bad_model(&head, "GGUF");
    // Not a GGUF at all.
    let junk = tmp.path().join("junk.gguf");
    std::fs::write(&junk, b"hello, this is not a model").unwrap();
    expect_bad_model(&junk, "GGUF");

    // A safetensors file cut short.
    let src = root().join("fixtures/tiny/gpt2");
    let bad = tmp.path().join("gpt2-cut");
    std::fs::create_dir(&bad).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), bad.join(f)).unwrap();
    }
    let st = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(bad.join("model.safetensors"), &st[..st.len() - 100]).unwrap();
    expect_bad_model(&bad, "safetensors");

    // A config.json that is not JSON, one without the needed field, an unknown arch.
    std::fs::copy(src.join("model.safetensors"), bad.join("model.safetensors")).unwrap();
    std::fs::write(bad.join("config.json"), "{ not json").unwrap();
    expect_bad_model(&bad, "config.json");
    std::fs::write(
        bad.join("config.json"),
        r#"{"model_type": "gpt2", "n_layer": 3}"#,
    )
    .unwrap();
    expect_bad_model(&bad, "n_embd");
    std::fs::write(bad.join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    match Model::load(&bad, &options()) {
        Err(Error::UnsupportedArchitecture {
            found, supported, ..
        }) => {
            assert_eq!(found, "mamba");
            assert!(supported.contains("gpt_neox"));
        }
        other => panic!("expected UnsupportedArchitecture, got {:?}", other.err()),
    }
}

#[test]
fn missing_default_model_names_the_setup_script() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Model::load_default(tmp.path(), &options()).err().unwrap();
    assert!(err.to_string().contains("scripts/setup"), "{err}");
}
