//! Prefix-shared forward passes (tree attention).
//!
//! Many sequences of the graph stage differ from each other only after some position:
//! a masked row equals its text up to the masked token, a substituted variant up to the
//! substitution. In a causal model the activations of a prefix do not depend on what
//! follows, so the shared prefix needs computing once. [`PrefixPacking`] puts the
//! sequences into a prefix tree (trie) and packs the tree's nodes into rows: each row
//! holds whole root-to-sequence paths, every node once, and each token attends only to
//! its ancestors (its own prefix) at the RoPE / position-embedding position of its depth.
//! One forward over the rows then gives, for every sequence, the same activations as
//! running it alone.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::Hook;
use super::{ForwardRequest, LayerActivations, Model, TreeLayout};
use crate::error::{Error, Result};

/// One packed row: tokens in depth-first order, each with its depth (position) and the
/// column of its parent in the row (`None` for a root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedRow {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Position of each token in its sequence.
    pub positions: Vec<u32>,
    /// Column of each token's parent (the token before it in its sequence).
    pub parents: Vec<Option<u32>>,
}

/// Sequences packed into prefix-shared rows.
#[derive(Clone, Debug)]
pub struct PrefixPacking {
    /// The rows.
    pub rows: Vec<PackedRow>,
    /// For every input sequence: its row and the column of each of its positions.
    pub placement: Vec<(usize, Vec<u32>)>,
}

impl PrefixPacking {
    /// Packs `seqs` into rows of at most `row_tokens` tokens (a longer sequence gets a
    /// row of its own length). Equal prefixes within a row are stored once.
    pub fn pack(seqs: &[&[u32]], row_tokens: usize) -> PrefixPacking {
        // Depth-first order of the trie is the lexicographic order of the sequences.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by(|&a, &b| seqs[a].cmp(seqs[b]).then(a.cmp(&b)));
        let mut rows: Vec<PackedRow> = Vec::new();
        let mut placement: Vec<(usize, Vec<u32>)> = vec![(0, Vec::new()); seqs.len()];
        // Children of each node of the current row: (parent column or MAX, token) -> column.
        let mut children: HashMap<(u32, u32), u32> = HashMap::new();
        for &s in &order {
            let seq = seqs[s];
            // Columns of the prefix already in the current row.
            let mut cols: Vec<u32> = Vec::with_capacity(seq.len());
            let mut parent = u32::MAX;
            for &tok in seq {
                match children.get(&(parent, tok)) {
                    Some(&c) => {
                        cols.push(c);
                        parent = c;
                    }
                    None => break,
                }
            }
            let used = rows.last().map_or(0, |r| r.ids.len());
            if rows.is_empty() || (used > 0 && used + seq.len() - cols.len() > row_tokens) {
                cols.clear();
                children.clear();
                rows.push(PackedRow::empty());
            }
            let r = rows.len() - 1;
            let row = &mut rows[r];
            for (p, &tok) in seq.iter().enumerate().skip(cols.len()) {
                let parent = cols.last().copied();
                let c = row.ids.len() as u32;
                row.ids.push(tok);
                row.positions.push(p as u32);
                row.parents.push(parent);
                children.insert((parent.unwrap_or(u32::MAX), tok), c);
                cols.push(c);
            }
            placement[s] = (r, cols);
        }
        PrefixPacking { rows, placement }
    }

    /// Tokens actually run (the sum of the rows' lengths).
    pub fn tokens(&self) -> usize {
        self.rows.iter().map(|r| r.ids.len()).sum()
    }
}

impl PackedRow {
    fn empty() -> PackedRow {
        PackedRow {
            ids: Vec::new(),
            positions: Vec::new(),
            parents: Vec::new(),
        }
    }
}

impl Model {
    /// Unit activations (MLP neurons or SAE latents) of `layer` for packed rows,
    /// `[rows, max_len, units]`: the value at a row's column is the activation of that
    /// token given its own prefix. Columns past a row's length are padding. With
    /// `neurons`, only those units are computed, in that order (as
    /// [`Model::neuron_activations`]).
    pub fn packed_activations(
        &self,
        rows: &[&PackedRow],
        layer: usize,
        neurons: Option<&[usize]>,
    ) -> Result<LayerActivations> {
        self.check_unit_layer(layer)?;
        if let Some(n) = neurons {
            self.check_units(n)?;
        }
        if self.sae.is_some() {
            let (ids, lengths, layout) = self.packed_ids(rows)?;
            let latents = self.sae_forward(&ids, Some(&layout), neurons)?;
            let latents = latents.expect("the model has an SAE");
            return self.host_activations(&latents, layer, lengths);
        }
        let hook = Hook::mlp_neurons(layer);
        match neurons {
            None => self.packed_hook_activations(rows, hook),
            Some(n) => self.packed_forward(rows, hook, Some(&self.neuron_columns(n)?)),
        }
    }

    /// The values at `hook` for packed rows, `[rows, max_len, hook_width]`: the value at
    /// a row's column is that token's given its own prefix (as
    /// [`Model::hook_activations`]). Columns past a row's length are padding.
    pub(crate) fn packed_hook_activations(
        &self,
        rows: &[&PackedRow],
        hook: Hook,
    ) -> Result<LayerActivations> {
        self.packed_forward(rows, hook, None)
    }

    /// The padded ids of packed rows, their lengths and their tree layout.
    pub(super) fn packed_ids(
        &self,
        rows: &[&PackedRow],
    ) -> Result<(Tensor, Vec<usize>, TreeLayout)> {
        if rows.is_empty() || rows.iter().any(|r| r.ids.is_empty()) {
            return Err(Error::InvalidRequest("empty packed row".into()));
        }
        let batch: Vec<&[u32]> = rows.iter().map(|r| r.ids.as_slice()).collect();
        let (ids, lengths) = self.pad_batch(&batch)?;
        let layout = tree_layout(rows, ids.dim(1)?, &self.device)?;
        Ok((ids, lengths, layout))
    }

    /// One pass over packed rows up to `hook` (with `columns`: only those neurons).
    fn packed_forward(
        &self,
        rows: &[&PackedRow],
        hook: Hook,
        columns: Option<&Tensor>,
    ) -> Result<LayerActivations> {
        self.check_layer(hook.layer)?;
        let (ids, lengths, layout) = self.packed_ids(rows)?;
        let out = self.forward(
            &ids,
            &ForwardRequest {
                layers: &[hook.layer],
                logits: false,
                hook: hook.point,
                tree: Some(&layout),
                neurons: columns,
            },
        )?;
        self.host_activations(&out.activations[0], hook.layer, lengths)
    }
}

/// Position ids and the `[b, 1, t, t]` ancestor mask of padded rows. A padding column
/// sits at position 0 and sees only itself.
fn tree_layout(rows: &[&PackedRow], t: usize, device: &Device) -> Result<TreeLayout> {
    let b = rows.len();
    let mut positions = vec![0u32; b * t];
    let mut mask = vec![f32::NEG_INFINITY; b * t * t];
    let mut max_position = 0;
    for (r, row) in rows.iter().enumerate() {
        let m = &mut mask[r * t * t..(r + 1) * t * t];
        for c in 0..t {
            if c < row.ids.len() {
                positions[r * t + c] = row.positions[c];
                max_position = max_position.max(row.positions[c] as usize);
                if let Some(p) = row.parents[c] {
                    // A token sees what its parent sees, and itself.
                    let p = p as usize;
                    debug_assert!(p < c, "parents come first");
                    let (before, rest) = m.split_at_mut(c * t);
                    rest[..t].copy_from_slice(&before[p * t..(p + 1) * t]);
                }
            }
            m[c * t + c] = 0.0;
        }
    }
    Ok(TreeLayout {
        positions: Tensor::from_vec(positions, b * t, device)?,
        mask: Tensor::from_vec(mask, (b, 1, t, t), device)?,
        max_position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_are_stored_once() {
        let a: &[u32] = &[1, 2, 3, 4];
        let b: &[u32] = &[1, 2, 9, 4];
        let c: &[u32] = &[1, 2];
        let d: &[u32] = &[7];
        let p = PrefixPacking::pack(&[a, b, c, d], 100);
        assert_eq!(p.rows.len(), 1);
        let row = &p.rows[0];
        // Lexicographic: c [1 2], a [1 2 3 4], b [1 2 9 4], d [7].
        assert_eq!(row.ids, vec![1, 2, 3, 4, 9, 4, 7]);
        assert_eq!(row.positions, vec![0, 1, 2, 3, 2, 3, 0]);
        assert_eq!(
            row.parents,
            vec![None, Some(0), Some(1), Some(2), Some(1), Some(4), None]
        );
        assert_eq!(p.placement[0], (0, vec![0, 1, 2, 3]));
        assert_eq!(p.placement[1], (0, vec![0, 1, 4, 5]));
        assert_eq!(p.placement[2], (0, vec![0, 1]));
        assert_eq!(p.placement[3], (0, vec![6]));
        assert_eq!(p.tokens(), 7);
    }

    #[test]
    fn full_rows_start_over_with_the_whole_path() {
        let a: &[u32] = &[1, 2, 3];
        let b: &[u32] = &[1, 2, 4];
        let c: &[u32] = &[1, 5, 6, 7, 8];
        let p = PrefixPacking::pack(&[a, b, c], 4);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].ids, vec![1, 2, 3, 4]);
        // c does not fit (4 new tokens), and a longer-than-budget path gets its own row.
        assert_eq!(p.rows[1].ids, vec![1, 5, 6, 7, 8]);
        assert_eq!(p.placement[2], (1, vec![0, 1, 2, 3, 4]));
    }

    #[test]
    fn a_sliding_window_counts_positions_not_columns() {
        // Row: 1 2 3 4 5 (positions 0..4), then 9 at position 2 after 1 2 (column 5).
        let rows = PrefixPacking::pack(&[&[1, 2, 3, 4, 5], &[1, 2, 9]], 10).rows;
        assert_eq!(rows[0].ids, vec![1, 2, 3, 4, 5, 9]);
        let layout = tree_layout(&[&rows[0]], 6, &Device::Cpu).unwrap();
        let mask =
            super::super::ops::pass_window_mask((1, 6), Some(&layout), 2, &Device::Cpu).unwrap();
        let m = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let seen: Vec<Vec<usize>> = (0..6)
            .map(|i| (0..6).filter(|&j| m[i * 6 + j] == 0.0).collect())
            .collect();
        // Each token sees itself and the ancestor one position back, whatever its column.
        assert_eq!(
            seen,
            vec![
                vec![0],
                vec![0, 1],
                vec![1, 2],
                vec![2, 3],
                vec![3, 4],
                vec![1, 5]
            ]
        );
        // A plain causal pass: the same rule by position.
        let plain = super::super::ops::pass_window_mask((1, 4), None, 2, &Device::Cpu).unwrap();
        let p = plain.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let seen: Vec<Vec<usize>> = (0..4)
            .map(|i| (0..4).filter(|&j| p[i * 4 + j] == 0.0).collect())
            .collect();
        assert_eq!(seen, vec![vec![0], vec![0, 1], vec![1, 2], vec![2, 3]]);
    }

    /// The numbers of a JSON array.
    fn numbers(v: &serde_json::Value) -> Vec<f64> {
        let all = v.as_array().unwrap().iter();
        all.map(|x| x.as_f64().unwrap()).collect()
    }

    /// Every hook point through prefix-shared rows, the reference texts mixed with
    /// variants that share their prefixes (cut in half, a middle token replaced) in rows
    /// small enough to split: the texts equal the float64 values of
    /// `scripts/reference/tiny_hooks.py`, the variants their own plain passes.
    #[test]
    fn packed_hooks_match_the_reference() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny");
        let models = [
            "llama", "gpt2", "gpt_neox", "gemma", "gemma2", "qwen2", "qwen3",
        ];
        for name in models.into_iter().chain(["mistral"]) {
            let model = Model::load(root.join(name), &crate::LoadOptions::default()).unwrap();
            let json = std::fs::read_to_string(root.join(name).join("hooks.json")).unwrap();
            let reference: serde_json::Value = serde_json::from_str(&json).unwrap();
            let texts = reference["texts"].as_array().unwrap();
            let mut seqs: Vec<Vec<u32>> = texts
                .iter()
                .map(|t| numbers(&t["ids"]).iter().map(|&x| x as u32).collect())
                .collect();
            for s in seqs.clone() {
                let mid = s.len() / 2;
                seqs.push(s[..mid].to_vec());
                let mut v = s;
                v[mid] = if v[mid] == 2 { 3 } else { 2 };
                seqs.push(v);
            }
            let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let packing = PrefixPacking::pack(&refs, seqs[0].len() + 4);
            assert!(packing.rows.len() > 1 && packing.tokens() < refs.concat().len());
            let rows: Vec<&PackedRow> = packing.rows.iter().collect();
            for (key, _) in texts[0]["hooks"].as_object().unwrap() {
                let hook: Hook = key.parse().unwrap();
                let packed = model.packed_hook_activations(&rows, hook).unwrap();
                assert_eq!(packed.n_neurons, model.hook_width(hook.point));
                let at = |s: usize, t: usize| {
                    let (r, cols) = &packing.placement[s];
                    packed.at(*r, cols[t] as usize)
                };
                for (s, text) in texts.iter().enumerate() {
                    let want: Vec<Vec<f64>> = text["hooks"][key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(numbers)
                        .collect();
                    for d in 0..packed.n_neurons {
                        let scale = want.iter().fold(1e-6f64, |m, r| m.max(r[d].abs()));
                        for (t, row) in want.iter().enumerate() {
                            let err = (at(s, t)[d] as f64 - row[d]).abs();
                            assert!(err <= 1e-4 * scale, "{name} {key} text {s} {t} {d}");
                        }
                    }
                }
                let plain = model.hook_activations(&seqs[texts.len()..], hook).unwrap();
                for (i, seq) in seqs[texts.len()..].iter().enumerate() {
                    for t in 0..seq.len() {
                        for (x, y) in at(texts.len() + i, t).iter().zip(plain.at(i, t)) {
                            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{name} {key}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_mask_lets_a_token_see_exactly_its_ancestors() {
        let rows = PrefixPacking::pack(&[&[1, 2, 3], &[1, 4]], 10).rows;
        let layout = tree_layout(&[&rows[0]], 5, &Device::Cpu).unwrap();
        let m = layout.mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let seen: Vec<Vec<usize>> = (0..5)
            .map(|i| (0..5).filter(|&j| m[i * 5 + j] == 0.0).collect())
            .collect();
        // Row: 1 2 3 4 (4's parent is column 0), then one padding column.
        assert_eq!(
            seen,
            vec![vec![0], vec![0, 1], vec![0, 1, 2], vec![0, 3], vec![4]]
        );
    }
}
