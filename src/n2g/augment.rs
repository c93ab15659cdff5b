//! Substitutes for augmentation (N2G step 5), from the target model itself: the nearest
//! neighbours of a token in the model's input embedding matrix (cosine similarity).
//!
//! The authors used DistilBERT's masked-LM predictions; n2g-index needs no extra model.
//! A substitute must be a whole word like the original: only letters after an optional
//! leading space, the same leading-space status, the same case pattern (title case
//! stays title case, lower stays lower, upper stays upper), and a different normalised
//! form. Ties in similarity break by token id, so the choice is deterministic.

use std::collections::HashMap;

use candle_core::{DType, Tensor, D};

use super::tokens::{is_title, normalize};
use crate::error::Result;
use crate::model::Model;

/// The case pattern of a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Lower,
    Upper,
    Title,
}

/// `(leading space, case)` when `token` is a whole word, else `None`.
fn word_shape(token: &str) -> Option<(bool, Case)> {
    let space = token.starts_with(' ');
    let core = token.strip_prefix(' ').unwrap_or(token);
    if core.is_empty() || !core.chars().all(char::is_alphabetic) {
        return None;
    }
    let case = if core.chars().all(char::is_lowercase) {
        Case::Lower
    } else if core.chars().count() > 1 && core.chars().all(char::is_uppercase) {
        Case::Upper
    } else if is_title(core) {
        Case::Title
    } else {
        return None;
    };
    Some((space, case))
}

/// Nearest-neighbour substitutes, computed on demand and cached.
pub struct Substitutes {
    /// Row-normalised embedding matrix, `[vocab, hidden]`.
    unit: Tensor,
    /// Display strings of the vocabulary.
    vocab: Vec<String>,
    per_token: usize,
    cache: HashMap<u32, Vec<u32>>,
}

/// Candidates inspected per query before the word filter.
const SHORTLIST: usize = 256;

impl Substitutes {
    /// Prepares the normalised embedding matrix of `model`.
    pub fn new(model: &Model, per_token: usize) -> Result<Self> {
        let e = model.embedding_matrix().to_dtype(DType::F32)?;
        let norms = e
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        let unit = e.broadcast_div(&norms)?;
        Ok(Substitutes {
            unit,
            vocab: model.tokenizer().token_strs().to_vec(),
            per_token,
            cache: HashMap::new(),
        })
    }

    /// Substitutes of `token`, best first (empty when it is not a whole word).
    pub fn get(&self, token: u32) -> &[u32] {
        self.cache.get(&token).map_or(&[], Vec::as_slice)
    }

    /// Computes (in batches) the substitutes of every token not yet cached.
    pub fn prepare(&mut self, tokens: impl IntoIterator<Item = u32>) -> Result<()> {
        let mut todo: Vec<u32> = tokens
            .into_iter()
            .filter(|t| !self.cache.contains_key(t))
            .collect();
        todo.sort_unstable();
        todo.dedup();
        let (words, others): (Vec<u32>, Vec<u32>) = todo.into_iter().partition(|&t| {
            (t as usize) < self.vocab.len() && word_shape(&self.vocab[t as usize]).is_some()
        });
        for t in others {
            self.cache.insert(t, Vec::new());
        }
        let vocab_size = self.unit.dim(0)?;
        // One candidate buffer for every query: the cached lists are collected fresh, so
        // each holds its few ids, not a vocabulary-sized allocation.
        let mut order: Vec<u32> = Vec::with_capacity(vocab_size);
        for chunk in words.chunks(256) {
            let ids = Tensor::new(chunk, self.unit.device())?;
            let q = self.unit.index_select(&ids, 0)?;
            let sims = q.matmul(&self.unit.t()?)?.to_vec2::<f32>()?;
            for (&t, row) in chunk.iter().zip(&sims) {
                let shape = word_shape(&self.vocab[t as usize]).expect("filtered");
                let original = normalize(&self.vocab[t as usize]);
                order.clear();
                order.extend(0..vocab_size as u32);
                let k = SHORTLIST.min(order.len());
                let cmp =
                    |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
                order.select_nth_unstable_by(k - 1, cmp);
                order.truncate(k);
                order.sort_by(cmp);
                let picked: Vec<u32> = order
                    .iter()
                    .copied()
                    .filter(|&c| c != t)
                    .filter(|&c| {
                        let s = &self.vocab[c as usize];
                        word_shape(s) == Some(shape) && normalize(s) != original
                    })
                    .take(self.per_token)
                    .collect();
                self.cache.insert(t, picked);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_shapes() {
        assert_eq!(word_shape(" Paris"), Some((true, Case::Title)));
        assert_eq!(word_shape("paris"), Some((false, Case::Lower)));
        assert_eq!(word_shape(" NASA"), Some((true, Case::Upper)));
        assert_eq!(word_shape(" A"), Some((true, Case::Title)));
        assert_eq!(word_shape(" 42"), None);
        assert_eq!(word_shape(" Mc2"), None);
        assert_eq!(word_shape(" McDonald"), None);
        assert_eq!(word_shape(","), None);
        assert_eq!(word_shape(" "), None);
    }

    #[test]
    fn cached_lists_hold_only_their_ids() {
        // A cached list once kept the whole vocabulary-sized candidate buffer (196 KB per
        // word on SmolLM2): memory grew with every new word a build met.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = Model::load(
            root.join("fixtures/tiny/llama"),
            &crate::LoadOptions::default(),
        )
        .unwrap();
        let mut subs = Substitutes::new(&model, 5).unwrap();
        subs.prepare(0..model.info().vocab_size as u32).unwrap();
        assert!(subs.cache.values().any(|v| !v.is_empty()));
        for v in subs.cache.values() {
            assert!(
                v.len() <= 5 && v.capacity() <= 16,
                "{} ids, capacity {}",
                v.len(),
                v.capacity()
            );
        }
    }
}
