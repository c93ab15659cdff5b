//! The dataset scan (N2G step 1): one forward pass over the corpus gives every selected
//! neuron of every selected layer at once; for each neuron we keep its top-k windows
//! (by the window's maximum activation, BOS excluded) and corpus statistics.
//!
//! Deterministic and resumable: windows are processed in a fixed batch plan, the top-k
//! order breaks ties by window id, and every `checkpoint_every` batches the whole state
//! is committed to the store in one transaction. A re-run after a kill resumes from the
//! last checkpoint and ends with the same store content as an uninterrupted run.

mod topk;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub use topk::{offer, qualifies, ranks_before, LayerState};

use crate::corpus::Windows;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::progress::{Progress, Stage};
use crate::shard::Shard;
use crate::store::{Checkpoint, ScanProgress, Store, WindowRecord};
use crate::NeuronId;

/// Parses a list of numbers and ranges (`0-2`, `5`, `0,5`, `0-2,7`, `all`) below `limit`;
/// errors name the option `field`.
pub fn parse_selection(spec: &str, limit: usize, field: &'static str) -> Result<Vec<usize>> {
    let bad = |m: String| Error::InvalidOption {
        field,
        message: format!("`{spec}`: {m}"),
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(bad("empty item".into()));
        }
        if part == "all" {
            out.extend(0..limit);
            continue;
        }
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let num = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("`{s}` is not a number")))
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            return Err(bad(format!("range {a}-{b} is empty")));
        }
        if b >= limit {
            return Err(bad(format!("{b} is out of range (0..={})", limit - 1)));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Layers, ascending.
    pub layers: Vec<usize>,
    /// Neuron indices (in every selected layer), ascending.
    pub neurons: Vec<usize>,
    /// Examples kept per neuron.
    pub top_k: usize,
    /// Windows per forward batch.
    pub batch_size: usize,
    /// Batches between checkpoints.
    pub checkpoint_every: usize,
    /// Stop after this many batches of this run (for tests of resumption).
    pub max_batches: Option<usize>,
    /// Scan only this shard's part of `layers` × `neurons` (`None`: all of it).
    pub shard: Option<Shard>,
    /// The graph stage's band of layers (`BatchConfig::band_layers`), which decides
    /// the shard's part.
    pub band: usize,
}

impl ScanOptions {
    /// `layers` × `neurons` keeping `top_k` examples each, in batches of 16 windows,
    /// checkpointed every 200 batches, run to the end.
    pub fn new(layers: Vec<usize>, neurons: Vec<usize>, top_k: usize) -> Self {
        ScanOptions {
            layers,
            neurons,
            top_k,
            batch_size: 16,
            checkpoint_every: 200,
            max_batches: None,
            shard: None,
            band: 1,
        }
    }

    /// The layers with neurons to scan, each with its neurons (ascending): all of
    /// `neurons` in every layer, or this shard's part.
    pub fn layer_neurons(&self) -> Vec<(usize, Vec<usize>)> {
        let per_layer = match &self.shard {
            None => vec![self.neurons.clone(); self.layers.len()],
            Some(shard) => shard.select(&self.layers, &self.neurons, self.band),
        };
        self.layers
            .iter()
            .copied()
            .zip(per_layer)
            .filter(|(_, n)| !n.is_empty())
            .collect()
    }
}

impl ScanOptions {
    /// Checks the numeric options' ranges: the first that cannot work, named by its
    /// field (`top_k`, `batch_size`, `checkpoint_every`).
    pub fn validate(&self) -> std::result::Result<(), crate::n2g::InvalidSetting> {
        use crate::n2g::check_count;
        check_count("top_k", self.top_k, 1, 1 << 16)?;
        check_count("batch_size", self.batch_size, 1, 1 << 16)?;
        check_count("checkpoint_every", self.checkpoint_every, 1, 1 << 30)
    }
}

/// What a scan run did.
#[derive(Clone, Debug)]
pub struct ScanReport {
    /// Batches processed by this run.
    pub batches: u64,
    /// Tokens processed by this run.
    pub tokens: u64,
    /// The batch the run started at (non-zero when resumed).
    pub resumed_at: u64,
    /// Time spent.
    pub elapsed: Duration,
    /// Whether the scan is now complete.
    pub complete: bool,
}

/// The deterministic batch plan: groups of `64 × batch_size` consecutive windows are
/// sorted by length (longest first, then id) and cut into batches, so a batch pads
/// little. Depends only on the windows and the batch size.
pub fn batch_plan(windows: &Windows, batch_size: usize) -> Vec<Vec<u32>> {
    let group = 64 * batch_size;
    let ids: Vec<u32> = (0..windows.len() as u32).collect();
    let mut plan = Vec::new();
    for chunk in ids.chunks(group) {
        let mut sorted = chunk.to_vec();
        sorted.sort_by_key(|&w| (std::cmp::Reverse(windows.get(w).ids.len()), w));
        plan.extend(sorted.chunks(batch_size).map(<[u32]>::to_vec));
    }
    plan
}

/// Runs (or resumes) the scan of `windows` into `store`, reporting tokens to
/// `report`; stops at the next batch when `report` asks (committing what is done).
pub fn run_scan(
    model: &Model,
    windows: &Windows,
    store: &Store,
    options: &ScanOptions,
    report: &mut dyn Progress,
) -> Result<ScanReport> {
    let start = Instant::now();
    options
        .validate()
        .map_err(|e| Error::InvalidRequest(format!("scan options: {e}")))?;
    let plan = batch_plan(windows, options.batch_size);
    let mut progress = store.scan_progress()?;
    let selected = options.layer_neurons();
    let layers: Vec<usize> = selected.iter().map(|(l, _)| *l).collect();
    let mut states: Vec<LayerState> = selected
        .into_iter()
        .map(|(l, neurons)| LayerState::new(l, neurons, options.top_k))
        .collect();
    // SAE latents are read at one layer; a part of them is encoded alone (ReLU and
    // JumpReLU then multiply only their encoder columns).
    let selected_only = model.units().only_layer().is_some()
        && states.len() == 1
        && states[0].neurons.len() < model.unit_count();
    if selected_only {
        states[0].read_selected_columns();
    }
    let resumed_at = progress.batches_done;
    if resumed_at > 0 {
        for (id, scan) in store.neuron_scans()? {
            let li = layers.iter().position(|&l| l == id.layer as usize);
            let j = li.and_then(|li| states[li].neurons.binary_search(&(id.index as usize)).ok());
            if let (Some(li), Some(j)) = (li, j) {
                states[li].restore(j, &scan);
            }
        }
    }
    progress.batches_total = plan.len() as u64;
    progress.windows_total = windows.len() as u64;
    progress.tokens_total = windows.total_tokens();
    let first = usize::from(windows.has_bos());
    report.start(Stage::Scan, progress.tokens_total, progress.tokens_done);
    let mut pending: BTreeSet<u32> = BTreeSet::new();
    let mut done_this_run = 0u64;
    let mut tokens_this_run = 0u64;
    // Time in forward, fold, top-k window bookkeeping, checkpoints.
    let mut timing = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for (bi, batch) in plan.iter().enumerate().skip(resumed_at as usize) {
        if options
            .max_batches
            .is_some_and(|m| done_this_run as usize >= m)
            || (done_this_run > 0 && report.should_stop())
        {
            break;
        }
        let seqs: Vec<Vec<u32>> = batch.iter().map(|&w| windows.get(w).ids.to_vec()).collect();
        let clock = Instant::now();
        let acts = if selected_only {
            vec![model.neuron_activations(&seqs, states[0].layer, &states[0].neurons)?]
        } else {
            model.activations(&seqs, &layers)?
        };
        timing.0 += clock.elapsed();
        let clock = Instant::now();
        let mut entered = vec![false; batch.len()];
        for (state, act) in states.iter_mut().zip(&acts) {
            for (e, x) in entered.iter_mut().zip(state.fold(act, batch, first)) {
                *e |= x;
            }
        }
        timing.1 += clock.elapsed();
        let clock = Instant::now();
        // Windows of this batch that entered some top-k must be stored.
        for (&w, &e) in batch.iter().zip(&entered) {
            if e {
                pending.insert(w);
            }
        }
        timing.2 += clock.elapsed();
        let tokens: u64 = seqs.iter().map(|s| s.len() as u64).sum();
        progress.batches_done = bi as u64 + 1;
        progress.windows_done += batch.len() as u64;
        progress.tokens_done += tokens;
        tokens_this_run += tokens;
        done_this_run += 1;
        report.advance(tokens);
        let last = progress.batches_done == progress.batches_total;
        if last || progress.batches_done % options.checkpoint_every as u64 == 0 {
            progress.complete = last;
            let clock = Instant::now();
            checkpoint(store, windows, &states, &progress, &mut pending, last)?;
            timing.3 += clock.elapsed();
        }
    }
    if !progress.complete
        && done_this_run > 0
        && progress.batches_done % options.checkpoint_every as u64 != 0
    {
        checkpoint(store, windows, &states, &progress, &mut pending, false)?;
    }
    if plan.is_empty() {
        progress.complete = true;
        checkpoint(store, windows, &states, &progress, &mut pending, true)?;
    }
    report.finish(Stage::Scan, start.elapsed());
    tracing::debug!(
        forward_ms = timing.0.as_millis() as u64,
        fold_ms = timing.1.as_millis() as u64,
        windows_ms = timing.2.as_millis() as u64,
        checkpoint_ms = timing.3.as_millis() as u64,
        "scan timings"
    );
    Ok(ScanReport {
        batches: done_this_run,
        tokens: tokens_this_run,
        resumed_at,
        elapsed: start.elapsed(),
        complete: progress.complete,
    })
}

/// Commits the whole state; on the final checkpoint, windows no longer in any top-k
/// are dropped so the store holds exactly the referenced windows.
fn checkpoint(
    store: &Store,
    windows: &Windows,
    states: &[LayerState],
    progress: &ScanProgress,
    pending: &mut BTreeSet<u32>,
    last: bool,
) -> Result<()> {
    let snapshots: Vec<(NeuronId, crate::store::NeuronScan)> = states
        .iter()
        .flat_map(|s| {
            (0..s.neurons.len()).map(move |j| (NeuronId::new(s.layer, s.neurons[j]), s.snapshot(j)))
        })
        .collect();
    let record = |w: u32| {
        let win = windows.get(w);
        (
            w,
            WindowRecord {
                doc: win.doc,
                start: win.start,
                ids: win.ids.to_vec(),
            },
        )
    };
    let mut c = Checkpoint {
        progress: Some(progress),
        neurons: snapshots.iter().map(|(id, s)| (*id, s)).collect(),
        windows: pending.iter().map(|&w| record(w)).collect(),
        drop_windows: Vec::new(),
    };
    if last {
        let mut referenced = Vec::new();
        for s in states {
            s.referenced_windows(&mut referenced);
        }
        let referenced: BTreeSet<u32> = referenced.into_iter().collect();
        c.windows.retain(|(w, _)| referenced.contains(w));
        let stored = store.window_ids()?;
        c.drop_windows = stored
            .into_iter()
            .filter(|w| !referenced.contains(w))
            .collect();
    }
    store.commit(&c)?;
    tracing::info!(
        batches_done = progress.batches_done,
        tokens_done = progress.tokens_done,
        complete = progress.complete,
        "checkpoint committed"
    );
    pending.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_parse() {
        assert_eq!(
            parse_selection("0-2,7", 10, "--layers").unwrap(),
            vec![0, 1, 2, 7]
        );
        assert_eq!(parse_selection("5", 10, "--layers").unwrap(), vec![5]);
        assert_eq!(
            parse_selection("all", 3, "--layers").unwrap(),
            vec![0, 1, 2]
        );
        assert_eq!(parse_selection("2,0-1,1", 3, "x").unwrap(), vec![0, 1, 2]);
        let e = parse_selection("0-40", 30, "--layers")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--layers: `0-40`") && e.contains("out of range"),
            "{e}"
        );
        assert!(parse_selection("a", 3, "x").is_err());
        assert!(parse_selection("3-1", 5, "x").is_err());
        assert!(parse_selection("1,,2", 5, "x").is_err());
    }
}
