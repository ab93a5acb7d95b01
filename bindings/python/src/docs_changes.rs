//! Document change subscriptions (`docs.changes()`, `doc.changes()`): the events as
//! `memmesh.DocChange` and the stream that yields them (core `docs/changes.rs`).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use tokio::runtime::Handle;

use memmesh::docs::{ChangeEvent, ChangeOrigin, DocChanges};

use crate::bridge::Pending;

/// One change event. `kind` says which; the other fields are set when they apply.
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "DocChange")]
#[derive(Clone, PartialEq)]
pub struct PyDocChange {
    /// `"Change"` or `"Lagged"`.
    kind: &'static str,
    /// The document (`Change`).
    id: Option<String>,
    /// Its heads after the change (`Change`; empty otherwise).
    heads: Vec<String>,
    /// The paths the change touched, in the string form `get` takes (`Change`; empty
    /// otherwise).
    paths: Vec<String>,
    /// Whether it touched more paths than `paths` lists.
    paths_truncated: bool,
    /// `"local"`, or the node id of the peer whose sync brought it (`Change`).
    origin: Option<String>,
    /// How many events were dropped for this slow reader (`Lagged`).
    missed: Option<u64>,
}

impl From<ChangeEvent> for PyDocChange {
    fn from(e: ChangeEvent) -> Self {
        match e {
            ChangeEvent::Change(c) => PyDocChange {
                kind: "Change",
                id: Some(c.id.to_string()),
                heads: c.heads,
                paths: c.paths,
                paths_truncated: c.paths_truncated,
                origin: Some(match c.origin {
                    ChangeOrigin::Local => "local".to_string(),
                    ChangeOrigin::Peer(p) => p.to_string(),
                }),
                missed: None,
            },
            ChangeEvent::Lagged(n) => PyDocChange {
                kind: "Lagged",
                id: None,
                heads: Vec::new(),
                paths: Vec::new(),
                paths_truncated: false,
                origin: None,
                missed: Some(n),
            },
        }
    }
}

#[pymethods]
impl PyDocChange {
    fn __repr__(&self) -> String {
        match self.kind {
            "Change" => format!(
                "DocChange(kind='Change', id={:?}, heads={:?}, paths={:?}, paths_truncated={}, origin={:?})",
                self.id.as_deref().unwrap_or_default(),
                self.heads,
                self.paths,
                if self.paths_truncated { "True" } else { "False" },
                self.origin.as_deref().unwrap_or_default()
            ),
            _ => format!(
                "DocChange(kind='Lagged', missed={})",
                self.missed.unwrap_or_default()
            ),
        }
    }
}

fn to_change(py: Python<'_>, e: ChangeEvent) -> PyResult<Py<PyAny>> {
    PyDocChange::from(e).into_py_any(py)
}

/// Changes of documents from the moment the subscription was made (the native half of
/// `memmesh.DocChanges`).
#[pyclass(frozen, module = "memmesh._native", name = "DocChanges")]
pub struct PyDocChanges {
    rx: Arc<tokio::sync::Mutex<DocChanges>>,
    runtime: Handle,
}

impl PyDocChanges {
    /// Reads `rx` on `runtime`.
    pub(crate) fn new(rx: DocChanges, runtime: Handle) -> Self {
        Self {
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            runtime,
        }
    }
}

#[pymethods]
impl PyDocChanges {
    /// The next event (a call to wait on or await); `ClosedError` once the node shuts
    /// down.
    fn next(&self) -> Pending {
        let rx = self.rx.clone();
        let work = async move {
            rx.lock()
                .await
                .next()
                .await
                .ok_or_else(memmesh::Error::closed)
        };
        Pending::on_runtime(&self.runtime, work, to_change)
    }
}
