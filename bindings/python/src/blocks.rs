//! Blocks in the RAM of the mesh, as the Python class `memmesh._native.Blocks`, and
//! [`memmesh::NodeUsage`] as `memmesh.NodeUsage`.
//!
//! Block ids cross as text (`"blake3:<64 hex>"`); a placement is `"local"`, `"auto"` or a
//! peer's node id. Each operation returns a [`Pending`] call that the blocking API waits
//! on (GIL released) and the asyncio API awaits (see `bridge.rs`).

use bytes::Bytes;
use pyo3::prelude::*;
use tokio::runtime::Handle;

use memmesh::{BlockId, Blocks, NodeUsage, Placement};

use crate::bridge::{to_none, to_py, Pending};
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
    /// Stores `data` as a block (`placement`: `"local"`, `"auto"` or a peer's node id);
    /// the call returns its id.
    #[pyo3(signature = (data, placement="local"))]
    fn put(&self, py: Python<'_>, data: Bytes, placement: &str) -> PyResult<Pending> {
        let placement = self::placement(py, placement)?;
        let blocks = self.blocks.clone();
        let work = async move { blocks.put(data, placement).await.map(|id| id.to_string()) };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// The block `id`, from local RAM or from the peer holding it (verified).
    fn get(&self, py: Python<'_>, id: &str) -> PyResult<Pending> {
        let id = block_id(py, id)?;
        let blocks = self.blocks.clone();
        let work = async move { blocks.get(&id).await };
        Ok(Pending::new(&self.runtime, work, to_py))
    }

    /// Frees the block `id` wherever it lives.
    fn free(&self, py: Python<'_>, id: &str) -> PyResult<Pending> {
        let id = block_id(py, id)?;
        let blocks = self.blocks.clone();
        let work = async move { blocks.free(&id).await };
        Ok(Pending::new(&self.runtime, work, to_none))
    }

    /// Memory use of this node and of every reachable live peer, this node first.
    fn stats(&self) -> Pending {
        let blocks = self.blocks.clone();
        let work = async move {
            let usages = blocks.stats().await?;
            Ok(usages
                .into_iter()
                .map(PyNodeUsage::from)
                .collect::<Vec<_>>())
        };
        Pending::new(&self.runtime, work, to_py)
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
