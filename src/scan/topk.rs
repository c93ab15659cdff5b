//! Per-neuron scan state: the top-k windows and running statistics, folded in one
//! batch of activations at a time, in parallel over neurons.

use rayon::prelude::*;

use crate::model::LayerActivations;
use crate::store::records::{histogram_bin, HISTOGRAM_BINS};
use crate::store::{Example, NeuronScan, NeuronStats};

/// Whether `a` ranks before `b`: higher activation, then lower window id.
pub fn ranks_before(a: &Example, b: &Example) -> bool {
    a.activation > b.activation || (a.activation == b.activation && a.window < b.window)
}

/// Whether an example would enter a best-first top-k list.
pub fn qualifies(examples: &[Example], k: usize, ex: &Example) -> bool {
    examples.len() < k || examples.last().is_some_and(|last| ranks_before(ex, last))
}

/// Offers an example to a best-first top-k list.
pub fn offer(examples: &mut Vec<Example>, k: usize, ex: Example) {
    if !qualifies(examples, k, &ex) {
        return;
    }
    let pos = examples.partition_point(|e| ranks_before(e, &ex));
    examples.insert(pos, ex);
    examples.truncate(k);
}

/// The running state of one neuron (plain arrays, no pointers in the hot loop).
#[derive(Clone)]
struct Accumulator {
    max: f32,
    sum: f64,
    positive: u64,
    histogram: [u32; HISTOGRAM_BINS],
    examples: Vec<Example>,
}

/// The scan state of the selected neurons of one layer.
pub struct LayerState {
    /// The layer.
    pub layer: usize,
    /// Model neuron index of each state.
    pub neurons: Vec<usize>,
    /// The column of each neuron in the activations folded in: its model index, or
    /// its place in the selection when only the selection is computed.
    columns: Vec<usize>,
    /// Tokens folded in per neuron (the same for all neurons of a layer).
    count: u64,
    acc: Vec<Accumulator>,
    top_k: usize,
}

/// Neurons handled by one parallel task.
const CHUNK: usize = 128;

impl LayerState {
    /// A fresh state.
    pub fn new(layer: usize, neurons: Vec<usize>, top_k: usize) -> Self {
        let acc = neurons
            .iter()
            .map(|_| Accumulator {
                max: f32::NEG_INFINITY,
                sum: 0.0,
                positive: 0,
                histogram: [0; HISTOGRAM_BINS],
                examples: Vec::with_capacity(top_k + 1),
            })
            .collect();
        LayerState {
            layer,
            columns: neurons.clone(),
            neurons,
            count: 0,
            acc,
            top_k,
        }
    }

    /// Folds activations computed for the selected neurons only (column `j` is
    /// `neurons[j]`) instead of the whole layer.
    pub fn read_selected_columns(&mut self) {
        self.columns = (0..self.neurons.len()).collect();
    }

    /// Restores neuron `j`'s state from a stored scan.
    pub fn restore(&mut self, j: usize, scan: &NeuronScan) {
        let a = &mut self.acc[j];
        a.max = scan.stats.max;
        a.sum = scan.stats.sum;
        a.positive = scan.stats.positive;
        a.histogram.copy_from_slice(&scan.stats.histogram);
        a.examples = scan.examples.clone();
        self.count = scan.stats.count;
    }

    /// Neuron `j`'s state as a stored record.
    pub fn snapshot(&self, j: usize) -> NeuronScan {
        let a = &self.acc[j];
        NeuronScan {
            examples: a.examples.clone(),
            stats: NeuronStats {
                max: a.max,
                sum: a.sum,
                count: self.count,
                positive: a.positive,
                histogram: a.histogram.to_vec(),
            },
        }
    }

    /// Whether window `id` is in neuron `j`'s top-k.
    pub fn holds(&self, j: usize, window: u32) -> bool {
        self.acc[j].examples.iter().any(|e| e.window == window)
    }

    /// Every window id in some top-k of this layer.
    pub fn referenced_windows(&self, out: &mut Vec<u32>) {
        for a in &self.acc {
            out.extend(a.examples.iter().map(|e| e.window));
        }
    }

    /// Folds in one batch: `window_ids[b]` is the window of row `b` of `acts`;
    /// positions before `first` (the BOS) are skipped.
    /// Returns a flag per row: whether its window entered some neuron's top-k.
    pub fn fold(&mut self, acts: &LayerActivations, window_ids: &[u32], first: usize) -> Vec<bool> {
        debug_assert_eq!(acts.layer, self.layer);
        let batch = FoldBatch {
            acts,
            window_ids,
            first,
            top_k: self.top_k,
        };
        let neurons = &self.columns;
        let entered = self
            .acc
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let ids = &neurons[c * CHUNK..c * CHUNK + chunk.len()];
                fold_chunk_dispatch(chunk, ids, batch)
            })
            .reduce(
                || vec![false; window_ids.len()],
                |mut x, y| {
                    for (a, b) in x.iter_mut().zip(y) {
                        *a |= b;
                    }
                    x
                },
            );
        for (b, _) in window_ids.iter().enumerate() {
            self.count += acts.lengths[b].saturating_sub(first) as u64;
        }
        entered
    }
}

/// One batch as a chunk's fold reads it.
#[derive(Clone, Copy)]
struct FoldBatch<'a> {
    acts: &'a LayerActivations,
    /// The window of each row.
    window_ids: &'a [u32],
    /// First position folded (1 skips a BOS).
    first: usize,
    top_k: usize,
}

/// [`fold_chunk`] compiled for AVX2 where the CPU has it (the crate itself targets the
/// x86-64 baseline, on which the per-token loop vectorises only with SSE2).
fn fold_chunk_dispatch(chunk: &mut [Accumulator], ids: &[usize], batch: FoldBatch) -> Vec<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn avx2(chunk: &mut [Accumulator], ids: &[usize], batch: FoldBatch) -> Vec<bool> {
                fold_chunk(chunk, ids, batch)
            }
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(chunk, ids, batch) };
        }
    }
    fold_chunk(chunk, ids, batch)
}

/// Folds one batch into a chunk of neurons (`ids`: their model indices); returns a flag
/// per row: whether its window entered one of their top-k lists.
#[inline(always)]
fn fold_chunk(chunk: &mut [Accumulator], ids: &[usize], batch: FoldBatch) -> Vec<bool> {
    let FoldBatch {
        acts,
        window_ids,
        first,
        top_k,
    } = batch;
    let mut entered = vec![false; window_ids.len()];
    let m = chunk.len();
    // Selections are usually contiguous ranges: read the row slice directly.
    let contiguous = ids.windows(2).all(|w| w[1] == w[0] + 1);
    let mut gathered = vec![0f32; m];
    // Per-window accumulators in separate arrays, so the inner loop
    // vectorises; folded into the neuron state once per window.
    let mut best_v = vec![f32::NEG_INFINITY; m];
    let mut best_t = vec![0u32; m];
    let mut bins = vec![0u32; m];
    let mut sums = vec![0f32; m];
    let mut positive = vec![0u32; m];
    for (b, &window) in window_ids.iter().enumerate() {
        let len = acts.lengths[b];
        if len <= first {
            continue;
        }
        best_v.fill(f32::NEG_INFINITY);
        best_t.fill(0);
        sums.fill(0.0);
        positive.fill(0);
        for t in first..len {
            let row = acts.at(b, t);
            let vals: &[f32] = if contiguous {
                &row[ids[0]..ids[0] + m]
            } else {
                for (g, &n) in gathered.iter_mut().zip(ids) {
                    *g = row[n];
                }
                &gathered
            };
            let t32 = t as u32;
            // Branch-free, over zipped slices, so that it vectorises.
            for ((((&v, bv), bt), s), p) in vals
                .iter()
                .zip(best_v.iter_mut())
                .zip(best_t.iter_mut())
                .zip(sums.iter_mut())
                .zip(positive.iter_mut())
            {
                let gt = v > *bv;
                *bv = if gt { v } else { *bv };
                *bt = if gt { t32 } else { *bt };
                *s += v;
                *p += u32::from(v > 0.0);
            }
            // Bins in their own loop (it vectorises), then the scattered counts.
            for (bin, &v) in bins.iter_mut().zip(vals) {
                *bin = histogram_bin(v) as u32;
            }
            for (a, &bin) in chunk.iter_mut().zip(bins.iter()) {
                a.histogram[bin as usize] += 1;
            }
        }
        for (a, (&s, &p)) in chunk.iter_mut().zip(sums.iter().zip(&positive)) {
            a.sum += s as f64;
            a.positive += p as u64;
        }
        for ((a, (&v, &pos)), &n) in chunk.iter_mut().zip(best_v.iter().zip(&best_t)).zip(ids) {
            if v > a.max {
                a.max = v;
            }
            let mut ex = Example {
                window,
                position: pos as u16,
                activation: v,
                activations: Vec::new(),
            };
            if qualifies(&a.examples, top_k, &ex) {
                ex.activations = (0..len).map(|t| acts.get(b, t, n)).collect();
                offer(&mut a.examples, top_k, ex);
                entered[b] = true;
            }
        }
    }
    entered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(window: u32, activation: f32) -> Example {
        Example {
            window,
            position: 1,
            activation,
            activations: Vec::new(),
        }
    }

    #[test]
    fn offer_keeps_the_best_k_with_window_order_on_ties() {
        let mut v = Vec::new();
        for (w, a) in [(5, 1.0), (3, 2.0), (9, 2.0), (1, 0.5), (2, 2.0), (7, 3.0)] {
            offer(&mut v, 3, ex(w, a));
        }
        let got: Vec<(u32, f32)> = v.iter().map(|e| (e.window, e.activation)).collect();
        assert_eq!(got, vec![(7, 3.0), (2, 2.0), (3, 2.0)]);
    }
}
