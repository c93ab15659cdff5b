//! Gemma, Gemma 2, Qwen 2, Qwen 3 and Mistral against an independent oracle: tiny
//! random-weight Hugging Face checkpoints and float64 numpy activations written by
//! `scripts/reference/tiny_families.py` (checked against `transformers` by
//! `check_with_transformers.py`), and their tokenizers against the ids the Python
//! `tokenizers` library gives.

use candle_core::DType;
use n2g_index::model::TextTokenizer;
use n2g_index::{Error, LoadOptions, Model};

mod common;
mod model_support;
use common::{bin, root};
use model_support::{fixture, floats, ids, tiny_model};

/// Every neuron of every layer (plain, prefix-shared rows, selected neurons) and the
/// next-token logits of the family's tiny model equal the reference.
fn family(name: &str) {
    let dir = format!("fixtures/tiny/{name}");
    tiny_model(&dir, &dir, name, &LoadOptions::default());
    next_tokens_match(&dir);
}

/// The five most likely next tokens after each reference text, and their logits.
fn next_tokens_match(dir: &str) {
    let model = Model::load(root().join(dir), &LoadOptions::default()).unwrap();
    let reference = fixture(&format!("{dir}/reference.json"));
    for case in reference["next_token"].as_array().unwrap() {
        let seq = ids(&case["ids"]);
        let top = model
            .next_token_top_k(std::slice::from_ref(&seq), 5)
            .unwrap();
        let last = &top[0][seq.len() - 1];
        let want_ids = ids(&case["top_ids"]);
        let want = floats(&case["top_logits"]);
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (i, (id, logit)) in last.iter().enumerate() {
            assert!(
                (*logit as f64 - want[i]).abs() <= 1e-4 * scale,
                "{dir}: rank {i}: logit {logit} vs {}",
                want[i]
            );
            // Ranks may swap only between logits closer than the tolerance.
            if *id != want_ids[i] {
                let j = want_ids.iter().position(|w| w == id).expect("in the top 5");
                assert!((want[i] - want[j]).abs() <= 1e-4 * scale, "{dir}: rank {i}");
            }
        }
    }
}

/// Gemma: `1 + w` norms, embeddings times sqrt(hidden), GELU-tanh, head_dim 16 with
/// hidden 32 and 4 heads, f32 weights.
#[test]
fn tiny_gemma_matches_reference() {
    family("gemma");
}

/// Gemma 2: sandwich norms, `query_pre_attn_scalar`, attention and final soft-capping,
/// a 4-token window on layers 0 and 2; bf16 weights in two shards listed by
/// `model.safetensors.index.json`, kept in bf16.
#[test]
fn tiny_gemma2_matches_reference() {
    family("gemma2");
    let model = Model::load(root().join("fixtures/tiny/gemma2"), &LoadOptions::default()).unwrap();
    assert_eq!(model.embedding_matrix().dtype(), DType::BF16);
}

/// Qwen 2: q/k/v biases, RoPE base 1e6, a 4-token window from layer 1 on
/// (`use_sliding_window`, `max_window_layers`), f16 weights, untied LM head.
#[test]
fn tiny_qwen2_matches_reference() {
    family("qwen2");
}

/// Qwen 3: per-head q/k RMSNorm, explicit head_dim, tied embeddings, bf16 weights.
#[test]
fn tiny_qwen3_matches_reference() {
    family("qwen3");
}

/// Mistral: the Llama block with a 4-token window on every layer.
#[test]
fn tiny_mistral_matches_reference() {
    family("mistral");
}

/// The same families as llama.cpp's converter writes them to GGUF
/// (`scripts/reference/tiny_families_gguf.py`): Gemma norms with `+ 1` folded in,
/// Qwen 2 biases as `attn_{q,k,v}.bias`, Qwen 3 `attn_{q,k}_norm`, F16/BF16 matrices;
/// SentencePiece (Gemma) and byte-level `qwen2` (Qwen) vocabularies rebuilt from the
/// metadata, ids from `sentencepiece` and `tokenizers`.
#[test]
fn tiny_family_ggufs_match_reference() {
    for name in ["gemma", "gemma2", "qwen2", "qwen3"] {
        let dir = format!("fixtures/tiny/gguf_families/{name}");
        tiny_model(
            &format!("{dir}/model.gguf"),
            &dir,
            name,
            &LoadOptions::default(),
        );
    }
}

/// The Gemma-style (spaces as U+2581, no pre-tokenizer, byte fallback) and Qwen-style
/// (byte-level, NFC, Qwen 2's split pattern) tokenizers give the Python library's ids,
/// both by default (special-token text becomes its id) and with literal special tokens.
#[test]
fn family_tokenizers_match_the_tokenizers_library() {
    for name in ["gemma", "qwen"] {
        let dir = root().join("fixtures/tiny/tokenizers");
        let tok = TextTokenizer::from_file(&dir.join(format!("{name}.json")), None).unwrap();
        let literal = tok.clone().with_literal_special(true);
        let cases = fixture(&format!("fixtures/tiny/tokenizers/{name}_cases.json"));
        let cases = cases.as_array().unwrap();
        assert!(cases.len() >= 15);
        let mut special = 0;
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let default = tok.encode(text, false).unwrap();
            assert_eq!(default.ids, ids(&case["ids"]), "{name}: ids of {text:?}");
            let ours = literal.encode(text, false).unwrap();
            assert_eq!(
                ours.ids,
                ids(&case["literal_ids"]),
                "{name}: literal ids of {text:?}"
            );
            special += usize::from(default.ids != ours.ids);
            let decoded = tok.decode(&ours.ids).unwrap();
            assert_eq!(
                decoded,
                case["decoded"].as_str().unwrap(),
                "{name}: {text:?}"
            );
        }
        assert!(special > 0, "{name}: some case holds special-token text");
    }
}

/// Copies a fixture folder into a temporary one to damage it.
fn copy_folder(from: &str, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(root().join(from)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

fn load_error(path: &std::path::Path) -> String {
    match Model::load(path, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damaged_checkpoints_are_refused_naming_the_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gemma2");
    copy_folder("fixtures/tiny/gemma2", &dir);
    // A shard the index lists is missing.
    let shard = dir.join("model-00002-of-00002.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::remove_file(&shard).unwrap();
    let err = load_error(&dir);
    assert!(err.contains("model.safetensors.index.json"), "{err}");
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
    std::fs::write(&shard, bytes).unwrap();
    // layer_types of the wrong length, and an unknown layer type.
    let config_path = dir.join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let with = |extra: &str| config.replacen('{', &format!("{{{extra},"), 1);
    std::fs::write(&config_path, with(r#""layer_types": ["full_attention"]"#)).unwrap();
    let err = load_error(&dir);
    assert!(
        err.contains("layer_types") && err.contains("config.json"),
        "{err}"
    );
    let types = r#""layer_types": ["full_attention", "chunked_attention", "full_attention"]"#;
    std::fs::write(&config_path, with(types)).unwrap();
    assert!(load_error(&dir).contains("chunked_attention"));
    // A tensor of the wrong shape.
    std::fs::write(
        &config_path,
        config.replace("\"head_dim\": 16", "\"head_dim\": 8"),
    )
    .unwrap();
    assert!(load_error(&dir).contains("q_proj"));
    // An architecture that is not supported is refused with the list.
    std::fs::write(&config_path, r#"{"model_type": "phi3"}"#).unwrap();
    match Model::load(&dir, &LoadOptions::default()) {
        Err(Error::UnsupportedArchitecture {
            found, supported, ..
        }) => {
            assert_eq!(found, "phi3");
            for family in ["gemma2", "qwen3", "mistral"] {
                assert!(supported.contains(family), "{supported}");
            }
        }
        other => panic!("expected UnsupportedArchitecture, got {:?}", other.err()),
    }
}

/// Runs the binary and returns its stdout, failing on a non-zero exit.
fn run(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A whole build (scan, graphs, search index) on a tiny Gemma 2 and a tiny Qwen 3,
/// then a query and a neuron's page.
#[test]
fn build_and_query_tiny_gemma2_and_qwen3() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["gemma2", "qwen3"] {
        let index = tmp.path().join(name);
        let index_arg = index.to_str().unwrap();
        let model = format!("fixtures/tiny/{name}");
        run(&[
            "build",
            "--model",
            &model,
            "--corpus",
            common::SMALL_CORPUS,
            "--layers",
            "0-2",
            "--neurons",
            "0-7",
            "--quiet",
            "--index",
            index_arg,
        ]);
        let found: serde_json::Value =
            serde_json::from_str(&run(&["query", "layer:2", "--json", "--index", index_arg]))
                .unwrap();
        let found = found.as_array().unwrap();
        assert_eq!(
            found.len(),
            8,
            "{name}: every neuron of layer 2 has a graph"
        );
        let show: serde_json::Value =
            serde_json::from_str(&run(&["show", "1:3", "--json", "--index", index_arg])).unwrap();
        assert_eq!(show["layer"], 1, "{name}: {show}");
        let info = run(&["info", "--index", index_arg]);
        assert!(info.contains(name), "{name}: {info}");
    }
}

/// `bytes` of a GGUF file with the u32 metadata value of `key` set to `value`.
fn patch_gguf_u32(bytes: &[u8], key: &str, value: u32) -> Vec<u8> {
    // A key is its u64 length then its bytes; a u32 value is type 4 then 4 bytes.
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or_else(|| panic!("no key {key}"))
        + needle.len();
    assert_eq!(bytes[at..at + 4], 4u32.to_le_bytes(), "{key} is a u32");
    let mut out = bytes.to_vec();
    out[at + 4..at + 8].copy_from_slice(&value.to_le_bytes());
    out
}

/// Sizes of zero and layer counts far beyond the weights are refused, naming the field,
/// before anything is allocated for them (no division by zero, no huge allocation).
#[test]
fn impossible_sizes_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("qwen3");
    copy_folder("fixtures/tiny/qwen3", &dir);
    let config_path = dir.join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    for (field, value) in [
        ("num_hidden_layers", "1000000000000000"),
        ("num_attention_heads", "0"),
        ("num_key_value_heads", "0"),
        ("head_dim", "0"),
    ] {
        let mut c: serde_json::Value = serde_json::from_str(&config).unwrap();
        c[field] = serde_json::from_str(value).unwrap();
        std::fs::write(&config_path, c.to_string()).unwrap();
        let err = load_error(&dir);
        assert!(
            err.contains(field) && err.contains("config.json"),
            "{field} = {value}: {err}"
        );
    }
    let gguf = std::fs::read(root().join("fixtures/tiny/gguf_families/qwen3/model.gguf")).unwrap();
    let path = tmp.path().join("qwen3.gguf");
    for (key, value) in [
        ("qwen3.block_count", u32::MAX),
        ("qwen3.attention.head_count", 0),
        ("qwen3.attention.head_count_kv", 0),
    ] {
        std::fs::write(&path, patch_gguf_u32(&gguf, key, value)).unwrap();
        let err = load_error(&path);
        assert!(
            err.contains(key) && err.contains("qwen3.gguf"),
            "{key} = {value}: {err}"
        );
    }
}
