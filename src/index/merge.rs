//! Joining the indexes of a sharded build (or of builds of disjoint `layers` /
//! `neurons` slices) into one index: [`crate::Index::merge`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::UnitSet;
use crate::n2g::{
    stored_band, BatchConfig, DenseSkip, GraphSettings, NeuronGraph, KEY_DENSE_SKIPPED,
    KEY_DICTIONARY, KEY_GRAPH_BAND, KEY_GRAPH_BATCH, KEY_GRAPH_SETTINGS,
};
use crate::progress::{Progress, Stage};
use crate::store::{Checkpoint, RunMeta, ScanProgress, Store, KEY_VOCABULARY};
use crate::NeuronId;

/// What a merge did.
#[derive(Clone, Debug)]
pub struct MergeReport {
    /// What the merged index is (the shards' run, covering their union).
    pub run: RunMeta,
    /// Shards read.
    pub shards: usize,
    /// Neurons copied.
    pub neurons: usize,
    /// Windows copied (shared windows once).
    pub windows: usize,
    /// Neurons in the search index built over the union.
    pub searchable: usize,
    /// Time spent.
    pub elapsed: Duration,
}

/// One shard, read and checked.
struct ShardIndex {
    dir: PathBuf,
    store: Store,
    run: RunMeta,
    progress: ScanProgress,
    neurons: Vec<NeuronId>,
    units: UnitSet,
    dense: Option<DenseSkip>,
}

/// Opens `dir` as a finished shard: its scan complete and every scanned neuron with a
/// graph.
fn open_shard(dir: &Path) -> Result<ShardIndex> {
    let store = Store::open_read_only(dir)?;
    let unfinished = |message: String| Error::Incompatible {
        path: dir.to_path_buf(),
        message,
    };
    let run = store
        .run_meta()?
        .ok_or_else(|| unfinished("no build recorded in this folder".into()))?;
    let progress = store.scan_progress()?;
    if !progress.complete {
        return Err(unfinished(format!(
            "its scan is unfinished ({} of {} batches): run its build again to finish it",
            progress.batches_done, progress.batches_total
        )));
    }
    let neurons: Vec<NeuronId> = store
        .neuron_scans()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut graphs: BTreeSet<NeuronId> = store.graph_keys()?.into_iter().collect();
    let dense: Option<DenseSkip> = store.meta(KEY_DENSE_SKIPPED)?;
    // Units skipped as dense have no graph by design.
    graphs.extend(dense.iter().flat_map(|d| d.units.iter().map(|(id, _)| *id)));
    if let Some(missing) = neurons.iter().find(|n| !graphs.contains(n)) {
        let without = neurons.iter().filter(|n| !graphs.contains(n)).count();
        return Err(unfinished(format!(
            "its graph stage is unfinished ({without} of {} neurons without a graph, the first {missing}): run its build again to finish it",
            neurons.len()
        )));
    }
    let band = stored_band(&store)?.unwrap_or(1);
    if neurons.len() != run.scan.neuron_count(band)
        || neurons.iter().any(|&n| !run.scan.covers(n, band))
    {
        return Err(unfinished(format!(
            "it holds {} neuron records where its run covers {}: the store is damaged",
            neurons.len(),
            run.scan.neuron_count(band)
        )));
    }
    let units = store.units(&run)?;
    Ok(ShardIndex {
        dir: dir.to_path_buf(),
        store,
        run,
        progress,
        neurons,
        units,
        dense,
    })
}

/// The raw meta value `key` of a store, re-encoded (for comparing shards).
fn meta_bytes<T: serde::de::DeserializeOwned + serde::Serialize>(
    store: &Store,
    key: &str,
) -> Result<Option<Vec<u8>>> {
    Ok(store.meta::<T>(key)?.map(|v| crate::store::encode(&v)))
}

/// Checks that `shard` was built from the same model, corpus and settings as `first`
/// (everything but the neurons it covers), naming what differs.
fn check_same_inputs(first: &ShardIndex, shard: &ShardIndex) -> Result<()> {
    let mut run = shard.run.clone();
    run.scan.layers = first.run.scan.layers.clone();
    run.scan.neurons = first.run.scan.neurons.clone();
    run.scan.shard = first.run.scan.shard;
    let mut diffs = crate::store::run_differences(&first.run, &run);
    if !first.units.same_units(&shard.units) {
        diffs.push(format!(
            "units: {} here, {} in the first shard",
            shard.units.describe(),
            first.units.describe()
        ));
    }
    let max_density = |s: &ShardIndex| s.dense.as_ref().map(|d| d.max_density);
    if max_density(first) != max_density(shard) {
        diffs.push("--max-density differs".into());
    }
    for (key, a, b) in [
        (
            "vocabulary",
            meta_bytes::<Vec<String>>(&first.store, KEY_VOCABULARY)?,
            meta_bytes::<Vec<String>>(&shard.store, KEY_VOCABULARY)?,
        ),
        (
            "graph settings",
            meta_bytes::<GraphSettings>(&first.store, KEY_GRAPH_SETTINGS)?,
            meta_bytes::<GraphSettings>(&shard.store, KEY_GRAPH_SETTINGS)?,
        ),
        (
            "graph batch layout",
            meta_bytes::<BatchConfig>(&first.store, KEY_GRAPH_BATCH)?,
            meta_bytes::<BatchConfig>(&shard.store, KEY_GRAPH_BATCH)?,
        ),
        (
            "token dictionary",
            meta_bytes::<Vec<String>>(&first.store, KEY_DICTIONARY)?,
            meta_bytes::<Vec<String>>(&shard.store, KEY_DICTIONARY)?,
        ),
    ] {
        if a != b {
            diffs.push(format!("{key} differs"));
        }
    }
    let (band_first, band_here) = (
        stored_band(&first.store)?.unwrap_or(1),
        stored_band(&shard.store)?.unwrap_or(1),
    );
    if band_first != band_here {
        diffs.push(format!(
            "graph band: {band_here} layer(s) here, {band_first} in the first shard"
        ));
    }
    if shard.progress.batches_total != first.progress.batches_total
        || shard.progress.tokens_total != first.progress.tokens_total
    {
        diffs.push("the scanned corpus differs".into());
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Error::Incompatible {
            path: shard.dir.clone(),
            message: format!(
                "built from other inputs than {} (\"stored\" is there, \"now\" here: {}): shards must share the model, corpus and settings",
                first.dir.display(),
                diffs.join("; ")
            ),
        })
    }
}

/// The run of the union of `shards`, after checking that they do not overlap and
/// together cover whole layers × neurons; names overlaps and missing neurons.
fn union_run(shards: &[ShardIndex]) -> Result<RunMeta> {
    let mut owner: BTreeMap<NeuronId, usize> = BTreeMap::new();
    for (i, s) in shards.iter().enumerate() {
        for &n in &s.neurons {
            if let Some(&j) = owner.get(&n) {
                return Err(Error::Incompatible {
                    path: s.dir.clone(),
                    message: format!(
                        "neuron {n} is in this shard and in {}: shards must not overlap",
                        shards[j].dir.display()
                    ),
                });
            }
            owner.insert(n, i);
        }
    }
    let layers: BTreeSet<u32> = shards
        .iter()
        .flat_map(|s| s.run.scan.layers.iter().copied())
        .collect();
    let neurons: BTreeSet<u32> = shards
        .iter()
        .flat_map(|s| s.run.scan.neurons.iter().copied())
        .collect();
    let mut run = shards[0].run.clone();
    run.scan.layers = layers.into_iter().collect();
    run.scan.neurons = neurons.into_iter().collect();
    run.scan.shard = None;
    let missing: Vec<NeuronId> = run
        .scan
        .layers
        .iter()
        .flat_map(|&l| {
            run.scan
                .neurons
                .iter()
                .map(move |&n| NeuronId::new(l as usize, n as usize))
        })
        .filter(|n| !owner.contains_key(n))
        .collect();
    if !missing.is_empty() {
        let named: Vec<String> = missing.iter().take(5).map(|n| n.to_string()).collect();
        let absent_shards: Vec<String> = match shards[0].run.scan.shard {
            Some(first) => {
                let present: BTreeSet<u32> = shards
                    .iter()
                    .filter_map(|s| s.run.scan.shard.map(|x| x.index))
                    .collect();
                (0..first.count)
                    .filter(|i| !present.contains(i))
                    .map(|i| format!("{i}/{}", first.count))
                    .collect()
            }
            None => Vec::new(),
        };
        return Err(Error::Incompatible {
            path: shards[0].dir.clone(),
            message: format!(
                "the shards leave {} neurons of layers {:?} × {} neurons unbuilt ({}{}){}",
                missing.len(),
                run.scan.layers,
                run.scan.neurons.len(),
                named.join(", "),
                if missing.len() > 5 { ", ..." } else { "" },
                if absent_shards.is_empty() {
                    String::new()
                } else {
                    format!("; missing shards: {}", absent_shards.join(", "))
                }
            ),
        });
    }
    Ok(run)
}

/// Merges the finished shard indexes `shards` into the index folder `into` (created,
/// or a previous merge of the same shards, which is then written again: a merge is
/// idempotent and a killed one is finished by running it again).
pub(crate) fn merge(
    shards: &[PathBuf],
    into: &Path,
    progress: &mut dyn Progress,
) -> Result<MergeReport> {
    let start = Instant::now();
    if shards.is_empty() {
        return Err(Error::InvalidOption {
            field: "shards",
            message: "name at least one shard index folder".into(),
        });
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(s) = shards.iter().find(|s| same(s, into)) {
        return Err(Error::InvalidOption {
            field: "into",
            message: format!(
                "{} is one of the shards: merge into a new folder",
                s.display()
            ),
        });
    }
    let opened = shards
        .iter()
        .map(|d| open_shard(d))
        .collect::<Result<Vec<_>>>()?;
    for s in &opened[1..] {
        check_same_inputs(&opened[0], s)?;
    }
    let run = union_run(&opened)?;
    let store = Store::open_for_build(into, false)?;
    store.check_or_set_units(&run, &opened[0].units)?;
    store.check_or_set_run(&run).map_err(|e| match e {
        Error::Incompatible { path, message } => Error::Incompatible {
            path,
            message: format!(
                "{message} (this folder holds another index; merge into a new folder)"
            ),
        },
        e => e,
    })?;
    if let Some(d) = &opened[0].dense {
        let mut units: Vec<(NeuronId, f64)> = opened
            .iter()
            .flat_map(|s| s.dense.iter().flat_map(|d| d.units.iter().copied()))
            .collect();
        units.sort_by_key(|(id, _)| *id);
        store.put_meta(
            KEY_DENSE_SKIPPED,
            &DenseSkip {
                max_density: d.max_density,
                units,
            },
        )?;
    }
    let first = &opened[0].store;
    if let Some(v) = first.meta::<Vec<String>>(KEY_VOCABULARY)? {
        store.put_meta(KEY_VOCABULARY, &v)?;
    }
    if let Some(v) = first.meta::<GraphSettings>(KEY_GRAPH_SETTINGS)? {
        store.put_meta(KEY_GRAPH_SETTINGS, &v)?;
    }
    if let Some(v) = first.meta::<BatchConfig>(KEY_GRAPH_BATCH)? {
        store.put_meta(KEY_GRAPH_BATCH, &v)?;
    }
    if let Some(v) = first.meta::<u32>(KEY_GRAPH_BAND)? {
        store.put_meta(KEY_GRAPH_BAND, &v)?;
    }
    if let Some(v) = first.meta::<Vec<String>>(KEY_DICTIONARY)? {
        store.put_meta(KEY_DICTIONARY, &v)?;
    }
    let total: usize = opened.iter().map(|s| s.neurons.len()).sum();
    progress.start(Stage::Merge, total as u64, 0);
    let mut copied_windows = BTreeSet::new();
    for shard in &opened {
        let windows: Vec<_> = shard
            .store
            .windows()?
            .into_iter()
            .filter(|(id, _)| copied_windows.insert(*id))
            .collect();
        let scans = shard.store.neuron_scans()?;
        store.commit(&Checkpoint {
            progress: None,
            neurons: scans.iter().map(|(id, s)| (*id, s)).collect(),
            windows,
            drop_windows: Vec::new(),
        })?;
        drop(scans);
        let graphs: Vec<(NeuronId, NeuronGraph)> = shard.store.graphs()?;
        store.put_graphs(&graphs)?;
        progress.advance(shard.neurons.len() as u64);
    }
    progress.finish(Stage::Merge, start.elapsed());
    // The scan's progress last: a merge killed before it leaves an index that says its
    // scan is unfinished, and running the merge again completes it.
    store.commit(&Checkpoint {
        progress: Some(&opened[0].progress),
        ..Checkpoint::default()
    })?;
    let clock = Instant::now();
    progress.start(Stage::Search, 0, 0);
    let searchable = crate::search::reindex(&store, into)?;
    progress.finish(Stage::Search, clock.elapsed());
    Ok(MergeReport {
        run,
        shards: opened.len(),
        neurons: total,
        windows: copied_windows.len(),
        searchable,
        elapsed: start.elapsed(),
    })
}
