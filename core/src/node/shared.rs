//! The runtime core every service runs on: identity, configuration, the runtime, the
//! connection pool, the cancel token, the memory quota, the membership view and the
//! registry of services. It names no service: each service owns its state and holds an
//! `Arc<Shared>` for the rest.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;

use crate::datadir::DataDirLock;
use crate::error::{Error, Result};
use crate::identity::{Keypair, NodeId};
use crate::memory::MemoryBudget;
use crate::node::config::NodeConfig;
use crate::node::members::Members;
use crate::node::runtime::{NodeRuntime, RunFuture};
use crate::service::Services;
use crate::transport::endpoint::{Loopback, ServeBudget};
use crate::transport::handshake::LocalHello;
use crate::transport::pool::Pool;
use crate::wire::codec::FrameLimits;

/// The node's runtime state. Tasks hold an `Arc<Shared>`; the runtime shutdown drops them.
#[derive(Debug)]
pub struct Shared {
    /// Our identity.
    pub id: NodeId,
    /// Our secret key (kept for later services that sign).
    pub key: Keypair,
    /// Effective configuration.
    pub config: NodeConfig,
    /// What we tell peers in the handshake.
    pub hello: LocalHello,
    /// Our bound address.
    pub local_addr: SocketAddr,
    /// The node runtime.
    pub runtime: NodeRuntime,
    /// Connections by peer.
    pub pool: Pool,
    /// Cancelled when shutdown begins.
    pub cancel: CancellationToken,
    /// The RAM this node lends (`memory_quota`), shared by blocks and cache.
    pub budget: Arc<MemoryBudget>,
    /// The membership view (published by the membership service).
    pub members: Members,
    /// The services' handlers of incoming streams and their shutdown steps.
    pub services: Services,
    endpoint: RwLock<Option<quinn::Endpoint>>,
    /// Connection settings for peers at loopback addresses.
    pub loopback: Loopback,
    data_dir_lock: Mutex<Option<DataDirLock>>,
    /// What every peer's service streams may hold on this node (see `node::connect`).
    pub(crate) serve: std::sync::OnceLock<Arc<ServeBudget>>,
}

impl Shared {
    /// Assembles the shared state.
    pub fn new(
        key: Keypair,
        config: NodeConfig,
        hello: LocalHello,
        (endpoint, loopback): (quinn::Endpoint, Loopback),
        local_addr: SocketAddr,
        runtime: NodeRuntime,
    ) -> Arc<Self> {
        let budget = Arc::new(MemoryBudget::new(config.memory_quota));
        Arc::new(Self {
            budget,
            members: Members::default(),
            services: Services::default(),
            id: key.node_id(),
            key,
            config,
            hello,
            local_addr,
            runtime,
            pool: Pool::default(),
            cancel: CancellationToken::new(),
            endpoint: RwLock::new(Some(endpoint)),
            loopback,
            data_dir_lock: Mutex::new(None),
            serve: std::sync::OnceLock::new(),
        })
    }

    /// The endpoint, or `Closed` once shutdown has begun.
    pub fn endpoint(&self) -> Result<quinn::Endpoint> {
        self.endpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(Error::closed)
    }

    /// Removes the endpoint (shutdown).
    pub fn take_endpoint(&self) -> Option<quinn::Endpoint> {
        self.endpoint
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Holds the data dir's lock for as long as the node runs.
    pub fn hold_data_dir(&self, lock: Option<DataDirLock>) {
        *self.data_dir_lock.lock().unwrap_or_else(|p| p.into_inner()) = lock;
    }

    /// Releases the data dir's lock (once the node's tasks have ended), so a new node may
    /// start on it.
    pub fn release_data_dir(&self) {
        self.data_dir_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Frame limits for service traffic.
    pub fn limits(&self) -> FrameLimits {
        FrameLimits::with_body(self.config.max_message_size)
    }

    /// Runs `fut` on the node runtime (see [`NodeRuntime::run`]).
    pub fn run<F, T>(&self, fut: F) -> RunFuture<F, T>
    where
        F: std::future::Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.run(fut)
    }

    /// Whether this node holds data for others now: its configured role is
    /// [`Role::Member`](crate::peer::Role::Member) and it is not draining (ADR 0024, 0025).
    pub fn holds_data(&self) -> bool {
        self.config.role.holds_data() && !self.members.is_draining()
    }

    /// Whether shutdown has begun.
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
