//! The embedded store of an index: one redb database, `<index>/store.redb`.
//!
//! Tables (keys and postcard-encoded values are described in `schema/STORE.md`):
//! `meta` (format version, run description, scan progress), `windows` (token ids of
//! windows that are in some neuron's top-k), `neurons` (top-k examples and statistics
//! per neuron) and `graphs` (one N2G graph per neuron, written by the graph stage).
//! Every checkpoint is one write transaction, so a killed build loses at most the
//! work since the last checkpoint and never leaves a half-written state. Every value
//! carries a checksum and every redb call runs guarded (`integrity`), so a damaged file
//! is refused with an error naming it and the record, never half-read.

mod integrity;
mod lock;
mod open;
pub mod records;
mod run_check;

use std::path::{Path, PathBuf};

use redb::{
    ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use lock::{WriterLock, GATE_FILE, WRITER_LOCK_FILE};
pub use records::{
    CorpusRecord, Example, ModelRecord, NeuronScan, NeuronStats, RunMeta, ScanProgress,
    ScanSettings, WindowRecord,
};

pub(crate) use integrity::{catch_panics, seal, unseal, CHECKSUM_BYTES};

use crate::error::{Error, Result};
use crate::model::UnitSet;
use crate::NeuronId;
pub(crate) use run_check::run_differences;

/// The store's on-disk format version; opening another version is refused.
pub const FORMAT_VERSION: u32 = 6;

/// The database file name inside an index folder.
pub const STORE_FILE: &str = "store.redb";

const META_NAME: &str = "meta";
const WINDOWS_NAME: &str = "windows";
const NEURONS_NAME: &str = "neurons";
const GRAPHS_NAME: &str = "graphs";
const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_NAME);
const WINDOWS: TableDefinition<u32, &[u8]> = TableDefinition::new(WINDOWS_NAME);
const NEURONS: TableDefinition<u64, &[u8]> = TableDefinition::new(NEURONS_NAME);
const GRAPHS: TableDefinition<u64, &[u8]> = TableDefinition::new(GRAPHS_NAME);

/// Meta key of the display string of every model token id (`Vec<String>`).
pub const KEY_VOCABULARY: &str = "vocabulary";

/// Meta key of the index's unit set ([`crate::model::UnitSet`]); absent in indexes
/// built before it was recorded, which hold MLP neurons.
pub const KEY_UNITS: &str = "units";

const KEY_FORMAT: &str = "format_version";
const KEY_RUN: &str = "run";
const KEY_PROGRESS: &str = "scan_progress";

/// The key of a neuron in the `neurons` and `graphs` tables: `layer << 32 | index`.
/// Every [`NeuronId`] has its own key (no two ids share one).
pub fn neuron_key(n: NeuronId) -> u64 {
    ((n.layer as u64) << 32) | n.index as u64
}

/// The inverse of [`neuron_key`].
pub fn key_neuron(key: u64) -> NeuronId {
    NeuronId {
        layer: (key >> 32) as u16,
        index: key as u32,
    }
}

/// A key type of the row tables (`u32` window ids, `u64` neuron keys).
trait RowKey:
    redb::Key + for<'a> redb::Value<SelfType<'a> = Self> + Copy + std::fmt::Debug + 'static
{
    /// The key's bytes in checksums: little-endian.
    fn key_bytes(self) -> Vec<u8>;
    /// The key as a u64 (for messages).
    fn wide(self) -> u64;
}

impl RowKey for u32 {
    fn key_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
    fn wide(self) -> u64 {
        self as u64
    }
}

impl RowKey for u64 {
    fn key_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
    fn wide(self) -> u64 {
        self
    }
}

/// How a store is open.
enum Access {
    /// Read-only: the database open with a shared lock for the store's lifetime (a
    /// consistent view; a writer's next commit waits until it is dropped).
    Read(ReadOnlyDatabase),
    /// The writer: the writer lock held; the database opened for each transaction
    /// under the exclusive gate, so readers can open it between transactions.
    Write {
        /// Held for the store's lifetime.
        _lock: WriterLock,
    },
}

/// An open store.
pub struct Store {
    access: Access,
    dir: PathBuf,
    path: PathBuf,
}

/// The writes of one checkpoint, committed atomically.
#[derive(Default)]
pub struct Checkpoint<'a> {
    /// New scan progress.
    pub progress: Option<&'a ScanProgress>,
    /// Neuron states to write.
    pub neurons: Vec<(NeuronId, &'a NeuronScan)>,
    /// Windows to add.
    pub windows: Vec<(u32, WindowRecord)>,
    /// Windows to delete (no longer in any top-k).
    pub drop_windows: Vec<u32>,
}

impl Store {
    /// Whether this store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        matches!(self.access, Access::Read(_))
    }

    /// The index folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` in a read transaction.
    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        self.guarded(|| match &self.access {
            Access::Read(db) => f(&db.begin_read().map_err(|e| self.err(e))?),
            Access::Write { .. } => {
                let (gate, db) = self.open_writer()?;
                let r = f(&db.begin_read().map_err(|e| self.err(e))?);
                drop(db);
                drop(gate);
                r
            }
        })
    }

    /// Runs `f` in a write transaction and commits it (writers only).
    fn write(&self, f: impl FnOnce(&WriteTransaction) -> Result<()>) -> Result<()> {
        self.guarded(|| match &self.access {
            Access::Read(_) => Err(self.err("the store is open read-only")),
            Access::Write { .. } => {
                let (gate, db) = self.open_writer()?;
                let txn = db.begin_write().map_err(|e| self.err(e))?;
                f(&txn)?;
                txn.commit().map_err(|e| self.err(e))?;
                drop(db);
                drop(gate);
                Ok(())
            }
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn incompatible(&self, message: String) -> Error {
        Error::Incompatible {
            path: self.path.clone(),
            message,
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Runs redb calls so that a panic inside redb (a damaged file) becomes an error.
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        catch_panics(f, |m| damaged(&self.path, &m))
    }

    fn init_or_check_format(&self) -> Result<()> {
        match self.get_meta::<u32>(KEY_FORMAT)? {
            Some(v) if v == FORMAT_VERSION => Ok(()),
            Some(v) => Err(self.incompatible(format!(
                "written by format version {v}; this n2g-index writes version {FORMAT_VERSION}: use a new --index folder"
            ))),
            None => self.write(|txn| {
                let mut t = txn.open_table(META).map_err(|e| self.err(e))?;
                t.insert(KEY_FORMAT, meta_value(KEY_FORMAT, &FORMAT_VERSION).as_slice())
                    .map_err(|e| self.err(e))?;
                // Create the other tables so readers find them.
                txn.open_table(WINDOWS).map_err(|e| self.err(e))?;
                txn.open_table(NEURONS).map_err(|e| self.err(e))?;
                txn.open_table(GRAPHS).map_err(|e| self.err(e))?;
                Ok(())
            }),
        }
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.read(|txn| {
            let table = match txn.open_table(META) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.err(e)),
            };
            let Some(v) = table.get(key).map_err(|e| self.err(e))? else {
                return Ok(None);
            };
            let bytes = v.value();
            if key == KEY_FORMAT && unseal(META_NAME, key.as_bytes(), bytes).is_none() {
                // Stores before version 4 wrote values without a checksum: read the
                // version so that the refusal names it.
                if let Ok((old, [])) = postcard::take_from_bytes::<u32>(bytes) {
                    if old < 4 {
                        return Ok(Some(postcard::from_bytes(bytes).map_err(|e| {
                            self.err(format!("corrupt record meta `{key}`: {e}"))
                        })?));
                    }
                }
            }
            self.decode(META_NAME, key.as_bytes(), &format!("meta `{key}`"), bytes)
                .map(Some)
        })
    }

    /// Checks a value's checksum and decodes it, naming the record when either fails.
    fn decode<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &[u8],
        what: &str,
        bytes: &[u8],
    ) -> Result<T> {
        let payload = unseal(table, key, bytes)
            .ok_or_else(|| damaged(&self.path, &format!("record {what} fails its checksum")))?;
        postcard::from_bytes(payload).map_err(|e| self.err(format!("corrupt record {what}: {e}")))
    }

    /// The run description, once a build has started.
    pub fn run_meta(&self) -> Result<Option<RunMeta>> {
        self.get_meta(KEY_RUN)
    }

    /// Records the run description (the first time) or checks that it equals the stored
    /// one, naming every field that differs.
    pub fn check_or_set_run(&self, run: &RunMeta) -> Result<()> {
        if let Some(stored) = self.run_meta()? {
            let diffs = run_differences(&stored, run);
            if diffs.is_empty() {
                return Ok(());
            }
            return Err(self.incompatible(format!(
                "this index was built with other inputs, so it cannot be continued ({}); use a new --index folder or the original options",
                diffs.join("; ")
            )));
        }
        self.put_meta(KEY_RUN, run)
    }

    /// The units the index holds: the recorded unit set, or the MLP neurons of `run`'s
    /// model when none is recorded.
    pub fn units(&self, run: &RunMeta) -> Result<UnitSet> {
        Ok(self
            .get_meta(KEY_UNITS)?
            .unwrap_or_else(|| UnitSet::mlp_neurons(run.model.n_neurons as usize)))
    }

    /// Records the unit set a build reads (before the run's first record) or checks
    /// that it is the stored one (same kind, hook and SAE content), naming both when
    /// not.
    pub fn check_or_set_units(&self, run: &RunMeta, units: &UnitSet) -> Result<()> {
        if self.run_meta()?.is_none() {
            return self.put_meta(KEY_UNITS, units);
        }
        let stored = self.units(run)?;
        if !stored.same_units(units) {
            return Err(self.incompatible(format!(
                "this index holds {}, but the build reads {}: use a new --index folder or the original --sae/--hook",
                stored.describe(),
                units.describe()
            )));
        }
        if self.get_meta::<UnitSet>(KEY_UNITS)?.is_none() {
            self.put_meta(KEY_UNITS, units)?;
        }
        Ok(())
    }

    /// The scan progress (default when the scan has not started).
    pub fn scan_progress(&self) -> Result<ScanProgress> {
        Ok(self.get_meta(KEY_PROGRESS)?.unwrap_or_default())
    }

    /// Commits one checkpoint in a single transaction.
    pub fn commit(&self, c: &Checkpoint) -> Result<()> {
        self.write(|txn| {
            let mut neurons = txn.open_table(NEURONS).map_err(|e| self.err(e))?;
            for (id, scan) in &c.neurons {
                let key = neuron_key(*id);
                neurons
                    .insert(key, row_value(NEURONS_NAME, key, *scan).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut windows = txn.open_table(WINDOWS).map_err(|e| self.err(e))?;
            for (id, w) in &c.windows {
                windows
                    .insert(*id, row_value(WINDOWS_NAME, *id, w).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            for id in &c.drop_windows {
                windows.remove(*id).map_err(|e| self.err(e))?;
            }
            if let Some(p) = c.progress {
                let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
                meta.insert(KEY_PROGRESS, meta_value(KEY_PROGRESS, p).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    /// Every stored neuron scan, in key order.
    pub fn neuron_scans(&self) -> Result<Vec<(NeuronId, NeuronScan)>> {
        self.scan_table(NEURONS)
            .map(|rows| rows.into_iter().map(|(k, v)| (key_neuron(k), v)).collect())
    }

    /// One neuron's scan (`None` for a neuron the index does not cover).
    pub fn neuron_scan(&self, n: NeuronId) -> Result<Option<NeuronScan>> {
        self.get_row(NEURONS, neuron_key(n))
    }

    /// One stored window.
    pub fn window(&self, id: u32) -> Result<Option<WindowRecord>> {
        self.get_row(WINDOWS, id)
    }

    /// Ids of every stored window, ascending.
    pub fn window_ids(&self) -> Result<Vec<u32>> {
        self.keys(WINDOWS)
    }

    /// Every stored window, in id order.
    pub fn windows(&self) -> Result<Vec<(u32, WindowRecord)>> {
        self.scan_table(WINDOWS)
    }

    /// Writes graph records (any serialisable value) for neurons, in one transaction.
    pub fn put_graphs<T: Serialize>(&self, graphs: &[(NeuronId, T)]) -> Result<()> {
        self.write(|txn| {
            let mut t = txn.open_table(GRAPHS).map_err(|e| self.err(e))?;
            for (id, g) in graphs {
                let key = neuron_key(*id);
                t.insert(key, row_value(GRAPHS_NAME, key, g).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    /// One neuron's graph record.
    pub fn graph<T: DeserializeOwned>(&self, n: NeuronId) -> Result<Option<T>> {
        self.get_row(GRAPHS, neuron_key(n))
    }

    /// Every graph record, in key order.
    pub fn graphs<T: DeserializeOwned>(&self) -> Result<Vec<(NeuronId, T)>> {
        self.scan_table(GRAPHS)
            .map(|rows| rows.into_iter().map(|(k, v)| (key_neuron(k), v)).collect())
    }

    /// Neurons that already have a graph.
    pub fn graph_keys(&self) -> Result<Vec<NeuronId>> {
        Ok(self.keys(GRAPHS)?.into_iter().map(key_neuron).collect())
    }

    /// Stores a meta value (dictionary, graph settings, ...).
    pub fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.write(|txn| {
            let mut t = txn.open_table(META).map_err(|e| self.err(e))?;
            t.insert(key, meta_value(key, value).as_slice())
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// Reads a meta value.
    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get_meta(key)
    }

    fn keys<K: RowKey>(&self, table: TableDefinition<K, &[u8]>) -> Result<Vec<K>> {
        self.read(|txn| {
            let t = txn.open_table(table).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| self.err(e))? {
                out.push(row.map_err(|e| self.err(e))?.0.value());
            }
            Ok(out)
        })
    }

    fn get_row<K: RowKey, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &[u8]>,
        key: K,
    ) -> Result<Option<T>> {
        self.read(|txn| {
            let t = txn.open_table(table).map_err(|e| self.err(e))?;
            match t.get(key).map_err(|e| self.err(e))? {
                Some(v) => Ok(Some(self.decode_row(table.name(), key, v.value())?)),
                None => Ok(None),
            }
        })
    }

    fn scan_table<K: RowKey, T: DeserializeOwned>(
        &self,
        table: TableDefinition<K, &[u8]>,
    ) -> Result<Vec<(K, T)>> {
        self.read(|txn| {
            let t = txn.open_table(table).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let key = k.value();
                out.push((key, self.decode_row(table.name(), key, v.value())?));
            }
            Ok(out)
        })
    }

    fn decode_row<K: RowKey, T: DeserializeOwned>(
        &self,
        table: &str,
        key: K,
        bytes: &[u8],
    ) -> Result<T> {
        self.decode(
            table,
            &key.key_bytes(),
            &describe_row(table, key.wide()),
            bytes,
        )
    }

    /// Checks the checksum of every value of a row table: how many there are.
    fn verify_table<K: RowKey>(
        &self,
        txn: &ReadTransaction,
        table: TableDefinition<K, &[u8]>,
    ) -> Result<u64> {
        let name = table.name();
        let t = txn.open_table(table).map_err(|e| self.err(e))?;
        let mut n = 0;
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = k.value();
            unseal(name, &key.key_bytes(), v.value()).ok_or_else(|| {
                damaged(
                    &self.path,
                    &format!(
                        "record {} fails its checksum",
                        describe_row(name, key.wide())
                    ),
                )
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// Reads every value of every table and checks its checksum (`info --check`): the
    /// number of values per table, or an error naming the first record that fails.
    pub fn verify(&self) -> Result<Vec<(&'static str, u64)>> {
        self.read(|txn| {
            let meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let mut n = 0;
            for row in meta.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let key = k.value();
                unseal(META_NAME, key.as_bytes(), v.value()).ok_or_else(|| {
                    damaged(
                        &self.path,
                        &format!("record meta `{key}` fails its checksum"),
                    )
                })?;
                n += 1;
            }
            Ok(vec![
                (META_NAME, n),
                (WINDOWS_NAME, self.verify_table(txn, WINDOWS)?),
                (NEURONS_NAME, self.verify_table(txn, NEURONS)?),
                (GRAPHS_NAME, self.verify_table(txn, GRAPHS)?),
            ])
        })
    }

    /// A canonical text dump of the scan content (run, progress, neurons, windows): two
    /// stores with equal dumps hold the same data, whatever their page layout.
    pub fn dump(&self) -> Result<String> {
        use std::fmt::Write;
        let mut out = String::new();
        writeln!(out, "format {FORMAT_VERSION}").ok();
        writeln!(out, "run {:?}", self.run_meta()?).ok();
        writeln!(out, "progress {:?}", self.scan_progress()?).ok();
        for (id, scan) in self.neuron_scans()? {
            writeln!(out, "neuron {id} {scan:?}").ok();
        }
        for (id, w) in self.windows()? {
            writeln!(out, "window {id} {w:?}").ok();
        }
        Ok(out)
    }
}

/// postcard encoding (infallible for the store's plain records).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encodes plain records")
}

/// The stored bytes of a `meta` value: postcard, then the checksum.
fn meta_value<T: Serialize + ?Sized>(key: &str, value: &T) -> Vec<u8> {
    seal(META_NAME, key.as_bytes(), encode(value))
}

/// The stored bytes of a row of a row table: postcard, then the checksum.
fn row_value<K: RowKey, T: Serialize + ?Sized>(table: &str, key: K, value: &T) -> Vec<u8> {
    seal(table, &key.key_bytes(), encode(value))
}

/// How errors name a row of a row table.
fn describe_row(table: &str, key: u64) -> String {
    match table {
        WINDOWS_NAME => format!("window {key}"),
        NEURONS_NAME => format!("neuron {}", key_neuron(key)),
        _ => format!("graph of neuron {}", key_neuron(key)),
    }
}

/// The error for a store file that redb cannot read or whose values fail their checks.
fn damaged(path: &Path, detail: &str) -> Error {
    Error::Store {
        path: path.into(),
        message: format!(
            "the store is damaged ({detail}); build the index again into a new --index folder"
        ),
    }
}
