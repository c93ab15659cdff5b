//! The redb part of a search index: token vocabulary, neuron table and roaring-bitmap
//! postings, loaded lazily.
//!
//! Tables: `meta` (`vocab`: postcard `Vec<String>` of normalised tokens, id = position;
//! `layers`: postcard `Vec<u16>` of the distinct layers; `neurons`: fixed 18-byte records
//! per neuron ordinal; `by_id`: sorted `(nid, ordinal)` pairs; `runs`: postcard `Vec<u32>`,
//! the lengths of the sorted runs of the tantivy segment, in document order), `token_act` / `token_ctx` (token id → bitmap of neuron ordinals),
//! `neuron_act` / `neuron_ctx` (neuron ordinal → bitmap of token ids).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use redb::{
    ReadOnlyDatabase, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
};
use roaring::RoaringBitmap;

use super::columns::NeuronColumns;
use super::postings::for_each;
use super::schema::nid;
use super::{Result, SearchError};
use crate::store::{catch_panics, unseal};
use crate::NeuronId;

/// `meta` table.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Token id → neurons where it is activating.
pub(crate) const TOKEN_ACT: TableDefinition<u32, &[u8]> = TableDefinition::new("token_act");
/// Token id → neurons where it is context.
pub(crate) const TOKEN_CTX: TableDefinition<u32, &[u8]> = TableDefinition::new("token_ctx");
/// Neuron ordinal → its activating token ids.
pub(crate) const NEURON_ACT: TableDefinition<u32, &[u8]> = TableDefinition::new("neuron_act");
/// Neuron ordinal → its context token ids.
pub(crate) const NEURON_CTX: TableDefinition<u32, &[u8]> = TableDefinition::new("neuron_ctx");

/// The value of `cell`, made by `init` on first use (a failed `init` is retried later).
fn lazy<T>(cell: &OnceLock<T>, init: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = init()?;
    Ok(cell.get_or_init(|| v))
}

/// One neuron of the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NeuronRecord {
    /// The neuron.
    pub id: NeuronId,
    /// Its F1.
    pub f1: f32,
    /// Number of distinct activating tokens.
    pub n_act: u32,
    /// Number of distinct context tokens.
    pub n_ctx: u32,
}

const RECORD: usize = 18;

/// All neurons by ordinal, and a sorted id → ordinal index.
#[derive(Debug)]
pub(crate) struct NeuronTable {
    /// Records by ordinal.
    pub records: Vec<NeuronRecord>,
    by_id: Vec<(u64, u32)>,
}

impl NeuronTable {
    /// Encodes the records (by ordinal) and the sorted id index.
    pub fn encode(records: &[NeuronRecord]) -> (Vec<u8>, Vec<u8>) {
        let mut a = Vec::with_capacity(records.len() * RECORD);
        let mut by_id: Vec<(u64, u32)> = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            a.extend_from_slice(&r.id.layer.to_le_bytes());
            a.extend_from_slice(&r.id.index.to_le_bytes());
            a.extend_from_slice(&r.f1.to_le_bytes());
            a.extend_from_slice(&r.n_act.to_le_bytes());
            a.extend_from_slice(&r.n_ctx.to_le_bytes());
            by_id.push((nid(r.id), i as u32));
        }
        by_id.sort_unstable();
        let mut b = Vec::with_capacity(by_id.len() * 12);
        for (n, o) in by_id {
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&o.to_le_bytes());
        }
        (a, b)
    }

    fn decode(records: &[u8], by_id: &[u8]) -> Option<Self> {
        if !records.len().is_multiple_of(RECORD) || !by_id.len().is_multiple_of(12) {
            return None;
        }
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let records = records
            .chunks_exact(RECORD)
            .map(|c| NeuronRecord {
                id: NeuronId {
                    layer: u16::from_le_bytes([c[0], c[1]]),
                    index: u32_at(c, 2),
                },
                f1: f32::from_bits(u32_at(c, 6)),
                n_act: u32_at(c, 10),
                n_ctx: u32_at(c, 14),
            })
            .collect();
        let by_id = by_id
            .chunks_exact(12)
            .map(|c| (u64::from_le_bytes(c[..8].try_into().unwrap()), u32_at(c, 8)))
            .collect();
        Some(NeuronTable { records, by_id })
    }

    /// The ordinal of a neuron.
    pub fn ordinal(&self, id: NeuronId) -> Option<u32> {
        let key = nid(id);
        self.by_id
            .binary_search_by_key(&key, |&(n, _)| n)
            .ok()
            .map(|i| self.by_id[i].1)
    }
}

/// Lazily opened redb store of one generation.
pub(crate) struct Store {
    path: PathBuf,
    db: OnceLock<ReadOnlyDatabase>,
    neurons: OnceLock<Arc<NeuronTable>>,
    vocab: OnceLock<Vec<String>>,
    token_ids: OnceLock<HashMap<String, u32>>,
    layers: OnceLock<Vec<u16>>,
    runs: OnceLock<Arc<Vec<u32>>>,
    columns: OnceLock<Arc<NeuronColumns>>,
}

impl Store {
    /// A store at `path`, not opened yet.
    pub fn new(path: &Path) -> Self {
        Store {
            path: path.to_path_buf(),
            db: OnceLock::new(),
            neurons: OnceLock::new(),
            vocab: OnceLock::new(),
            token_ids: OnceLock::new(),
            layers: OnceLock::new(),
            runs: OnceLock::new(),
            columns: OnceLock::new(),
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> SearchError {
        SearchError::store(&self.path, what, e)
    }

    /// Opens the database now (a reader then keeps it while a newer build removes its
    /// generation).
    pub fn open(&self) -> Result<()> {
        self.db().map(|_| ())
    }

    fn db(&self) -> Result<&ReadOnlyDatabase> {
        lazy(&self.db, || {
            self.guarded(|| {
                ReadOnlyDatabase::open(&self.path).map_err(|e| match e {
                    redb::DatabaseError::Storage(redb::StorageError::Io(io))
                        if io.kind() == std::io::ErrorKind::NotFound =>
                    {
                        SearchError::io(&self.path, io)
                    }
                    other => self.damaged(&format!("redb: {other}")),
                })
            })
        })
    }

    /// Runs redb calls so that a panic inside redb (a damaged file) becomes an error.
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        catch_panics(f, |m| self.damaged(&format!("redb: {m}")))
    }

    fn damaged(&self, detail: &str) -> SearchError {
        SearchError::unreadable(&self.path, detail)
    }

    /// The payload of the value stored under `key` in `table`, its checksum checked.
    fn payload<'v>(&self, table: &str, key: &[u8], value: &'v [u8]) -> Result<&'v [u8]> {
        unseal(table, key, value).ok_or_else(|| {
            let key = match <[u8; 4]>::try_from(key) {
                Ok(k) => u32::from_le_bytes(k).to_string(),
                Err(_) => format!("`{}`", String::from_utf8_lossy(key)),
            };
            self.damaged(&format!("table {table}, key {key} fails its checksum"))
        })
    }

    fn meta(&self, key: &str) -> Result<Vec<u8>> {
        self.guarded(|| {
            let txn = self.db()?.begin_read().map_err(|e| self.err("read", e))?;
            let table = txn
                .open_table(META)
                .map_err(|e| self.err("table meta", e))?;
            let v = table
                .get(key)
                .map_err(|e| self.err("table meta", e))?
                .ok_or_else(|| self.err("table meta", format!("key `{key}` is missing")))?;
            Ok(self
                .payload(META.name(), key.as_bytes(), v.value())?
                .to_vec())
        })
    }

    /// The postcard value under `key` of the `meta` table.
    fn meta_decoded<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        postcard::from_bytes(&self.meta(key)?)
            .map_err(|e| self.err(&format!("table meta, key `{key}`"), e))
    }

    /// The neuron table (loaded on first use).
    pub fn neurons(&self) -> Result<&Arc<NeuronTable>> {
        lazy(&self.neurons, || {
            NeuronTable::decode(&self.meta("neurons")?, &self.meta("by_id")?)
                .map(Arc::new)
                .ok_or_else(|| self.err("table meta", "key `neurons` or `by_id` is malformed"))
        })
    }

    /// The id of a normalised token string, if any neuron has it.
    pub fn token_id(&self, token: &str) -> Result<Option<u32>> {
        let ids = lazy(&self.token_ids, || {
            Ok(self
                .vocab()?
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i as u32))
                .collect())
        })?;
        Ok(ids.get(token).copied())
    }

    /// The lengths of the sorted runs of the tantivy segment (loaded on first use).
    pub fn runs(&self) -> Result<&Arc<Vec<u32>>> {
        lazy(&self.runs, || self.meta_decoded("runs").map(Arc::new))
    }

    /// F1 and layer by ordinal (made from the neuron table on first use).
    pub fn columns(&self) -> Result<&Arc<NeuronColumns>> {
        lazy(&self.columns, || {
            let t = self.neurons()?;
            Ok(Arc::new(NeuronColumns {
                f1: t.records.iter().map(|r| r.f1).collect(),
                layer: t.records.iter().map(|r| r.id.layer).collect(),
            }))
        })
    }

    /// The normalised token strings by id (loaded on first use).
    pub fn vocab(&self) -> Result<&[String]> {
        Ok(lazy(&self.vocab, || self.meta_decoded("vocab"))?)
    }

    /// The distinct layers of the indexed neurons, ascending (loaded on first use).
    pub fn layers(&self) -> Result<&[u16]> {
        Ok(lazy(&self.layers, || self.meta_decoded("layers"))?)
    }

    /// Runs `f` on `table` in a read transaction, guarded (see [`Store::guarded`]).
    fn with_table<R>(
        &self,
        table: TableDefinition<u32, &[u8]>,
        f: impl FnOnce(&ReadOnlyTable<u32, &'static [u8]>, &str) -> Result<R>,
    ) -> Result<R> {
        let name = table.name();
        self.guarded(|| {
            let txn = self.db()?.begin_read().map_err(|e| self.err("read", e))?;
            let t = txn
                .open_table(table)
                .map_err(|e| self.err(&format!("table {name}"), e))?;
            f(&t, name)
        })
    }

    /// `f` of the checked payload stored under `key` in `t` (named `name`), if any.
    fn with_value<R>(
        &self,
        t: &ReadOnlyTable<u32, &'static [u8]>,
        name: &str,
        key: u32,
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<Option<R>> {
        match t
            .get(key)
            .map_err(|e| self.err(&format!("table {name}"), e))?
        {
            Some(v) => f(self.payload(name, &key.to_le_bytes(), v.value())?).map(Some),
            None => Ok(None),
        }
    }

    /// The bitmaps stored under `keys` in `table` (empty where absent).
    pub fn bitmaps(
        &self,
        table: TableDefinition<u32, &[u8]>,
        keys: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<RoaringBitmap>> {
        self.with_table(table, |t, name| {
            keys.into_iter()
                .map(|k| {
                    let bitmap = self.with_value(t, name, k, |b| {
                        RoaringBitmap::deserialize_unchecked_from(b)
                            .map_err(|e| self.err(&format!("table {name}, key {k}"), e))
                    })?;
                    Ok(bitmap.unwrap_or_default())
                })
                .collect()
        })
    }

    /// Calls `f` with every value of the bitmaps stored under `keys` in `table` (read in
    /// place, see `postings`); the bitmaps one after the other, each ascending.
    pub fn for_each_value(
        &self,
        table: TableDefinition<u32, &[u8]>,
        keys: impl IntoIterator<Item = u32>,
        mut f: impl FnMut(u32),
    ) -> Result<()> {
        self.with_table(table, |t, name| {
            for k in keys {
                self.with_value(t, name, k, |b| {
                    for_each(b, &mut f).ok_or_else(|| {
                        self.err(&format!("table {name}, key {k}"), "malformed bitmap")
                    })
                })?;
            }
            Ok(())
        })
    }

    /// Reads every value of every table and checks its checksum: how many there are, or
    /// an error naming the first that fails.
    pub fn verify(&self) -> Result<u64> {
        let mut n = self.guarded(|| {
            let txn = self.db()?.begin_read().map_err(|e| self.err("read", e))?;
            let meta = txn
                .open_table(META)
                .map_err(|e| self.err("table meta", e))?;
            let mut n = 0;
            for row in meta.iter().map_err(|e| self.err("table meta", e))? {
                let (k, v) = row.map_err(|e| self.err("table meta", e))?;
                self.payload(META.name(), k.value().as_bytes(), v.value())?;
                n += 1;
            }
            Ok(n)
        })?;
        for table in [TOKEN_ACT, TOKEN_CTX, NEURON_ACT, NEURON_CTX] {
            n += self.with_table(table, |t, name| {
                let mut n = 0;
                for row in t
                    .iter()
                    .map_err(|e| self.err(&format!("table {name}"), e))?
                {
                    let (k, v) = row.map_err(|e| self.err(&format!("table {name}"), e))?;
                    self.payload(name, &k.value().to_le_bytes(), v.value())?;
                    n += 1;
                }
                Ok(n)
            })?;
        }
        Ok(n)
    }

    /// Every bitmap of `table`, indexed by key (`len` entries).
    pub fn all_bitmaps(
        &self,
        table: TableDefinition<u32, &[u8]>,
        len: usize,
    ) -> Result<Vec<RoaringBitmap>> {
        self.with_table(table, |t, name| {
            let mut out = vec![RoaringBitmap::new(); len];
            for entry in t
                .iter()
                .map_err(|e| self.err(&format!("table {name}"), e))?
            {
                let (k, v) = entry.map_err(|e| self.err(&format!("table {name}"), e))?;
                let key = k.value();
                let bitmap = self.payload(name, &key.to_le_bytes(), v.value())?;
                let k = key as usize;
                if k >= len {
                    return Err(self.err(&format!("table {name}"), format!("key {k} out of range")));
                }
                out[k] = RoaringBitmap::deserialize_from(bitmap)
                    .map_err(|e| self.err(&format!("table {name}, key {k}"), e))?;
            }
            Ok(out)
        })
    }
}
