//! Query hits as Python data, built directly with pyo3 rather than through serde (a
//! hit's paths are many short strings: 10,000 hits hold about 650,000).
//!
//! A path is a tuple of strings: immutable, hashable, and, holding only strings, never
//! part of a reference cycle, so it is taken off the cyclic garbage collector's lists as
//! it is made (as CPython does itself for such tuples, at their first collection).
//! Lists instead cost a collector pass over every one of them at the caller's next
//! allocations, which took as long as making them. Each token is a new Python string
//! (CPython shares the one-character ones, `*` among them): looking up a shared one in
//! a Rust hash map was measured no faster. The collector is paused while the hits are
//! built: it would otherwise rescan the growing young lists again and again.
//!
//! [`hits_to_python`] holds what [`crate::to_python`] would give, paths as tuples: a
//! list of dicts with the keys of `schema/query-result.schema.json`;
//! [`hits_to_columns`] is the same data by column, for a DataFrame.

use n2g_index::search::Hit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

/// `hits` as a list of dicts (`neuron`, `layer`, `index`, `score`, `f1`, `paths`), each
/// path a tuple of strings.
pub fn hits_to_python<'py>(py: Python<'py>, hits: &[Hit]) -> PyResult<Bound<'py, PyAny>> {
    with_gc_paused(py, || {
        let out = PyList::empty(py);
        for h in hits {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "neuron"), h.neuron.to_string())?;
            d.set_item(intern!(py, "layer"), h.layer)?;
            d.set_item(intern!(py, "index"), h.index)?;
            d.set_item(intern!(py, "score"), f64::from(h.score))?;
            d.set_item(intern!(py, "f1"), f64::from(h.f1))?;
            d.set_item(intern!(py, "paths"), paths(py, h)?)?;
            out.append(d)?;
        }
        Ok(out.into_any())
    })
}

/// `hits` as a dict of equal-length lists, one per key of [`hits_to_python`]'s dicts,
/// in that order.
pub fn hits_to_columns<'py>(py: Python<'py>, hits: &[Hit]) -> PyResult<Bound<'py, PyAny>> {
    with_gc_paused(py, || {
        let d = PyDict::new(py);
        let neurons = hits.iter().map(|h| h.neuron.to_string());
        d.set_item(intern!(py, "neuron"), PyList::new(py, neurons)?)?;
        d.set_item(
            intern!(py, "layer"),
            PyList::new(py, hits.iter().map(|h| h.layer))?,
        )?;
        d.set_item(
            intern!(py, "index"),
            PyList::new(py, hits.iter().map(|h| h.index))?,
        )?;
        d.set_item(
            intern!(py, "score"),
            PyList::new(py, hits.iter().map(|h| f64::from(h.score)))?,
        )?;
        d.set_item(
            intern!(py, "f1"),
            PyList::new(py, hits.iter().map(|h| f64::from(h.f1)))?,
        )?;
        let all = hits
            .iter()
            .map(|h| paths(py, h))
            .collect::<PyResult<Vec<_>>>()?;
        d.set_item(intern!(py, "paths"), PyList::new(py, all)?)?;
        Ok(d.into_any())
    })
}

/// Runs `build` with Python's cyclic garbage collector paused (when it was on).
fn with_gc_paused<'py>(
    py: Python<'py>,
    build: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let gc = py.import(intern!(py, "gc"))?;
    let was_enabled: bool = gc.call_method0(intern!(py, "isenabled"))?.extract()?;
    if was_enabled {
        gc.call_method0(intern!(py, "disable"))?;
    }
    let built = build();
    if was_enabled {
        gc.call_method0(intern!(py, "enable"))?;
    }
    built
}

/// The paths of `hit` as a list of tuples of strings.
fn paths<'py>(py: Python<'py>, hit: &Hit) -> PyResult<Bound<'py, PyList>> {
    let mut paths = Vec::with_capacity(hit.paths.len());
    for path in hit.paths.iter() {
        let tokens = path.iter().map(|token| PyString::new(py, token));
        let path = PyTuple::new(py, tokens)?;
        // SAFETY: `path` is a live tuple just made, so a GC-tracked object; untracking
        // it is sound (CPython's own `_PyTuple_MaybeUntrack` does the same), and a tuple
        // of strings can never be part of a reference cycle for the collector to break.
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(path.as_ptr().cast()) };
        paths.push(path);
    }
    PyList::new(py, paths)
}
