//! Comparing the runtime's activations with the float64 reference files of
//! `scripts/reference/` (shared by the model tests).
#![allow(dead_code)]

use n2g_index::model::{LayerActivations, LayerPick, PrefixPacking};
use n2g_index::{LoadOptions, Model};
use serde_json::Value;

use crate::common::root;

/// A JSON fixture under the repository root.
pub fn fixture(path: &str) -> Value {
    let p = root().join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Index of the largest value (first on ties).
fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// For every (text, layer, neuron) of a reference file: max |ours - ref| over the tokens
/// is at most `tol` times max |ref|, and the highest-activating token is the same.
///
/// How [`compare_activations`] runs the texts.
#[derive(Clone, Copy, PartialEq)]
pub enum Run {
    /// A plain padded batch, every neuron.
    Plain,
    /// Prefix-shared rows (tree attention) together with variants that share their
    /// prefixes (every text cut in half, and with its middle token replaced), in rows
    /// small enough to split.
    Packed,
    /// Only the checked neurons, asked for in reverse order, both as a plain batch and
    /// as prefix-shared rows (which must agree).
    Selected,
    /// As `Selected`, every layer's checked neurons from one pass to the deepest layer.
    Picked,
}

pub fn compare_activations(model: &Model, texts: &[Value], all_neurons: bool, tol: f64, run: Run) {
    let batch: Vec<Vec<u32>> = texts.iter().map(|t| ids(&t["ids"])).collect();
    let layers: Vec<usize> = texts[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_u64().unwrap() as usize)
        .collect();
    // acts[layer index][text][position][neuron]
    let checked_neurons = |li: usize| -> Vec<usize> {
        let layer = &texts[0]["layers"][li];
        let mut n: Vec<usize> = if all_neurons {
            (0..floats(&layer["activations"][0]).len()).collect()
        } else {
            ids(&layer["neurons"])
                .into_iter()
                .map(|n| n as usize)
                .collect()
        };
        n.reverse();
        n
    };
    let acts: Vec<Vec<Vec<Vec<f32>>>> = if run == Run::Packed {
        packed_table(model, &batch, &layers)
    } else if run == Run::Selected || run == Run::Picked {
        let refs: Vec<&[u32]> = batch.iter().map(Vec::as_slice).collect();
        let packing = PrefixPacking::pack(&refs, 1024);
        let rows: Vec<_> = packing.rows.iter().collect();
        let neurons: Vec<Vec<usize>> = (0..layers.len()).map(checked_neurons).collect();
        // (plain, packed) per layer: one call per layer, or one call for all layers.
        let per_layer: Vec<(LayerActivations, LayerActivations)> = if run == Run::Selected {
            layers
                .iter()
                .zip(&neurons)
                .map(|(&l, n)| {
                    (
                        model.neuron_activations(&batch, l, n).unwrap(),
                        model.packed_activations(&rows, l, Some(n)).unwrap(),
                    )
                })
                .collect()
        } else {
            let picks: Vec<LayerPick> = layers
                .iter()
                .zip(&neurons)
                .map(|(&l, n)| (l, n.as_slice()))
                .collect();
            let plain = model.picked_activations(&batch, &picks).unwrap();
            let packed = model.packed_picked_activations(&rows, &picks).unwrap();
            plain.into_iter().zip(packed).collect()
        };
        let width = model.info().n_neurons;
        per_layer
            .iter()
            .zip(&neurons)
            .map(|((plain, packed), neurons)| {
                assert_eq!(plain.n_neurons, neurons.len());
                (0..batch.len())
                    .map(|b| {
                        let (r, cols) = &packing.placement[b];
                        (0..batch[b].len())
                            .map(|t| {
                                // Full width, NaN where a neuron was not asked for.
                                let mut row = vec![f32::NAN; width];
                                for (i, &n) in neurons.iter().enumerate() {
                                    let (x, y) =
                                        (plain.get(b, t, i), packed.get(*r, cols[t] as usize, i));
                                    assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()));
                                    row[n] = x;
                                }
                                row
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect()
    } else {
        let plain = model.activations(&batch, &layers).unwrap();
        plain
            .iter()
            .zip(&layers)
            .map(|(a, &l)| {
                assert_eq!(a.layer, l);
                (0..batch.len())
                    .map(|b| (0..batch[b].len()).map(|t| a.at(b, t).to_vec()).collect())
                    .collect()
            })
            .collect()
    };
    let mut worst = 0.0f64;
    let mut checked = 0;
    for (b, text) in texts.iter().enumerate() {
        for (li, layer) in text["layers"].as_array().unwrap().iter().enumerate() {
            let ours = &acts[li][b];
            let rows: Vec<Vec<f64>> = layer["activations"]
                .as_array()
                .unwrap()
                .iter()
                .map(floats)
                .collect();
            let mut neurons = checked_neurons(li);
            neurons.reverse();
            assert_eq!(rows.len(), batch[b].len());
            for (j, &n) in neurons.iter().enumerate() {
                let reference: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                let got: Vec<f64> = (0..rows.len()).map(|t| ours[t][n] as f64).collect();
                let scale = reference
                    .iter()
                    .fold(0.0f64, |m, x| m.max(x.abs()))
                    .max(1e-6);
                let err = reference
                    .iter()
                    .zip(&got)
                    .fold(0.0f64, |m, (r, g)| m.max((r - g).abs()));
                let rel = err / scale;
                worst = worst.max(rel);
                assert!(
                    rel <= tol,
                    "text {b} layer {} neuron {n}: relative error {rel:.2e} > {tol:.0e}",
                    layers[li]
                );
                assert_eq!(
                    argmax(&got),
                    argmax(&reference),
                    "text {b} layer {} neuron {n}: highest-activating token differs",
                    layers[li]
                );
                // The same ignoring the BOS attention sink at position 0.
                if rows.len() > 1 {
                    assert_eq!(argmax(&got[1..]), argmax(&reference[1..]));
                }
                checked += 1;
            }
        }
    }
    eprintln!("checked {checked} neuron traces, worst relative error {worst:.2e}");
}

/// Activations of `batch` through prefix-shared rows, with prefix-sharing variants
/// mixed in: `[layer index][sequence][position][neuron]`.
pub fn packed_table(
    model: &Model,
    batch: &[Vec<u32>],
    layers: &[usize],
) -> Vec<Vec<Vec<Vec<f32>>>> {
    let mut seqs: Vec<Vec<u32>> = batch.to_vec();
    for s in batch {
        seqs.push(s[..s.len().div_ceil(2)].to_vec());
        let mut v = s.clone();
        let mid = s.len() / 2;
        v[mid] = if v[mid] == 2 { 3 } else { 2 };
        seqs.push(v);
    }
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let longest = batch.iter().map(Vec::len).max().unwrap();
    let packing = PrefixPacking::pack(&refs, longest + 4);
    assert!(packing.rows.len() > 1, "the rows should split");
    assert!(packing.tokens() < seqs.iter().map(Vec::len).sum::<usize>());
    layers
        .iter()
        .map(|&l| {
            let rows: Vec<_> = packing.rows.iter().collect();
            let acts = model.packed_activations(&rows, l, None).unwrap();
            let table: Vec<Vec<Vec<f32>>> = packing
                .placement
                .iter()
                .map(|(r, cols)| {
                    cols.iter()
                        .map(|&c| acts.at(*r, c as usize).to_vec())
                        .collect()
                })
                .collect();
            // The variants equal their own plain runs.
            let plain = model.activations(&seqs[batch.len()..], &[l]).unwrap();
            for (i, rows) in table[batch.len()..].iter().enumerate() {
                for (t, row) in rows.iter().enumerate() {
                    for (x, y) in row.iter().zip(plain[0].at(i, t)) {
                        assert!(
                            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                            "variant {i} pos {t}"
                        );
                    }
                }
            }
            table.into_iter().take(batch.len()).collect()
        })
        .collect()
}

/// Loads `model` (a folder or file under the repository) with `options` and checks its
/// tokenizer and every neuron of every layer against the reference of `fixture_dir`.
pub fn tiny_model(model: &str, fixture_dir: &str, arch: &str, options: &LoadOptions) {
    let path = root().join(model);
    let model = Model::load(&path, options).unwrap();
    assert_eq!(model.info().architecture.to_string(), arch);
    let reference = fixture(&format!("{fixture_dir}/reference.json"));
    let texts = reference["texts"].as_array().unwrap();
    for t in texts {
        let ours = model
            .tokenizer()
            .encode(t["text"].as_str().unwrap(), true)
            .unwrap();
        assert_eq!(
            ours.ids,
            ids(&t["ids"]),
            "{arch}: token ids of {}",
            t["text"]
        );
    }
    compare_activations(&model, texts, true, 1e-4, Run::Plain);
    compare_activations(&model, texts, true, 1e-4, Run::Packed);
    compare_activations(&model, texts, true, 1e-4, Run::Selected);
}
