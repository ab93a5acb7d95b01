//! Documents (Automerge CRDTs synced with peers as their reach allows), as the Python
//! classes `memmesh._native.Docs` and `memmesh._native.Doc`, plus `memmesh.DocInfo` and
//! the two value wrappers `memmesh.Text` and `memmesh.Counter`.
//!
//! Conversions (ADR 0020, "Bindings"): ids and heads cross as `str`, reach as its name
//! (`"private"`, `"cluster"`, `"community"`, `"commons"`), saved documents as `bytes`.
//! Values: `None`, `bool`, `int`, `float`, `str`, `bytes` (or `bytearray`), `dict` (str
//! keys), `list` (or `tuple`), and [`PyText`] / [`PyCounter`] for collaborative text and
//! counters; reading gives the same types back (a text as `Text`, a counter as
//! `Counter`). A path is the core's string form (`"items/0/title"`) or a list of keys
//! (`str`) and indexes (`int`). Edits return a [`Pending`] call; reads are immediate
//! (the document is in memory), run with the GIL released.

use std::collections::BTreeMap;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use tokio::runtime::Handle;

use memmesh::docs::{Path, Seg};
use memmesh::{Doc, DocId, DocInfo, Docs, Reach, Value};

use crate::bridge::{to_none, to_py, Pending};
use crate::docs_changes::PyDocChanges;
use crate::docs_status::PyDocSync;
use crate::error::{invalid, IntoPyResult};

/// Longest nesting of a value given from Python (a guard against cycles and stack use).
const MAX_NESTING: usize = 64;

/// Collaborative text in a document (merged character by character; edit it with
/// `Doc.splice_text`). `str(t)` and `t.value` are its characters.
#[pyclass(frozen, eq, hash, module = "memmesh", name = "Text")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyText {
    /// The characters.
    #[pyo3(get)]
    value: String,
}

#[pymethods]
impl PyText {
    #[new]
    #[pyo3(signature = (value=String::new()), text_signature = "(value='')")]
    fn new(value: String) -> Self {
        Self { value }
    }

    fn __str__(&self) -> String {
        self.value.clone()
    }

    fn __len__(&self) -> usize {
        self.value.chars().count()
    }

    fn __repr__(&self) -> String {
        format!("Text({:?})", self.value)
    }
}

/// A counter in a document (concurrent increments add up; change it with
/// `Doc.increment`). `int(c)` and `c.value` are its value.
#[pyclass(frozen, eq, hash, module = "memmesh", name = "Counter")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyCounter {
    /// The value.
    #[pyo3(get)]
    value: i64,
}

#[pymethods]
impl PyCounter {
    #[new]
    #[pyo3(signature = (value=0))]
    fn new(value: i64) -> Self {
        Self { value }
    }

    fn __int__(&self) -> i64 {
        self.value
    }

    fn __index__(&self) -> i64 {
        self.value
    }

    fn __repr__(&self) -> String {
        format!("Counter({})", self.value)
    }
}

/// What is known of a document (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "DocInfo")]
#[derive(Clone, PartialEq)]
pub struct PyDocInfo {
    /// Its id (32 hex digits).
    id: String,
    /// Its reach: `"private"`, `"cluster"`, `"community"` or `"commons"`.
    reach: String,
    /// Its heads (hex change hashes, sorted).
    heads: Vec<String>,
}

impl From<DocInfo> for PyDocInfo {
    fn from(d: DocInfo) -> Self {
        Self {
            id: d.id.to_string(),
            reach: d.reach.as_str().to_string(),
            heads: d.heads,
        }
    }
}

#[pymethods]
impl PyDocInfo {
    fn __repr__(&self) -> String {
        format!(
            "DocInfo(id={:?}, reach={:?}, heads={:?})",
            self.id, self.reach, self.heads
        )
    }
}

/// What a node holds of documents (`docs.stats()`).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "DocsStats")]
#[derive(Clone, PartialEq)]
pub struct PyDocsStats {
    /// The documents held.
    documents: u64,
    /// Their size in the Automerge format.
    bytes: u64,
    /// Whether they are kept in the data dir (`False`: in memory only).
    persistent: bool,
    /// Sync exchanges with peers under way.
    syncing: u64,
}

impl From<memmesh::docs::DocsStats> for PyDocsStats {
    fn from(s: memmesh::docs::DocsStats) -> Self {
        Self {
            documents: s.documents,
            bytes: s.bytes,
            persistent: s.persistent,
            syncing: s.syncing,
        }
    }
}

#[pymethods]
impl PyDocsStats {
    fn __repr__(&self) -> String {
        format!(
            "DocsStats(documents={}, bytes={}, persistent={}, syncing={})",
            self.documents,
            self.bytes,
            if self.persistent { "True" } else { "False" },
            self.syncing
        )
    }
}

/// Parses a reach name; a bad one raises `InvalidInputError`.
fn reach(py: Python<'_>, name: &str) -> PyResult<Reach> {
    name.parse::<Reach>()
        .map_err(memmesh::Error::from)
        .into_py(py)
}

/// Parses a document id; a bad one raises `InvalidInputError`.
fn doc_id(py: Python<'_>, id: &str) -> PyResult<DocId> {
    id.parse::<DocId>()
        .map_err(memmesh::Error::from)
        .into_py(py)
}

/// A path from Python: the string form, or a sequence of keys (`str`) and indexes (`int`).
fn path(py: Python<'_>, p: &Bound<'_, PyAny>) -> PyResult<Path> {
    if let Ok(s) = p.cast::<PyString>() {
        return Path::parse(&s.to_cow()?)
            .map_err(memmesh::Error::from)
            .into_py(py);
    }
    if p.is_instance_of::<PyList>() || p.is_instance_of::<PyTuple>() {
        let mut segs = Vec::new();
        for item in p.try_iter()? {
            let item = item?;
            if segs.len() == memmesh::docs::path::MAX_DEPTH {
                return Err(invalid(
                    py,
                    format!(
                        "bad path: more than {} segments",
                        memmesh::docs::path::MAX_DEPTH
                    ),
                ));
            }
            if let Ok(s) = item.cast::<PyString>() {
                segs.push(Seg::Key(s.to_cow()?.into_owned()));
            } else if item.is_instance_of::<PyInt>() && !item.is_instance_of::<PyBool>() {
                let i: i64 = item.extract()?;
                let i = usize::try_from(i)
                    .map_err(|_| invalid(py, format!("bad path: negative index {i}")))?;
                segs.push(Seg::Index(i));
            } else {
                return Err(invalid(
                    py,
                    format!(
                        "bad path: a segment must be a str key or an int index, not {}",
                        item.get_type().name()?
                    ),
                ));
            }
        }
        return Ok(Path(segs));
    }
    Err(PyTypeError::new_err(format!(
        "a path is a str (\"items/0/title\") or a list of keys and indexes, not {}",
        p.get_type().name()?
    )))
}

/// A value from Python (see the module docs).
fn value(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    value_at(py, v, 0)
}

fn value_at(py: Python<'_>, v: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_NESTING {
        return Err(invalid(
            py,
            format!("a value nested more than {MAX_NESTING} levels deep"),
        ));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        let n: i64 = v.extract().map_err(|_| {
            invalid(
                py,
                "an int outside the 64-bit signed range cannot go into a document",
            )
        })?;
        return Ok(Value::Int(n));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::Str(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if let Ok(t) = v.cast::<PyText>() {
        return Ok(Value::Text(t.get().value.clone()));
    }
    if let Ok(c) = v.cast::<PyCounter>() {
        return Ok(Value::Counter(c.get().value));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut m = BTreeMap::new();
        for (k, item) in d.iter() {
            let k = k
                .cast::<PyString>()
                .map_err(|_| invalid(py, "map keys in a document must be str"))?;
            m.insert(k.to_cow()?.into_owned(), value_at(py, &item, depth + 1)?);
        }
        return Ok(Value::Map(m));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut l = Vec::new();
        for item in v.try_iter()? {
            l.push(value_at(py, &item?, depth + 1)?);
        }
        return Ok(Value::List(l));
    }
    Err(invalid(
        py,
        format!(
            "a {} cannot go into a document (use None, bool, int, float, str, bytes, dict, \
             list, memmesh.Text or memmesh.Counter)",
            v.get_type().name()?
        ),
    ))
}

/// A value as a Python object (see the module docs).
fn value_to_py(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    use pyo3::IntoPyObjectExt;
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_py_any(py)?,
        Value::Int(n) => n.into_py_any(py)?,
        Value::Float(f) => f.into_py_any(py)?,
        Value::Str(s) => s.into_py_any(py)?,
        Value::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Map(m) => {
            let d = PyDict::new(py);
            for (k, v) in m {
                d.set_item(k, value_to_py(py, v)?)?;
            }
            d.into_any().unbind()
        }
        Value::List(l) => {
            let items = l
                .into_iter()
                .map(|v| value_to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Value::Text(s) => PyText { value: s }.into_py_any(py)?,
        Value::Counter(n) => PyCounter { value: n }.into_py_any(py)?,
    })
}

/// The documents of a node (the native half of `memmesh.Docs`).
#[pyclass(frozen, module = "memmesh._native", name = "Docs")]
pub struct PyDocs {
    docs: Docs,
    runtime: Handle,
}

impl PyDocs {
    /// Wraps a node's documents; `runtime` is its node's runtime.
    pub fn new(docs: Docs, runtime: Handle) -> Self {
        Self { docs, runtime }
    }
}

/// A [`memmesh::Doc`] as a Python object.
fn doc_to_py(py: Python<'_>, (doc, runtime): (Doc, Handle)) -> PyResult<Py<PyAny>> {
    to_py(py, PyDoc { doc, runtime })
}

#[pymethods]
impl PyDocs {
    /// Creates an empty document of `reach`; the call returns its id.
    #[pyo3(signature = (reach="cluster"))]
    fn create(&self, py: Python<'_>, reach: &str) -> PyResult<Pending> {
        let reach = self::reach(py, reach)?;
        let docs = self.docs.clone();
        let work = async move { docs.create(reach).await.map(|id| id.to_string()) };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// Imports a document saved by any Automerge implementation as a new document of
    /// `reach`; the call returns its id.
    #[pyo3(signature = (data, reach="cluster"))]
    fn import_(&self, py: Python<'_>, data: &[u8], reach: &str) -> PyResult<Pending> {
        let reach = self::reach(py, reach)?;
        let data = data.to_vec();
        let docs = self.docs.clone();
        let work = async move { docs.import(&data, reach).await.map(|id| id.to_string()) };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// Opens the document `id`; the call returns a [`PyDoc`].
    fn open(&self, py: Python<'_>, id: &str) -> PyResult<Pending> {
        let id = doc_id(py, id)?;
        let docs = self.docs.clone();
        let runtime = self.runtime.clone();
        let work = async move { docs.open(id).await.map(|doc| (doc, runtime)) };
        Ok(Pending::new(&self.runtime, work, doc_to_py))
    }

    /// Every document on this node, in id order.
    fn list(&self) -> Pending {
        let docs = self.docs.clone();
        let work = async move {
            docs.list()
                .await
                .map(|l| l.into_iter().map(PyDocInfo::from).collect::<Vec<_>>())
        };
        Pending::new(&self.runtime, work, to_py)
    }

    /// What this node holds: documents, bytes, whether on disk, syncs under way.
    fn stats(&self) -> Pending {
        let docs = self.docs.clone();
        let work = async move { docs.stats().await.map(PyDocsStats::from) };
        Pending::new(&self.runtime, work, to_py)
    }

    /// The sync state of every document with the peers it was exchanged with, in id
    /// order.
    fn sync_status(&self) -> Pending {
        let docs = self.docs.clone();
        let work = async move {
            docs.sync_status()
                .await
                .map(|l| l.into_iter().map(PyDocSync::from).collect::<Vec<_>>())
        };
        Pending::new(&self.runtime, work, to_py)
    }

    /// Changes the reach of the document `id`.
    fn set_reach(&self, py: Python<'_>, id: &str, reach: &str) -> PyResult<Pending> {
        let id = doc_id(py, id)?;
        let reach = self::reach(py, reach)?;
        let docs = self.docs.clone();
        let work = async move { docs.set_reach(id, reach).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Every change of every document from now on.
    fn changes(&self) -> PyDocChanges {
        PyDocChanges::new(self.docs.changes(), self.runtime.clone())
    }

    /// Deletes the document `id` from this node.
    fn delete(&self, py: Python<'_>, id: &str) -> PyResult<Pending> {
        let id = doc_id(py, id)?;
        let docs = self.docs.clone();
        let work = async move { docs.delete(id).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    fn __repr__(&self) -> String {
        "Docs()".to_string()
    }
}

/// One document (the native half of `memmesh.Doc`).
#[pyclass(frozen, module = "memmesh._native", name = "Doc")]
pub struct PyDoc {
    doc: Doc,
    runtime: Handle,
}

#[pymethods]
impl PyDoc {
    /// Its id.
    #[getter]
    fn id(&self) -> String {
        self.doc.id().to_string()
    }

    /// Its reach.
    #[getter]
    fn reach(&self) -> String {
        self.doc.reach().as_str().to_string()
    }

    /// The value at `path`, or `None` if nothing is there (immediate).
    #[pyo3(signature = (path=None))]
    fn get(&self, py: Python<'_>, path: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let path = match path {
            Some(p) => self::path(py, p)?,
            None => Path::root(),
        };
        let doc = &self.doc;
        let got = py.detach(|| doc.get(path)).into_py(py)?;
        match got {
            Some(v) => value_to_py(py, v),
            None => Ok(py.None()),
        }
    }

    /// The whole document as JSON text (immediate).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        let doc = &self.doc;
        py.detach(|| doc.to_json()).into_py(py)
    }

    /// Its heads (immediate).
    fn heads(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let doc = &self.doc;
        py.detach(|| doc.heads()).into_py(py)
    }

    /// The whole document in the standard Automerge binary format (immediate).
    fn save<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let doc = &self.doc;
        let bytes = py.detach(|| doc.save()).into_py(py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Sets the value at `path`.
    fn put(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Pending> {
        let path = self::path(py, path)?;
        let value = self::value(py, value)?;
        let doc = self.doc.clone();
        let work = async move { doc.put(path, value).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Deletes the map key or list element at `path`.
    fn delete(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let path = self::path(py, path)?;
        let doc = self.doc.clone();
        let work = async move { doc.delete(path).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Inserts `value` at `index` in the list at `path`.
    fn insert(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        index: i64,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<Pending> {
        let path = self::path(py, path)?;
        let index = usize::try_from(index)
            .map_err(|_| invalid(py, format!("index must not be negative, got {index}")))?;
        let value = self::value(py, value)?;
        let doc = self.doc.clone();
        let work = async move { doc.insert(path, index, value).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// In the text at `path`, deletes `delete` characters at `pos` and inserts `text`.
    #[pyo3(
        signature = (path, pos, delete, text=String::new()),
        text_signature = "(self, /, path, pos, delete, text='')"
    )]
    fn splice_text(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        pos: i64,
        delete: i64,
        text: String,
    ) -> PyResult<Pending> {
        let path = self::path(py, path)?;
        let pos = usize::try_from(pos)
            .map_err(|_| invalid(py, format!("pos must not be negative, got {pos}")))?;
        let delete = usize::try_from(delete)
            .map_err(|_| invalid(py, format!("delete must not be negative, got {delete}")))?;
        let doc = self.doc.clone();
        let work = async move { doc.splice_text(path, pos, delete, &text).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Adds `by` to the counter at `path`.
    #[pyo3(signature = (path, by=1))]
    fn increment(&self, py: Python<'_>, path: &Bound<'_, PyAny>, by: i64) -> PyResult<Pending> {
        let path = self::path(py, path)?;
        let doc = self.doc.clone();
        let work = async move { doc.increment(path, by).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Changes its reach.
    fn set_reach(&self, py: Python<'_>, reach: &str) -> PyResult<Pending> {
        let reach = self::reach(py, reach)?;
        let doc = self.doc.clone();
        let work = async move { doc.set_reach(reach).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Every change of this document from now on.
    fn changes(&self) -> PyDocChanges {
        PyDocChanges::new(self.doc.changes(), self.runtime.clone())
    }

    /// Merges Automerge bytes (a saved document or changes) into this document.
    fn merge(&self, data: &[u8]) -> Pending {
        let data = data.to_vec();
        let doc = self.doc.clone();
        let work = async move { doc.merge(&data).await };
        Pending::new(&self.runtime, work, to_none)
    }

    fn __repr__(&self) -> String {
        format!(
            "Doc(id={:?}, reach={:?})",
            self.doc.id().to_string(),
            self.doc.reach().as_str()
        )
    }
}
