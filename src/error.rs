//! The crate's error type: every variant names the file, field or value at fault.

use std::path::PathBuf;

/// Errors of the n2g-index library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The default model or corpus has not been fetched yet.
    #[error("{what} not found at {path}: run `scripts/setup` to fetch the defaults (or pass --model/--corpus)")]
    MissingDefault {
        /// What is missing ("default model", "default corpus").
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A model file is malformed, truncated or inconsistent.
    #[error("{path}: {message}")]
    BadModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The model's architecture is not one that n2g-index runs.
    #[error("{path}: unsupported architecture `{found}` (supported: {supported})")]
    UnsupportedArchitecture {
        /// The model file or folder.
        path: PathBuf,
        /// The architecture it declares.
        found: String,
        /// The supported architectures, comma-separated.
        supported: &'static str,
    },
    /// The tokenizer could not be built or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A request that does not fit the model (layer out of range, empty batch, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The store (redb database) could not be opened, read or written.
    #[error("{path}: {message}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Another process writes the index (only one writer at a time).
    #[error("{path}: the index is in use by another process ({holder}); wait for it to finish or choose another --index")]
    Locked {
        /// The lock or database file.
        path: PathBuf,
        /// What holds it (e.g. `n2g-index build, pid 1234`).
        holder: String,
    },
    /// An index written by another format version or another run configuration.
    #[error("{path}: {message}")]
    Incompatible {
        /// The database file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// An error raised by the tensor library.
    #[error("tensor runtime: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result type of the n2g-index library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::BadModelFile`] for `path`.
    pub fn bad_model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::BadModelFile {
            path: path.into(),
            message: message.into(),
        }
    }
}
