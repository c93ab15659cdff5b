//! The library's errors as the Python exceptions of `n2g_index._errors`: each carries
//! the engine's message, and the attributes that say what is at fault (the file, the
//! query position, the option, the neuron).

use std::path::Path;

use n2g_index::search::SearchError;
use n2g_index::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The Python exception class `name` of `n2g_index._errors`, raised with `message`
/// and the attributes `attrs`.
fn raise(name: &str, message: String, attrs: &[(&str, Option<String>)]) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let class = py.import("n2g_index._errors")?.getattr(name)?;
            let kwargs = PyDict::new(py);
            for (key, value) in attrs {
                kwargs.set_item(key, value)?;
            }
            let value = class.call((message.clone(),), Some(&kwargs))?;
            Ok(PyErr::from_value(value))
        };
        build().unwrap_or_else(|e| e)
    })
}

fn path_of(path: &Path) -> Option<String> {
    Some(path.display().to_string())
}

/// The Python exception for a library error.
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match &e {
        Error::UnknownNeuron { neuron, .. } => raise(
            "NeuronNotFoundError",
            message,
            &[("neuron", Some(neuron.to_string()))],
        ),
        Error::Store { path, .. } if !path.exists() => {
            raise("IndexNotFoundError", message, &[("path", path_of(path))])
        }
        Error::Store { path, .. } => {
            raise("IndexDamagedError", message, &[("path", path_of(path))])
        }
        Error::Incompatible { path, .. } => raise(
            "IncompatibleIndexError",
            message,
            &[("path", path_of(path))],
        ),
        Error::Locked { path, holder } => raise(
            "IndexLockedError",
            message,
            &[("path", path_of(path)), ("holder", Some(holder.clone()))],
        ),
        Error::InvalidOption { field, .. } => raise(
            "InvalidArgumentError",
            message,
            &[("field", Some(field.to_string()))],
        ),
        Error::InvalidRequest(_) => raise("InvalidArgumentError", message, &[]),
        Error::MissingDefault { path, .. } => {
            raise("MissingDataError", message, &[("path", path_of(path))])
        }
        Error::BadModelFile { path, .. } | Error::UnsupportedArchitecture { path, .. } => {
            raise("ModelError", message, &[("path", path_of(path))])
        }
        Error::Tokenizer(_) | Error::Candle(_) => raise("ModelError", message, &[]),
        Error::Io { path, .. } => raise("Error", message, &[("path", path_of(path))]),
        Error::Search(s) => search_to_py(s, message),
        _ => raise("Error", message, &[]),
    }
}

/// The Python exception for a search error.
fn search_to_py(e: &SearchError, message: String) -> PyErr {
    match e {
        SearchError::Query(p) => Python::attach(|py| {
            let build = || -> PyResult<PyErr> {
                let class = py.import("n2g_index._errors")?.getattr("QueryError")?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("query", &p.query)?;
                // The library counts bytes; Python indexes characters.
                let chars = p
                    .query
                    .get(..p.position)
                    .map_or(p.position, |s| s.chars().count());
                kwargs.set_item("position", chars)?;
                kwargs.set_item("reason", &p.message)?;
                Ok(PyErr::from_value(
                    class.call((message.clone(),), Some(&kwargs))?,
                ))
            };
            build().unwrap_or_else(|e| e)
        }),
        SearchError::UnknownNeuron(n) => raise(
            "NeuronNotFoundError",
            message,
            &[("neuron", Some(n.to_string()))],
        ),
        SearchError::Missing { path } => {
            raise("IndexIncompleteError", message, &[("path", path_of(path))])
        }
        SearchError::Format { path, .. } => raise(
            "IncompatibleIndexError",
            message,
            &[("path", path_of(path))],
        ),
        SearchError::Locked { path } => {
            raise("IndexLockedError", message, &[("path", path_of(path))])
        }
        SearchError::Unreadable { path, .. }
        | SearchError::Tantivy { path, .. }
        | SearchError::Store { path, .. } => {
            raise("IndexDamagedError", message, &[("path", path_of(path))])
        }
        SearchError::Io { path, .. } => raise("Error", message, &[("path", path_of(path))]),
        SearchError::InvalidRequest(_) | SearchError::Input(_) => {
            raise("InvalidArgumentError", message, &[])
        }
        _ => raise("Error", message, &[]),
    }
}

/// An [`InvalidArgumentError`](to_py) for the argument `field`.
pub fn invalid_argument(field: &str, message: String) -> PyErr {
    raise(
        "InvalidArgumentError",
        message,
        &[("field", Some(field.to_string()))],
    )
}

/// The index folder `path` was closed with `Index.close()`.
pub fn closed(path: &Path) -> PyErr {
    raise(
        "Error",
        format!("{}: the index is closed", path.display()),
        &[("path", path_of(path))],
    )
}

/// A conversion of a view to Python objects failed (never expected: the views are
/// plain data).
pub fn conversion(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!("converting a result to Python: {e}"))
}
