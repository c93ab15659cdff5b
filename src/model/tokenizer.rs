//! Tokenizers: a Hugging Face `tokenizer.json`, or a byte-level BPE rebuilt from GGUF
//! metadata (`tokenizer.ggml.tokens`, `merges`, `token_type`, `pre`).
//!
//! Text is always tokenized as text: a corpus line that contains `<|im_start|>` gets the
//! ordinary tokens of those characters, never the control token (llama.cpp's
//! `special = false`). BOS is prepended by [`TextTokenizer::encode`] when asked, as
//! TransformerLens does by default.

use std::path::Path;

use serde_json::json;
use tokenizers::Tokenizer;

use super::gguf::Metadata;
use crate::error::{Error, Result};

/// The GGUF pre-tokenizer names (`tokenizer.ggml.pre`) that are rebuilt here.
pub const SUPPORTED_GGUF_PRE_TOKENIZERS: &str =
    "smollm, starcoder, refact, codeshell (digits split one by one), gpt-2, default";

/// A tokenizer with display strings for every token id.
pub struct TextTokenizer {
    inner: Tokenizer,
    bos_id: Option<u32>,
    /// Display string of every id (the token's bytes decoded as UTF-8, lossy).
    display: Vec<String>,
}

/// A tokenized text: ids with the byte span each covers in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedText {
    /// Token ids, BOS first when `bos` is true.
    pub ids: Vec<u32>,
    /// Byte range of each token in the input text (`(0, 0)` for BOS).
    pub offsets: Vec<(usize, usize)>,
    /// Whether position 0 is a prepended BOS token.
    pub bos: bool,
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path, bos_id: Option<u32>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let inner = Tokenizer::from_bytes(text.as_bytes())
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self::new(inner, bos_id))
    }

    /// Rebuilds the byte-level BPE tokenizer stored in GGUF metadata.
    pub(crate) fn from_gguf_metadata(meta: &Metadata, path: &Path) -> Result<Self> {
        let model = meta.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "{}: tokenizer.ggml.model = `{model}` cannot be rebuilt from GGUF metadata (only byte-level BPE `gpt2`); pass --tokenizer tokenizer.json",
                path.display()
            )));
        }
        let pre = meta.opt_string("tokenizer.ggml.pre").unwrap_or("default");
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                                "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = match pre {
            "smollm" | "starcoder" | "refact" | "codeshell" => json!({
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level],
            }),
            "gpt-2" | "gpt2" | "default" => byte_level,
            other => {
                return Err(Error::Tokenizer(format!(
                    "{}: tokenizer.ggml.pre = `{other}` is not supported (supported: {SUPPORTED_GGUF_PRE_TOKENIZERS}); pass --tokenizer tokenizer.json",
                    path.display()
                )))
            }
        };
        let tokens = meta.strings("tokenizer.ggml.tokens")?;
        let merges = meta.strings("tokenizer.ggml.merges")?;
        let types = meta.opt_ints("tokenizer.ggml.token_type")?;
        if let Some(types) = &types {
            if types.len() != tokens.len() {
                return Err(Error::bad_model(
                    path,
                    format!(
                        "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                        types.len(),
                        tokens.len()
                    ),
                ));
            }
        }
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (id, tok) in tokens.iter().enumerate() {
            vocab.insert((*tok).to_string(), json!(id));
            // token_type 3 = control, 4 = user defined: matched as whole tokens.
            let ty = types.as_ref().map_or(1, |t| t[id]);
            if ty == 3 || ty == 4 {
                added.push(json!({"id": id, "content": tok, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false,
                    "special": ty == 3}));
            }
        }
        if vocab.len() != tokens.len() {
            return Err(Error::bad_model(
                path,
                "tokenizer.ggml.tokens holds duplicate token strings",
            ));
        }
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true,
                        "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        });
        let inner = Tokenizer::from_bytes(spec.to_string().as_bytes()).map_err(|e| {
            Error::Tokenizer(format!("{}: rebuilding from metadata: {e}", path.display()))
        })?;
        Ok(Self::new(inner, None))
    }

    fn new(mut inner: Tokenizer, bos_id: Option<u32>) -> Self {
        inner.set_encode_special_tokens(true);
        let n = inner.get_vocab_size(true);
        let display = (0..n as u32)
            .map(|id| inner.decode(&[id], false).unwrap_or_default())
            .collect();
        TextTokenizer {
            inner,
            bos_id,
            display,
        }
    }

    /// The same tokenizer with another BOS id.
    pub fn with_bos(mut self, bos_id: Option<u32>) -> Self {
        self.bos_id = bos_id;
        self
    }

    /// The BOS id prepended by [`encode`](Self::encode).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.display.len()
    }

    /// Tokenizes `text`, prepending BOS when `add_bos` is true and the model has one.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<TokenizedText> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        let mut offsets = Vec::with_capacity(enc.len() + 1);
        let bos = add_bos && self.bos_id.is_some();
        if bos {
            ids.push(self.bos_id.expect("checked"));
            offsets.push((0, 0));
        }
        ids.extend_from_slice(enc.get_ids());
        offsets.extend_from_slice(enc.get_offsets());
        Ok(TokenizedText { ids, offsets, bos })
    }

    /// The display string of a token (its bytes as UTF-8, invalid sequences replaced).
    pub fn token_str(&self, id: u32) -> &str {
        self.display.get(id as usize).map_or("", String::as_str)
    }

    /// Display strings of every id (see [`token_str`](Self::token_str)).
    pub fn token_strs(&self) -> &[String] {
        &self.display
    }

    /// The token's string in the vocabulary (byte-level symbols such as `Ġ` kept).
    pub fn vocab_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a vocabulary string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Decodes ids to text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }
}
