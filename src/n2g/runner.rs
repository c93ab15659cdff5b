//! Batched forward passes for the graph stage: many small requests ("run this token
//! sequence, give me neuron n of layer l") from the neurons of a chunk are deduplicated
//! (a sequence needed by several neurons runs once and serves all of them, since one
//! forward yields every neuron of a layer and of the layers below it), sorted by depth
//! and length and packed into batches under a token budget. Every pass stops at the
//! deepest layer its requests ask for and computes only the neurons they ask for there;
//! the neurons of shallower layers are read on the way.

use std::collections::{BTreeMap, HashMap};

use crate::error::Result;
use crate::model::{LayerPick, Model, PrefixPacking};

/// How the graph stage batches its forward passes. The batches decide the order of
/// floating-point reductions, so the last digits of the results depend on it: an index
/// records it and continues a graph stage only with the same (see `build_graphs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchConfig {
    /// Neurons of a layer processed together (their requests share batches and
    /// deduplication).
    pub chunk_neurons: usize,
    /// Padded tokens per forward batch.
    pub max_batch_tokens: usize,
    /// `false` runs every request alone and without deduplication, one neuron at a time
    /// (the authors' way; kept for the benchmark).
    pub batched: bool,
    /// Tokens per prefix-shared row (tree attention, see [`PrefixPacking`]); 0 runs
    /// every sequence whole.
    pub prefix_row_tokens: usize,
    /// Neighbouring layers whose chunks run together (layers `band·k ..= band·k +
    /// band - 1`): a sequence that neurons of several of them need runs once, to the
    /// deepest, and the shallower read the pass on its way. 1 runs each layer alone.
    /// Stored apart from the other fields (meta `graph_band`; absent means 1), since it
    /// also decides which neurons a shard owns.
    #[serde(skip, default = "one_layer")]
    pub band_layers: usize,
}

fn one_layer() -> usize {
    1
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            chunk_neurons: 512,
            max_batch_tokens: 4096,
            batched: true,
            prefix_row_tokens: 96,
            band_layers: 2,
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
        check_count("prefix_row_tokens", self.prefix_row_tokens, 0, 1 << 16)?;
        check_count("band_layers", self.band_layers, 1, 1 << 16)
    }

    /// The band of `layer`: the first layer of the band it belongs to.
    pub fn band_of(&self, layer: usize) -> usize {
        layer / self.band_layers.max(1) * self.band_layers.max(1)
    }

    /// One neuron at a time, one sequence per forward pass.
    pub fn unbatched() -> Self {
        BatchConfig {
            chunk_neurons: 1,
            max_batch_tokens: 0,
            batched: false,
            prefix_row_tokens: 0,
            band_layers: 1,
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

impl RunnerStats {
    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &RunnerStats) {
        self.requested += other.requested;
        self.run += other.run;
        self.tokens += other.tokens;
        self.sequence_tokens += other.sequence_tokens;
        self.passes += other.passes;
    }
}

/// A neuron of one layer: `(layer, neuron index)`.
pub(super) type LayerNeuron = (usize, usize);

/// One request: a token sequence and the neuron whose activations it wants.
pub(super) type Request = (Vec<u32>, LayerNeuron);

/// A distinct sequence and the requests (indices) it serves.
type Group<'r> = (&'r [u32], Vec<usize>);

/// Runs requests against the layers of a model.
pub struct Runner<'a> {
    model: &'a Model,
    config: BatchConfig,
    /// Work counters.
    pub stats: RunnerStats,
}

impl<'a> Runner<'a> {
    /// A runner batching as `config` says.
    pub fn new(model: &'a Model, config: BatchConfig) -> Self {
        Runner {
            model,
            config,
            stats: RunnerStats::default(),
        }
    }

    /// For every `(sequence, neuron)` request, that neuron's activation at every position
    /// of the sequence.
    pub(super) fn run(&mut self, requests: &[Request]) -> Result<Vec<Vec<f32>>> {
        self.stats.requested += requests.len() as u64;
        // Group requests by identical sequence.
        let mut groups: Vec<Group> = Vec::new();
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
        let deepest = |reqs: &[usize]| deepest_layer(requests, reqs);
        // Shallowest first, then longest first: the first sequence of a batch sets its
        // padded length, and a batch runs to one depth. (Packed rows below are ordered by
        // the packing itself.)
        if self.config.batched {
            // Distinct sequences: the key orders them totally.
            groups.sort_by_cached_key(|g| (deepest(&g.1), std::cmp::Reverse(g.0.len()), g.0));
        }
        let depths: Vec<Option<usize>> = groups.iter().map(|g| deepest(&g.1)).collect();
        let mut start = 0;
        while start < groups.len() {
            let width = groups[start].0.len().max(1);
            let mut end = start + 1;
            if self.config.batched {
                while end < groups.len()
                    && depths[end] == depths[start]
                    && (end - start + 1) * width <= self.config.max_batch_tokens
                {
                    end += 1;
                }
            }
            let batch: Vec<&[u32]> = groups[start..end].iter().map(|g| g.0).collect();
            let picks = Picks::of(requests, groups[start..end].iter().map(|g| &g.1));
            let acts = self.model.picked_activations(&batch, &picks.slices())?;
            for (b, (seq, reqs)) in groups[start..end].iter().enumerate() {
                for &r in reqs {
                    let (p, n) = picks.locate(requests[r].1);
                    out[r] = (0..seq.len()).map(|t| acts[p].get(b, t, n)).collect();
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

    /// Runs the distinct sequences as prefix-shared rows, shallowest rows first and then
    /// longest, packed into batches under the token budget. Sequences are packed by the
    /// deepest layer they are asked of, so a row runs no deeper than each of its
    /// sequences needs (a sequence asked of two layers runs once, to the deeper).
    fn run_packed(
        &mut self,
        requests: &[Request],
        groups: &[Group],
        out: &mut [Vec<f32>],
    ) -> Result<()> {
        let mut by_depth: BTreeMap<usize, Vec<&Group>> = BTreeMap::new();
        for g in groups {
            let depth = deepest_layer(requests, &g.1).unwrap_or(0);
            by_depth.entry(depth).or_default().push(g);
        }
        for of_depth in by_depth.values() {
            self.run_packed_depth(requests, of_depth, out)?;
        }
        self.stats.run += groups.len() as u64;
        Ok(())
    }

    /// [`Self::run_packed`] for sequences of one depth.
    fn run_packed_depth(
        &mut self,
        requests: &[Request],
        groups: &[&Group],
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
            let picks = Picks::of(
                requests,
                order[start..end]
                    .iter()
                    .flat_map(|&r| served[r].iter().map(|&g| &groups[g].1)),
            );
            let acts = self
                .model
                .packed_picked_activations(&rows, &picks.slices())?;
            for (b, &r) in order[start..end].iter().enumerate() {
                for &g in &served[r] {
                    let cols = &packing.placement[g].1;
                    for &q in &groups[g].1 {
                        let (p, n) = picks.locate(requests[q].1);
                        out[q] = cols
                            .iter()
                            .map(|&c| acts[p].get(b, c as usize, n))
                            .collect();
                    }
                    self.stats.sequence_tokens += cols.len() as u64;
                }
                self.stats.tokens += packing.rows[r].ids.len() as u64;
            }
            self.stats.passes += 1;
            start = end;
        }
        Ok(())
    }
}

/// The deepest layer the requests `reqs` (indices into `requests`) ask for.
fn deepest_layer(requests: &[Request], reqs: &[usize]) -> Option<usize> {
    reqs.iter().map(|&r| requests[r].1 .0).max()
}

/// The distinct neurons a batch's requests ask for, by layer (layers ascending, neurons
/// sorted): the only columns its pass needs to compute.
struct Picks {
    layers: Vec<(usize, Vec<usize>)>,
}

impl Picks {
    /// The neurons of the requests `reqs`.
    fn of<'r>(requests: &[Request], reqs: impl Iterator<Item = &'r Vec<usize>>) -> Picks {
        let mut wanted: Vec<LayerNeuron> = reqs.flatten().map(|&r| requests[r].1).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut layers: Vec<(usize, Vec<usize>)> = Vec::new();
        for (layer, neuron) in wanted {
            match layers.last_mut() {
                Some((l, neurons)) if *l == layer => neurons.push(neuron),
                _ => layers.push((layer, vec![neuron])),
            }
        }
        Picks { layers }
    }

    /// As the model's multi-layer calls take them.
    fn slices(&self) -> Vec<LayerPick<'_>> {
        self.layers
            .iter()
            .map(|(l, n)| (*l, n.as_slice()))
            .collect()
    }

    /// Where `unit` sits in the pass's output: `(pick, column)`.
    fn locate(&self, (layer, neuron): LayerNeuron) -> (usize, usize) {
        let p = self
            .layers
            .binary_search_by_key(&layer, |(l, _)| *l)
            .expect("every requested layer is computed");
        let n = self.layers[p]
            .1
            .binary_search(&neuron)
            .expect("every requested neuron is computed");
        (p, n)
    }
}
