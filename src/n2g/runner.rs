//! Batched forward passes for the graph stage: many small requests ("run this token
//! sequence, give me neuron n's activations") from many neurons of one layer are
//! deduplicated (a sequence needed by several neurons runs once and serves all of them,
//! since one forward yields every neuron of the layer), sorted by length and packed into
//! batches under a token budget. Every pass stops at the layer and computes only the
//! neurons its requests ask for.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::{Model, PrefixPacking};

/// How the graph stage batches its forward passes. The batches decide the order of
/// floating-point reductions, so the last digits of the results depend on it: an index
/// records it and continues a graph stage only with the same (see `build_graphs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchConfig {
    /// Neurons processed together (their requests share batches and deduplication).
    pub chunk_neurons: usize,
    /// Padded tokens per forward batch.
    pub max_batch_tokens: usize,
    /// `false` runs every request alone and without deduplication, one neuron at a time
    /// (the authors' way; kept for the benchmark).
    pub batched: bool,
    /// Tokens per prefix-shared row (tree attention, see [`PrefixPacking`]); 0 runs
    /// every sequence whole.
    pub prefix_row_tokens: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            chunk_neurons: 512,
            max_batch_tokens: 4096,
            batched: true,
            prefix_row_tokens: 96,
        }
    }
}

impl BatchConfig {
    /// Checks every field's range: the first that cannot work, named.
    pub fn validate(&self) -> Result<(), super::settings::InvalidSetting> {
        use super::settings::check_count;
        check_count("chunk_neurons", self.chunk_neurons, 1, 1 << 20)?;
        if self.batched {
            check_count("max_batch_tokens", self.max_batch_tokens, 1, 1 << 24)?;
        }
        check_count("prefix_row_tokens", self.prefix_row_tokens, 0, 1 << 16)
    }

    /// One neuron at a time, one sequence per forward pass.
    pub fn unbatched() -> Self {
        BatchConfig {
            chunk_neurons: 1,
            max_batch_tokens: 0,
            batched: false,
            prefix_row_tokens: 0,
        }
    }
}

/// Counters of the forward work done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunnerStats {
    /// Sequences asked for.
    pub requested: u64,
    /// Sequences actually run (after deduplication).
    pub run: u64,
    /// Real tokens run.
    pub tokens: u64,
    /// Tokens of the sequences run (more than `tokens` when prefixes are shared).
    pub sequence_tokens: u64,
    /// Forward passes.
    pub passes: u64,
}

/// Runs requests against one layer of a model.
pub struct Runner<'a> {
    model: &'a Model,
    layer: usize,
    config: BatchConfig,
    /// Work counters.
    pub stats: RunnerStats,
}

impl<'a> Runner<'a> {
    /// A runner for `layer`.
    pub fn new(model: &'a Model, layer: usize, config: BatchConfig) -> Self {
        Runner {
            model,
            layer,
            config,
            stats: RunnerStats::default(),
        }
    }

    /// For every `(sequence, neuron)` request, that neuron's activation at every position
    /// of the sequence.
    pub fn run(&mut self, requests: &[(Vec<u32>, usize)]) -> Result<Vec<Vec<f32>>> {
        self.stats.requested += requests.len() as u64;
        // Group requests by identical sequence.
        let mut groups: Vec<(&[u32], Vec<usize>)> = Vec::new();
        if self.config.batched {
            let mut index: HashMap<&[u32], usize> = HashMap::new();
            for (r, (seq, _)) in requests.iter().enumerate() {
                let g = *index.entry(seq.as_slice()).or_insert_with(|| {
                    groups.push((seq.as_slice(), Vec::new()));
                    groups.len() - 1
                });
                groups[g].1.push(r);
            }
        } else {
            groups = requests
                .iter()
                .enumerate()
                .map(|(r, (seq, _))| (seq.as_slice(), vec![r]))
                .collect();
        }
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); requests.len()];
        if self.config.batched && self.config.prefix_row_tokens > 0 && !groups.is_empty() {
            self.run_packed(requests, &groups, &mut out)?;
            return Ok(out);
        }
        // Longest first: the first sequence of a batch sets its padded length. (Packed
        // rows above are ordered by the packing itself.)
        if self.config.batched {
            groups.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(b.0)));
        }
        let mut start = 0;
        while start < groups.len() {
            let width = groups[start].0.len().max(1);
            let mut end = start + 1;
            if self.config.batched {
                while end < groups.len()
                    && (end - start + 1) * width <= self.config.max_batch_tokens
                {
                    end += 1;
                }
            }
            let batch: Vec<&[u32]> = groups[start..end].iter().map(|g| g.0).collect();
            let neurons = neurons_of(requests, groups[start..end].iter().map(|g| &g.1));
            let acts = self
                .model
                .neuron_activations(&batch, self.layer, &neurons)?;
            for (b, (seq, reqs)) in groups[start..end].iter().enumerate() {
                for &r in reqs {
                    let n = column(&neurons, requests[r].1);
                    out[r] = (0..seq.len()).map(|t| acts.get(b, t, n)).collect();
                }
                self.stats.tokens += seq.len() as u64;
                self.stats.sequence_tokens += seq.len() as u64;
            }
            self.stats.run += (end - start) as u64;
            self.stats.passes += 1;
            start = end;
        }
        Ok(out)
    }

    /// Runs the distinct sequences as prefix-shared rows, longest rows first, packed into
    /// batches under the token budget.
    fn run_packed(
        &mut self,
        requests: &[(Vec<u32>, usize)],
        groups: &[(&[u32], Vec<usize>)],
        out: &mut [Vec<f32>],
    ) -> Result<()> {
        let seqs: Vec<&[u32]> = groups.iter().map(|g| g.0).collect();
        let packing = PrefixPacking::pack(&seqs, self.config.prefix_row_tokens);
        // Which groups each row serves.
        let mut served: Vec<Vec<usize>> = vec![Vec::new(); packing.rows.len()];
        for (g, (row, _)) in packing.placement.iter().enumerate() {
            served[*row].push(g);
        }
        let mut order: Vec<usize> = (0..packing.rows.len()).collect();
        order.sort_by_key(|&r| std::cmp::Reverse(packing.rows[r].ids.len()));
        let mut start = 0;
        while start < order.len() {
            let width = packing.rows[order[start]].ids.len();
            let mut end = start + 1;
            while end < order.len() && (end - start + 1) * width <= self.config.max_batch_tokens {
                end += 1;
            }
            let rows: Vec<_> = order[start..end]
                .iter()
                .map(|&r| &packing.rows[r])
                .collect();
            let neurons = neurons_of(
                requests,
                order[start..end]
                    .iter()
                    .flat_map(|&r| served[r].iter().map(|&g| &groups[g].1)),
            );
            let acts = self
                .model
                .packed_activations(&rows, self.layer, Some(&neurons))?;
            for (b, &r) in order[start..end].iter().enumerate() {
                for &g in &served[r] {
                    let cols = &packing.placement[g].1;
                    for &q in &groups[g].1 {
                        let n = column(&neurons, requests[q].1);
                        out[q] = cols.iter().map(|&c| acts.get(b, c as usize, n)).collect();
                    }
                    self.stats.sequence_tokens += cols.len() as u64;
                }
                self.stats.tokens += packing.rows[r].ids.len() as u64;
            }
            self.stats.passes += 1;
            start = end;
        }
        self.stats.run += groups.len() as u64;
        Ok(())
    }
}

/// The distinct neurons the requests `reqs` ask for, sorted: the only columns a pass
/// needs to compute.
fn neurons_of<'r>(
    requests: &[(Vec<u32>, usize)],
    reqs: impl Iterator<Item = &'r Vec<usize>>,
) -> Vec<usize> {
    let mut neurons: Vec<usize> = reqs.flatten().map(|&r| requests[r].1).collect();
    neurons.sort_unstable();
    neurons.dedup();
    neurons
}

/// The column of `neuron` among the sorted `neurons` of a pass.
fn column(neurons: &[usize], neuron: usize) -> usize {
    neurons
        .binary_search(&neuron)
        .expect("every requested neuron is computed")
}
