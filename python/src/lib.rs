//! `n2g_index._native`: the Python extension of n2g-index, a thin layer over the
//! library's face ([`n2g_index::Index`], [`n2g_index::Model`], [`n2g_index::Index::build`]).
//!
//! Every answer is a library view converted to plain Python data (dicts and lists with
//! the field names of the JSON schemas, NumPy arrays for activation tables); the
//! `n2g_index` Python package wraps them in typed classes. Long calls run without the
//! GIL.

mod errors;
mod hits;
mod progress;

use std::path::PathBuf;
use std::sync::RwLock;

use n2g_index::model::Hook;
use n2g_index::{BuildOptions, Index, LoadOptions, Model, NeuronId, Shard};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde::Serialize;

use errors::{closed, conversion, invalid_argument, to_py};
use progress::PyProgress;

/// A view as Python data (dicts, lists, numbers, strings), field names as in its JSON.
fn to_python<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(conversion)
}

/// A neuron given as `"L:N"` or as a `(layer, index)` tuple.
fn neuron_id(value: &Bound<'_, PyAny>) -> PyResult<NeuronId> {
    if let Ok(text) = value.extract::<String>() {
        return text.parse().map_err(|m| invalid_argument("neuron", m));
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        if let Ok((layer, index)) = tuple.extract::<(u16, u32)>() {
            return Ok(NeuronId { layer, index });
        }
    }
    Err(invalid_argument(
        "neuron",
        format!(
            "{}: a neuron is \"LAYER:INDEX\" or a (layer, index) tuple of non-negative ints",
            value.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ),
    ))
}

/// An opened index folder (the library's `Index`), until `close`.
#[pyclass(frozen, name = "Index", module = "n2g_index._native")]
struct PyIndex {
    /// The folder (kept for messages after `close`).
    dir: PathBuf,
    /// The open index; `None` once closed. Calls read it under the read lock, without
    /// the GIL; `close` takes the write lock.
    inner: RwLock<Option<Index>>,
}

impl PyIndex {
    fn wrap(inner: Index) -> Self {
        PyIndex {
            dir: inner.dir().to_path_buf(),
            inner: RwLock::new(Some(inner)),
        }
    }

    /// `f` on the open index, without the GIL.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Index) -> n2g_index::Result<T> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(|e| e.into_inner());
            guard.as_ref().map(f)
        });
        match result {
            Some(r) => r.map_err(to_py),
            None => Err(closed(&self.dir)),
        }
    }
}

#[pymethods]
impl PyIndex {
    /// Opens the index folder `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| Index::open(&path)).map_err(to_py)?;
        Ok(PyIndex::wrap(inner))
    }

    /// Closes the index: its files are released (other processes may then write it);
    /// later calls raise. Waits for calls in progress; closing twice does nothing.
    fn close(&self, py: Python<'_>) {
        let index = py.detach(|| {
            let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
            guard.take()
        });
        drop(index);
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// The index folder.
    #[getter]
    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Whether the index's windows start with the BOS token.
    fn bos(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |i| Ok(i.run().scan.bos))
    }

    /// The model file or folder the index was built with.
    fn model_path(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |i| Ok(i.run().model.path.clone()))
    }

    /// The units the index holds (MLP neurons or an SAE's latents), as a dict.
    fn units<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let units = self.with(py, |i| Ok(i.units().clone()))?;
        to_python(py, &units)
    }

    /// The neurons whose graphs match `query`, best first, as dicts (paths as tuples).
    fn query<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hits = self.with(py, |i| i.query(query, limit))?;
        hits::hits_to_python(py, &hits)
    }

    /// [`Self::query`] by column: a dict of equal-length lists (`neuron`, `layer`,
    /// `index`, `score`, `f1`, `paths`), what a DataFrame is made of.
    fn query_columns<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let hits = self.with(py, |i| i.query(query, limit))?;
        hits::hits_to_columns(py, &hits)
    }

    /// Seconds to convert the hits of `query` to Python, as `query` gives them or (with
    /// `columns`) as `query_columns` does: the median of `repeats` conversions of one
    /// library result, each object freed after its clock stops. What
    /// `benches/python_layer.py` reports as the Python layer's cost of a large result.
    fn _time_conversion(
        &self,
        py: Python<'_>,
        query: &str,
        limit: usize,
        repeats: usize,
        columns: bool,
    ) -> PyResult<f64> {
        let hits = self.with(py, |i| i.query(query, limit))?;
        let mut times = Vec::with_capacity(repeats.max(1));
        for _ in 0..repeats.max(1) {
            let clock = std::time::Instant::now();
            let built = if columns {
                hits::hits_to_columns(py, &hits)?
            } else {
                hits::hits_to_python(py, &hits)?
            };
            times.push(clock.elapsed().as_secs_f64());
            drop(built);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    /// Seconds per call of the library's own `Index::query` (no conversion to Python),
    /// the mean of `repeats` calls: what `benches/python_layer.py` compares with.
    fn _time_query(
        &self,
        py: Python<'_>,
        query: &str,
        limit: usize,
        repeats: usize,
    ) -> PyResult<f64> {
        self.with(py, |i| {
            let clock = std::time::Instant::now();
            for _ in 0..repeats.max(1) {
                std::hint::black_box(i.query(query, limit)?);
            }
            Ok(clock.elapsed().as_secs_f64() / repeats.max(1) as f64)
        })
    }

    /// The `top` neurons most similar to `neuron`, as dicts.
    fn similar<'py>(
        &self,
        py: Python<'py>,
        neuron: &Bound<'py, PyAny>,
        top: usize,
        threshold: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = neuron_id(neuron)?;
        let hits = self.with(py, |i| i.similar(id, top, threshold))?;
        to_python(py, &hits)
    }

    /// Every similar and subset pair at `threshold`, as dicts.
    fn similar_all<'py>(&self, py: Python<'py>, threshold: f64) -> PyResult<Bound<'py, PyAny>> {
        let pairs = self.with(py, |i| i.similar_all(threshold))?;
        to_python(py, &pairs)
    }

    /// Everything the index knows of `neuron`, with its first `examples` examples
    /// (all when `None`), as a dict.
    #[pyo3(signature = (neuron, examples=None))]
    fn neuron<'py>(
        &self,
        py: Python<'py>,
        neuron: &Bound<'py, PyAny>,
        examples: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = neuron_id(neuron)?;
        let view = self.with(py, |i| i.neuron(id, examples))?;
        to_python(py, &view)
    }

    /// The graph of `neuron` drawn as an SVG document (as `show --format svg` and the web
    /// page draw it), or `None` before the graph stage has reached it.
    fn graph_svg(&self, py: Python<'_>, neuron: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let id = neuron_id(neuron)?;
        self.with(py, |i| i.graph_svg(id))
    }

    /// What the index holds, as a dict.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let view = self.with(py, |i| i.info())?;
        to_python(py, &view)
    }

    /// What the graph of `neuron` predicts on `text` beside the neuron's activations
    /// from `model`, as a dict.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        model: &PyModel,
        neuron: &Bound<'py, PyAny>,
        text: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = neuron_id(neuron)?;
        let view = self.with(py, |i| i.predict(&model.inner, id, text))?;
        to_python(py, &view)
    }
}

/// A loaded model (the library's `Model`).
#[pyclass(frozen, name = "Model", module = "n2g_index._native")]
struct PyModel {
    inner: Model,
}

#[pymethods]
impl PyModel {
    /// Loads the GGUF file or Hugging Face folder `path` (the default model when
    /// `None`) on `device`; `literal_special` reads special tokens written in a text as
    /// their characters; `sae` (read at `hook`, `blocks.L.NAME`, when its file does not
    /// name one) makes the SAE's latents the model's units.
    #[new]
    #[pyo3(signature = (
        path=None, device="cpu", quantized=false, tokenizer=None, literal_special=false,
        sae=None, hook=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        device: &str,
        quantized: bool,
        tokenizer: Option<PathBuf>,
        literal_special: bool,
        sae: Option<PathBuf>,
        hook: Option<&str>,
    ) -> PyResult<Self> {
        let hook = hook.map(str::parse::<Hook>).transpose().map_err(to_py)?;
        let inner = py
            .detach(|| -> n2g_index::Result<Model> {
                let path = match path {
                    Some(p) => p,
                    None => n2g_index::default_model_path()?,
                };
                let options = LoadOptions {
                    device: device.parse()?,
                    quantized,
                    tokenizer,
                    literal_special,
                    sae,
                    hook,
                };
                Model::load(&path, &options)
            })
            .map_err(to_py)?;
        Ok(PyModel { inner })
    }

    /// What the model is (shape, special tokens, path), as a dict.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, self.inner.info())
    }

    /// The units (MLP neurons or SAE latents) this model's activations are, as a dict.
    fn units<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.units())
    }

    /// The unit activations of `layer` (for SAE latents: their hook's layer when `None`)
    /// on each token of `text`, as a dict whose `activations` is a float32 array
    /// `[tokens, units]`.
    #[pyo3(signature = (text, layer=None, neurons=None, bos=true))]
    fn activations<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        layer: Option<usize>,
        neurons: Option<&str>,
        bos: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (mut view, flat) = py
            .detach(|| -> n2g_index::Result<_> {
                let mut view = n2g_index::text_activations(&self.inner, text, layer, neurons, bos)?;
                // One contiguous buffer, moved into NumPy without a further copy.
                let rows = std::mem::take(&mut view.activations);
                Ok((view, rows.concat()))
            })
            .map_err(to_py)?;
        let shape = [view.ids.len(), view.neurons.len()];
        let table = PyArray1::from_vec(py, flat).reshape(shape)?;
        view.activations = Vec::new();
        let dict = to_python(py, &view)?.cast_into::<PyDict>()?;
        dict.set_item("activations", table)?;
        Ok(dict.into_any())
    }
}

/// Builds (or resumes) the index folder `index` and opens it; `progress` receives the
/// progress (see `n2g_index._progress`). Options left `None` take the library's
/// defaults.
#[pyfunction]
#[pyo3(signature = (
    index, model=None, corpus=None, layers=None, neurons=None, top_k=None, window=None,
    batch_size=None, checkpoint_every=None, bos=None, scan_only=None, device=None,
    quantized=None, literal_special=None, force=None, shard=None, sae=None, hook=None,
    max_density=None, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn build(
    py: Python<'_>,
    index: PathBuf,
    model: Option<PathBuf>,
    corpus: Option<Vec<PathBuf>>,
    layers: Option<String>,
    neurons: Option<String>,
    top_k: Option<usize>,
    window: Option<usize>,
    batch_size: Option<usize>,
    checkpoint_every: Option<usize>,
    bos: Option<bool>,
    scan_only: Option<bool>,
    device: Option<&str>,
    quantized: Option<bool>,
    literal_special: Option<bool>,
    force: Option<bool>,
    shard: Option<&str>,
    sae: Option<PathBuf>,
    hook: Option<&str>,
    max_density: Option<f64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyIndex> {
    let mut o = BuildOptions::new(index);
    o.model = model;
    o.corpus = corpus.unwrap_or_default();
    if let Some(v) = layers {
        o.layers = Some(v);
    }
    if let Some(v) = neurons {
        o.neurons = v;
    }
    if let Some(v) = top_k {
        o.top_k = v;
    }
    if let Some(v) = window {
        o.window = v;
    }
    if let Some(v) = batch_size {
        o.batch_size = v;
    }
    if let Some(v) = checkpoint_every {
        o.checkpoint_every = v;
    }
    if let Some(v) = bos {
        o.bos = v;
    }
    if let Some(v) = scan_only {
        o.scan_only = v;
    }
    if let Some(v) = device {
        o.load.device = v.parse().map_err(to_py)?;
    }
    if let Some(v) = quantized {
        o.load.quantized = v;
    }
    if let Some(v) = literal_special {
        o.load.literal_special = v;
    }
    if let Some(v) = force {
        o.force = v;
    }
    o.load.sae = sae;
    o.load.hook = hook.map(str::parse::<Hook>).transpose().map_err(to_py)?;
    o.max_density = max_density;
    if let Some(v) = shard {
        let shard = Shard::parse(v, o.batch.chunk_neurons).map_err(|message| {
            to_py(n2g_index::Error::InvalidOption {
                field: "shard",
                message,
            })
        })?;
        o.shard = Some(shard);
    }
    let mut watcher = PyProgress::new(progress);
    let result = py.detach(|| Index::build(&o, &mut watcher));
    let (index, _report) = result.map_err(to_py)?;
    if let Some(e) = watcher.into_error() {
        return Err(e);
    }
    Ok(PyIndex::wrap(index))
}

/// Joins the finished shard indexes `shards` into the index folder `into` and opens it
/// (see `Index::merge`).
#[pyfunction]
#[pyo3(signature = (shards, into, progress=None))]
fn merge(
    py: Python<'_>,
    shards: Vec<PathBuf>,
    into: PathBuf,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyIndex> {
    let mut watcher = PyProgress::new(progress);
    let result = py.detach(|| Index::merge(&shards, &into, &mut watcher));
    let (index, _report) = result.map_err(to_py)?;
    if let Some(e) = watcher.into_error() {
        return Err(e);
    }
    Ok(PyIndex::wrap(index))
}

/// The default model's path (fetched by `scripts/setup`).
#[pyfunction]
fn default_model_path(py: Python<'_>) -> PyResult<String> {
    let path = py.detach(n2g_index::default_model_path).map_err(to_py)?;
    Ok(path.display().to_string())
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIndex>()?;
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(default_model_path, m)?)?;
    Ok(())
}
