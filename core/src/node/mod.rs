//! The node: identity, runtime, endpoint and services, behind one handle.

pub(crate) mod addrs;
pub(crate) mod call;
pub mod config;
pub(crate) mod connect;
pub(crate) mod docs_key;
pub(crate) mod drain;
pub(crate) mod finish;
pub(crate) mod goodbye;
pub(crate) mod guard;
pub(crate) mod known;
pub(crate) mod members;
pub mod options;
pub(crate) mod outsiders;
pub(crate) mod peers;
pub(crate) mod runtime;
pub(crate) mod shared;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::blocks::service::BlocksService;
use crate::blocks::Blocks;
use crate::cache::service::CacheService;
use crate::cache::{Cache, CacheOptions};
use crate::channel::service::ChannelService;
use crate::channel::Channel;
use crate::datadir::DataDirLock;
use crate::discovery::mdns::{self, Mdns};
use crate::error::{Error, Result};
use crate::files::service::FilesService;
use crate::files::Files;
use crate::identity::{Keypair, NodeId};
use crate::membership::events::Events;
use crate::membership::Membership;
use crate::peer::PeerInfo;
use crate::service::Kind;
use crate::transfer::service::TransferService;
use crate::transport::auth::ClusterKey;
use crate::transport::endpoint::make_endpoint;
use crate::transport::handshake::{HandshakeError, LocalHello};
use crate::transport::trust::TrustPolicy;
use config::ConfigError;
pub use config::{NodeBuilder, NodeConfig};
pub use drain::DrainStatus;
use guard::{begin_shutdown, clear_tables, Guard};
use runtime::{NodeRuntime, TaskPanicked};
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
    parts: Arc<Parts>,
    guard: Arc<Guard>,
}

/// The services of a node, constructed and wired by [`Node::start`]: each owns its state
/// and runs on the node's runtime (`Shared`); none knows the others.
struct Parts {
    membership: Arc<Membership>,
    channels: Arc<ChannelService>,
    blocks: Arc<BlocksService>,
    cache: Arc<CacheService>,
    transfers: Arc<TransferService>,
    files: Files,
    docs: Arc<crate::docs::DocsService>,
    /// The Redis-protocol listener, when `redis_listen` is set (ADR 0021).
    redis: Option<Arc<crate::resp::listener::RedisListener>>,
    /// The HTTP management listener, when `http_listen` is set (ADR 0025).
    http: Option<Arc<crate::http::listener::HttpListener>>,
    /// Draining the node (ADR 0025).
    drain: Arc<drain::DrainService>,
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

/// Parses a user-supplied address (`"host:port"`), resolving names.
pub fn parse_addr(addr: &str) -> Result<SocketAddr> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    addr.to_socket_addrs()
        .map_err(|source| ConfigError::BadAddress {
            addr: addr.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| ConfigError::Unresolved(addr.to_string()).into())
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
        // Addresses are dialled at once; DNS names are resolved (and re-resolved) by the
        // bootstrap resolver (ADR 0027): a name that does not resolve yet is no error.
        let (bootstrap, bootstrap_names) =
            crate::membership::bootstrap_dns::split_entries(&config.bootstrap)?;
        // Bound before the runtime starts: a busy port fails the start at once.
        let redis_socket = match &config.redis_listen {
            Some(a) => Some(crate::resp::listener::bind(parse_addr(a)?)?),
            None => None,
        };
        let http_socket = match &config.http_listen {
            Some(a) => Some(crate::http::listener::bind(parse_addr(a)?)?),
            None => None,
        };
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
            .map_err(|e| Error::from(TaskPanicked(e)).context("deriving the cluster key"))??
            .with_open(config.open);
        announce_policy(&config, &cluster);
        let tuning = config.tuning.clone();
        let endpoint_key = Keypair::from_pkcs8(key.pkcs8_der())?;
        // The endpoint must be created inside the node runtime.
        let (endpoint, loopback) = handle
            .spawn(async move { make_endpoint(&endpoint_key, listen, &tuning) })
            .await
            .map_err(|e| Error::from(TaskPanicked(e)).context("starting the endpoint"))??;
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
        let trust = TrustPolicy {
            devices: config.devices.iter().copied().collect(),
            trusted_peers: config.trusted_peers.iter().copied().collect(),
            serve_commons: config.serve_commons,
        };
        let hello = LocalHello {
            key: cluster,
            name,
            addrs: advertised,
            trust,
            boot: crate::transport::handshake::draw_boot()?,
        };
        let shared = Shared::new(
            key,
            config,
            hello,
            (endpoint.clone(), loopback),
            local_addr,
            runtime,
        );
        shared.hold_data_dir(data_dir_lock);
        let membership = Arc::new(Membership::start(&shared)?);
        shared.members.install(membership.clone());
        let mut parts = Parts::wire(&shared, membership, files);
        if let Some(socket) = redis_socket {
            parts.redis = Some(crate::resp::listener::start(
                &shared,
                parts.cache.clone(),
                parts.channels.clone(),
                socket,
                shared.config.redis_limits,
            )?);
        }
        if let Some(socket) = http_socket {
            let src = crate::http::api::Sources {
                membership: parts.membership.clone(),
                cache: parts.cache.clone(),
                docs: parts.docs.clone(),
                files: parts.files.clone(),
                drain: parts.drain.clone(),
            };
            parts.http = Some(crate::http::listener::start(
                &shared,
                src,
                &parts.transfers,
                socket,
            )?);
        }
        let parts = Arc::new(parts);
        handle.spawn(connect::accept_loop(shared.clone(), endpoint));
        handle.spawn(crate::cache::maintain::run(parts.cache.clone()));
        if shared.config.mdns && shared.hello.key.protected() {
            info!(
                "mDNS is off: protected mode (no cluster secret) talks to loopback peers \
                 only; set a cluster secret (or open = true) to discover peers on the LAN"
            );
        } else if shared.config.mdns {
            match Mdns::start(&shared) {
                Ok(mdns) => shared.services.on_shutdown(mdns::Running::new(mdns)),
                Err(e) => warn!(error = %e, "mDNS discovery is unavailable; continuing without it"),
            }
        }
        for addr in bootstrap {
            handle.spawn(bootstrap_dial(shared.clone(), addr));
        }
        crate::membership::bootstrap_resolver::start(&shared, &parts.membership, bootstrap_names);
        // The members remembered from before a restart are redialled too (ADR 0019).
        if let Some(known) = known::KnownPeersService::start(&shared, &parts.membership) {
            shared.services.on_shutdown(known);
        }
        info!(node = %id.short(), name = %shared.hello.name, addr = %local_addr, "node started");
        Ok(Node {
            guard: Arc::new(Guard::new(shared.clone())),
            parts,
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

    /// The address the Redis-protocol listener is bound to, when `redis_listen` is set
    /// (its real port when the option asked for port 0).
    pub fn redis_addr(&self) -> Option<SocketAddr> {
        self.parts.redis.as_ref().map(|r| r.addr())
    }

    /// The address the HTTP management listener is bound to, when `http_listen` is set
    /// (its real port when the option asked for port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.parts.http.as_ref().map(|h| h.addr())
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
        // A trusted outsider is authenticated by its pinned key: protected mode allows it.
        if !self.shared.hello.trust.dials_as_outsider(&id) {
            self.admits(addr)?;
        }
        let shared = self.shared.clone();
        self.shared
            .run(async move { connect::dial(&shared, addr, Some(id)).await.map(|_| ()) })
            .await
    }

    /// Refuses, before any packet is sent, an address protected mode does not dial.
    fn admits(&self, addr: SocketAddr) -> Result<()> {
        match self.shared.hello.key.refusal(addr.ip()) {
            Some(why) => Err(HandshakeError::Refused(why).into()),
            None => Ok(()),
        }
    }

    /// Every peer this node knows, with its membership state and connection status,
    /// sorted by id. Peers that were connected but have not been confirmed by membership
    /// yet are listed as alive; long-dead members are eventually forgotten.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let membership = &self.parts.membership;
        let (states, roles): (std::collections::HashMap<NodeId, crate::peer::PeerState>, _) =
            membership.with_view(|v| {
                let roles: std::collections::HashMap<NodeId, crate::peer::Role> =
                    v.members().map(|(m, _)| (m.id, m.role)).collect();
                (v.members().map(|(m, s)| (m.id, s)).collect(), roles)
            });
        let mut out = peers::merge(self.shared.pool.snapshot(), &states, |id| {
            membership.advert(id).map(|a| a.free)
        });
        for p in &mut out {
            p.role = roles.get(&p.id).copied().unwrap_or_default();
        }
        out
    }

    /// Membership events (PeerUp, PeerSuspect, PeerDown, LeaderChanged) from now on.
    pub fn events(&self) -> Result<Events> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let m = &self.parts.membership;
        Ok(Events::new(m.subscribe(), self.shared.cancel.clone()))
    }

    /// Drains this node (ADR 0025): it stays up and keeps serving reads, but from now on
    /// advertises the client role, so it owns no cache partitions and takes no new file
    /// holds, and hands its data off: the partitions' new owners pull them from it, and
    /// every file stored here gets a copy on another member. Wait for
    /// [`Node::drain_status`] to be [`done`](DrainStatus::done) before stopping it.
    /// Draining is for good; calling it again only reports.
    pub async fn drain(&self) -> Result<DrainStatus> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let drain = self.parts.drain.clone();
        self.shared.run(async move { drain.start().await }).await
    }

    /// Where this node's drain stands: whether it drains, the cache partitions and the
    /// files still to hand off.
    pub fn drain_status(&self) -> DrainStatus {
        self.parts.drain.status()
    }

    /// The leader of the current membership view: the lowest NodeId among live members,
    /// this node included.
    pub fn leader(&self) -> NodeId {
        self.parts.membership.with_view(|v| v.leader())
    }

    /// The channel called `name` (created on first use). Peers can send to a channel only
    /// once this node has opened it.
    pub fn channel(&self, name: &str) -> Result<Channel> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let channels = &self.parts.channels;
        let state = channels
            .channels
            .get_or_create(name, self.shared.config.channel_queue)?;
        Channel::new(channels.clone(), state, self.guard.clone())
    }

    /// The blocks API: put bytes into this node's or a peer's RAM, get and free them.
    pub fn blocks(&self) -> Result<Blocks> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(Blocks::new(self.parts.blocks.clone(), self.guard.clone()))
    }

    /// The replicated cache bucket `name`, created cluster-wide with `options` on first
    /// use. With `None`, the bucket's existing options are used (learned from peers), or
    /// the defaults for a new bucket. Options that differ from the bucket's existing ones
    /// are refused with `InvalidInput`.
    pub async fn cache(&self, name: &str, options: Option<CacheOptions>) -> Result<Cache> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let cache = self.parts.cache.clone();
        let name = name.to_string();
        let bucket = self
            .shared
            .run(async move { crate::cache::open(&cache, &name, options).await })
            .await?;
        Ok(Cache::new(
            self.parts.cache.clone(),
            bucket,
            self.guard.clone(),
        ))
    }

    /// The transfer API: send files and bytes to peers, verified and resumable.
    pub fn transfer(&self) -> Result<crate::transfer::Transfer> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(crate::transfer::Transfer::new(
            self.parts.transfers.clone(),
            self.guard.clone(),
        ))
    }

    /// The files store: persistent, encrypted files on this node's disk. Without a
    /// data dir, every call on it fails with `Unsupported`.
    pub fn files(&self) -> Result<crate::files::Files> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(self.parts.files.keeping(self.guard.clone()))
    }

    /// The documents: Automerge documents kept in the data dir (encrypted) and synced
    /// with peers as each one's reach allows. Without a data dir they live in memory only
    /// (and `stats().persistent` is false).
    pub fn docs(&self) -> Result<crate::docs::Docs> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        Ok(crate::docs::Docs::new(
            self.parts.docs.clone(),
            self.guard.clone(),
        ))
    }

    /// The cache buckets this node knows (its own and those learned from peers), by name.
    pub fn caches(&self) -> Vec<(String, CacheOptions)> {
        crate::cache::known(&self.parts.cache)
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
        let membership = self.parts.membership.clone();
        let _ = self.shared.run(farewell(shared, membership)).await;
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
        let membership = self.parts.membership.clone();
        self.shared.runtime.handle().spawn(async move {
            let _ = farewell(shared, membership).await;
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
        clear_tables(&self.shared);
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
        .map_err(|e| Error::from(TaskPanicked(e)).context("opening the files store"))?
}

/// Leaves the cluster, closes every connection, and gives peers a moment to see it.
async fn farewell(shared: Arc<Shared>, membership: Arc<Membership>) -> Result<()> {
    membership.leave(CLOSE_GRACE).await;
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

impl NodeBuilder {
    /// Starts the node: creates its runtime, identity and endpoint.
    pub async fn start(self) -> Result<Node> {
        Node::start(self.into_config()).await
    }

    /// Starts the node from a thread that is not inside an async runtime.
    pub fn start_blocking(self) -> Result<Node> {
        Node::start_blocking(self.into_config())
    }
}

impl Parts {
    /// Constructs the services on `shared` and registers what each serves (request
    /// frames, whole streams) and does at shutdown, in the order shutdown runs them.
    fn wire(shared: &Arc<Shared>, membership: Arc<Membership>, files: Files) -> Parts {
        let channels = ChannelService::new(shared.clone());
        let blocks = BlocksService::new(shared.clone());
        let cache = CacheService::new(shared.clone());
        // Fetches serve published content, blocks and stored files by their id.
        let transfers = TransferService::new(
            shared.clone(),
            shared.config.inbox_dir.clone(),
            Some(blocks.clone()),
            Some(Arc::new(files.clone())),
        );
        // Membership advertises the disk the store accepts for others' files.
        membership.lend_disk(Arc::new(files.clone()));
        let files_service = FilesService::start(
            shared.clone(),
            &files,
            Arc::new(transfers.clone()),
            Some(transfers.transfers.progress.clone()),
        );
        let services = &shared.services;
        services.serve(Kind::Channel, channels.clone());
        services.serve(Kind::Membership, membership.clone());
        services.serve(Kind::Blocks, blocks.clone());
        services.serve(Kind::Cache, cache.clone());
        services.serve(Kind::Files, files_service.clone());
        services.take_streams(Kind::Transfer, transfers.clone());
        services.take_streams(Kind::Fetch, transfers.clone());
        services.on_shutdown(channels.clone());
        services.on_shutdown(transfers.clone());
        // The store closes (its committer finishes the queued rows) once tasks stop.
        services.on_shutdown(Arc::new(files.clone()));
        let docs = crate::docs::DocsService::new(shared.clone(), docs_key::opener(&shared.config));
        services.serve(Kind::Docs, docs.clone());
        services.on_shutdown(docs.clone());
        let drain = drain::DrainService::new(
            shared.clone(),
            membership.clone(),
            cache.clone(),
            files_service,
        );
        Parts {
            drain,
            membership,
            channels,
            blocks,
            cache,
            transfers,
            files,
            docs,
            redis: None,
            http: None,
        }
    }
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
