//! Blocks in the RAM of the mesh, as the Python class `memmesh._native.Blocks`, and
//! [`memmesh::NodeUsage`] as `memmesh.NodeUsage`.
//!
//! Block ids cross as text (`"blake3:<64 hex>"`); a placement is `"local"`, `"auto"` or a
//! peer's node id. Each operation has a blocking form (GIL released while waiting) and
//! an `*_async` form for asyncio (see `bridge.rs`).

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::runtime::Handle;

use memmesh::{BlockId, Blocks, NodeUsage, Placement};

use crate::bridge::{spawn_for_asyncio, to_none, to_py, wait, Pending};
use crate::error::IntoPyResult;

/// One node's memory use (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "NodeUsage")]
#[derive(Clone, PartialEq)]
pub struct PyNodeUsage {
    /// The node's id.
    id: String,
    /// Its name.
    name: String,
    /// Its memory quota in bytes.
    quota: u64,
    /// Bytes of the quota in use (blocks and cache entries, overhead included).
    used: u64,
    /// Bytes of the quota still free.
    free: u64,
    /// Blocks it holds.
    blocks: u64,
    /// Content bytes of those blocks (without overhead).
    block_bytes: u64,
}

impl From<NodeUsage> for PyNodeUsage {
    fn from(u: NodeUsage) -> Self {
        Self {
            id: u.id.to_string(),
            name: u.name,
            quota: u.quota,
            used: u.used,
            free: u.free,
            blocks: u.blocks,
            block_bytes: u.block_bytes,
        }
    }
}

#[pymethods]
impl PyNodeUsage {
    fn __repr__(&self) -> String {
        format!(
            "NodeUsage(id={:?}, name={:?}, quota={}, used={}, free={}, blocks={}, block_bytes={})",
            self.id, self.name, self.quota, self.used, self.free, self.blocks, self.block_bytes
        )
    }
}

/// The blocks API of a node (the native half of `memmesh.Blocks`).
#[pyclass(frozen, module = "memmesh._native", name = "Blocks")]
pub struct PyBlocks {
    blocks: Blocks,
    runtime: Handle,
}

impl PyBlocks {
    /// Wraps a node's blocks API; `runtime` is its node's runtime.
    pub fn new(blocks: Blocks, runtime: Handle) -> Self {
        Self { blocks, runtime }
    }
}

/// `"local"`, `"auto"` or a peer's node id.
fn placement(py: Python<'_>, p: &str) -> PyResult<Placement> {
    p.parse().into_py(py)
}

/// Parses a block id (`"blake3:<64 hex>"`); a bad one raises `InvalidInputError`.
fn block_id(py: Python<'_>, id: &str) -> PyResult<BlockId> {
    BlockId::parse(id).into_py(py)
}

#[pymethods]
impl PyBlocks {
    /// Stores `data` as a block (`placement`: `"local"`, `"auto"` or a peer's node id)
    /// and returns its id.
    #[pyo3(signature = (data, placement="local"))]
    fn put(&self, py: Python<'_>, data: Bytes, placement: &str) -> PyResult<String> {
        let placement = self::placement(py, placement)?;
        let blocks = self.blocks.clone();
        wait(py, async move { blocks.put(data, placement).await }).map(|id| id.to_string())
    }

    /// [`PyBlocks::put`] for asyncio.
    #[pyo3(signature = (event_loop, future, data, placement="local"))]
    fn put_async(
        &self,
        py: Python<'_>,
        event_loop: Py<PyAny>,
        future: Py<PyAny>,
        data: Bytes,
        placement: &str,
    ) -> PyResult<Pending> {
        let placement = self::placement(py, placement)?;
        let blocks = self.blocks.clone();
        let work = async move { blocks.put(data, placement).await.map(|id| id.to_string()) };
        Ok(spawn_for_asyncio(
            &self.runtime,
            event_loop,
            future,
            work,
            to_py,
        ))
    }

    /// The block `id`, from local RAM or from the peer holding it (verified).
    fn get<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyBytes>> {
        let id = block_id(py, id)?;
        let blocks = self.blocks.clone();
        let data = wait(py, async move { blocks.get(&id).await })?;
        Ok(PyBytes::new(py, &data))
    }

    /// [`PyBlocks::get`] for asyncio.
    fn get_async(
        &self,
        py: Python<'_>,
        event_loop: Py<PyAny>,
        future: Py<PyAny>,
        id: &str,
    ) -> PyResult<Pending> {
        let id = block_id(py, id)?;
        let blocks = self.blocks.clone();
        let work = async move { blocks.get(&id).await };
        Ok(spawn_for_asyncio(
            &self.runtime,
            event_loop,
            future,
            work,
            to_py,
        ))
    }

    /// Frees the block `id` wherever it lives.
    fn free(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        let id = block_id(py, id)?;
        let blocks = self.blocks.clone();
        wait(py, async move { blocks.free(&id).await })
    }

    /// [`PyBlocks::free`] for asyncio.
    fn free_async(
        &self,
        py: Python<'_>,
        event_loop: Py<PyAny>,
        future: Py<PyAny>,
        id: &str,
    ) -> PyResult<Pending> {
        let id = block_id(py, id)?;
        let blocks = self.blocks.clone();
        let work = async move { blocks.free(&id).await };
        Ok(spawn_for_asyncio(
            &self.runtime,
            event_loop,
            future,
            work,
            to_none,
        ))
    }

    /// Memory use of this node and of every reachable live peer, this node first.
    fn stats(&self, py: Python<'_>) -> PyResult<Vec<PyNodeUsage>> {
        let blocks = self.blocks.clone();
        let usages = wait(py, async move { blocks.stats().await })?;
        Ok(usages.into_iter().map(PyNodeUsage::from).collect())
    }

    /// [`PyBlocks::stats`] for asyncio.
    fn stats_async(&self, event_loop: Py<PyAny>, future: Py<PyAny>) -> Pending {
        let blocks = self.blocks.clone();
        let work = async move {
            let usages = blocks.stats().await?;
            Ok(usages
                .into_iter()
                .map(PyNodeUsage::from)
                .collect::<Vec<_>>())
        };
        spawn_for_asyncio(&self.runtime, event_loop, future, work, to_py)
    }

    /// This node's memory use (immediate: no I/O).
    fn local_stats(&self) -> PyNodeUsage {
        self.blocks.local_stats().into()
    }

    fn __repr__(&self) -> String {
        let u = self.blocks.local_stats();
        format!(
            "Blocks(node={:?}, blocks={}, used={})",
            u.id.to_string(),
            u.blocks,
            u.used
        )
    }
}
