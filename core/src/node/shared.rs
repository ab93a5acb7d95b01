//! State shared by the node handle and every task the node runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio_util::sync::CancellationToken;

use crate::blocks::id::BlockId;
use crate::blocks::store::BlockStore;
use crate::cache::state::CacheState;
use crate::channel::registry::ChannelRegistry;
use crate::datadir::DataDirLock;
use crate::discovery::mdns::Mdns;
use crate::error::{Error, Result};
use crate::identity::{Keypair, NodeId};
use crate::membership::Membership;
use crate::memory::MemoryBudget;
use crate::node::config::NodeConfig;
use crate::node::runtime::{NodeRuntime, RunFuture};
use crate::transport::endpoint::ServeBudget;
use crate::transport::handshake::LocalHello;
use crate::transport::pool::Pool;
use crate::wire::codec::FrameLimits;

/// The node's state. Tasks hold an `Arc<Shared>`; the runtime shutdown drops them.
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
    /// Channels by name.
    pub channels: ChannelRegistry,
    /// Cancelled when shutdown begins.
    pub cancel: CancellationToken,
    /// The RAM this node lends (`memory_quota`), shared by blocks and cache.
    pub budget: Arc<MemoryBudget>,
    /// The replicated cache's buckets and routing.
    pub cache: CacheState,
    /// Incoming transfers: offer handler, inbox, deliveries.
    pub transfers: crate::transfer::TransferState,
    blocks: Mutex<BlockStore>,
    placed: Mutex<HashMap<BlockId, NodeId>>,
    endpoint: RwLock<Option<quinn::Endpoint>>,
    mdns: std::sync::Mutex<Option<Mdns>>,
    membership: std::sync::OnceLock<Membership>,
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
        endpoint: quinn::Endpoint,
        local_addr: SocketAddr,
        runtime: NodeRuntime,
    ) -> Arc<Self> {
        let budget = Arc::new(MemoryBudget::new(config.memory_quota));
        Arc::new(Self {
            blocks: Mutex::new(BlockStore::new(budget.clone())),
            placed: Mutex::new(HashMap::new()),
            budget,
            cache: CacheState::new(key.node_id()),
            transfers: crate::transfer::TransferState::new(config.inbox_dir.clone()),
            id: key.node_id(),
            key,
            config,
            hello,
            local_addr,
            runtime,
            pool: Pool::default(),
            channels: ChannelRegistry::default(),
            cancel: CancellationToken::new(),
            endpoint: RwLock::new(Some(endpoint)),
            mdns: std::sync::Mutex::new(None),
            membership: std::sync::OnceLock::new(),
            data_dir_lock: Mutex::new(None),
            serve: std::sync::OnceLock::new(),
        })
    }

    /// The blocks held in this node's RAM.
    pub fn blocks(&self) -> MutexGuard<'_, BlockStore> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the blocks this node put on peers (or found on them) live.
    pub fn placed_blocks(&self) -> MutexGuard<'_, HashMap<BlockId, NodeId>> {
        self.placed.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Installs the membership service (once, at start).
    pub fn set_membership(&self, m: Membership) {
        let _ = self.membership.set(m);
    }

    /// The membership service, or `Closed` if it is not running.
    pub fn membership(&self) -> Result<&Membership> {
        self.membership.get().ok_or_else(Error::closed)
    }

    /// Keeps the running mDNS service (stopped at shutdown).
    pub fn set_mdns(&self, mdns: Mdns) {
        *self.mdns.lock().unwrap_or_else(|p| p.into_inner()) = Some(mdns);
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

    /// Removes the mDNS service, if any.
    pub fn take_mdns(&self) -> Option<Mdns> {
        self.mdns.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Frame limits for service traffic.
    pub fn limits(&self) -> FrameLimits {
        FrameLimits::with_body(self.config.max_message_size)
    }

    /// Runs `fut` on the node runtime (see [`NodeRuntime::run`]).
    pub fn run<F, T>(&self, fut: F) -> RunFuture<T>
    where
        F: std::future::Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.run(fut)
    }

    /// Whether shutdown has begun.
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
