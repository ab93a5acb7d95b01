//! The node, as the Python class `memmesh._native.Node`.
//!
//! Methods that do I/O return a [`Pending`] call that the blocking API waits on and the
//! asyncio API awaits (see `bridge.rs`).

use std::path::PathBuf;

use pyo3::prelude::*;

use memmesh::{Node, NodeId};

use pyo3::types::PyDict;

use crate::blocks::PyBlocks;
use crate::bridge::{to_py, wait, Pending};
use crate::cache;
use crate::channel::PyChannel;
use crate::config::Options;
use crate::docs::PyDocs;
use crate::error::IntoPyResult;
use crate::files::PyFiles;
use crate::membership::PyEvents;
use crate::peer::PyPeerInfo;
use crate::transfer::PyTransfer;

/// A running memmesh node (the native half of `memmesh.Node` and `memmesh.aio.Node`).
#[pyclass(frozen, weakref, module = "memmesh._native", name = "Node")]
pub struct PyNode {
    node: Node,
    id: String,
}

/// Parses a node id given as text.
pub fn parse_id(py: Python<'_>, id: &str) -> PyResult<NodeId> {
    id.parse::<NodeId>().into_py(py)
}

#[pymethods]
impl PyNode {
    /// Starts a node (blocking, without the GIL). `None` keeps the core default.
    #[new]
    #[pyo3(signature = (
        *, name=None, listen=None, cluster_secret=None, open=None, bootstrap=None, devices=None,
        trusted_peers=None, serve_commons=None, mdns=None,
        mdns_interfaces=None, memory_quota=None, data_dir=None, threads=None, max_message_size=None,
        docs_max_bytes=None,
        request_timeout=None, send_timeout=None, connect_timeout=None, channel_queue=None,
        inbox_dir=None, membership=None, tuning=None, disk_quota=None, storage_passphrase=None,
        known_peers_ttl=None,
        redis_listen=None, redis_password=None, role=None, http_listen=None, http_token=None,
        redis_allow_flush=None, redis_limits=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: Option<String>,
        listen: Option<String>,
        cluster_secret: Option<Py<PyAny>>,
        open: Option<bool>,
        bootstrap: Option<Vec<String>>,
        devices: Option<Vec<String>>,
        trusted_peers: Option<Vec<String>>,
        serve_commons: Option<bool>,
        mdns: Option<bool>,
        mdns_interfaces: Option<Vec<String>>,
        memory_quota: Option<i64>,
        data_dir: Option<PathBuf>,
        threads: Option<i64>,
        max_message_size: Option<i64>,
        docs_max_bytes: Option<i64>,
        request_timeout: Option<f64>,
        send_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        channel_queue: Option<i64>,
        inbox_dir: Option<PathBuf>,
        membership: Option<Py<PyDict>>,
        tuning: Option<Py<PyDict>>,
        disk_quota: Option<i64>,
        storage_passphrase: Option<String>,
        known_peers_ttl: Option<f64>,
        redis_listen: Option<String>,
        redis_password: Option<String>,
        role: Option<String>,
        http_listen: Option<String>,
        http_token: Option<String>,
        redis_allow_flush: Option<bool>,
        redis_limits: Option<Py<PyDict>>,
    ) -> PyResult<Self> {
        let config = Options {
            name,
            listen,
            cluster_secret,
            open,
            bootstrap,
            devices,
            trusted_peers,
            serve_commons,
            mdns,
            mdns_interfaces,
            memory_quota,
            data_dir,
            threads,
            max_message_size,
            docs_max_bytes,
            request_timeout,
            send_timeout,
            connect_timeout,
            channel_queue,
            inbox_dir,
            membership,
            tuning,
            disk_quota,
            storage_passphrase,
            known_peers_ttl,
            redis_listen,
            redis_password,
            role,
            http_listen,
            http_token,
            redis_allow_flush,
            redis_limits,
        }
        .into_config(py)?;
        let node = wait(py, Node::start(config))?;
        Ok(Self {
            id: node.id().to_string(),
            node,
        })
    }

    /// This node's id (52 characters of base32).
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// This node's name.
    #[getter]
    fn name(&self) -> &str {
        self.node.name()
    }

    /// The bound address, `"ip:port"`.
    #[getter]
    fn addr(&self) -> String {
        self.node.addr().to_string()
    }

    /// A public tag naming the cluster (derived from the secret, not revealing it).
    #[getter]
    fn cluster_tag(&self) -> &str {
        self.node.cluster_tag()
    }

    /// Whether the node has been shut down.
    #[getter]
    fn closed(&self) -> bool {
        self.node.is_closed()
    }

    /// Connects to `addr`; the call returns the peer's id. With `id`, the peer must be
    /// that node.
    #[pyo3(signature = (addr, id=None))]
    fn connect(&self, py: Python<'_>, addr: &str, id: Option<&str>) -> PyResult<Pending> {
        let (node, addr) = (self.node.clone(), addr.to_string());
        let expected = id.map(|i| parse_id(py, i)).transpose()?;
        let work = async move { connect(node, addr, expected).await.map(|id| id.to_string()) };
        Ok(Pending::new(&self.node.runtime_handle(), work, to_py))
    }

    /// Every peer this node knows, sorted by id.
    fn peers(&self) -> Vec<PyPeerInfo> {
        self.node
            .peers()
            .into_iter()
            .map(PyPeerInfo::from)
            .collect()
    }

    /// The leader of the current membership view (the lowest live id, this node included).
    #[getter]
    fn leader(&self) -> String {
        self.node.leader().to_string()
    }

    /// Membership events from now on.
    fn events(&self, py: Python<'_>) -> PyResult<PyEvents> {
        let events = self.node.events().into_py(py)?;
        Ok(PyEvents::new(events, self.node.clone()))
    }

    /// The channel called `name` (created on first use).
    fn channel(&self, py: Python<'_>, name: &str) -> PyResult<PyChannel> {
        let channel = self.node.channel(name).into_py(py)?;
        Ok(PyChannel::new(channel, self.node.runtime_handle()))
    }

    /// The blocks API (blocks in the RAM of this node and its peers).
    #[getter]
    fn blocks(&self, py: Python<'_>) -> PyResult<PyBlocks> {
        let blocks = self.node.blocks().into_py(py)?;
        Ok(PyBlocks::new(blocks, self.node.runtime_handle()))
    }

    /// The transfer API (verified chunk transfer of files and bytes between nodes).
    #[getter]
    fn transfer(&self, py: Python<'_>) -> PyResult<PyTransfer> {
        let transfer = self.node.transfer().into_py(py)?;
        Ok(PyTransfer::new(transfer, self.node.runtime_handle()))
    }

    /// The files store (persistent, encrypted files on this node's disk).
    #[getter]
    fn files(&self, py: Python<'_>) -> PyResult<PyFiles> {
        let files = self.node.files().into_py(py)?;
        Ok(PyFiles::new(files, self.node.runtime_handle()))
    }

    /// The documents (Automerge documents synced with peers as their reach allows).
    #[getter]
    fn docs(&self, py: Python<'_>) -> PyResult<PyDocs> {
        let docs = self.node.docs().into_py(py)?;
        Ok(PyDocs::new(docs, self.node.runtime_handle()))
    }

    /// The cache bucket `name`, defined cluster-wide on first use. With every option
    /// `None`, the bucket's existing options (or the defaults).
    #[pyo3(signature = (name, ttl=None, max_entries=None, max_bytes=None, replicas=None))]
    fn cache(
        &self,
        py: Python<'_>,
        name: String,
        ttl: Option<f64>,
        max_entries: Option<i64>,
        max_bytes: Option<i64>,
        replicas: Option<i64>,
    ) -> PyResult<Pending> {
        let options = cache::cache_options(py, ttl, max_entries, max_bytes, replicas)?;
        let work = cache::open(self.node.clone(), name, options);
        Ok(Pending::new(&self.node.runtime_handle(), work, to_py))
    }

    /// The cache buckets this node knows: name -> options, sorted by name.
    fn caches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        cache::caches(py, &self.node)
    }

    /// Shuts the node down (blocking, without the GIL). Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let node = self.node.clone();
        py.detach(move || node.shutdown_blocking()).into_py(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "Node(name={:?}, id={:?}, addr={:?}{})",
            self.node.name(),
            self.id,
            self.node.addr().to_string(),
            if self.node.is_closed() {
                ", closed"
            } else {
                ""
            }
        )
    }
}

/// `connect` or `connect_to`, returning the peer's id.
async fn connect(node: Node, addr: String, expected: Option<NodeId>) -> memmesh::Result<NodeId> {
    match expected {
        Some(id) => node.connect_to(id, &addr).await.map(|()| id),
        None => node.connect(&addr).await,
    }
}
