//! memmesh errors as Python exceptions, and Python exceptions as memmesh errors.
//!
//! Each [`memmesh::ErrorKind`] maps to one exception class of `memmesh/errors.py`
//! (`NotFoundError`, `TimeoutError`, …, all subclasses of `MemmeshError`). A Python
//! handler that raises becomes a `HandlerFailed` error carrying the exception text.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use memmesh::{Error, ErrorKind};

/// `memmesh.errors._BY_KIND`: kind name -> exception class, loaded on first use.
static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// The Python exception for `error`: an instance of the class for its kind, whose
/// message is the error's message.
pub fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    match exception(py, &error) {
        Ok(err) => err,
        Err(failure) => PyRuntimeError::new_err(format!(
            "{error} (memmesh.errors could not be loaded: {failure})"
        )),
    }
}

fn exception(py: Python<'_>, error: &Error) -> PyResult<PyErr> {
    let classes = CLASSES.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let table = py.import("memmesh.errors")?.getattr("_BY_KIND")?;
        Ok(table.cast_into::<PyDict>()?.unbind())
    })?;
    let kind = error.kind().as_str();
    let class = classes.bind(py).get_item(kind)?.ok_or_else(|| {
        PyRuntimeError::new_err(format!("memmesh.errors has no class for kind {kind}"))
    })?;
    Ok(PyErr::from_value(class.call1((error.message(),))?))
}

/// Shorthand: an `InvalidInputError` with `message`.
pub fn invalid(py: Python<'_>, message: impl Into<String>) -> PyErr {
    to_py_err(py, Error::invalid(message))
}

/// The memmesh error reported for a Python handler that raised `err`.
pub fn handler_failed(what: &str, err: &PyErr) -> Error {
    Error::new(ErrorKind::HandlerFailed, format!("{what} raised {err}"))
}

/// Extension: `memmesh::Result<T>` into `PyResult<T>`.
pub trait IntoPyResult<T> {
    /// Converts the error (if any) into its Python exception.
    fn into_py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for memmesh::Result<T> {
    fn into_py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py_err(py, e))
    }
}
