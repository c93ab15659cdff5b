//! Substitutes for augmentation (N2G step 5), from the target model itself: the nearest
//! neighbours of a token in the model's input embedding matrix (cosine similarity).
//!
//! The authors used DistilBERT's masked-LM predictions; n2g-index needs no extra model.
//! A substitute must be a whole word like the original: only letters after an optional
//! leading space, the same leading-space status, the same case pattern (title case
//! stays title case, lower stays lower, upper stays upper), and a different normalised
//! form. The substitutes of a word are the nearest such words, compared with the words
//! of its shape only. Ties in similarity break by token id, so the choice is
//! deterministic.

use std::collections::HashMap;

use candle_core::{DType, Tensor, D};

use super::tokens::{is_title, normalize};
use crate::error::Result;
use crate::model::{top_k, Model};

/// The case pattern of a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// The whole-word tokens of one shape, with their unit embedding rows.
struct ShapeGroup {
    /// Token ids, ascending.
    ids: Vec<u32>,
    /// Their row-normalised embeddings, `[ids.len(), hidden]`.
    unit: Tensor,
}

/// Nearest-neighbour substitutes, computed on demand and cached.
pub struct Substitutes {
    /// The candidates, by word shape: a substitute has its original's shape, so each
    /// query is compared with its own group only (a third or less of the vocabulary).
    groups: HashMap<(bool, Case), ShapeGroup>,
    /// Display strings of the vocabulary.
    vocab: Vec<String>,
    per_token: usize,
    cache: HashMap<u32, Vec<u32>>,
}

impl Substitutes {
    /// Prepares the normalised embeddings of the model's whole-word tokens, by shape.
    pub fn new(model: &Model, per_token: usize) -> Result<Self> {
        let e = model.embedding_matrix().to_dtype(DType::F32)?;
        let vocab = model.tokenizer().token_strs().to_vec();
        let mut ids: HashMap<(bool, Case), Vec<u32>> = HashMap::new();
        for (t, s) in vocab.iter().enumerate().take(e.dim(0)?) {
            if let Some(shape) = word_shape(s) {
                ids.entry(shape).or_default().push(t as u32);
            }
        }
        let mut groups = HashMap::new();
        for (shape, ids) in ids {
            let rows = e.index_select(&Tensor::new(ids.as_slice(), e.device())?, 0)?;
            let norms = rows
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            let unit = rows.broadcast_div(&norms)?;
            groups.insert(shape, ShapeGroup { ids, unit });
        }
        Ok(Substitutes {
            groups,
            vocab,
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
        // Words by shape, as (position in their group, token).
        let mut queries: HashMap<(bool, Case), Vec<(usize, u32)>> = HashMap::new();
        for t in todo {
            let found = self
                .vocab
                .get(t as usize)
                .and_then(|s| word_shape(s))
                .and_then(|shape| {
                    let row = self.groups.get(&shape)?.ids.binary_search(&t).ok()?;
                    Some((shape, row))
                });
            match found {
                Some((shape, row)) => queries.entry(shape).or_default().push((row, t)),
                None => {
                    self.cache.insert(t, Vec::new());
                }
            }
        }
        for (shape, queries) in queries {
            let group = &self.groups[&shape];
            for chunk in queries.chunks(256) {
                let rows: Vec<u32> = chunk.iter().map(|&(row, _)| row as u32).collect();
                let q = group
                    .unit
                    .index_select(&Tensor::new(rows.as_slice(), group.unit.device())?, 0)?;
                let sims = q.matmul(&group.unit.t()?)?.to_vec2::<f32>()?;
                for (&(row, t), sims) in chunk.iter().zip(&sims) {
                    let original = normalize(&self.vocab[t as usize]);
                    let picked = nearest(sims, row, self.per_token, |c| {
                        normalize(&self.vocab[group.ids[c] as usize]) != original
                    });
                    let picked = picked.into_iter().map(|c| group.ids[c as usize]).collect();
                    self.cache.insert(t, picked);
                }
            }
        }
        Ok(())
    }
}

/// The `n` positions of `sims` with the highest values (ties: lower position), best
/// first, leaving out `own` and those `keep` refuses.
fn nearest(sims: &[f32], own: usize, n: usize, keep: impl Fn(usize) -> bool) -> Vec<u32> {
    // The best few usually suffice; widen the shortlist until `n` pass, or all are in.
    let mut k = (4 * (n + 1)).min(sims.len());
    loop {
        // Collected from a borrowing iterator, so the list gets its own small buffer
        // (`into_iter` would collect in place and keep the shortlist's allocation).
        let picked: Vec<u32> = top_k(sims, k)
            .iter()
            .map(|&(c, _)| c)
            .filter(|&c| c as usize != own && keep(c as usize))
            .take(n)
            .collect();
        if picked.len() == n || k == sims.len() {
            return picked;
        }
        k = (2 * k).min(sims.len());
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

    /// The tiny random-weight llama of `fixtures/tiny`.
    fn tiny_llama() -> Model {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Model::load(
            root.join("fixtures/tiny/llama"),
            &crate::LoadOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn substitutes_are_the_nearest_words_of_the_same_shape() {
        // Oracle: cosine similarity in f64 over the raw embedding matrix, every token.
        let model = tiny_llama();
        let e = model
            .embedding_matrix()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let vocab = model.tokenizer().token_strs().to_vec();
        let cos = |a: usize, b: usize| {
            let dot: f64 = e[a].iter().zip(&e[b]).map(|(x, y)| x * y).sum();
            let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            dot / (norm(&e[a]) * norm(&e[b]))
        };
        let n = 3;
        let mut subs = Substitutes::new(&model, n).unwrap();
        subs.prepare(0..vocab.len() as u32).unwrap();
        let mut words = 0;
        for (t, s) in vocab.iter().enumerate() {
            let got = subs.get(t as u32);
            let Some(shape) = word_shape(s) else {
                assert!(got.is_empty(), "{s:?} is not a word");
                continue;
            };
            words += 1;
            let valid = |c: usize| {
                c != t
                    && word_shape(&vocab[c]) == Some(shape)
                    && normalize(&vocab[c]) != normalize(s)
            };
            let mut want: Vec<usize> = (0..vocab.len()).filter(|&c| valid(c)).collect();
            want.sort_by(|&a, &b| cos(t, b).total_cmp(&cos(t, a)).then(a.cmp(&b)));
            want.truncate(n);
            assert_eq!(got.len(), want.len(), "{s:?}");
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(valid(g as usize), "{s:?}: {:?}", vocab[g as usize]);
                // The same ranking, up to float32 near-ties.
                assert!(
                    (cos(t, g as usize) - cos(t, w)).abs() < 1e-5,
                    "{s:?} #{i}: {:?} vs {:?}",
                    vocab[g as usize],
                    vocab[w]
                );
            }
        }
        assert!(words > 20, "the fixture has words to test ({words})");
    }

    #[test]
    fn cached_lists_hold_only_their_ids() {
        // A cached list once kept the whole vocabulary-sized candidate buffer (196 KB per
        // word on SmolLM2): memory grew with every new word a build met.
        let model = tiny_llama();
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
