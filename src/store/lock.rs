//! File locks of an index folder (see `docs/CONCURRENCY.md`).
//!
//! - `LOCK`: held exclusively by the one process that writes the index (`build`,
//!   `reindex`) for as long as it writes; it holds a line naming that process, so a
//!   second writer is refused with a message saying who writes.
//! - `store.gate`: a writer holds it exclusively while it opens `store.redb` for one
//!   transaction; readers hold it shared only while they open the store. New readers
//!   therefore wait (milliseconds) while a writer commits, and a writer is never
//!   starved by a stream of readers. Readers open the gate read-only, so an index on a
//!   read-only file system or owned by another user still answers them.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The writer lock file inside an index folder.
pub const WRITER_LOCK_FILE: &str = "LOCK";

/// The gate file inside an index folder.
pub const GATE_FILE: &str = "store.gate";

/// The writer lock of an index folder, held until dropped.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of `index_dir` (created when missing) for the command
    /// `what` (e.g. "build"), or refuses with [`Error::Locked`] naming the process that
    /// holds it.
    pub fn acquire(index_dir: &Path, what: &str) -> Result<WriterLock> {
        let path = index_dir.join(WRITER_LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    h => h.to_string(),
                };
                return Err(Error::Locked { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let line = format!("n2g-index {what}, pid {}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.write_all(line.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        Ok(WriterLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A held gate (shared or exclusive); released when dropped.
pub(crate) struct Gate {
    _file: Option<File>,
}

impl Gate {
    /// The shared gate of a reader: waits while a writer commits. An index without a
    /// gate file (or whose gate cannot be opened) is read without one.
    pub fn shared(index_dir: &Path) -> Gate {
        let file = File::open(index_dir.join(GATE_FILE))
            .ok()
            .filter(|f| f.lock_shared().is_ok());
        Gate { _file: file }
    }

    /// The exclusive gate of a writer (the file is created when missing).
    pub fn exclusive(index_dir: &Path) -> Result<Gate> {
        let path = index_dir.join(GATE_FILE);
        let file = open_lock_file(&path)?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(Gate { _file: Some(file) })
    }
}

/// Opens a lock file for reading and writing, created when missing, its bytes kept.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
