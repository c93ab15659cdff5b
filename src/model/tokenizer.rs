//! Tokenizers: a Hugging Face `tokenizer.json`, or one rebuilt from GGUF metadata: a
//! byte-level BPE (`tokenizer.ggml.tokens`, `merges`, `token_type`, `pre`) or a
//! SentencePiece BPE (`tokens`, `scores`, `token_type`: Llama 2, Mistral, TinyLlama).
//!
//! Added special tokens written in a text become their one id, as the model's reference
//! tokenizer does (`tokenizer.encode(text, add_special_tokens=False)` of Hugging Face
//! `tokenizers`, which TransformerLens uses): `<|im_start|>` in a corpus line is id 1 of
//! SmolLM2, not the pieces `<`, `|`, `im`, .... With literal special tokens
//! ([`TextTokenizer::with_literal_special`]) they are cut into the tokens of their
//! characters instead (llama.cpp's `special = false`); added tokens that are not special
//! match in both modes. BOS is prepended by [`TextTokenizer::encode`] when asked, as
//! TransformerLens does by default.

use std::path::Path;

use serde_json::json;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::pre_tokenizers::metaspace::PrependScheme;
use tokenizers::Tokenizer;

use super::gguf::Metadata;
use crate::error::{Error, Result};

/// The GGUF pre-tokenizer names (`tokenizer.ggml.pre`) that are rebuilt here.
pub const SUPPORTED_GGUF_PRE_TOKENIZERS: &str =
    "smollm, starcoder, refact, codeshell (digits split one by one), llama-bpe (Llama 3), gpt-2, default";

/// Llama 3's split pattern (llama.cpp's `llama-bpe`, Hugging Face's Llama 3
/// `tokenizer.json`): contractions, words with one leading non-letter, numbers of up to
/// three digits, punctuation runs, newlines, whitespace not before a word.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer (as `tokenizer.json` writes it) of a byte-level BPE GGUF's
/// `tokenizer.ggml.pre`; `None` when not supported.
fn byte_level_pre_tokenizer(pre: &str) -> Option<serde_json::Value> {
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
               "use_regex": use_regex})
    };
    Some(match pre {
        "smollm" | "starcoder" | "refact" | "codeshell" => json!({
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)],
        }),
        "llama-bpe" | "llama3" | "llama-v3" => json!({
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated",
                 "invert": false},
                byte_level(false)],
        }),
        "gpt-2" | "gpt2" | "default" => byte_level(true),
        _ => return None,
    })
}

/// GGUF `tokenizer.ggml.token_type` values.
const TOKEN_NORMAL: i64 = 1;
const TOKEN_UNKNOWN: i64 = 2;
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;

/// The BPE merges of a SentencePiece vocabulary. SentencePiece BPE (and llama.cpp)
/// repeatedly joins the adjacent pair whose joined piece has the highest score; as
/// merges, that is every split of every normal piece into two normal pieces, ranked by
/// the joined piece's score (ties: lower id of the joined piece, then of its halves).
fn sentencepiece_merges(
    tokens: &[&str],
    scores: &[f64],
    type_of: &dyn Fn(usize) -> i64,
) -> Vec<[String; 2]> {
    let normal: std::collections::HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .filter(|&(id, _)| type_of(id) == TOKEN_NORMAL)
        .map(|(id, t)| (*t, id))
        .collect();
    let mut merges: Vec<(f64, usize, usize, usize, usize)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if type_of(id) != TOKEN_NORMAL {
            continue;
        }
        for (at, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(at);
            if let (Some(&li), Some(&ri)) = (normal.get(l), normal.get(r)) {
                merges.push((scores[id], id, li, ri, at));
            }
        }
    }
    merges.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    merges
        .into_iter()
        .map(|(_, id, _, _, at)| {
            let (l, r) = tokens[id].split_at(at);
            [l.to_string(), r.to_string()]
        })
        .collect()
}

/// The added tokens (as `tokenizer.json` writes them) of a GGUF vocabulary, as Hugging
/// Face's GGUF converter and llama.cpp's `parse_special` take them: control and unknown
/// tokens are special, user-defined ones plain added tokens; all matched whole, as
/// written (not normalized, no stripping).
fn added_tokens(tokens: &[&str], type_of: &dyn Fn(usize) -> i64) -> Vec<serde_json::Value> {
    tokens
        .iter()
        .enumerate()
        .filter_map(|(id, tok)| {
            let ty = type_of(id);
            matches!(ty, TOKEN_CONTROL | TOKEN_USER_DEFINED | TOKEN_UNKNOWN).then(|| {
                json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false,
                       "special": ty != TOKEN_USER_DEFINED})
            })
        })
        .collect()
}

/// `decoder` without the steps that drop the space a text's first token starts with.
fn keeping_leading_space(decoder: DecoderWrapper) -> DecoderWrapper {
    match decoder {
        DecoderWrapper::Sequence(seq) => DecoderWrapper::Sequence(DecoderSequence::new(
            seq.get_decoders()
                .iter()
                .filter(|d| !matches!(d, DecoderWrapper::Strip(_)))
                .cloned()
                .map(keeping_leading_space)
                .collect(),
        )),
        DecoderWrapper::Metaspace(mut m) => {
            m.set_prepend_scheme(PrependScheme::Never);
            DecoderWrapper::Metaspace(m)
        }
        other => other,
    }
}

/// A tokenizer with display strings for every token id.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    bos_id: Option<u32>,
    /// Whether special tokens written in a text are cut into ordinary tokens.
    literal_special: bool,
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

    /// Rebuilds the tokenizer stored in GGUF metadata: a byte-level BPE
    /// (`tokenizer.ggml.model = gpt2`) or a SentencePiece BPE (`llama`).
    pub(crate) fn from_gguf_metadata(meta: &Metadata, path: &Path) -> Result<Self> {
        let model = meta.string("tokenizer.ggml.model")?;
        let tokens = meta.strings("tokenizer.ggml.tokens")?;
        // A per-token list must have one entry per token.
        let same_length = |key: &str, len: usize| -> Result<()> {
            if len == tokens.len() {
                return Ok(());
            }
            Err(Error::bad_model(
                path,
                format!(
                    "{key} has {len} entries but tokenizer.ggml.tokens has {}",
                    tokens.len()
                ),
            ))
        };
        let types = meta.opt_ints("tokenizer.ggml.token_type")?;
        if let Some(types) = &types {
            same_length("tokenizer.ggml.token_type", types.len())?;
        }
        let type_of = |id: usize| types.as_ref().map_or(TOKEN_NORMAL, |t| t[id]);
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        for (id, tok) in tokens.iter().enumerate() {
            vocab.insert((*tok).to_string(), json!(id));
        }
        let added = added_tokens(&tokens, &type_of);
        if vocab.len() != tokens.len() {
            return Err(Error::bad_model(
                path,
                "tokenizer.ggml.tokens holds duplicate token strings",
            ));
        }
        let (normalizer, pre_tokenizer, model_spec, decoder) = match model {
            "gpt2" => {
                let pre = meta.opt_string("tokenizer.ggml.pre").unwrap_or("default");
                let Some(pre_tokenizer) = byte_level_pre_tokenizer(pre) else {
                    return Err(Error::Tokenizer(format!(
                        "{}: tokenizer.ggml.pre = `{pre}` is not supported (supported: {SUPPORTED_GGUF_PRE_TOKENIZERS}); pass --tokenizer tokenizer.json",
                        path.display()
                    )));
                };
                let merges = meta.strings("tokenizer.ggml.merges")?;
                let model = json!({"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges});
                let decoder = json!({"type": "ByteLevel", "add_prefix_space": true,
                                     "trim_offsets": true, "use_regex": true});
                (serde_json::Value::Null, pre_tokenizer, model, decoder)
            }
            "llama" => {
                let scores = meta.floats("tokenizer.ggml.scores")?;
                same_length("tokenizer.ggml.scores", scores.len())?;
                let merges = sentencepiece_merges(&tokens, &scores, &type_of);
                let unk = (0..tokens.len())
                    .find(|&id| type_of(id) == TOKEN_UNKNOWN)
                    .map(|id| tokens[id]);
                // SentencePiece (and llama.cpp) write spaces as U+2581 and, by default,
                // put one before the text.
                let replace = json!({"type": "Replace", "pattern": {"String": " "},
                                     "content": "\u{2581}"});
                let normalizer = if meta
                    .opt_bool("tokenizer.ggml.add_space_prefix")?
                    .unwrap_or(true)
                {
                    json!({"type": "Sequence", "normalizers": [
                        {"type": "Prepend", "prepend": "\u{2581}"}, replace]})
                } else {
                    replace
                };
                let model = json!({"type": "BPE", "dropout": null, "unk_token": unk,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                      "vocab": vocab, "merges": merges});
                // No Strip step: a token shows its leading space (" the"), as byte-level
                // tokens do.
                let decoder = json!({"type": "Sequence", "decoders": [
                    {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                    {"type": "ByteFallback"}, {"type": "Fuse"}]});
                (normalizer, serde_json::Value::Null, model, decoder)
            }
            other => {
                return Err(Error::Tokenizer(format!(
                    "{}: tokenizer.ggml.model = `{other}` cannot be rebuilt from GGUF metadata (supported: byte-level BPE `gpt2`, SentencePiece BPE `llama`); pass --tokenizer tokenizer.json",
                    path.display()
                )))
            }
        };
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": decoder,
            "model": model_spec,
        });
        let inner = Tokenizer::from_bytes(spec.to_string().as_bytes()).map_err(|e| {
            Error::Tokenizer(format!("{}: rebuilding from metadata: {e}", path.display()))
        })?;
        Ok(Self::new(inner, None))
    }

    fn new(mut inner: Tokenizer, bos_id: Option<u32>) -> Self {
        inner.set_encode_special_tokens(false);
        let n = inner.get_vocab_size(true);
        // A token's display string keeps its leading space: SentencePiece decoders drop
        // the space of the first token of a text (a `Strip` step, or `Metaspace`'s
        // prepend scheme), which would show " the" as "the".
        let mut shown = inner.clone();
        if let Some(decoder) = inner.get_decoder() {
            shown.with_decoder(Some(keeping_leading_space(decoder.clone())));
        }
        let display = (0..n as u32)
            .map(|id| shown.decode(&[id], false).unwrap_or_default())
            .collect();
        TextTokenizer {
            inner,
            bos_id,
            literal_special: false,
            display,
        }
    }

    /// The same tokenizer, cutting special tokens written in a text into the ordinary
    /// tokens of their characters when `literal` is true (llama.cpp's `special =
    /// false`), or mapping each to its one id when false (the default, as Hugging Face
    /// `tokenizers` does). Added tokens that are not special match in both modes.
    pub fn with_literal_special(mut self, literal: bool) -> Self {
        self.inner.set_encode_special_tokens(literal);
        self.literal_special = literal;
        self
    }

    /// Whether special tokens in a text are tokenized as their characters (see
    /// [`with_literal_special`](Self::with_literal_special)).
    pub fn literal_special(&self) -> bool {
        self.literal_special
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn pieces(pre: &str, text: &str) -> Vec<String> {
        let spec = byte_level_pre_tokenizer(pre).expect("supported");
        let pre: tokenizers::PreTokenizerWrapper = serde_json::from_value(spec).unwrap();
        let mut s = PreTokenizedString::from(text);
        pre.pre_tokenize(&mut s).unwrap();
        s.get_splits(OffsetReferential::Original, OffsetType::Char)
            .into_iter()
            .map(|(p, _, _)| p.to_string())
            .collect()
    }

    /// Expected pieces worked out by hand from Llama 3's pattern: numbers in threes,
    /// a contraction on its own, a space run split so that its last space starts the
    /// next word, newlines together (then mapped to byte-level symbols: space `Ġ`,
    /// newline `Ċ`).
    #[test]
    fn llama3_pre_tokenizer_splits_by_hand() {
        assert_eq!(
            pieces("llama-bpe", "Hello world's 12345  ok\n\nx"),
            ["Hello", "Ġworld", "'s", "Ġ", "123", "45", "Ġ", "Ġok", "ĊĊ", "x"]
        );
        assert_eq!(
            pieces("llama-bpe", "I'LL go!!\n"),
            ["I", "'LL", "Ġgo", "!!Ċ"]
        );
        // SmolLM2's: digits one by one, GPT-2's pattern otherwise.
        assert_eq!(
            pieces("smollm", "world's 123"),
            ["world", "'s", "Ġ", "1", "2", "3"]
        );
    }

    /// A `tokenizer.json` with a `Metaspace` decoder (Hugging Face's newer Llama and
    /// Mistral files) shows " the", not "the", though decoding a text drops the space
    /// its first token starts with.
    #[test]
    fn metaspace_tokens_show_their_leading_space() {
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}",
                              "prepend_scheme": "first", "split": false},
            "post_processor": null,
            "decoder": {"type": "Metaspace", "replacement": "\u{2581}",
                        "prepend_scheme": "first", "split": false},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": {"\u{2581}": 0, "t": 1, "h": 2, "e": 3, "\u{2581}t": 4,
                                "\u{2581}th": 5, "\u{2581}the": 6},
                      "merges": [["\u{2581}", "t"], ["\u{2581}t", "h"], ["\u{2581}th", "e"]]},
        });
        let inner = Tokenizer::from_bytes(spec.to_string().as_bytes()).unwrap();
        let tok = TextTokenizer::new(inner, None);
        let ids = tok.encode("the the", false).unwrap().ids;
        assert_eq!(ids, [6, 6]);
        assert_eq!(tok.token_str(6), " the");
        assert_eq!(tok.decode(&ids).unwrap(), "the the");
    }
}
