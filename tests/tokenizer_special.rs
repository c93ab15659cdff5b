//! Special tokens written in a text (`<|im_start|>`) against the Hugging Face `tokenizers`
//! library: ids from `scripts/reference/special_tokens.py`, never values copied from this
//! crate's output. By default each marker is its one id, as
//! `tokenizer.encode(text, add_special_tokens=False)` gives; with literal special tokens
//! the ids of its characters.
//!
//! Needs the default model: `scripts/setup` (the test command runs it first).

use std::io::Read;
use std::path::{Path, PathBuf};

use n2g_index::{LoadOptions, Model, TextTokenizer};
use serde_json::Value;

mod common;
use common::{bin, root};

/// `(text, ids, literal_ids)` of a fixture under `fixtures/reference/`.
fn cases(name: &str) -> Vec<(String, Vec<u32>, Vec<u32>)> {
    let p = root().join("fixtures/reference").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 10);
    cases
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap().to_string(),
                ids(&c["ids"]),
                ids(&c["literal_ids"]),
            )
        })
        .collect()
}

/// Asserts that `tok` gives every case's ids (`literal`: its literal ids).
fn check(tok: &TextTokenizer, fixture: &str, literal: bool) {
    assert_eq!(tok.literal_special(), literal);
    for (text, ids, literal_ids) in cases(fixture) {
        let want = if literal { literal_ids } else { ids };
        let got = tok.encode(&text, false).unwrap();
        assert_eq!(got.ids, want, "{text:?} (literal special: {literal})");
        // Every token's span lies in the text, starting in order (a space prefix put in
        // by a normalizer shares the span of the space or token it came with).
        let mut start = 0;
        for &(a, b) in &got.offsets {
            assert!(
                a >= start && b >= a && b <= text.len(),
                "{text:?}: {a}..{b}"
            );
            start = a;
        }
    }
}

fn default_model(literal_special: bool) -> Model {
    let options = LoadOptions {
        literal_special,
        ..LoadOptions::default()
    };
    Model::load_default(root(), &options).unwrap_or_else(|e| {
        panic!(
            "{e}\n(the test command runs scripts/setup first; run it by hand to fetch the model)"
        )
    })
}

/// SmolLM2's tokenizer as Hugging Face `tokenizers` wrote it (gunzipped into `dir`).
fn smollm2_tokenizer_json(dir: &Path) -> PathBuf {
    let gz = root().join("fixtures/reference/smollm2_hf_tokenizer.json.gz");
    let file = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .unwrap();
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn gguf_rebuilt_tokenizer_maps_special_tokens_as_hf_tokenizers() {
    let model = default_model(false);
    check(model.tokenizer(), "smollm2_special_tokens.json", false);
    // A marker's span is the marker.
    let chat = "<|im_start|>assistant\nHello!<|im_end|>";
    let enc = model.tokenizer().encode(chat, true).unwrap();
    assert_eq!(enc.ids[..2], [1, 1]);
    assert_eq!(enc.offsets[1], (0, 12));
    assert_eq!(*enc.offsets.last().unwrap(), (chat.len() - 10, chat.len()));
}

#[test]
fn gguf_rebuilt_tokenizer_with_literal_special_cuts_markers() {
    check(
        default_model(true).tokenizer(),
        "smollm2_special_tokens.json",
        true,
    );
}

#[test]
fn tokenizer_json_maps_special_tokens_as_hf_tokenizers() {
    let tmp = tempfile::tempdir().unwrap();
    let path = smollm2_tokenizer_json(tmp.path());
    let tok = TextTokenizer::from_file(&path, Some(1)).unwrap();
    check(&tok, "smollm2_special_tokens.json", false);
    let tok = tok.with_literal_special(true);
    check(&tok, "smollm2_special_tokens.json", true);
    let tok = tok.with_literal_special(false);
    check(&tok, "smollm2_special_tokens.json", false);
}

/// A SentencePiece tokenizer rebuilt from GGUF metadata: `<unk>`, `<s>` and `</s>` (types
/// unknown and control) as in Llama 2's `tokenizer.json`, the space prefix after each.
#[test]
fn gguf_rebuilt_sentencepiece_maps_special_tokens_as_hf_tokenizers() {
    for literal_special in [false, true] {
        let options = LoadOptions {
            literal_special,
            ..LoadOptions::default()
        };
        let model = Model::load(root().join("fixtures/tiny/gguf/model.gguf"), &options).unwrap();
        check(
            model.tokenizer(),
            "tiny_gguf_special_tokens.json",
            literal_special,
        );
    }
}

/// `lstrip`, `rstrip`, `single_word` and `normalized` of added tokens, special and not,
/// in both modes.
#[test]
fn added_token_flags_as_hf_tokenizers() {
    let path = root().join("fixtures/reference/added_token_flags/tokenizer.json");
    let tok = TextTokenizer::from_file(&path, Some(0)).unwrap();
    check(&tok, "added_token_flags.json", false);
    check(
        &tok.with_literal_special(true),
        "added_token_flags.json",
        true,
    );
}

/// `activations` on a chat text: the marker is one token by default, its characters with
/// `--literal-special`.
#[test]
fn activations_command_takes_markers_as_their_ids() {
    let ids = |extra: &[&str]| -> Vec<u64> {
        let out = bin()
            .args([
                "activations",
                "--layer",
                "0",
                "--neurons",
                "0",
                "--json",
                "--text",
                "<|im_start|>user\nHi<|im_end|>",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    let case = cases("smollm2_special_tokens.json");
    let expected = |literal: bool| -> Vec<u64> {
        let (_, ids, lit) = case
            .iter()
            .find(|c| c.0 == "<|im_start|>user\nHi<|im_end|>")
            .expect("in the fixture");
        let mut v = vec![1u64];
        v.extend((if literal { lit } else { ids }).iter().map(|&i| i as u64));
        v
    };
    assert_eq!(ids(&[]), expected(false));
    assert_eq!(ids(&["--literal-special"]), expected(true));
}
