//! Errors of the search layer; every variant names the file, field or value at fault.

use std::path::PathBuf;

use super::query::ParseError;
use crate::NeuronId;

/// Errors of the search index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A query does not parse.
    #[error(transparent)]
    Query(#[from] ParseError),
    /// A file or folder could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error (part of this error's message, so not its source).
        error: std::io::Error,
    },
    /// There is no search index in the folder.
    #[error("no search index at {path}: it is built from the stored graphs (reindex)")]
    Missing {
        /// The search folder.
        path: PathBuf,
    },
    /// The index was written by another format version.
    #[error("{path}: search index format `{found}`, this build reads `{expected}`: rebuild it from the stored graphs (reindex)")]
    Format {
        /// The format file.
        path: PathBuf,
        /// What it says.
        found: String,
        /// What this build reads.
        expected: &'static str,
    },
    /// Another process is building into the same folder.
    #[error("{path}: another build is writing this search index (its lock is held); wait for it to finish")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The tantivy part of the index failed.
    #[error("{path}: tantivy: {message}")]
    Tantivy {
        /// The tantivy folder.
        path: PathBuf,
        /// The tantivy error.
        message: String,
    },
    /// The redb part of the index failed or is inconsistent.
    #[error("{path}: {message}")]
    Store {
        /// The redb file.
        path: PathBuf,
        /// What went wrong (table or key named).
        message: String,
    },
    /// A file of the search index cannot be read back (damaged, or changed by hand).
    #[error("{path}: the search index cannot be read ({detail}); rebuild it from the stored graphs (reindex)")]
    Unreadable {
        /// The file or folder.
        path: PathBuf,
        /// What failed, shortened.
        detail: String,
    },
    /// The neurons given to `build` are invalid.
    #[error("invalid search input: {0}")]
    Input(String),
    /// The neuron is not in the index.
    #[error("neuron {0} is not in the search index")]
    UnknownNeuron(NeuronId),
    /// A request argument is out of range.
    #[error("{0}")]
    InvalidRequest(String),
}

impl SearchError {
    /// Builds a [`SearchError::Io`].
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        SearchError::Io {
            path: path.into(),
            error,
        }
    }

    /// Builds a [`SearchError::Tantivy`].
    pub fn tantivy(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        SearchError::Tantivy {
            path: path.into(),
            message: e.to_string(),
        }
    }

    /// Builds a [`SearchError::Unreadable`]; `detail` is cut after its first line or 200
    /// characters (tantivy's messages can quote a whole file).
    pub fn unreadable(path: impl Into<PathBuf>, detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        let mut short: String = detail
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        if short.len() < detail.len() {
            short.push('…');
        }
        SearchError::Unreadable {
            path: path.into(),
            detail: short,
        }
    }

    /// Builds a [`SearchError::Store`].
    pub fn store(path: impl Into<PathBuf>, what: &str, e: impl std::fmt::Display) -> Self {
        SearchError::Store {
            path: path.into(),
            message: format!("{what}: {e}"),
        }
    }
}
