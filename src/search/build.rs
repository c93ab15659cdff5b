//! Writing a search index: a fresh generation folder, then an atomic switch of
//! `CURRENT`, under a lock so that two builds into one folder never interleave.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use redb::{Database, TableDefinition, TableHandle};
use roaring::RoaringBitmap;

use super::runs::RunWriter;
use super::store::{NeuronRecord, NeuronTable, META, NEURON_ACT, NEURON_CTX, TOKEN_ACT, TOKEN_CTX};
use super::{NeuronPaths, Result, SearchError, FORMAT};
use crate::n2g::TokenDictionary;
use crate::store::{seal, CHECKSUM_BYTES};

/// Holds `LOCK` of a search folder while a build runs (released on drop).
struct Lock {
    _file: File,
}

fn lock(dir: &Path) -> Result<Lock> {
    let path = dir.join("LOCK");
    let file = File::create(&path).map_err(|e| SearchError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(SearchError::Locked { path }),
        Err(fs::TryLockError::Error(e)) => Err(SearchError::io(&path, e)),
    }
}

/// Builds a fresh index into `dir` (runs of about `chunk_paths` paths).
pub(crate) fn build(
    dir: &Path,
    neurons: impl IntoIterator<Item = NeuronPaths>,
    chunk_paths: usize,
) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
    let lock = lock(dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let generation = format!("gen-{stamp:x}-{}", std::process::id());
    let tmp = dir.join(format!("{generation}.tmp"));
    let result = write_generation(&tmp, neurons, chunk_paths);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let live = dir.join(&generation);
    fs::rename(&tmp, &live).map_err(|e| SearchError::io(&live, e))?;
    let current_tmp = dir.join("CURRENT.tmp");
    fs::write(&current_tmp, format!("{generation}\n"))
        .map_err(|e| SearchError::io(&current_tmp, e))?;
    let current = dir.join("CURRENT");
    fs::rename(&current_tmp, &current).map_err(|e| SearchError::io(&current, e))?;
    // Older generations (and leftovers of crashed builds) go; open readers keep their
    // files on Unix, where an unlinked file lives while it is open.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("gen-") && name != generation {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    drop(lock);
    Ok(())
}

fn write_generation(
    tmp: &Path,
    neurons: impl IntoIterator<Item = NeuronPaths>,
    chunk_paths: usize,
) -> Result<()> {
    let tantivy_dir = tmp.join("tantivy");
    fs::create_dir_all(&tantivy_dir).map_err(|e| SearchError::io(tmp, e))?;
    let mut runs_writer = RunWriter::new(&tantivy_dir, &tmp.join("chunks"), chunk_paths)?;

    let db_path = tmp.join("search.redb");
    let st = |what: &str| {
        let p = db_path.clone();
        let what = what.to_string();
        move |e: redb::Error| SearchError::store(&p, &what, e)
    };
    let db = Database::create(&db_path).map_err(|e| st("create")(e.into()))?;
    let txn = db.begin_write().map_err(|e| st("write")(e.into()))?;
    let mut dict = TokenDictionary::new();
    let mut post_act: Vec<RoaringBitmap> = Vec::new();
    let mut post_ctx: Vec<RoaringBitmap> = Vec::new();
    let mut records: Vec<NeuronRecord> = Vec::new();
    let mut seen = HashSet::new();
    {
        let mut neuron_act = txn
            .open_table(NEURON_ACT)
            .map_err(|e| st("table neuron_act")(e.into()))?;
        let mut neuron_ctx = txn
            .open_table(NEURON_CTX)
            .map_err(|e| st("table neuron_ctx")(e.into()))?;
        let mut ids = Vec::new();
        for n in neurons {
            if !seen.insert(n.neuron) {
                return Err(SearchError::Input(format!(
                    "neuron {} appears twice",
                    n.neuron
                )));
            }
            if !n.f1.is_finite() {
                return Err(SearchError::Input(format!(
                    "neuron {}: f1 is {}",
                    n.neuron, n.f1
                )));
            }
            let ordinal = records.len() as u32;
            let mut act = RoaringBitmap::new();
            let mut ctx = RoaringBitmap::new();
            ids.clear();
            for (i, p) in n.paths.iter().enumerate() {
                let at = || format!("neuron {}, path {i}", n.neuron);
                let Some(Some(first)) = p.tokens.first() else {
                    return Err(SearchError::Input(format!(
                        "{}: the activating token (tokens[0]) is missing or IGNORE",
                        at()
                    )));
                };
                if !p.activation.is_finite() {
                    return Err(SearchError::Input(format!(
                        "{}: activation is {}",
                        at(),
                        p.activation
                    )));
                }
                let id = dict.intern(first);
                act.insert(id);
                ids.push(id);
                for t in p.tokens[1..].iter().flatten() {
                    let id = dict.intern(t);
                    ctx.insert(id);
                    ids.push(id);
                }
            }
            runs_writer.add(ordinal, &n, &ids, dict.strings())?;
            for (set, post) in [(&act, &mut post_act), (&ctx, &mut post_ctx)] {
                for t in set {
                    if post.len() <= t as usize {
                        post.resize(t as usize + 1, RoaringBitmap::new());
                    }
                    post[t as usize].insert(ordinal);
                }
            }
            for (set, table, def) in [
                (&act, &mut neuron_act, NEURON_ACT),
                (&ctx, &mut neuron_ctx, NEURON_CTX),
            ] {
                let mut bytes = Vec::with_capacity(set.serialized_size() + CHECKSUM_BYTES);
                set.serialize_into(&mut bytes)
                    .map_err(|e| SearchError::io(&db_path, e))?;
                let value = seal(def.name(), &ordinal.to_le_bytes(), bytes);
                table
                    .insert(ordinal, value.as_slice())
                    .map_err(|e| st("insert")(e.into()))?;
            }
            records.push(NeuronRecord {
                id: n.neuron,
                f1: n.f1,
                n_act: act.len() as u32,
                n_ctx: ctx.len() as u32,
            });
        }
        for (posts, def) in [(&post_act, TOKEN_ACT), (&post_ctx, TOKEN_CTX)] {
            write_bitmaps(&txn, def, posts).map_err(|e| st("postings")(e))?;
        }
        let runs = runs_writer.finish()?;
        let (recs, by_id) = NeuronTable::encode(&records);
        let vocab = postcard::to_allocvec(dict.strings())
            .map_err(|e| SearchError::store(&db_path, "vocab", e))?;
        let layers: std::collections::BTreeSet<u16> = records.iter().map(|r| r.id.layer).collect();
        let layers = postcard::to_allocvec(&layers.into_iter().collect::<Vec<u16>>())
            .map_err(|e| SearchError::store(&db_path, "layers", e))?;
        let runs =
            postcard::to_allocvec(&runs).map_err(|e| SearchError::store(&db_path, "runs", e))?;
        let mut meta = txn
            .open_table(META)
            .map_err(|e| st("table meta")(e.into()))?;
        for (k, v) in [
            ("neurons", &recs),
            ("by_id", &by_id),
            ("vocab", &vocab),
            ("layers", &layers),
            ("runs", &runs),
        ] {
            let value = seal(META.name(), k.as_bytes(), v.clone());
            meta.insert(k, value.as_slice())
                .map_err(|e| st("table meta")(e.into()))?;
        }
    }
    txn.commit().map_err(|e| st("commit")(e.into()))?;
    drop(db);
    let format = tmp.join("FORMAT");
    fs::write(&format, format!("{FORMAT}\n")).map_err(|e| SearchError::io(&format, e))?;
    share_like(&format, &tmp.join("tantivy"))
}

/// Gives every file of `dir` the permissions of `model` (a file created the ordinary
/// way): tantivy writes `meta.json` and `.managed.json` through temporary files, which
/// are created readable by their owner only, so other users could not read the index.
fn share_like(model: &Path, dir: &Path) -> Result<()> {
    let permissions = fs::metadata(model)
        .map_err(|e| SearchError::io(model, e))?
        .permissions();
    for entry in fs::read_dir(dir).map_err(|e| SearchError::io(dir, e))? {
        let path = entry.map_err(|e| SearchError::io(dir, e))?.path();
        if path.is_file() {
            fs::set_permissions(&path, permissions.clone())
                .map_err(|e| SearchError::io(&path, e))?;
        }
    }
    Ok(())
}

fn write_bitmaps(
    txn: &redb::WriteTransaction,
    def: TableDefinition<u32, &[u8]>,
    bitmaps: &[RoaringBitmap],
) -> std::result::Result<(), redb::Error> {
    let mut table = txn.open_table(def)?;
    for (k, b) in bitmaps.iter().enumerate() {
        if b.is_empty() {
            continue;
        }
        let k = k as u32;
        let mut bytes = Vec::with_capacity(b.serialized_size() + CHECKSUM_BYTES);
        b.serialize_into(&mut bytes)
            .expect("writing to a Vec cannot fail");
        let value = seal(def.name(), &k.to_le_bytes(), bytes);
        table.insert(k, value.as_slice())?;
    }
    Ok(())
}

/// Where a generation's parts are.
pub(crate) struct GenerationPaths {
    /// The generation folder.
    pub root: PathBuf,
}

impl GenerationPaths {
    /// The live generation of the search folder `dir`.
    pub fn current(dir: &Path) -> Result<Self> {
        let current = dir.join("CURRENT");
        let name = match fs::read_to_string(&current) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SearchError::Missing {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(SearchError::io(&current, e)),
        };
        Ok(GenerationPaths {
            root: dir.join(name),
        })
    }

    /// Checks the `FORMAT` file.
    pub fn check_format(&self) -> Result<()> {
        let path = self.root.join("FORMAT");
        let found = fs::read_to_string(&path).map_err(|e| SearchError::io(&path, e))?;
        if found.trim() != FORMAT {
            return Err(SearchError::Format {
                path,
                found: found.trim().to_string(),
                expected: FORMAT,
            });
        }
        Ok(())
    }
}
