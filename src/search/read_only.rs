//! A tantivy directory that never writes: how readers open a generation.
//!
//! A generation is complete and immutable once `CURRENT` names it, so readers need
//! neither tantivy's locks (`.tantivy-meta.lock`, which tantivy creates and locks
//! exclusively on every open) nor its list of managed files (`.managed.json`, used only
//! to delete files). This wrapper serves reads from an [`MmapDirectory`], answers
//! locks with a no-op, does without `.managed.json` when it cannot be read and refuses
//! every write, so any number
//! of readers open an index at once, on a read-only file system or another user's.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};

/// tantivy's list of managed files, which readers do not need.
const MANAGED_FILE: &str = ".managed.json";

/// A read-only view of a tantivy folder.
#[derive(Clone, Debug)]
pub(crate) struct ReadOnlyDirectory {
    inner: MmapDirectory,
}

impl ReadOnlyDirectory {
    /// Opens the folder `dir` for reading.
    pub fn open(dir: &Path) -> tantivy::Result<Self> {
        let inner = MmapDirectory::open(dir).map_err(|e| {
            tantivy::TantivyError::SystemError(format!("cannot open {}: {e}", dir.display()))
        })?;
        Ok(ReadOnlyDirectory { inner })
    }
}

fn read_only(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: the search index is open read-only", path.display()),
    )
}

impl Directory for ReadOnlyDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        Err(DeleteError::IoError {
            io_error: Arc::new(read_only(path)),
            filepath: path.to_path_buf(),
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        Err(OpenWriteError::IoError {
            io_error: Arc::new(read_only(path)),
            filepath: path.to_path_buf(),
        })
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        match self.inner.atomic_read(path) {
            // Readers do not need the list; one they cannot read (written owner-only
            // by an older build) is as good as none.
            Err(_) if path == Path::new(MANAGED_FILE) => {
                Err(OpenReadError::FileDoesNotExist(PathBuf::from(MANAGED_FILE)))
            }
            r => r,
        }
    }

    fn atomic_write(&self, path: &Path, _data: &[u8]) -> io::Result<()> {
        Err(read_only(path))
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        // The generation never changes, so readers need no lock.
        Ok(DirectoryLock::from(Box::new(())))
    }

    fn watch(&self, _watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(WatchHandle::empty())
    }
}
