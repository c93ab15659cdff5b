//! The graph stage for a chunk of neurons of one layer (N2G steps 2–8), batched across
//! neurons: every step gathers the forward passes of all neurons of the chunk into one
//! [`Runner`] call (deduplicated, length-sorted, stopping at the layer), then the
//! per-neuron work (lines, trie, evaluation) runs in parallel with rayon.
//!
//! Causality is used to keep sequences short: a masked or substituted row only needs
//! the tokens up to the last activating position, since later tokens cannot change the
//! activations there.

use rayon::prelude::*;

use super::augment::Substitutes;
use super::eval::{score, TokenBaseline};
use super::graph::{make_line, Graph, KnownText, Line};
use super::prune::{accepts, candidate_start, post_context_end, split};
use super::runner::{BatchConfig, Runner, RunnerStats};
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

/// Random corpus windows with the activations of some neurons of one layer, for the
/// false-positive rate.
pub struct RandomSample {
    /// Token ids per window.
    pub ids: Vec<Vec<u32>>,
    /// `acts[w][t * neurons.len() + i]` is neuron `neurons[i]` at position `t`.
    pub acts: Vec<Vec<f32>>,
    /// The neuron indices sampled, sorted.
    pub neurons: Vec<usize>,
}

impl RandomSample {
    /// The activation of `neuron` at position `t` of window `w`; `None` when the
    /// neuron was not sampled.
    pub fn activation(&self, w: usize, t: usize, neuron: usize) -> Option<f32> {
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

/// The state of one training example through pruning, importance and augmentation.
struct Train {
    /// Index of its neuron in the chunk.
    neuron: usize,
    /// Its window.
    ids: Vec<u32>,
    p: usize,
    a0: f32,
    /// Chosen prune start, once decided.
    start: Option<usize>,
    /// The pruned text: BOS, window[start..=p], post-context.
    text: Vec<u32>,
    /// Scale that puts pruned activations back on the original's scale.
    scale: f32,
    /// Activations on the pruned text.
    acts: Vec<f32>,
    /// Activating positions of the pruned text.
    active: Vec<usize>,
    /// `importance[j][k]` for j < `active.last()`, k <= `active.last()`.
    importance: Vec<Vec<f32>>,
}

impl<'a> GraphContext<'a> {
    fn dict_ids(&self, ids: &[u32]) -> Vec<u32> {
        ids.iter()
            .map(|&i| self.dict_of.get(i as usize).copied().unwrap_or(u32::MAX))
            .collect()
    }

    fn normalised(&self, act: f32, scale: f32, max: f32) -> f32 {
        if max > 0.0 {
            act * scale / max
        } else {
            0.0
        }
    }

    /// Builds and evaluates the graphs of `neurons` (all of layer `layer`).
    pub fn build_chunk(
        &self,
        layer: usize,
        neurons: &[NeuronInput],
        substitutes: &mut Substitutes,
        random: &RandomSample,
    ) -> Result<(Vec<(NeuronId, NeuronGraph)>, RunnerStats)> {
        let s = self.settings;
        let first = self.first;
        let mut runner = Runner::new(self.model, layer, self.batch);
        let clock = std::time::Instant::now();
        // Step 2: split.
        let splits: Vec<(Vec<usize>, Vec<usize>)> = neurons
            .iter()
            .map(|n| split_examples(n.id, n.examples.len(), s))
            .collect();
        let mut train: Vec<Train> = Vec::new();
        for (j, (n, (tr, _))) in neurons.iter().zip(&splits).enumerate() {
            for &e in tr {
                let ex = &n.examples[e];
                if ex.activation <= 0.0 || ex.position < first {
                    continue;
                }
                // The max first, then other firing positions, strongest first.
                let acts = &ex.activations;
                let mut others: Vec<usize> = (first..acts.len())
                    .filter(|&q| {
                        q != ex.position
                            && self.normalised(acts[q], 1.0, n.max) > s.activation_threshold
                    })
                    .collect();
                others.sort_by(|&a, &b| acts[b].total_cmp(&acts[a]).then(a.cmp(&b)));
                let seeds = std::iter::once(ex.position)
                    .chain(others)
                    .take(s.seeds_per_example.max(1));
                for p in seeds {
                    train.push(Train {
                        neuron: j,
                        ids: ex.ids.clone(),
                        p,
                        a0: acts.get(p).copied().unwrap_or(ex.activation),
                        start: None,
                        text: Vec::new(),
                        scale: 1.0,
                        acts: Vec::new(),
                        active: Vec::new(),
                        importance: Vec::new(),
                    });
                }
            }
        }
        let bos: Vec<u32> = if first == 1 {
            vec![window_bos(&train)]
        } else {
            Vec::new()
        };

        // Step 3: prune, shortest candidate first, one batched round per length. Each
        // candidate carries its post-context: tokens after the activating one cannot
        // change the activations up to it (causality), and the accepted candidate is
        // then the pruned text itself, with no second pass.
        // With no lengths given, the longest candidate of the paper (30) is the only one.
        let lengths: &[usize] = if s.prune_lengths.is_empty() {
            &[30]
        } else {
            &s.prune_lengths
        };
        let longest = *lengths.last().expect("non-empty");
        let ends: Vec<usize> = train
            .iter()
            .map(|t| {
                let strs: Vec<&str> = t.ids.iter().map(|&i| self.vocab_str(i)).collect();
                post_context_end(&strs, t.p, s.post_context)
            })
            .collect();
        for &len in lengths {
            let open: Vec<usize> = (0..train.len())
                .filter(|&i| train[i].start.is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            let requests: Vec<(Vec<u32>, usize)> = open
                .iter()
                .map(|&i| {
                    let t = &train[i];
                    let mut seq = bos.clone();
                    seq.extend_from_slice(&t.ids[candidate_start(t.p, len, first)..ends[i]]);
                    (seq, neurons[t.neuron].id.index as usize)
                })
                .collect();
            let results = runner.run(&requests)?;
            for ((&i, acts), (seq, _)) in open.iter().zip(results).zip(requests) {
                let t = &mut train[i];
                let st = candidate_start(t.p, len, first);
                let last = len == longest || st == first;
                // Up to the activating token.
                let upto = &acts[..bos.len() + t.p - st + 1];
                if accepts(upto, first, t.a0, s.prune_tolerance) || last {
                    t.start = Some(st);
                    let a = *upto.last().expect("non-empty");
                    // Accepted candidates keep more than (1 - tolerance) of a0, so their
                    // scale is below 1 / (1 - tolerance); the longest-candidate fallback
                    // is capped there too, so a collapsed activation cannot blow up
                    // the normalised activations of the other positions.
                    let cap = 1.0 / (1.0 - s.prune_tolerance).max(1e-3);
                    t.scale = if a > 1e-6 { (t.a0 / a).min(cap) } else { 1.0 };
                    t.text = seq;
                    t.acts = acts;
                }
            }
        }
        tracing::debug!(
            phase = "prune",
            ms = clock.elapsed().as_millis() as u64,
            tokens = runner.stats.tokens,
            seeds = train.len(),
            windows = {
                let mut w: Vec<(usize, &[u32])> =
                    train.iter().map(|t| (t.neuron, t.ids.as_slice())).collect();
                w.sort_unstable();
                w.dedup();
                w.len()
            },
            "graph phase"
        );
        // The longest candidate is always accepted: every text is settled.
        for t in train.iter_mut() {
            let max = neurons[t.neuron].max;
            t.active = (first..t.acts.len())
                .filter(|&k| self.normalised(t.acts[k], t.scale, max) > s.activation_threshold)
                .collect();
        }

        // Step 4: importance from masked rows, each cut after the last activating token.
        let mut requests = Vec::new();
        let mut owners = Vec::new();
        for (i, t) in train.iter().enumerate() {
            let Some(&kmax) = t.active.last() else {
                continue;
            };
            for j in first..kmax {
                let mut row = t.text[..=kmax].to_vec();
                row[j] = s.mask_token;
                requests.push((row, neurons[t.neuron].id.index as usize));
                owners.push((i, j));
            }
        }
        let results = runner.run(&requests)?;
        for t in train.iter_mut() {
            if let Some(&kmax) = t.active.last() {
                t.importance = vec![vec![0.0; kmax + 1]; kmax];
            }
        }
        for ((i, j), masked) in owners.into_iter().zip(results) {
            let t = &mut train[i];
            for (k, &m) in masked.iter().enumerate().skip(j + 1) {
                let a = t.acts[k];
                t.importance[j][k] = if a > 0.0 { 1.0 - m / a } else { 0.0 };
            }
        }

        tracing::debug!(
            phase = "importance",
            ms = clock.elapsed().as_millis() as u64,
            tokens = runner.stats.tokens,
            "graph phase"
        );
        // Step 6 for the pruned texts: lines.
        let mut lines: Vec<Vec<Line>> = vec![Vec::new(); neurons.len()];
        for t in &train {
            let max = neurons[t.neuron].max;
            let dict = self.dict_ids(&t.text);
            for &k in &t.active {
                let act = self.normalised(t.acts[k], t.scale, max);
                let imp = |j: usize| t.importance[j][k];
                lines[t.neuron].push(make_line(&dict, k, first, imp, s.importance_threshold, act));
            }
        }

        tracing::debug!(
            phase = "lines",
            ms = clock.elapsed().as_millis() as u64,
            tokens = runner.stats.tokens,
            "graph phase"
        );
        // Step 5: augmentation of important words with embedding neighbours.
        let mut variants = vec![(0u32, 0u32); neurons.len()];
        if s.augment > 0 {
            // Important context words, and (unless turned off) the activating tokens
            // themselves: a variant that still fires there teaches the graph an
            // activating token its examples never showed.
            // Each as (position, last position of the row): a context word's row runs
            // to the last activating token, an activating token's row ends at it.
            let important = |t: &Train| -> Vec<(usize, usize)> {
                let Some(&kmax) = t.active.last() else {
                    return Vec::new();
                };
                let mut out: Vec<(usize, usize)> = (first..kmax)
                    .filter(|&j| {
                        t.active
                            .iter()
                            .any(|&k| k > j && t.importance[j][k] > s.importance_threshold)
                    })
                    .map(|j| (j, kmax))
                    .collect();
                if s.augment_activating {
                    for &k in &t.active {
                        if !out.iter().any(|&(j, _)| j == k) {
                            out.push((k, k));
                        }
                    }
                }
                out
            };
            let wanted: Vec<u32> = train
                .iter()
                .flat_map(|t| {
                    important(t)
                        .into_iter()
                        .map(|(j, _)| t.text[j])
                        .collect::<Vec<_>>()
                })
                .collect();
            substitutes.prepare(wanted)?;
            let mut requests = Vec::new();
            let mut owners = Vec::new();
            for (i, t) in train.iter().enumerate() {
                for (j, cut) in important(t) {
                    for &sub in substitutes.get(t.text[j]) {
                        let mut row = t.text[..=cut].to_vec();
                        row[j] = sub;
                        requests.push((row, neurons[t.neuron].id.index as usize));
                        owners.push((i, j));
                    }
                }
            }
            let results = runner.run(&requests)?;
            for ((row, _), ((i, j), acts)) in requests.iter().zip(owners.into_iter().zip(results)) {
                let t = &train[i];
                let max = neurons[t.neuron].max;
                let top = |v: &[f32]| v[first..].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (a, a0) = (top(&acts), top(&t.acts[..acts.len()]));
                variants[t.neuron].0 += 1;
                if a0 > 0.0 && (a - a0) / a0 >= -s.prune_tolerance {
                    variants[t.neuron].1 += 1;
                }
                let dict = self.dict_ids(row);
                // Positions before the substitution are unchanged: their lines exist.
                for k in j..acts.len() {
                    let act = self.normalised(acts[k], t.scale, max);
                    if act > s.activation_threshold {
                        let imp = |j: usize| t.importance.get(j).map_or(0.0, |r| r[k]);
                        lines[t.neuron].push(make_line(
                            &dict,
                            k,
                            first,
                            imp,
                            s.importance_threshold,
                            act,
                        ));
                    }
                }
            }
        }

        tracing::debug!(
            phase = "augment",
            ms = clock.elapsed().as_millis() as u64,
            tokens = runner.stats.tokens,
            "graph phase"
        );
        // Context-free check: does each activating token fire with no context at all
        // (just BOS and the token)? Then it gets a line without context, so the graph
        // does not demand context the neuron does not need.
        if s.token_alone {
            let mut requests: Vec<(Vec<u32>, usize)> = Vec::new();
            let mut owners = Vec::new();
            for t in &train {
                for &k in &t.active {
                    let mut seq = bos.clone();
                    seq.push(t.text[k]);
                    requests.push((seq, neurons[t.neuron].id.index as usize));
                    owners.push((t.neuron, t.text[k]));
                }
            }
            let results = runner.run(&requests)?;
            let mut seen = std::collections::HashSet::new();
            for ((j, token), acts) in owners.into_iter().zip(results) {
                let act = self.normalised(*acts.last().expect("non-empty"), 1.0, neurons[j].max);
                if act > s.activation_threshold && seen.insert((j, token)) {
                    let dict = self.dict_ids(&[token]);
                    lines[j].push(make_line(&dict, 0, 0, |_| 0.0, s.importance_threshold, act));
                }
            }
        }

        tracing::debug!(
            phase = "token alone",
            ms = clock.elapsed().as_millis() as u64,
            tokens = runner.stats.tokens,
            "graph phase"
        );
        // Steps 6–8 per neuron, in parallel.
        let out: Vec<(NeuronId, NeuronGraph)> = neurons
            .par_iter()
            .enumerate()
            .map(|(j, n)| {
                let mut graph = Graph::build(&lines[j], s.end_activation);
                let train = self.windows(n, &splits[j].0);
                if s.end_min_firing > 0.0 {
                    graph.quiet_rare_ends(&train, first, s.fire_threshold, s.end_min_firing);
                }
                let test = self.windows(n, &splits[j].1);
                let eval = NeuronEval {
                    lines: lines[j].len() as u32,
                    variants: variants[j].0,
                    positive_variants: variants[j].1,
                    ..self.evaluate(n, &train, &test, &graph, random)
                };
                (n.id, NeuronGraph { graph, eval })
            })
            .collect();
        tracing::debug!(
            phase = "done",
            ms = clock.elapsed().as_millis() as u64,
            tokens = runner.stats.tokens,
            "graph phase"
        );
        Ok((out, runner.stats))
    }

    fn vocab_str(&self, id: u32) -> &str {
        self.vocab.get(id as usize).map_or("", String::as_str)
    }

    /// Examples `idx` of a neuron as whole windows: dictionary ids and normalised
    /// activations.
    fn windows(&self, n: &NeuronInput, idx: &[usize]) -> Vec<KnownText> {
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
    fn evaluate(
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
                    .activation(w, t, n.id.index as usize)
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

/// The BOS id the windows start with (unused when there is no training example).
fn window_bos(train: &[Train]) -> u32 {
    train.first().map_or(0, |t| t.ids[0])
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
