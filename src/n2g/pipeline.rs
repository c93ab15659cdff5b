//! The graph stage for a chunk of neurons (N2G steps 2–8), batched across neurons:
//! every step gathers the forward passes of all neurons of the chunk into one
//! [`Runner`] call (deduplicated, length-sorted, stopping at the deepest layer asked
//! for), then the
//! per-neuron work (lines, trie, evaluation) runs in parallel with rayon.
//!
//! Causality is used to keep sequences short: a masked or substituted row only needs
//! the tokens up to the last activating position, since later tokens cannot change the
//! activations there.

use super::augment::Substitutes;
use super::chunk::Chunk;
use super::eval::{score, TokenBaseline};
use super::graph::{Graph, KnownText};
use super::prune::split;
use super::runner::{BatchConfig, RunnerStats};
use super::settings::{GraphSettings, NeuronEval, NeuronGraph};
use crate::error::Result;
use crate::model::Model;
use crate::NeuronId;

/// One top example of a neuron, as the scan stored it.
#[derive(Clone, Debug)]
pub struct ExampleInput {
    /// Window token ids (BOS first when the scan used it).
    pub ids: Vec<u32>,
    /// Position of the maximum.
    pub position: usize,
    /// The maximum activation.
    pub activation: f32,
    /// The neuron's activation at every position.
    pub activations: Vec<f32>,
}

/// A neuron to build: its id, normaliser and top examples.
#[derive(Clone, Debug)]
pub struct NeuronInput {
    /// The neuron.
    pub id: NeuronId,
    /// Its max activation over the corpus.
    pub max: f32,
    /// Its top examples, best first.
    pub examples: Vec<ExampleInput>,
}

/// Random corpus windows with the activations of the neurons being built (of one layer,
/// or of a band of layers), for the false-positive rate.
pub struct RandomSample {
    /// Token ids per window.
    pub ids: Vec<Vec<u32>>,
    /// `acts[w][t * neurons.len() + i]` is neuron `neurons[i]` at position `t`.
    pub acts: Vec<Vec<f32>>,
    /// The neurons sampled, sorted.
    pub neurons: Vec<NeuronId>,
}

impl RandomSample {
    /// The activation of `neuron` at position `t` of window `w`; `None` when the
    /// neuron was not sampled.
    pub fn activation(&self, w: usize, t: usize, neuron: NeuronId) -> Option<f32> {
        let i = self.neurons.binary_search(&neuron).ok()?;
        Some(self.acts[w][t * self.neurons.len() + i])
    }
}

/// Shared inputs of the graph stage.
pub struct GraphContext<'a> {
    /// The model.
    pub model: &'a Model,
    /// Parameters.
    pub settings: &'a GraphSettings,
    /// Batching.
    pub batch: BatchConfig,
    /// Dictionary id of every model token id.
    pub dict_of: &'a [u32],
    /// Display string of every model token id.
    pub vocab: &'a [String],
    /// First position usable as context (1 when windows start with BOS).
    pub first: usize,
}

impl<'a> GraphContext<'a> {
    pub(super) fn dict_ids(&self, ids: &[u32]) -> Vec<u32> {
        ids.iter()
            .map(|&i| self.dict_of.get(i as usize).copied().unwrap_or(u32::MAX))
            .collect()
    }

    pub(super) fn normalised(&self, act: f32, scale: f32, max: f32) -> f32 {
        if max > 0.0 {
            act * scale / max
        } else {
            0.0
        }
    }

    /// Builds and evaluates the graphs of `neurons` (of one layer or of neighbouring
    /// layers): the phases of [`Chunk`] in order, each one batched forward pass over the
    /// whole chunk.
    pub fn build_chunk(
        &self,
        neurons: &[NeuronInput],
        substitutes: &mut Substitutes,
        random: &RandomSample,
    ) -> Result<(Vec<(NeuronId, NeuronGraph)>, RunnerStats)> {
        let mut chunk = Chunk::new(self, neurons);
        chunk.prune()?;
        chunk.importance()?;
        chunk.lines_of_pruned_texts();
        chunk.augment(substitutes)?;
        chunk.token_alone()?;
        let graphs = chunk.graphs(random);
        chunk.log_phase("done");
        Ok((graphs, chunk.runner.stats))
    }

    pub(super) fn vocab_str(&self, id: u32) -> &str {
        self.vocab.get(id as usize).map_or("", String::as_str)
    }

    /// Examples `idx` of a neuron as whole windows: dictionary ids and normalised
    /// activations.
    pub(super) fn windows(&self, n: &NeuronInput, idx: &[usize]) -> Vec<KnownText> {
        idx.iter()
            .map(|&e| {
                let ex = &n.examples[e];
                let toks = self.dict_ids(&ex.ids).into_iter().map(Some).collect();
                let acts = ex
                    .activations
                    .iter()
                    .map(|&a| self.normalised(a, 1.0, n.max))
                    .collect();
                (toks, acts)
            })
            .collect()
    }

    /// Step 8: held-out top examples (`test`, whole windows) and random windows; `train`
    /// are the training windows the baseline is fitted on (both as [`Self::windows`]).
    /// The counts of lines and variants are left at 0 for the caller.
    pub(super) fn evaluate(
        &self,
        n: &NeuronInput,
        train: &[KnownText],
        test: &[KnownText],
        graph: &Graph,
        random: &RandomSample,
    ) -> NeuronEval {
        let s = self.settings;
        let first = self.first;
        let baseline = TokenBaseline::fit(
            train
                .iter()
                .map(|(t, a)| (&t[first.min(t.len())..], &a[first.min(a.len())..])),
        );
        let (mut pg, mut pb, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        for (toks, acts) in test {
            let g = graph.predict_all(toks);
            let b = baseline.predict(toks);
            pg.extend_from_slice(&g[first.min(g.len())..]);
            pb.extend_from_slice(&b[first.min(b.len())..]);
            truth.extend_from_slice(&acts[first.min(acts.len())..]);
        }
        let (mut fp_g, mut fp_b, mut negatives, mut tokens) = (0u64, 0u64, 0u64, 0u64);
        for (w, ids) in random.ids.iter().enumerate() {
            let toks: Vec<Option<u32>> = self.dict_ids(ids).into_iter().map(Some).collect();
            let g = graph.predict_all(&toks);
            let b = baseline.predict(&toks);
            for t in first..ids.len() {
                let act = random
                    .activation(w, t, n.id)
                    .expect("the random sample covers every neuron of the chunk");
                let y = self.normalised(act, 1.0, n.max);
                tokens += 1;
                if y < s.fire_threshold {
                    negatives += 1;
                    fp_g += (g[t] >= s.fire_threshold) as u64;
                    fp_b += (b[t] >= s.fire_threshold) as u64;
                }
            }
        }
        let rate = |fp: u64| {
            if negatives == 0 {
                0.0
            } else {
                fp as f64 / negatives as f64
            }
        };
        NeuronEval {
            graph: score(&pg, &truth, s.fire_threshold),
            baseline: score(&pb, &truth, s.fire_threshold),
            random_fpr: rate(fp_g),
            random_fpr_baseline: rate(fp_b),
            random_tokens: tokens,
            train_examples: train.len() as u32,
            test_examples: test.len() as u32,
            lines: 0,
            variants: 0,
            positive_variants: 0,
            max_activation: n.max,
        }
    }
}

/// The (train, held-out) example indices of neuron `id` with `n` stored examples, best
/// first, as the graph stage splits them (seeded by the settings' seed and the neuron).
pub fn split_examples(id: NeuronId, n: usize, s: &GraphSettings) -> (Vec<usize>, Vec<usize>) {
    let seed = s.seed ^ ((id.layer as u64) << 32 | id.index as u64);
    split_with_extra(n, s, seed)
}

/// Splits `n` examples (best first): the top `n - extra_train` into train and held-out
/// halves, the rest into train only. With no more than `extra_train` examples, all of
/// them are split.
fn split_with_extra(n: usize, s: &GraphSettings, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let pool = if n > s.extra_train {
        n - s.extra_train
    } else {
        n
    };
    let (mut train, held_out) = split(pool, s.train_fraction, seed);
    train.extend(pool..n);
    (train, held_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_training_windows_never_reach_the_held_out_half() {
        let s = GraphSettings {
            extra_train: 10,
            ..GraphSettings::default()
        };
        let (train, held_out) = split_with_extra(30, &s, 7);
        // The held-out half is exactly the one of the top 20 alone.
        let (top_train, top_held_out) = split(20, s.train_fraction, 7);
        assert_eq!(held_out, top_held_out);
        assert_eq!(train[..10], top_train[..]);
        assert_eq!(train[10..], (20..30).collect::<Vec<_>>()[..]);
        // Too few examples for extras: all of them are split.
        let (train, held_out) = split_with_extra(8, &s, 7);
        assert_eq!((train.len(), held_out.len()), (4, 4));
        // No extras: the plain split.
        let plain = GraphSettings {
            extra_train: 0,
            ..s
        };
        assert_eq!(
            split_with_extra(20, &plain, 7),
            split(20, s.train_fraction, 7)
        );
    }
}
