//! The node: identity, runtime, endpoint and services, behind one handle.

pub(crate) mod addrs;
pub(crate) mod call;
pub mod config;
pub(crate) mod connect;
pub(crate) mod goodbye;
pub mod options;
pub(crate) mod peers;
pub(crate) mod runtime;
pub(crate) mod shared;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::blocks::Blocks;
use crate::cache::{Cache, CacheOptions};
use crate::channel::Channel;
use crate::datadir::DataDirLock;
use crate::discovery::mdns::Mdns;
use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Keypair, NodeId};
use crate::membership::events::Events;
use crate::membership::Membership;
use crate::peer::PeerInfo;
use crate::transport::auth::ClusterKey;
use crate::transport::endpoint::make_endpoint;
use crate::transport::errors::CLOSE_NORMAL;
use crate::transport::handshake::LocalHello;
pub use config::{NodeBuilder, NodeConfig};
use runtime::NodeRuntime;
use shared::Shared;

/// How long shutdown waits for peers to acknowledge the connection close.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// A running memmesh node. Cheap to clone; every clone is the same node.
///
/// The node runs on its own tokio runtime. Its async methods can be awaited from any
/// executor (or from another tokio runtime): the work always runs on the node's runtime.
/// When the last handle (node or channel) is dropped, the node shuts down.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.shared.id)
            .field("name", &self.shared.hello.name)
            .field("addr", &self.shared.local_addr)
            .finish()
    }
}

/// Shuts the node down when the last user-held handle goes away. Tasks hold only
/// `Arc<Shared>`, never the guard, so they cannot keep a node alive by themselves.
pub(crate) struct Guard {
    shared: Arc<Shared>,
    files: crate::files::Files,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.shared.runtime.is_shut_down() {
            debug!(node = %self.shared.id.short(), "last handle dropped: shutting down");
            begin_shutdown(&self.shared);
            self.files.close();
            self.shared.runtime.shutdown_background();
            self.shared.pool.clear();
            self.shared.channels.clear();
            self.shared.transfers.clear_handler();
            self.shared.release_data_dir();
        }
    }
}

/// Parses a user-supplied address (`"host:port"`), resolving names.
pub fn parse_addr(addr: &str) -> Result<SocketAddr> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    addr.to_socket_addrs()
        .map_err(|e| Error::invalid(format!("invalid address {addr:?}: {e}")))?
        .next()
        .ok_or_else(|| Error::invalid(format!("address {addr:?} resolved to nothing")))
}

fn begin_shutdown(shared: &Shared) {
    // The goodbye first, on each connection at once (the endpoint's close only queues it):
    // once tasks are cancelled they drop their connection handles, and quinn closes a
    // dropped connection with code 0, which peers do not take as a goodbye.
    for id in shared.pool.connected() {
        if let Some(conn) = shared.pool.live(&id) {
            conn.close(CLOSE_NORMAL.into(), b"node shutting down");
        }
    }
    if let Some(endpoint) = shared.take_endpoint() {
        endpoint.close(CLOSE_NORMAL.into(), b"node shutting down");
    }
    shared.cancel.cancel();
    if let Some(mdns) = shared.take_mdns() {
        mdns.stop();
    }
}

impl Node {
    /// A builder for a new node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// Starts a node with `config`.
    pub async fn start(config: NodeConfig) -> Result<Node> {
        config.validate()?;
        let listen = parse_addr(&config.listen)?;
        let bootstrap: Vec<SocketAddr> = config
            .bootstrap
            .iter()
            .map(|a| parse_addr(a))
            .collect::<Result<_>>()?;
        // Locked before anything in it is read: one node per data dir.
        let data_dir_lock = config
            .data_dir
            .as_deref()
            .map(DataDirLock::acquire)
            .transpose()?;
        let key = match &config.data_dir {
            Some(dir) => Keypair::load_or_create(dir)?,
            None => Keypair::generate()?,
        };
        let id = key.node_id();
        let runtime = NodeRuntime::new(config.threads, &id.short())?;
        let handle = runtime.handle().clone();
        let files = match open_files(&config, id, &handle).await {
            Ok(files) => files,
            Err(e) => {
                // Dropping a runtime inside an async context would panic.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("node-{}", id.short()));
        let secret = config.cluster_secret.clone();
        // The KDF is memory-hard (tens of ms): keep it off the caller's executor.
        let cluster = handle
            .spawn_blocking(move || ClusterKey::derive(secret.as_deref()))
            .await
            .map_err(|e| Error::internal(format!("deriving the cluster key: {e}")))??
            .with_open(config.open);
        announce_policy(&config, &cluster);
        let tuning = config.tuning.clone();
        let endpoint_key = Keypair::from_pkcs8(key.pkcs8_der())?;
        // The endpoint must be created inside the node runtime.
        let endpoint = handle
            .spawn(async move { make_endpoint(&endpoint_key, listen, &tuning) })
            .await
            .map_err(|e| Error::internal(format!("starting endpoint: {e}")))??;
        let local_addr = endpoint
            .local_addr()
            .map_err(|e| Error::from(e).context("reading the bound address"))?;
        let advertised = if cluster.protected() {
            // Protected mode talks to loopback peers only: tell them a loopback address
            // (a peer on this machine dialling our LAN address would be refused).
            vec![loopback_of(local_addr)]
        } else {
            addrs::advertised(local_addr)
        };
        let hello = LocalHello {
            key: cluster,
            name,
            addrs: advertised,
        };
        let shared = Shared::new(key, config, hello, endpoint.clone(), local_addr, runtime);
        shared.hold_data_dir(data_dir_lock);
        shared.set_membership(Membership::start(&shared)?);
        handle.spawn(connect::accept_loop(shared.clone(), endpoint));
        handle.spawn(crate::cache::maintain::run(shared.clone()));
        if shared.config.mdns && shared.hello.key.protected() {
            info!(
                "mDNS is off: protected mode (no cluster secret) talks to loopback peers \
                 only; set a cluster secret (or open = true) to discover peers on the LAN"
            );
        } else if shared.config.mdns {
            match Mdns::start(&shared) {
                Ok(mdns) => shared.set_mdns(mdns),
                Err(e) => warn!(error = %e, "mDNS discovery is unavailable; continuing without it"),
            }
        }
        for addr in bootstrap {
            handle.spawn(bootstrap_dial(shared.clone(), addr));
        }
        info!(node = %id.short(), name = %shared.hello.name, addr = %local_addr, "node started");
        Ok(Node {
            guard: Arc::new(Guard {
                shared: shared.clone(),
                files,
            }),
            shared,
        })
    }

    /// Starts a node from a thread that is not running an async runtime.
    pub fn start_blocking(config: NodeConfig) -> Result<Node> {
        futures::executor::block_on(Self::start(config))
    }

    /// This node's identity.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.shared.hello.name
    }

    /// The address the node is bound to (an unspecified IP if it listens on all).
    pub fn addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The effective configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.shared.config
    }

    /// A public tag naming this node's cluster (derived from the secret, not revealing it).
    pub fn cluster_tag(&self) -> &str {
        self.shared.hello.key.tag()
    }

    /// Connects to the node at `addr` (e.g. `"127.0.0.1:7400"`) and returns its NodeId.
    /// Reuses the existing connection if a peer at that address is already connected.
    pub async fn connect(&self, addr: &str) -> Result<NodeId> {
        let addr = parse_addr(addr)?;
        self.admits(addr)?;
        if let Some(id) = self.shared.pool.live_at(addr) {
            return Ok(id);
        }
        let shared = self.shared.clone();
        self.shared
            .run(async move { connect::dial(&shared, addr, None).await.map(|(id, _)| id) })
            .await
    }

    /// Connects to `addr`, requiring that the node there is `id` (key pinning).
    pub async fn connect_to(&self, id: NodeId, addr: &str) -> Result<()> {
        let addr = parse_addr(addr)?;
        self.admits(addr)?;
        let shared = self.shared.clone();
        self.shared
            .run(async move { connect::dial(&shared, addr, Some(id)).await.map(|_| ()) })
            .await
    }

    /// Refuses, before any packet is sent, an address protected mode does not dial.
    fn admits(&self, addr: SocketAddr) -> Result<()> {
        match self.shared.hello.key.refusal(addr.ip()) {
            Some(why) => Err(Error::new(ErrorKind::Unauthorized, why)),
            None => Ok(()),
        }
    }

    /// Every peer this node knows, with its membership state and connection status,
    /// sorted by id. Peers that were connected but have not been confirmed by membership
    /// yet are listed as alive; long-dead members are eventually forgotten.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let membership = self.shared.membership().ok();
        let states: std::collections::HashMap<NodeId, crate::peer::PeerState> = membership
            .map(|m| m.with_view(|v| v.members().map(|(m, s)| (m.id, s)).collect()))
            .unwrap_or_default();
        peers::merge(self.shared.pool.snapshot(), &states, |id| {
            membership.and_then(|m| m.advert(id)).map(|a| a.free)
        })
    }

    /// Membership events (PeerUp, PeerSuspect, PeerDown, LeaderChanged) from now on.
    pub fn events(&self) -> Result<Events> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let m = self.shared.membership()?;
        Ok(Events::new(m.subscribe(), self.shared.cancel.clone()))
    }

    /// The leader of the current membership view: the lowest NodeId among live members,
    /// this node included.
    pub fn leader(&self) -> NodeId {
        self.shared
            .membership()
            .map(|m| m.with_view(|v| v.leader()))
            .unwrap_or(self.shared.id)
    }

    /// The channel called `name` (created on first use). Peers can send to a channel only
    /// once this node has opened it.
    pub fn channel(&self, name: &str) -> Result<Channel> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let state = self
            .shared
            .channels
            .get_or_create(name, self.shared.config.channel_queue)?;
        Ok(Channel::new(self.shared.clone(), state, self.guard.clone()))
    }

    /// The blocks API: put bytes into this node's or a peer's RAM, get and free them.
    pub fn blocks(&self) -> Result<Blocks> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(Blocks::new(self.shared.clone(), self.guard.clone()))
    }

    /// The replicated cache bucket `name`, created cluster-wide with `options` on first
    /// use. With `None`, the bucket's existing options are used (learned from peers), or
    /// the defaults for a new bucket. Options that differ from the bucket's existing ones
    /// are refused with `InvalidInput`.
    pub async fn cache(&self, name: &str, options: Option<CacheOptions>) -> Result<Cache> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let shared = self.shared.clone();
        let name = name.to_string();
        let bucket = self
            .shared
            .run(async move { crate::cache::open(&shared, &name, options).await })
            .await?;
        Ok(Cache::new(self.shared.clone(), bucket, self.guard.clone()))
    }

    /// The transfer API: send files and bytes to peers, verified and resumable.
    pub fn transfer(&self) -> Result<crate::transfer::Transfer> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(crate::transfer::Transfer::new(
            self.shared.clone(),
            self.guard.clone(),
        ))
    }

    /// The files store: persistent, encrypted files on this node's disk. Without a
    /// data dir, every call on it fails with `Unsupported`.
    pub fn files(&self) -> Result<crate::files::Files> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(self.guard.files.keeping(self.guard.clone()))
    }

    /// The cache buckets this node knows (its own and those learned from peers), by name.
    pub fn caches(&self) -> Vec<(String, CacheOptions)> {
        crate::cache::known(&self.shared)
    }

    /// The handle of the node's own tokio runtime. Bindings use it to drive futures to
    /// completion without creating a runtime of their own; spawning on it after shutdown
    /// yields tasks that are cancelled at once.
    pub fn runtime_handle(&self) -> tokio::runtime::Handle {
        self.shared.runtime.handle().clone()
    }

    /// Whether [`Node::shutdown`] has been called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Shuts down: closes every connection, ends every task and joins the runtime's
    /// threads. Idempotent; later calls on this node fail with `Closed`.
    pub async fn shutdown(&self) -> Result<()> {
        if self.shared.runtime.is_shut_down() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let _ = self.shared.run(farewell(shared)).await;
        let Some(waiter) = self.stop_runtime() else {
            return Ok(());
        };
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            let _ = waiter.join();
            let _ = tx.send(());
        });
        let _ = rx.await;
        self.shared.release_data_dir();
        Ok(())
    }

    /// [`Node::shutdown`] for threads that are not running an async runtime. Bounded in
    /// time even if called from one of the node's own threads.
    pub fn shutdown_blocking(&self) -> Result<()> {
        if self.shared.runtime.is_shut_down() {
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        self.shared.runtime.handle().spawn(async move {
            let _ = farewell(shared).await;
            let _ = tx.send(());
        });
        if rx.recv_timeout(CLOSE_GRACE * 3).is_err() {
            warn!("the goodbye did not complete in time");
        }
        if let Some(waiter) = self.stop_runtime() {
            let _ = waiter.join();
        }
        self.shared.release_data_dir();
        Ok(())
    }

    /// Clears the tables and stops the runtime on a helper thread, which it returns.
    fn stop_runtime(&self) -> Option<std::thread::JoinHandle<()>> {
        begin_shutdown(&self.shared);
        self.guard.files.close();
        self.shared.channels.clear();
        self.shared.transfers.clear_handler();
        self.shared.pool.clear();
        info!(node = %self.shared.id.short(), "node shut down");
        self.shared.runtime.shutdown()
    }
}

/// Opens the files store in the data dir (off the caller's executor: Argon2id, fsyncs,
/// recovery), or a store that refuses every call when there is no data dir.
async fn open_files(
    config: &NodeConfig,
    id: NodeId,
    handle: &tokio::runtime::Handle,
) -> Result<crate::files::Files> {
    let Some(dir) = config.data_dir.clone() else {
        return Ok(crate::files::Files::without_data_dir());
    };
    let options = crate::files::OpenOptions {
        data_dir: dir,
        passphrase: config.storage_passphrase.clone(),
        quota: config.disk_quota,
        node: id,
    };
    let runtime = handle.clone();
    handle
        .spawn_blocking(move || crate::files::Files::open(options, runtime))
        .await
        .map_err(|e| Error::internal(format!("opening the files store: {e}")))?
}

/// Leaves the cluster, closes every connection, and gives peers a moment to see it.
async fn farewell(shared: Arc<Shared>) -> Result<()> {
    if let Ok(m) = shared.membership() {
        m.leave(CLOSE_GRACE).await;
    }
    goodbye::say(&shared, CLOSE_GRACE).await;
    let endpoint = shared.endpoint().ok();
    begin_shutdown(&shared);
    if let Some(endpoint) = endpoint {
        if tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle())
            .await
            .is_err()
        {
            debug!("peers did not acknowledge the close in time");
        }
    }
    Ok(())
}

/// Logs who this node lets in: protected mode, open, or a (weak?) secret.
fn announce_policy(config: &NodeConfig, key: &ClusterKey) {
    if key.protected() {
        info!(
            "protected mode: no cluster secret, so only loopback peers are accepted and \
             dialled; set a cluster secret (`memmesh secret new`) or open = true"
        );
    } else if !key.has_secret() {
        warn!("open = true without a cluster secret: anyone who can reach this node is a member");
    } else if let Some(why) = config
        .cluster_secret
        .as_deref()
        .and_then(crate::transport::auth::weakness)
    {
        warn!(
            "the cluster secret is weak ({why}): it may be guessed (online, or offline at \
             one Argon2id per guess against the 16-bit mDNS tag); use `memmesh secret new` \
             for a random one"
        );
    }
}

/// The loopback address of the family of `local`, with its port (`local` itself if it
/// is already a specific address).
fn loopback_of(local: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let ip: std::net::IpAddr = if local.is_ipv6() {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
    SocketAddr::new(ip, local.port())
}

/// Dials a bootstrap address, retrying a few times while the node runs.
async fn bootstrap_dial(shared: Arc<Shared>, addr: SocketAddr) {
    if let Some(why) = shared.hello.key.refusal(addr.ip()) {
        warn!(%addr, "not dialling bootstrap peer: {why}");
        return;
    }
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=5 {
        if shared.is_closed() {
            return;
        }
        match connect::dial(&shared, addr, None).await {
            Ok((id, _)) => {
                info!(%addr, peer = %id.short(), "connected to bootstrap peer");
                return;
            }
            Err(e) => debug!(%addr, attempt, error = %e, "bootstrap dial failed"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    warn!(%addr, "could not reach bootstrap peer");
}
