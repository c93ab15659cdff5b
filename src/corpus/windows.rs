//! Cutting tokenized documents into windows of at most `window` tokens plus BOS.

use rayon::prelude::*;

use super::Corpus;
use crate::error::Result;
use crate::model::TextTokenizer;

/// One window: a slice of one document's tokens, BOS first when the model has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window<'a> {
    /// Window id: its rank in corpus order.
    pub id: u32,
    /// The document it comes from (index into [`Corpus::documents`]).
    pub doc: u32,
    /// Offset of its first non-BOS token within the document's tokens.
    pub start: u32,
    /// Token ids, BOS included.
    pub ids: &'a [u32],
}

/// All windows of a corpus, in corpus order, stored flat (4 bytes a token).
#[derive(Clone, Debug, Default)]
pub struct Windows {
    tokens: Vec<u32>,
    /// `(doc, start, flat offset, length with BOS)` per window.
    spans: Vec<(u32, u32, u64, u32)>,
    bos: bool,
}

impl Windows {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there is no window.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Total tokens, BOS included.
    pub fn total_tokens(&self) -> u64 {
        self.tokens.len() as u64
    }

    /// Whether position 0 of every window is a BOS token.
    pub fn has_bos(&self) -> bool {
        self.bos
    }

    /// Window `id`.
    pub fn get(&self, id: u32) -> Window<'_> {
        let (doc, start, offset, len) = self.spans[id as usize];
        Window {
            id,
            doc,
            start,
            ids: &self.tokens[offset as usize..offset as usize + len as usize],
        }
    }

    /// All windows in order.
    pub fn iter(&self) -> impl Iterator<Item = Window<'_>> {
        (0..self.spans.len() as u32).map(|i| self.get(i))
    }
}

/// Tokenizes every document (in parallel, order kept) and cuts it into windows of
/// `window` tokens; with `bos`, the tokenizer's BOS is prepended to every window. A
/// window never spans two documents; a document's last, shorter window is kept. Long
/// documents are tokenized in pieces (`pieces`), with the same tokens as whole.
pub fn tokenize_windows(
    corpus: &Corpus,
    tokenizer: &TextTokenizer,
    window: usize,
    bos: bool,
) -> Result<Windows> {
    assert!(window > 0, "window must be positive");
    let encoded: Vec<Vec<u32>> = corpus
        .documents
        .par_iter()
        .map(|d| super::pieces::encode_in_pieces(tokenizer, &d.text))
        .collect::<Result<_>>()?;
    let bos_id = if bos { tokenizer.bos_id() } else { None };
    let mut out = Windows {
        tokens: Vec::with_capacity(encoded.iter().map(Vec::len).sum::<usize>() * 65 / 64 + 16),
        spans: Vec::new(),
        bos: bos_id.is_some(),
    };
    for (doc, ids) in encoded.iter().enumerate() {
        for (c, chunk) in ids.chunks(window).enumerate() {
            let offset = out.tokens.len() as u64;
            if let Some(b) = bos_id {
                out.tokens.push(b);
            }
            out.tokens.extend_from_slice(chunk);
            let len = (out.tokens.len() as u64 - offset) as u32;
            out.spans
                .push((doc as u32, (c * window) as u32, offset, len));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{CorpusFormat, CorpusSpec};

    /// A special token written in a corpus document is its one id, and its characters'
    /// ids with literal special tokens: the ids of Hugging Face `tokenizers` in
    /// `fixtures/reference/added_token_flags.json`.
    #[test]
    fn special_tokens_in_documents_are_their_ids() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cases: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("fixtures/reference/added_token_flags.json"))
                .unwrap(),
        )
        .unwrap();
        let text = "<|endoftext|>The cat";
        let case = cases
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["text"] == text)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chat.txt");
        std::fs::write(&file, text).unwrap();
        let mut spec = CorpusSpec::new(vec![file]);
        spec.format = CorpusFormat::Text;
        let corpus = Corpus::read(&spec).unwrap();
        let path = root.join("fixtures/reference/added_token_flags/tokenizer.json");
        let tok = TextTokenizer::from_file(&path, Some(0)).unwrap();
        for (tok, key) in [
            (tok.clone(), "ids"),
            (tok.with_literal_special(true), "literal_ids"),
        ] {
            let windows = tokenize_windows(&corpus, &tok, 64, true).unwrap();
            let want: Vec<u32> = std::iter::once(0)
                .chain(
                    case[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap() as u32),
                )
                .collect();
            assert_eq!(windows.get(0).ids, want, "{key}");
        }
    }
}
