//! Replicated cache buckets, as the Python class `memmesh._native.Cache`, with
//! [`memmesh::CacheOptions`] and [`memmesh::CacheStats`] as `memmesh.CacheOptions` and
//! `memmesh.CacheStats`.
//!
//! Keys are `str`, values `bytes`, durations seconds (`float`). Each operation
//! returns a [`Pending`] call that the blocking API waits on (GIL released) and the
//! asyncio API awaits (see `bridge.rs`). `get`'s fast path is `try_get_local`, which both
//! APIs call first: a hit this node can answer from its own replica
//! ([`Cache::try_get_local`]) is served on the caller's thread with the GIL held, without
//! touching the node runtime or an event loop.

use std::time::Duration;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMapping};
use tokio::runtime::Handle;

use memmesh::{Cache, CacheOptions, CacheStats, Node};

use crate::bridge::{to_none, to_py, Pending};
use crate::config::{count, seconds};
use crate::error::invalid;

/// The options of a cache bucket (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "CacheOptions")]
#[derive(Clone, PartialEq)]
pub struct PyCacheOptions {
    /// Default time to live of an entry in seconds (`None`: no expiry by default).
    ttl: Option<f64>,
    /// Most entries each node keeps for the bucket (least recently used go first).
    max_entries: Option<u64>,
    /// Most bytes (keys, values, overhead) each node keeps for the bucket.
    max_bytes: Option<u64>,
    /// How many nodes hold each entry.
    replicas: u32,
}

impl From<CacheOptions> for PyCacheOptions {
    fn from(o: CacheOptions) -> Self {
        Self {
            ttl: o.ttl.map(|d| d.as_secs_f64()),
            max_entries: o.max_entries,
            max_bytes: o.max_bytes,
            replicas: o.replicas,
        }
    }
}

#[pymethods]
impl PyCacheOptions {
    /// The options `node.cache(...)` would use for these arguments: the defaults
    /// overridden by the given ones (not validated; for comparisons).
    #[new]
    #[pyo3(signature = (*, ttl=None, max_entries=None, max_bytes=None, replicas=None))]
    fn new(
        py: Python<'_>,
        ttl: Option<f64>,
        max_entries: Option<i64>,
        max_bytes: Option<i64>,
        replicas: Option<i64>,
    ) -> PyResult<Self> {
        let options = cache_options(py, ttl, max_entries, max_bytes, replicas)?;
        Ok(options.unwrap_or_default().into())
    }

    fn __repr__(&self) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| "None".to_string(), |v| v.to_string());
        format!(
            "CacheOptions(ttl={}, max_entries={}, max_bytes={}, replicas={})",
            self.ttl
                .map_or_else(|| "None".to_string(), |t| format!("{t}")),
            opt(self.max_entries),
            opt(self.max_bytes),
            self.replicas
        )
    }
}

/// Counters of one bucket on this node (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "CacheStats")]
#[derive(Clone, PartialEq)]
pub struct PyCacheStats {
    /// Live entries held here.
    entries: u64,
    /// Bytes held here (keys, values and per-entry overhead).
    bytes: u64,
    /// Reads answered with a value.
    hits: u64,
    /// Reads answered with no value.
    misses: u64,
    /// Entries removed because their TTL passed.
    expired: u64,
    /// Entries removed by LRU to respect `max_entries` / `max_bytes`.
    evicted: u64,
}

impl From<CacheStats> for PyCacheStats {
    fn from(s: CacheStats) -> Self {
        Self {
            entries: s.entries,
            bytes: s.bytes,
            hits: s.hits,
            misses: s.misses,
            expired: s.expired,
            evicted: s.evicted,
        }
    }
}

#[pymethods]
impl PyCacheStats {
    fn __repr__(&self) -> String {
        format!(
            "CacheStats(entries={}, bytes={}, hits={}, misses={}, expired={}, evicted={})",
            self.entries, self.bytes, self.hits, self.misses, self.expired, self.evicted
        )
    }
}

/// The options of `node.cache(...)`: `None` if every one is `None` (the bucket's
/// existing options, or the defaults for a new bucket), else the defaults overridden by
/// the given ones.
pub fn cache_options(
    py: Python<'_>,
    ttl: Option<f64>,
    max_entries: Option<i64>,
    max_bytes: Option<i64>,
    replicas: Option<i64>,
) -> PyResult<Option<CacheOptions>> {
    if ttl.is_none() && max_entries.is_none() && max_bytes.is_none() && replicas.is_none() {
        return Ok(None);
    }
    let mut o = CacheOptions::default();
    if let Some(t) = ttl {
        o.ttl = Some(seconds(py, "ttl", t)?);
    }
    if let Some(n) = max_entries {
        o.max_entries = Some(count(py, "max_entries", n)?);
    }
    if let Some(n) = max_bytes {
        o.max_bytes = Some(count(py, "max_bytes", n)?);
    }
    if let Some(n) = replicas {
        o.replicas = count(py, "replicas", n)?;
    }
    Ok(Some(o))
}

/// `node.caches()`: bucket name -> options, sorted by name.
pub fn caches<'py>(py: Python<'py>, node: &Node) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, options) in node.caches() {
        out.set_item(name, PyCacheOptions::from(options))?;
    }
    Ok(out)
}

/// Opens the bucket `name` of `node` (for `Node.cache`).
pub async fn open(
    node: Node,
    name: String,
    options: Option<CacheOptions>,
) -> memmesh::Result<PyCache> {
    let cache = node.cache(&name, options).await?;
    Ok(PyCache::new(cache, node.runtime_handle()))
}

/// A cache bucket (the native half of `memmesh.Cache` and `memmesh.aio.Cache`).
#[pyclass(frozen, module = "memmesh._native", name = "Cache")]
pub struct PyCache {
    cache: Cache,
    runtime: Handle,
}

impl PyCache {
    /// Wraps a core bucket handle; `runtime` is its node's runtime.
    pub fn new(cache: Cache, runtime: Handle) -> Self {
        Self { cache, runtime }
    }
}

fn ttl_arg(py: Python<'_>, ttl: Option<f64>) -> PyResult<Option<Duration>> {
    ttl.map(|s| seconds(py, "ttl", s)).transpose()
}

/// `set_many`'s entries: a mapping of `str` to `bytes`, or an iterable of `(str, bytes)`.
fn entries(py: Python<'_>, entries: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Bytes)>> {
    let bad = || {
        invalid(
            py,
            "entries must be a mapping of str to bytes, or an iterable of (str, bytes) pairs",
        )
    };
    let pairs = match entries.cast::<PyMapping>() {
        Ok(map) => map.items()?.into_any(),
        Err(_) => entries.clone(),
    };
    let mut out = Vec::new();
    for item in pairs.try_iter().map_err(|_| bad())? {
        out.push(item?.extract::<(String, Bytes)>().map_err(|_| bad())?);
    }
    Ok(out)
}

fn secs(ttl: Option<Duration>) -> Option<f64> {
    ttl.map(|d| d.as_secs_f64())
}

#[pymethods]
impl PyCache {
    /// The bucket's name.
    #[getter]
    fn name(&self) -> &str {
        self.cache.name()
    }

    /// The bucket's options.
    #[getter]
    fn options(&self) -> PyCacheOptions {
        self.cache.options().into()
    }

    /// Sets `key` to `value`, expiring after `ttl` seconds (default: the bucket's TTL).
    #[pyo3(signature = (key, value, ttl=None))]
    fn set(
        &self,
        py: Python<'_>,
        key: String,
        value: Bytes,
        ttl: Option<f64>,
    ) -> PyResult<Pending> {
        let ttl = ttl_arg(py, ttl)?;
        let cache = self.cache.clone();
        let work = async move { cache.set(&key, value, ttl).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// The value of `key`, or `None` (the Python layer tries `try_get_local` first).
    fn get(&self, key: String) -> Pending {
        let cache = self.cache.clone();
        let work = async move { cache.get(&key).await };
        Pending::new(&self.runtime, work, to_py)
    }

    /// The value of `key` if this node can answer from its own replica (bytes, or `None`
    /// for an authoritative miss), else `default`. Never does I/O.
    fn try_get_local<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        default: Bound<'py, PyAny>,
    ) -> Bound<'py, PyAny> {
        match self.cache.try_get_local(key) {
            Some(Some(v)) => PyBytes::new(py, &v).into_any(),
            Some(None) => py.None().into_bound(py),
            None => default,
        }
    }

    /// Deletes `key`; the call returns whether it existed.
    fn delete(&self, key: String) -> Pending {
        let cache = self.cache.clone();
        let work = async move { cache.delete(&key).await };
        Pending::new(&self.runtime, work, to_py)
    }

    /// Sets the time to live of an existing `key` to `ttl` seconds; the call returns
    /// whether it existed.
    fn expire(&self, py: Python<'_>, key: String, ttl: f64) -> PyResult<Pending> {
        let ttl = seconds(py, "ttl", ttl)?;
        let cache = self.cache.clone();
        let work = async move { cache.expire(&key, ttl).await };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// Seconds `key` has left to live (`None`: never expires); `NotFoundError` if absent.
    fn ttl(&self, key: String) -> Pending {
        let cache = self.cache.clone();
        let work = async move { cache.ttl(&key).await.map(secs) };
        Pending::new(&self.runtime, work, to_py)
    }

    /// The number of live entries in the bucket across the cluster.
    fn len(&self) -> Pending {
        let cache = self.cache.clone();
        let work = async move { cache.len().await };
        Pending::new(&self.runtime, work, to_py)
    }

    /// Adds `by` to the integer at `key` (absent: 0); the call returns the new value.
    #[pyo3(signature = (key, by=1))]
    fn incr(&self, key: String, by: i64) -> Pending {
        let cache = self.cache.clone();
        let work = async move { cache.incr(&key, by).await };
        Pending::new(&self.runtime, work, to_py)
    }

    /// The values of `keys`, in order (`None` for absent keys).
    fn get_many(&self, keys: Vec<String>) -> Pending {
        let cache = self.cache.clone();
        let work = async move { cache.get_many(&keys).await };
        Pending::new(&self.runtime, work, to_py)
    }

    /// Sets every entry (a mapping, or `(key, value)` pairs), expiring after `ttl`
    /// seconds (default: the bucket's TTL).
    #[pyo3(signature = (entries, ttl=None))]
    fn set_many(
        &self,
        py: Python<'_>,
        entries: &Bound<'_, PyAny>,
        ttl: Option<f64>,
    ) -> PyResult<Pending> {
        let (entries, ttl) = (self::entries(py, entries)?, ttl_arg(py, ttl)?);
        let cache = self.cache.clone();
        let work = async move { cache.set_many(entries, ttl).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// This node's counters for the bucket (immediate: no I/O).
    fn stats(&self) -> PyCacheStats {
        self.cache.stats().into()
    }

    fn __repr__(&self) -> String {
        format!("Cache({:?})", self.cache.name())
    }
}
