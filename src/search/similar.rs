//! Neuron similarity by N2G's measure over roaring-bitmap token postings.
//!
//! For each role (activating, context) the similarity of neurons `x`, `y` with token
//! sets `X`, `Y` is `|X ∩ Y| / max(|X|, |Y|)` (`0/0` counts as 1: two empty sets
//! agree). The relation of a candidate `c` to a target `t` at threshold `θ` (0.9 by
//! default):
//! - `similar`: both roles >= θ;
//! - `subset`: `c` is no larger than `t` in either role and `|C ∩ T| / |C| >= θ` in both
//!   roles (N2G's min-denominator rule); `superset` the other way round;
//! - `overlap`: otherwise.
//!
//! `similar` counts overlaps only along the postings of the target's tokens; `similar_all`
//! probes, for each neuron, only the postings of the prefix of its rarest activating
//! tokens that any qualifying partner must share (prefix filtering, proof in
//! `similar_all`), then verifies each candidate exactly.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::index::SearchIndex;
use super::store::{NeuronRecord, Store, NEURON_ACT, NEURON_CTX, TOKEN_ACT, TOKEN_CTX};
use super::{Result, SearchError};
use crate::NeuronId;

/// The default threshold of N2G (0.9).
pub const DEFAULT_THRESHOLD: f64 = 0.9;

/// How a candidate neuron relates to a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Both roles overlap >= the threshold by the max-denominator measure.
    Similar,
    /// The candidate's token sets are (nearly) contained in the target's.
    Subset,
    /// The target's token sets are (nearly) contained in the candidate's.
    Superset,
    /// Neither.
    Overlap,
}

impl Relation {
    /// The name printed and written to JSON.
    pub fn name(self) -> &'static str {
        match self {
            Relation::Similar => "similar",
            Relation::Subset => "subset",
            Relation::Superset => "superset",
            Relation::Overlap => "overlap",
        }
    }
}

/// A neuron similar to a target.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SimilarHit {
    /// The candidate neuron.
    #[serde(serialize_with = "crate::neuron::as_display")]
    pub neuron: NeuronId,
    /// Activating-token similarity, `|A∩B| / max(|A|,|B|)`.
    pub activating: f32,
    /// Context-token similarity, `|A∩B| / max(|A|,|B|)`.
    pub context: f32,
    /// Relation of the candidate to the target.
    pub relation: Relation,
}

/// A pair found by [`SearchIndex::similar_all`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SimilarPair {
    /// The first neuron (the smaller id for `similar`; the contained one for `subset`).
    #[serde(serialize_with = "crate::neuron::as_display")]
    pub a: NeuronId,
    /// The second neuron.
    #[serde(serialize_with = "crate::neuron::as_display")]
    pub b: NeuronId,
    /// Activating-token similarity (max-denominator).
    pub activating: f32,
    /// Context-token similarity (max-denominator).
    pub context: f32,
    /// [`Relation::Similar`] or [`Relation::Subset`] (`a` is contained in `b`).
    pub relation: Relation,
}

/// `i / d` with `0 / 0 = 1`.
pub fn ratio(i: u64, d: u64) -> f64 {
    if d == 0 {
        1.0
    } else {
        i as f64 / d as f64
    }
}

/// Sizes and overlaps of a (target, candidate) pair in both roles.
#[derive(Clone, Copy, Debug)]
pub struct Overlap {
    /// `|A_t|`, `|A_c|`, `|A_t ∩ A_c|`.
    pub act: (u64, u64, u64),
    /// `|C_t|`, `|C_c|`, `|C_t ∩ C_c|`.
    pub ctx: (u64, u64, u64),
}

impl Overlap {
    /// The max-denominator similarities `(activating, context)`.
    pub fn scores(&self) -> (f64, f64) {
        let s = |(t, c, i): (u64, u64, u64)| ratio(i, t.max(c));
        (s(self.act), s(self.ctx))
    }

    /// The relation of the candidate to the target at threshold `th`.
    pub fn relation(&self, th: f64) -> Relation {
        let (a, c) = self.scores();
        if a >= th && c >= th {
            return Relation::Similar;
        }
        let ((ta, ca, ia), (tc, cc, ic)) = (self.act, self.ctx);
        if ca <= ta && cc <= tc && ratio(ia, ca) >= th && ratio(ic, cc) >= th {
            Relation::Subset
        } else if ta <= ca && tc <= cc && ratio(ia, ta) >= th && ratio(ic, tc) >= th {
            Relation::Superset
        } else {
            Relation::Overlap
        }
    }
}

/// Rank of a similar neuron: mean of both scores, then activating, then smaller id.
struct Rank(f64, f64, Reverse<NeuronId>, Overlap);

impl PartialEq for Rank {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Rank {}
impl Ord for Rank {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0
            .total_cmp(&o.0)
            .then(self.1.total_cmp(&o.1))
            .then(self.2.cmp(&o.2))
    }
}
impl PartialOrd for Rank {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

fn check_threshold(th: f64) -> Result<()> {
    if th > 0.0 && th <= 1.0 {
        Ok(())
    } else {
        Err(SearchError::InvalidRequest(format!(
            "threshold {th} is out of range: it must be above 0 and at most 1"
        )))
    }
}

/// A counter of shared tokens.
trait Count: Copy {
    fn inc(&mut self);
    fn get(self) -> usize;
}

impl Count for u16 {
    fn inc(&mut self) {
        *self += 1;
    }
    fn get(self) -> usize {
        self as usize
    }
}

impl Count for u32 {
    fn inc(&mut self) {
        *self += 1;
    }
    fn get(self) -> usize {
        self as usize
    }
}

/// One `similar` request: the target, its tokens by role, what to return.
struct Job<'a> {
    store: &'a Store,
    table: &'a [NeuronRecord],
    ord: u32,
    /// The target's activating tokens, then its context tokens.
    tokens: [&'a RoaringBitmap; 2],
    top: usize,
    threshold: f64,
}

impl Job<'_> {
    /// Counts the shared tokens of every neuron in `counts` (zeroed, one cell pair per
    /// neuron) and ranks.
    ///
    /// A neuron sharing `i` activating and `j` context tokens scores at most
    /// `i/|A_t| + j/|C_t|` (the max-denominators are at least the target's sizes; a
    /// target without context tokens gives at most 1 there), and rounding keeps that
    /// order, so a neuron whose bound is below the heap's least score is skipped
    /// without reading its record.
    fn run<C: Count>(&self, counts: &mut [[C; 2]]) -> Result<Vec<SimilarHit>> {
        for (role, table) in [TOKEN_ACT, TOKEN_CTX].into_iter().enumerate() {
            let mut bad = false;
            self.store
                .for_each_value(table, self.tokens[role].iter(), |m| {
                    match counts.get_mut(m as usize) {
                        Some(c) => c[role].inc(),
                        None => bad = true,
                    }
                })?;
            if bad {
                return Err(SearchError::InvalidRequest(
                    "a token posting names a neuron past the neuron table".into(),
                ));
            }
        }
        let (na, nc) = (self.tokens[0].len(), self.tokens[1].len());
        let bound = |i: usize, d: u64| if d == 0 { 1.0 } else { i as f64 / d as f64 };
        let width = nc as usize + 1;
        let bounds: Vec<f64> = (0..=na as usize)
            .flat_map(|i| (0..width).map(move |j| bound(i, na) + bound(j, nc)))
            .collect();
        let target = self.table[self.ord as usize];
        let mut heap: BinaryHeap<Reverse<Rank>> = BinaryHeap::with_capacity(self.top + 1);
        let mut least = f64::NEG_INFINITY;
        for (m, c) in counts.iter().enumerate() {
            let (i, j) = (c[0].get(), c[1].get());
            if i + j == 0 || bounds[i * width + j] < least || m == self.ord as usize {
                continue;
            }
            let r = self.table[m];
            let o = Overlap {
                act: (target.n_act as u64, r.n_act as u64, i as u64),
                ctx: (target.n_ctx as u64, r.n_ctx as u64, j as u64),
            };
            let (a, x) = o.scores();
            let rank = Rank(a + x, a, Reverse(r.id), o);
            if heap.len() < self.top {
                heap.push(Reverse(rank));
            } else if rank > heap.peek().expect("full").0 {
                heap.pop();
                heap.push(Reverse(rank));
            }
            if heap.len() == self.top {
                least = heap.peek().expect("full").0 .0;
            }
        }
        let mut ranked: Vec<Rank> = heap.into_iter().map(|r| r.0).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        Ok(ranked
            .into_iter()
            .map(|Rank(_, a, Reverse(neuron), o)| SimilarHit {
                neuron,
                activating: a as f32,
                context: o.scores().1 as f32,
                relation: o.relation(self.threshold),
            })
            .collect())
    }
}

impl SearchIndex {
    /// The `top` neurons whose token sets overlap `neuron`'s most, at N2G's threshold.
    pub fn similar(&self, neuron: NeuronId, top: usize) -> Result<Vec<SimilarHit>> {
        self.similar_with(neuron, top, DEFAULT_THRESHOLD)
    }

    /// [`similar`](Self::similar) with the relation threshold `threshold` (0 < θ <= 1).
    /// Ranked by `(activating + context) / 2`, then activating, then neuron id.
    /// Candidates share at least one activating or one context token with the target.
    pub fn similar_with(
        &self,
        neuron: NeuronId,
        top: usize,
        threshold: f64,
    ) -> Result<Vec<SimilarHit>> {
        check_threshold(threshold)?;
        let store = self.store();
        let table = store.neurons()?;
        let ord = table
            .ordinal(neuron)
            .ok_or(SearchError::UnknownNeuron(neuron))?;
        let act = store.bitmaps(NEURON_ACT, [ord])?.remove(0);
        let ctx = store.bitmaps(NEURON_CTX, [ord])?.remove(0);
        if act.is_empty() || top == 0 {
            return Ok(Vec::new());
        }
        let n = table.records.len();
        let job = Job {
            store,
            table: &table.records,
            ord,
            tokens: [&act, &ctx],
            top,
            threshold,
        };
        if act.len().max(ctx.len()) <= u16::MAX as u64 {
            let mut counts = self.take_scratch();
            counts.clear();
            counts.resize(n, [0; 2]);
            let hits = job.run(&mut counts);
            self.put_scratch(counts);
            hits
        } else {
            job.run(&mut vec![[0u32; 2]; n])
        }
    }

    /// Every `similar` and `subset` pair at `threshold` (N2G's find_similar), sorted by
    /// `(a, b)`. Memory is proportional to the postings.
    ///
    /// Both relations need `|A_x ∩ A_y| >= θ·min(|A_x|,|A_y|)` on activating tokens. Probe
    /// from the neuron `x` with the smaller `(|A|, ordinal)`: with `α` the least whole
    /// number with `α/|A_x| >= θ`, any `|A_x| − α + 1` tokens of `A_x` must meet `A_y`,
    /// else the overlap lies in the remaining `α − 1` tokens and is below `α`. So the
    /// postings of the `|A_x| − α + 1` rarest tokens of `x` hold every partner `y`.
    pub fn similar_all(&self, threshold: f64) -> Result<Vec<SimilarPair>> {
        check_threshold(threshold)?;
        let store = self.store();
        let table = store.neurons()?;
        let n = table.records.len();
        let acts = store.all_bitmaps(NEURON_ACT, n)?;
        let ctxs = store.all_bitmaps(NEURON_CTX, n)?;
        let posts = store.all_bitmaps(TOKEN_ACT, store.vocab()?.len())?;
        let key = |m: u32| (acts[m as usize].len(), m);
        let mut pairs: Vec<SimilarPair> = (0..n as u32)
            .into_par_iter()
            .flat_map_iter(|x| {
                let ax = &acts[x as usize];
                let size = ax.len();
                let mut out = Vec::new();
                if size == 0 {
                    return out.into_iter();
                }
                let mut alpha = ((threshold * size as f64).ceil() as u64).clamp(1, size);
                while alpha > 1 && ratio(alpha - 1, size) >= threshold {
                    alpha -= 1;
                }
                while ratio(alpha, size) < threshold {
                    alpha += 1;
                }
                let mut tokens: Vec<u32> = ax.iter().collect();
                tokens.sort_by_key(|&t| (posts[t as usize].len(), t));
                tokens.truncate((size - alpha + 1) as usize);
                let mut cands: Vec<u32> = tokens
                    .iter()
                    .flat_map(|&t| posts[t as usize].iter())
                    .filter(|&y| key(y) > key(x))
                    .collect();
                cands.sort_unstable();
                cands.dedup();
                for y in cands {
                    let (ay, cx, cy) = (&acts[y as usize], &ctxs[x as usize], &ctxs[y as usize]);
                    let o = Overlap {
                        act: (size, ay.len(), ax.intersection_len(ay)),
                        ctx: (cx.len(), cy.len(), cx.intersection_len(cy)),
                    };
                    let (ix, iy) = (table.records[x as usize].id, table.records[y as usize].id);
                    let (a, b, relation) = match o.relation(threshold) {
                        Relation::Similar => (ix.min(iy), ix.max(iy), Relation::Similar),
                        Relation::Subset => (iy, ix, Relation::Subset),
                        Relation::Superset => (ix, iy, Relation::Subset),
                        Relation::Overlap => continue,
                    };
                    let (sa, sc) = o.scores();
                    out.push(SimilarPair {
                        a,
                        b,
                        activating: sa as f32,
                        context: sc as f32,
                        relation,
                    });
                }
                out.into_iter()
            })
            .collect();
        pairs.sort_by_key(|p| (p.a, p.b));
        Ok(pairs)
    }
}
