//! Persistent, encrypted files on this node's disk, as the Python class
//! `memmesh._native.Files`, and the core's files types as Python objects:
//! `memmesh.FileInfo`, `memmesh.FilesPage`, `memmesh.FilesStats`.
//!
//! File ids cross as text (`"blake3:<64 hex>"`), data as `bytes`, paths as `str` /
//! `os.PathLike`, the creation time as seconds since the epoch (float). Each operation
//! that touches the disk returns a [`Pending`] call that the blocking API waits on (GIL
//! released) and the asyncio API awaits (see `bridge.rs`).

use std::path::PathBuf;

use pyo3::prelude::*;
use tokio::runtime::Handle;

use memmesh::files::{FileId, FileInfo, Files, FilesStats, Page, PutOptions};
use memmesh::transfer::Source;

use crate::bridge::{to_none, to_py, Pending};
use crate::config::count;
use crate::error::IntoPyResult;
use crate::transfer::{bytes_or_path, PyProgressEvents};

/// What is known of a stored file (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "FileInfo")]
#[derive(Clone, PartialEq)]
pub struct PyFileInfo {
    /// Its id, `"blake3:<64 hex>"`.
    id: String,
    /// Plaintext size in bytes.
    size: u64,
    /// The name given at put, if any.
    name: Option<String>,
    /// The content type given at put, if any.
    content_type: Option<String>,
    /// When it was first stored here, in seconds since the epoch.
    created: f64,
    /// The ids of the nodes holding it.
    holders: Vec<String>,
}

impl From<FileInfo> for PyFileInfo {
    fn from(f: FileInfo) -> Self {
        Self {
            id: f.id.to_string(),
            size: f.size,
            name: f.name,
            content_type: f.content_type,
            created: f.created as f64 / 1000.0,
            holders: f.holders.iter().map(ToString::to_string).collect(),
        }
    }
}

#[pymethods]
impl PyFileInfo {
    fn __repr__(&self) -> String {
        format!(
            "FileInfo(id={:?}, size={}, name={:?}, content_type={:?}, created={}, holders={:?})",
            self.id, self.size, self.name, self.content_type, self.created, self.holders
        )
    }
}

/// One page of `Files.list`: the files in id order and the cursor of the next page.
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "FilesPage")]
#[derive(Clone, PartialEq)]
pub struct PyFilesPage {
    /// The files of this page, in id order.
    files: Vec<PyFileInfo>,
    /// The cursor of the next page (pass it to `list`), or `None` after the last.
    next: Option<String>,
}

impl From<Page> for PyFilesPage {
    fn from(p: Page) -> Self {
        Self {
            files: p.files.into_iter().map(PyFileInfo::from).collect(),
            next: p.next.map(|id| id.to_string()),
        }
    }
}

#[pymethods]
impl PyFilesPage {
    fn __repr__(&self) -> String {
        format!(
            "FilesPage(files=<{} files>, next={:?})",
            self.files.len(),
            self.next
        )
    }
}

/// Usage of a node's files store (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "FilesStats")]
#[derive(Clone, PartialEq)]
pub struct PyFilesStats {
    /// Bytes of stored content on disk (ciphertext).
    disk_used: u64,
    /// The disk quota in bytes, or `None` for no limit.
    disk_quota: Option<u64>,
    /// Files stored.
    files: u64,
}

impl From<FilesStats> for PyFilesStats {
    fn from(s: FilesStats) -> Self {
        Self {
            disk_used: s.disk_used,
            disk_quota: s.disk_quota,
            files: s.files,
        }
    }
}

#[pymethods]
impl PyFilesStats {
    fn __repr__(&self) -> String {
        let quota = self
            .disk_quota
            .map_or_else(|| "None".to_string(), |q| q.to_string());
        format!(
            "FilesStats(disk_used={}, disk_quota={quota}, files={})",
            self.disk_used, self.files
        )
    }
}

/// The files store of a node (the native half of `memmesh.Files`).
#[pyclass(frozen, module = "memmesh._native", name = "Files")]
pub struct PyFiles {
    files: Files,
    runtime: Handle,
}

impl PyFiles {
    /// Wraps a node's files store; `runtime` is its node's runtime.
    pub fn new(files: Files, runtime: Handle) -> Self {
        Self { files, runtime }
    }
}

/// Parses a file id (`"blake3:<64 hex>"`); a bad one raises `InvalidInputError`.
fn file_id(py: Python<'_>, id: &str) -> PyResult<FileId> {
    FileId::parse(id).into_py(py)
}

#[pymethods]
impl PyFiles {
    /// Stores `data` (bytes, or the file at a path, streamed); the call returns its id.
    #[pyo3(signature = (data, name=None, content_type=None, replicas=1))]
    fn put(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        name: Option<String>,
        content_type: Option<String>,
        replicas: i64,
    ) -> PyResult<Pending> {
        let data = bytes_or_path(py, "data", data)?;
        let options = PutOptions {
            name,
            content_type,
            replicas: count(py, "replicas", replicas)?,
        };
        let files = self.files.clone();
        let work = async move {
            let id = match data {
                Source::Bytes(bytes) => files.put_bytes(bytes, options).await?,
                Source::Path(path) => files.put_path(path, options).await?,
            };
            Ok(id.to_string())
        };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// The contents of `id` (verified): the call returns `bytes`, or, with `into`, writes
    /// them to that new file and returns `None`.
    #[pyo3(signature = (id, into=None))]
    fn get(&self, py: Python<'_>, id: &str, into: Option<PathBuf>) -> PyResult<Pending> {
        let id = file_id(py, id)?;
        let files = self.files.clone();
        Ok(match into {
            None => Pending::new(
                &self.runtime,
                async move { files.get_bytes(id).await },
                to_py,
            ),
            Some(path) => Pending::new(
                &self.runtime,
                async move { files.get_to_path(id, path).await },
                to_none,
            ),
        })
    }

    /// What is known of `id`.
    fn stat(&self, py: Python<'_>, id: &str) -> PyResult<Pending> {
        let id = file_id(py, id)?;
        let files = self.files.clone();
        let work = async move { files.stat(id).await.map(PyFileInfo::from) };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// Up to `limit` files with ids after `cursor` (from the first if `None`).
    #[pyo3(signature = (cursor=None, limit=100))]
    fn list(&self, py: Python<'_>, cursor: Option<&str>, limit: i64) -> PyResult<Pending> {
        let cursor = cursor.map(|c| file_id(py, c)).transpose()?;
        let limit: usize = count(py, "limit", limit)?;
        let files = self.files.clone();
        let work = async move { files.list(cursor, limit).await.map(PyFilesPage::from) };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// Deletes `id` (`NotFoundError` if it is not stored here).
    fn delete(&self, py: Python<'_>, id: &str) -> PyResult<Pending> {
        let id = file_id(py, id)?;
        let files = self.files.clone();
        let work = async move { files.delete(id).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Disk used, quota and file count (immediate: no I/O).
    fn stats(&self, py: Python<'_>) -> PyResult<PyFilesStats> {
        self.files.stats().map(PyFilesStats::from).into_py(py)
    }

    /// Progress of the files this node moves across the network from now on (a put's
    /// replicas sent, a replica pulled, a get fetched from another node): the transfer
    /// progress events, with `name` the file id.
    fn progress(&self) -> PyProgressEvents {
        PyProgressEvents::new(self.files.progress(), self.runtime.clone())
    }

    fn __repr__(&self) -> String {
        match self.files.stats() {
            Ok(s) => format!("Files(files={}, disk_used={})", s.files, s.disk_used),
            Err(_) => "Files(unavailable)".to_string(),
        }
    }
}
