//! Opening a store: read-only for readers, with the writer lock for writers (see
//! `docs/CONCURRENCY.md`).

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, ReadOnlyDatabase};

use super::lock::{Gate, WriterLock, GATE_FILE, WRITER_LOCK_FILE};
use super::{catch_panics, damaged, Access, Store, FORMAT_VERSION, KEY_FORMAT, STORE_FILE};
use crate::error::{Error, Result};

/// How long a reader waits for a store held exclusively by a process that does not
/// use the gate (a writer of an older version); a writer waits ten times as long for
/// the readers that have the store open.
const READER_PATIENCE: Duration = Duration::from_secs(30);

impl Store {
    /// Opens the store of `index_dir` for writing (as `build`), creating the folder and
    /// database when missing. Takes the folder's writer lock (a second writer is refused
    /// naming the first). Refuses a database of another format version, an empty
    /// (0-byte) `store.redb`, and a folder with other files that holds no store (see
    /// [`Store::open_for_build`] to allow that).
    pub fn open_or_create(index_dir: &Path) -> Result<Store> {
        Self::open_for_build(index_dir, false)
    }

    /// [`open_or_create`](Self::open_or_create); with `force`, also into a non-empty
    /// folder that is not an index (its files are left alone) or over an empty
    /// `store.redb`.
    pub fn open_for_build(index_dir: &Path, force: bool) -> Result<Store> {
        check_build_target(index_dir, force)?;
        std::fs::create_dir_all(index_dir).map_err(|e| Error::io(index_dir, e))?;
        let lock = WriterLock::acquire(index_dir, "build")?;
        let store = Store {
            access: Access::Write { _lock: lock },
            dir: index_dir.to_path_buf(),
            path: index_dir.join(STORE_FILE),
        };
        store.guarded(|| store.init_or_check_format())?;
        Ok(store)
    }

    /// Opens an existing store read-only: [`open_read_only`](Self::open_read_only).
    pub fn open(index_dir: &Path) -> Result<Store> {
        Self::open_read_only(index_dir)
    }

    /// Opens an existing store read-only, with a shared lock: any number of readers
    /// open it at once and beside a writer, and nothing in the folder is written (it
    /// may be on a read-only file system or another user's). The store is a consistent
    /// view until dropped; a writer's next commit waits for it, so long-lived readers
    /// should reopen per request.
    pub fn open_read_only(index_dir: &Path) -> Result<Store> {
        let path = index_dir.join(STORE_FILE);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Store {
                    path,
                    message: "no index here: build one with `n2g-index build --index DIR`".into(),
                })
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if meta.len() == 0 {
            return Err(Error::Store {
                path,
                message: "the file is empty (0 bytes): not an n2g-index store".into(),
            });
        }
        let db = {
            let _gate = Gate::shared(index_dir);
            let started = Instant::now();
            loop {
                let r = catch_panics(
                    || ReadOnlyDatabase::open(&path).map_err(|e| db_error(&path, e)),
                    |m| damaged(&path, &m),
                );
                match r {
                    Err(Error::Locked { .. }) if started.elapsed() < READER_PATIENCE => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(Error::Locked { path, .. }) => {
                        return Err(Error::Locked {
                            holder: lock_holder(index_dir),
                            path,
                        })
                    }
                    r => break r?,
                }
            }
        };
        let store = Store {
            access: Access::Read(db),
            dir: index_dir.to_path_buf(),
            path,
        };
        match store.get_meta::<u32>(KEY_FORMAT)? {
            Some(v) if v == FORMAT_VERSION => Ok(store),
            Some(v) => Err(store.incompatible(format!(
                "written by format version {v}; this n2g-index reads version {FORMAT_VERSION}: rebuild the index"
            ))),
            None => Err(store.incompatible("not an n2g-index store (no format version)".into())),
        }
    }

    /// Opens the database for one transaction of the writer: the exclusive gate first
    /// (new readers wait), then the database once the readers that have it open are
    /// done.
    pub(super) fn open_writer(&self) -> Result<(Gate, Database)> {
        let gate = Gate::exclusive(&self.dir)?;
        let started = Instant::now();
        loop {
            let r = catch_panics(
                || Database::create(&self.path).map_err(|e| db_error(&self.path, e)),
                |m| damaged(&self.path, &m),
            );
            match r {
                Err(Error::Locked { .. }) if started.elapsed() < READER_PATIENCE * 10 => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(Error::Locked { path, .. }) => {
                    return Err(Error::Locked {
                        path,
                        holder: "a reader that keeps the store open".into(),
                    })
                }
                r => return r.map(|db| (gate, db)),
            }
        }
    }
}

/// The files a build may find in an index folder (see `schema/STORE.md`).
const INDEX_FILES: [&str; 4] = [STORE_FILE, WRITER_LOCK_FILE, GATE_FILE, "search"];

/// Refuses to build into a folder that holds other files but no store (unless
/// `force`), and over an empty `store.redb`, which is not a store.
fn check_build_target(index_dir: &Path, force: bool) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(index_dir) else {
        return Ok(()); // missing (created next) or not a folder (creating it says so)
    };
    let store = index_dir.join(STORE_FILE);
    let store_len = std::fs::metadata(&store).map(|m| m.len()).ok();
    if store_len.is_some_and(|n| n > 0) || force {
        return Ok(());
    }
    if store_len == Some(0) {
        return Err(Error::Store {
            path: store,
            message: "the file is empty (0 bytes), not an n2g-index store; remove it or pass --force to build over it".into(),
        });
    }
    let mut others: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !INDEX_FILES.contains(&n.as_str()))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    let more = others.len().saturating_sub(3);
    others.truncate(3);
    Err(Error::Store {
        path: index_dir.into(),
        message: format!(
            "the folder is not empty and is not an n2g-index index (it holds {}{}); choose a new or empty --index folder, or pass --force to build into it",
            others.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ),
    })
}

/// What the writer lock file of `index_dir` says holds it.
fn lock_holder(index_dir: &Path) -> String {
    match std::fs::read_to_string(index_dir.join(WRITER_LOCK_FILE)) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => "another process".into(),
    }
}

fn db_error(path: &Path, e: redb::DatabaseError) -> Error {
    use redb::{DatabaseError, StorageError};
    match e {
        DatabaseError::DatabaseAlreadyOpen => Error::Locked {
            path: path.into(),
            holder: "another process".into(),
        },
        DatabaseError::RepairAborted => Error::Store {
            path: path.into(),
            message: "a build writing this store stopped mid-write (killed or crashed); run the same build again to resume it, which repairs the store".into(),
        },
        DatabaseError::Storage(StorageError::Corrupted(m)) => damaged(path, &m),
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            damaged(path, "its header is not a valid redb header")
        }
        DatabaseError::Storage(StorageError::Io(io)) => Error::io(path, io),
        other => Error::Store {
            path: path.into(),
            message: format!("cannot open the store: {other}"),
        },
    }
}
