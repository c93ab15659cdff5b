//! The crate's error type: every variant names the file, field or value at fault.

use std::path::PathBuf;

/// Errors of the n2g-index library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The default model or corpus has not been fetched yet.
    #[error(
        "{what} not found at {path}: run `scripts/setup` to fetch the defaults, or give a path"
    )]
    MissingDefault {
        /// What is missing ("default model", "default corpus").
        what: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (part of this error's message, so not its source).
        error: std::io::Error,
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
    /// An option has a value that cannot work.
    #[error("{field}: {message}")]
    InvalidOption {
        /// The option's field name (the CLI shows it as its flag).
        field: &'static str,
        /// What is wrong with the value.
        message: String,
    },
    /// A neuron that the index does not cover.
    #[error("neuron {neuron} is not in this index ({covered})")]
    UnknownNeuron {
        /// The neuron asked for.
        neuron: crate::NeuronId,
        /// What the index covers.
        covered: String,
    },
    /// The search index failed (a bad query, a missing or damaged search index, ...).
    #[error(transparent)]
    Search(#[from] crate::search::SearchError),
    /// An error raised by the tensor library.
    #[error("tensor runtime: {0}")]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(e)
    }
}

/// Result type of the n2g-index library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
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
