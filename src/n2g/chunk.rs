//! The graph stage's state for one chunk of neurons (of one layer, or of a band of
//! neighbouring layers), and its phases (N2G
//! steps 2–8) in the order [`GraphContext::build_chunk`] runs them: seeds (split),
//! prune, importance, lines, augmentation, the context-free check, then the graphs and
//! their evaluation. Each phase gathers the forward passes of every neuron of the chunk
//! into one [`Runner`] call.

use rayon::prelude::*;

use super::augment::Substitutes;
use super::graph::{make_line, Graph, Line};
use super::pipeline::{split_examples, GraphContext, NeuronInput, RandomSample};
use super::prune::{accepts, candidate_start, post_context_end};
use super::runner::{LayerNeuron, Request, Runner};
use super::settings::{NeuronEval, NeuronGraph};
use crate::error::Result;
use crate::NeuronId;

/// The state of one training example through pruning, importance and augmentation.
struct Train {
    /// Index of its neuron in the chunk.
    neuron: usize,
    /// Its window.
    ids: Vec<u32>,
    /// The firing position this line starts from.
    p: usize,
    /// The activation there.
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

/// A chunk of neurons on its way through the graph stage.
pub(super) struct Chunk<'c, 'a> {
    ctx: &'c GraphContext<'a>,
    neurons: &'c [NeuronInput],
    /// The batched forward passes, and their counts.
    pub runner: Runner<'a>,
    /// Each neuron's (train, held-out) example indices.
    splits: Vec<(Vec<usize>, Vec<usize>)>,
    /// Every training seed of every neuron.
    train: Vec<Train>,
    /// `[BOS]` when windows start with it, else empty.
    bos: Vec<u32>,
    /// Each neuron's lines.
    lines: Vec<Vec<Line>>,
    /// Each neuron's (augmented variants, variants that kept firing).
    variants: Vec<(u32, u32)>,
    clock: std::time::Instant,
}

impl<'c, 'a> Chunk<'c, 'a> {
    /// Step 2: splits each neuron's examples and makes the training seeds: each
    /// training window's max first, then its other firing positions, strongest first.
    pub fn new(ctx: &'c GraphContext<'a>, neurons: &'c [NeuronInput]) -> Self {
        let (s, first) = (ctx.settings, ctx.first);
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
                let acts = &ex.activations;
                let mut others: Vec<usize> = (first..acts.len())
                    .filter(|&q| {
                        q != ex.position
                            && ctx.normalised(acts[q], 1.0, n.max) > s.activation_threshold
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
        // The BOS id the windows start with (unused when there is no training example).
        let bos: Vec<u32> = if first == 1 {
            vec![train.first().map_or(0, |t| t.ids[0])]
        } else {
            Vec::new()
        };
        Chunk {
            ctx,
            neurons,
            runner: Runner::new(ctx.model, ctx.batch),
            splits,
            train,
            bos,
            lines: vec![Vec::new(); neurons.len()],
            variants: vec![(0, 0); neurons.len()],
            clock: std::time::Instant::now(),
        }
    }

    /// The neuron of seed `t`, as the runner asks for it.
    fn layer_neuron(&self, t: &Train) -> LayerNeuron {
        let id = self.neurons[t.neuron].id;
        (id.layer as usize, id.index as usize)
    }

    /// Logs how long the chunk has taken up to the end of `phase`.
    pub fn log_phase(&self, phase: &'static str) {
        tracing::debug!(
            phase,
            ms = self.clock.elapsed().as_millis() as u64,
            tokens = self.runner.stats.tokens,
            "graph phase"
        );
    }

    /// Step 3: prunes each seed's window, shortest candidate first, one batched round
    /// per length; then marks the activating positions of each pruned text. Each
    /// candidate carries its post-context: tokens after the activating one cannot change
    /// the activations up to it (causality), so the accepted candidate is the pruned
    /// text itself, with no second pass. With no lengths given, the longest candidate
    /// of the paper (30) is the only one.
    pub fn prune(&mut self) -> Result<()> {
        let (ctx, s, first) = (self.ctx, self.ctx.settings, self.ctx.first);
        let lengths: &[usize] = if s.prune_lengths.is_empty() {
            &[30]
        } else {
            &s.prune_lengths
        };
        let longest = *lengths.last().expect("non-empty");
        let ends: Vec<usize> = self
            .train
            .iter()
            .map(|t| {
                let strs: Vec<&str> = t.ids.iter().map(|&i| ctx.vocab_str(i)).collect();
                post_context_end(&strs, t.p, s.post_context)
            })
            .collect();
        for &len in lengths {
            let open: Vec<usize> = (0..self.train.len())
                .filter(|&i| self.train[i].start.is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            let requests: Vec<Request> = open
                .iter()
                .map(|&i| {
                    let t = &self.train[i];
                    let mut seq = self.bos.clone();
                    seq.extend_from_slice(&t.ids[candidate_start(t.p, len, first)..ends[i]]);
                    (seq, self.layer_neuron(t))
                })
                .collect();
            let results = self.runner.run(&requests)?;
            let bos_len = self.bos.len();
            for ((&i, acts), (seq, _)) in open.iter().zip(results).zip(requests) {
                let t = &mut self.train[i];
                let st = candidate_start(t.p, len, first);
                let last = len == longest || st == first;
                // Up to the activating token.
                let upto = &acts[..bos_len + t.p - st + 1];
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
            ms = self.clock.elapsed().as_millis() as u64,
            tokens = self.runner.stats.tokens,
            seeds = self.train.len(),
            windows = {
                let mut w: Vec<(usize, &[u32])> = self
                    .train
                    .iter()
                    .map(|t| (t.neuron, t.ids.as_slice()))
                    .collect();
                w.sort_unstable();
                w.dedup();
                w.len()
            },
            "graph phase"
        );
        // The longest candidate is always accepted: every text is settled.
        for t in self.train.iter_mut() {
            let max = self.neurons[t.neuron].max;
            t.active = (first..t.acts.len())
                .filter(|&k| ctx.normalised(t.acts[k], t.scale, max) > s.activation_threshold)
                .collect();
        }
        Ok(())
    }

    /// Step 4: the importance of each context position for each activating one, from
    /// masked rows, each cut after the last activating token.
    pub fn importance(&mut self) -> Result<()> {
        let (s, first) = (self.ctx.settings, self.ctx.first);
        let mut requests = Vec::new();
        let mut owners = Vec::new();
        for (i, t) in self.train.iter().enumerate() {
            let Some(&kmax) = t.active.last() else {
                continue;
            };
            for j in first..kmax {
                let mut row = t.text[..=kmax].to_vec();
                row[j] = s.mask_token;
                requests.push((row, self.layer_neuron(t)));
                owners.push((i, j));
            }
        }
        let results = self.runner.run(&requests)?;
        for t in self.train.iter_mut() {
            if let Some(&kmax) = t.active.last() {
                t.importance = vec![vec![0.0; kmax + 1]; kmax];
            }
        }
        for ((i, j), masked) in owners.into_iter().zip(results) {
            let t = &mut self.train[i];
            for (k, &m) in masked.iter().enumerate().skip(j + 1) {
                let a = t.acts[k];
                t.importance[j][k] = if a > 0.0 { 1.0 - m / a } else { 0.0 };
            }
        }
        self.log_phase("importance");
        Ok(())
    }

    /// Step 6 for the pruned texts: a line per activating position.
    pub fn lines_of_pruned_texts(&mut self) {
        let (ctx, s, first) = (self.ctx, self.ctx.settings, self.ctx.first);
        for t in &self.train {
            let max = self.neurons[t.neuron].max;
            let dict = ctx.dict_ids(&t.text);
            for &k in &t.active {
                let act = ctx.normalised(t.acts[k], t.scale, max);
                let imp = |j: usize| t.importance[j][k];
                self.lines[t.neuron].push(make_line(
                    &dict,
                    k,
                    first,
                    imp,
                    s.importance_threshold,
                    act,
                ));
            }
        }
        self.log_phase("lines");
    }

    /// The positions of seed `t` to substitute, each with the last position of its
    /// row: important context words (their rows run to the last activating token) and,
    /// unless turned off, the activating tokens themselves (their rows end at them): a
    /// variant that still fires there teaches the graph an activating token its
    /// examples never showed.
    fn important(&self, t: &Train) -> Vec<(usize, usize)> {
        let (s, first) = (self.ctx.settings, self.ctx.first);
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
    }

    /// Step 5: augmentation: important words replaced by their embedding neighbours;
    /// every position of a variant that still fires makes a line.
    pub fn augment(&mut self, substitutes: &mut Substitutes) -> Result<()> {
        let (ctx, s, first) = (self.ctx, self.ctx.settings, self.ctx.first);
        if s.augment == 0 {
            self.log_phase("augment");
            return Ok(());
        }
        let wanted: Vec<u32> = self
            .train
            .iter()
            .flat_map(|t| {
                self.important(t)
                    .into_iter()
                    .map(|(j, _)| t.text[j])
                    .collect::<Vec<_>>()
            })
            .collect();
        substitutes.prepare(wanted)?;
        let mut requests = Vec::new();
        let mut owners = Vec::new();
        for (i, t) in self.train.iter().enumerate() {
            for (j, cut) in self.important(t) {
                for &sub in substitutes.get(t.text[j]) {
                    let mut row = t.text[..=cut].to_vec();
                    row[j] = sub;
                    requests.push((row, self.layer_neuron(t)));
                    owners.push((i, j));
                }
            }
        }
        let results = self.runner.run(&requests)?;
        for ((row, _), ((i, j), acts)) in requests.iter().zip(owners.into_iter().zip(results)) {
            let t = &self.train[i];
            let max = self.neurons[t.neuron].max;
            let top = |v: &[f32]| v[first..].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let (a, a0) = (top(&acts), top(&t.acts[..acts.len()]));
            self.variants[t.neuron].0 += 1;
            if a0 > 0.0 && (a - a0) / a0 >= -s.prune_tolerance {
                self.variants[t.neuron].1 += 1;
            }
            let dict = ctx.dict_ids(row);
            // Positions before the substitution are unchanged: their lines exist.
            for k in j..acts.len() {
                let act = ctx.normalised(acts[k], t.scale, max);
                if act > s.activation_threshold {
                    let imp = |j: usize| t.importance.get(j).map_or(0.0, |r| r[k]);
                    self.lines[t.neuron].push(make_line(
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
        self.log_phase("augment");
        Ok(())
    }

    /// The context-free check: does each activating token fire with no context at all
    /// (just BOS and the token)? Then it gets a line without context, so the graph does
    /// not demand context the neuron does not need.
    pub fn token_alone(&mut self) -> Result<()> {
        let (ctx, s) = (self.ctx, self.ctx.settings);
        if !s.token_alone {
            self.log_phase("token alone");
            return Ok(());
        }
        let mut requests: Vec<Request> = Vec::new();
        let mut owners = Vec::new();
        for t in &self.train {
            for &k in &t.active {
                let mut seq = self.bos.clone();
                seq.push(t.text[k]);
                requests.push((seq, self.layer_neuron(t)));
                owners.push((t.neuron, t.text[k]));
            }
        }
        let results = self.runner.run(&requests)?;
        let mut seen = std::collections::HashSet::new();
        for ((j, token), acts) in owners.into_iter().zip(results) {
            let act = ctx.normalised(*acts.last().expect("non-empty"), 1.0, self.neurons[j].max);
            if act > s.activation_threshold && seen.insert((j, token)) {
                let dict = ctx.dict_ids(&[token]);
                self.lines[j].push(make_line(&dict, 0, 0, |_| 0.0, s.importance_threshold, act));
            }
        }
        self.log_phase("token alone");
        Ok(())
    }

    /// Steps 6–8 per neuron, in parallel: the trie of its lines, quieted where it
    /// over-fires on the training windows, and its evaluation.
    pub fn graphs(&self, random: &RandomSample) -> Vec<(NeuronId, NeuronGraph)> {
        let (ctx, s, first) = (self.ctx, self.ctx.settings, self.ctx.first);
        self.neurons
            .par_iter()
            .enumerate()
            .map(|(j, n)| {
                let mut graph = Graph::build(&self.lines[j], s.end_activation);
                let train = ctx.windows(n, &self.splits[j].0);
                if s.end_min_firing > 0.0 {
                    graph.quiet_rare_ends(&train, first, s.fire_threshold, s.end_min_firing);
                }
                let test = ctx.windows(n, &self.splits[j].1);
                let eval = NeuronEval {
                    lines: self.lines[j].len() as u32,
                    variants: self.variants[j].0,
                    positive_variants: self.variants[j].1,
                    ..ctx.evaluate(n, &train, &test, &graph, random)
                };
                (n.id, NeuronGraph { graph, eval })
            })
            .collect()
    }
}
