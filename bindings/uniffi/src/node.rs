//! The node: start, identity, peers, channels, blocks, cache buckets, transfer, shutdown.

use std::sync::Arc;

use crate::blocks::Blocks;
use crate::cache::{Cache, CacheInfo, CacheOptions};
use crate::channel::Channel;
use crate::config::NodeConfig;
use crate::docs::Docs;
use crate::error::MemmeshError;
use crate::events::Events;
use crate::files::Files;
use crate::parse_node_id;
use crate::peer::PeerInfo;
use crate::transfer::Transfer;

/// A running memmesh node (Swift: `let node = try await Node.start(config: NodeConfig(...))`).
///
/// The node runs on its own runtime; its async methods can be awaited from any task.
/// When the last reference (node, channel, blocks or cache) goes away, the node shuts
/// down.
#[derive(Debug, uniffi::Object)]
pub struct Node {
    inner: memmesh::Node,
}

#[uniffi::export]
impl Node {
    /// Starts a node with `config`.
    #[uniffi::constructor]
    pub async fn start(config: NodeConfig) -> Result<Arc<Self>, MemmeshError> {
        let config = memmesh::NodeConfig::try_from(config)?;
        let inner = memmesh::Node::start(config).await?;
        Ok(Arc::new(Self { inner }))
    }

    /// This node's id (52 base32 characters).
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// This node's name.
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The address the node is bound to (`"ip:port"`).
    pub fn addr(&self) -> String {
        self.inner.addr().to_string()
    }

    /// A public tag naming this node's cluster (derived from the secret, not revealing it).
    pub fn cluster_tag(&self) -> String {
        self.inner.cluster_tag().to_string()
    }

    /// Connects to the node at `addr` (e.g. `"127.0.0.1:7400"`) and returns its id.
    pub async fn connect(&self, addr: String) -> Result<String, MemmeshError> {
        Ok(self.inner.connect(&addr).await?.to_string())
    }

    /// Connects to `addr`, requiring that the node there is `id` (key pinning).
    pub async fn connect_to(&self, id: String, addr: String) -> Result<(), MemmeshError> {
        let id = parse_node_id(&id)?;
        Ok(self.inner.connect_to(id, &addr).await?)
    }

    /// Every peer this node knows, with its state.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.peers().into_iter().map(PeerInfo::from).collect()
    }

    /// Membership events (peer up, suspect, down, leader changed) from now on.
    pub fn events(&self) -> Result<Arc<Events>, MemmeshError> {
        Ok(Arc::new(Events::new(self.inner.events()?)))
    }

    /// The leader of the current membership view: the lowest node id among live
    /// members, this node included.
    pub fn leader(&self) -> String {
        self.inner.leader().to_string()
    }

    /// The channel called `name` (created on first use). Peers can send to a channel
    /// only once this node has opened it.
    pub fn channel(&self, name: String) -> Result<Arc<Channel>, MemmeshError> {
        Ok(Arc::new(Channel::new(self.inner.channel(&name)?)))
    }

    /// The blocks API: put bytes into this node's or a peer's RAM, get them back by id.
    pub fn blocks(&self) -> Result<Arc<Blocks>, MemmeshError> {
        Ok(Arc::new(Blocks::new(self.inner.blocks()?)))
    }

    /// The transfer API: send files and bytes to peers, publish and fetch, verified
    /// chunk by chunk and resumable.
    pub fn transfer(&self) -> Result<Arc<Transfer>, MemmeshError> {
        Ok(Arc::new(Transfer::new(self.inner.clone())?))
    }

    /// The files store: persistent, encrypted files on this node's disk (its data dir),
    /// kept across restarts. Without a data dir every call throws `Unsupported`.
    pub fn files(&self) -> Result<Arc<Files>, MemmeshError> {
        Ok(Arc::new(Files::new(self.inner.files()?)))
    }

    /// The documents: Automerge documents kept in the data dir (encrypted) and synced
    /// with peers as each one's reach allows. Without a data dir every call throws
    /// `Unsupported`.
    pub fn docs(&self) -> Result<Arc<Docs>, MemmeshError> {
        Ok(Arc::new(Docs::new(self.inner.docs()?)))
    }

    /// The replicated cache bucket `name`, created cluster-wide with `options` on first
    /// use. With `None`, the bucket's existing options are used (learned from peers), or
    /// the defaults for a new bucket. Options that differ from the bucket's existing
    /// ones are refused with `InvalidInput`.
    #[uniffi::method(default(options = None))]
    pub async fn cache(
        &self,
        name: String,
        options: Option<CacheOptions>,
    ) -> Result<Arc<Cache>, MemmeshError> {
        let options = options.map(memmesh::CacheOptions::from);
        Ok(Arc::new(Cache::new(
            self.inner.cache(&name, options).await?,
        )))
    }

    /// The cache buckets this node knows, sorted by name.
    pub fn caches(&self) -> Vec<CacheInfo> {
        self.inner
            .caches()
            .into_iter()
            .map(CacheInfo::from)
            .collect()
    }

    /// Whether `shutdown` has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Shuts down: closes every connection and stops the node's runtime. Idempotent;
    /// later calls on this node throw `Closed`.
    pub async fn shutdown(&self) -> Result<(), MemmeshError> {
        // The core's shutdown waits (briefly, synchronously) for peers to see the close
        // and for the runtime threads to stop; do that on a helper thread so the foreign
        // executor's thread (Swift's cooperative pool, Python's event loop) never blocks.
        let node = self.inner.clone();
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::Builder::new()
            .name("memmesh-shutdown".into())
            .spawn(move || {
                let _ = tx.send(node.shutdown_blocking());
            })
            .map_err(|e| MemmeshError::Internal {
                message: format!("starting the shutdown thread: {e}"),
            })?;
        rx.await.map_err(|_| MemmeshError::Internal {
            message: "the shutdown thread stopped without an answer".into(),
        })??;
        Ok(())
    }
}
