//! A build's progress, handed to a Python object (`n2g_index._progress`) while the
//! build runs without the GIL; Ctrl-C, or an exception raised by the object, stops
//! the build at its next checkpoint.

use std::time::Duration;

use n2g_index::{Progress, Stage};
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

/// Forwards [`Progress`] calls to a Python object with the methods `start(stage, unit,
/// total, done)`, `advance(units)`, `finish(stage, seconds)` and `note(text)`, each
/// called with the GIL taken for the call only.
pub struct PyProgress {
    target: Option<Py<PyAny>>,
    /// The first exception raised by the object, or by a signal handler (Ctrl-C).
    error: Option<PyErr>,
}

impl PyProgress {
    /// Progress reported to `target` (`None`: to nobody; Ctrl-C still stops).
    pub fn new(target: Option<Py<PyAny>>) -> Self {
        PyProgress {
            target,
            error: None,
        }
    }

    /// The exception that stopped the build, if one did. A KeyboardInterrupt says
    /// that the work so far is kept and how to resume it.
    pub fn into_error(self) -> Option<PyErr> {
        let e = self.error?;
        Some(Python::attach(|py| {
            if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                PyKeyboardInterrupt::new_err(
                    "build stopped at a checkpoint; the work so far is kept: call build() again with the same arguments to resume",
                )
            } else {
                e
            }
        }))
    }

    fn call<A>(&mut self, method: &str, args: A)
    where
        A: for<'py> pyo3::call::PyCallArgs<'py>,
    {
        if self.error.is_some() {
            return;
        }
        let Some(target) = &self.target else {
            return;
        };
        if let Err(e) = Python::attach(|py| target.bind(py).call_method1(method, args).map(drop)) {
            self.error = Some(e);
        }
    }
}

impl Progress for PyProgress {
    fn start(&mut self, stage: Stage, total: u64, done: u64) {
        self.call("start", (stage.name(), stage.unit(), total, done));
    }

    fn advance(&mut self, units: u64) {
        self.call("advance", (units,));
    }

    fn finish(&mut self, stage: Stage, elapsed: Duration) {
        // Closes the bar even after an exception, so a notebook shows no dangling bar.
        let Some(target) = &self.target else {
            return;
        };
        let result = Python::attach(|py| {
            target
                .bind(py)
                .call_method1("finish", (stage.name(), elapsed.as_secs_f64()))
                .map(drop)
        });
        if let (Err(e), None) = (result, &self.error) {
            self.error = Some(e);
        }
    }

    fn note(&mut self, text: &str) {
        self.call("note", (text,));
    }

    fn should_stop(&mut self) -> bool {
        if self.error.is_none() {
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                self.error = Some(e);
            }
        }
        self.error.is_some()
    }
}
