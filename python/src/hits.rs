//! Query hits as Python data, built directly with pyo3 rather than through serde (a
//! hit's paths are many short strings: 10,000 hits hold about 650,000). The cyclic
//! garbage collector is paused while the lists are built: it would otherwise rescan the
//! growing young lists again and again (3 to 5 times the building's own cost). The
//! result equals what [`crate::to_python`] gives: a list of dicts with the keys of
//! `schema/query-result.schema.json`.

use n2g_index::search::Hit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

/// `hits` as a list of dicts (`neuron`, `layer`, `index`, `score`, `f1`, `paths`).
pub fn hits_to_python<'py>(py: Python<'py>, hits: &[Hit]) -> PyResult<Bound<'py, PyAny>> {
    let gc = py.import(intern!(py, "gc"))?;
    let was_enabled: bool = gc.call_method0(intern!(py, "isenabled"))?.extract()?;
    if was_enabled {
        gc.call_method0(intern!(py, "disable"))?;
    }
    let built = build(py, hits);
    if was_enabled {
        gc.call_method0(intern!(py, "enable"))?;
    }
    built
}

fn build<'py>(py: Python<'py>, hits: &[Hit]) -> PyResult<Bound<'py, PyAny>> {
    let out = PyList::empty(py);
    for h in hits {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "neuron"), h.neuron.to_string())?;
        d.set_item(intern!(py, "layer"), h.layer)?;
        d.set_item(intern!(py, "index"), h.index)?;
        d.set_item(intern!(py, "score"), f64::from(h.score))?;
        d.set_item(intern!(py, "f1"), f64::from(h.f1))?;
        let mut paths = Vec::with_capacity(h.paths.len());
        for path in &h.paths {
            let tokens = path.iter().map(|token| PyString::new(py, token));
            paths.push(PyList::new(py, tokens)?);
        }
        d.set_item(intern!(py, "paths"), PyList::new(py, paths)?)?;
        out.append(d)?;
    }
    Ok(out.into_any())
}
