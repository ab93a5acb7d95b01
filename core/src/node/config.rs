//! Node configuration and its builder.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Classify, ErrorKind, Result};
use crate::identity::NodeId;
use crate::membership::MembershipConfig;
use crate::peer::Role;
use crate::transport::TransportTuning;
use crate::wire::codec::MAX_BODY_CEILING;

/// Default RAM a node lends to the mesh: 512 MiB.
pub const DEFAULT_MEMORY_QUOTA: u64 = 512 * 1024 * 1024;
/// Default maximum size of one channel message, request or response: 8 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024 * 1024;
/// Longest accepted timeout or interval (request, send and connect timeouts, membership
/// timings, keep-alive, idle timeout): one day. Anything longer is refused with
/// `InvalidInput`, so that no `now + duration` can overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Largest accepted `channel_queue` (a channel's queue is a tokio channel of that
/// capacity: an absurd one would panic when the channel is created).
pub const MAX_CHANNEL_QUEUE: usize = 1 << 20;
/// Default `docs_max_bytes`: 4 MiB, half the default message size, so that a whole
/// document fits in one sync message.
pub const DEFAULT_DOCS_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Longest accepted `storage_passphrase`, in bytes.
pub const MAX_PASSPHRASE_LEN: usize = 1024;

/// Most node ids accepted in `devices` and in `trusted_peers`.
pub const MAX_TRUST_LIST: usize = 4096;

/// Longest accepted `membership.forget_after`: 30 days.
pub const MAX_FORGET_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// Default `known_peers_ttl`: 7 days.
pub const DEFAULT_KNOWN_PEERS_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest accepted `known_peers_ttl`: 365 days.
pub const MAX_KNOWN_PEERS_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A configuration value out of range (always [`ErrorKind::InvalidInput`], naming the
/// option).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `threads` out of range.
    #[error("threads must be 1..=256, got {0}")]
    Threads(usize),
    /// `max_message_size` out of range.
    #[error("max_message_size must be 1..={MAX_BODY_CEILING} bytes, got {0}")]
    MaxMessageSize(usize),
    /// `channel_queue` out of range.
    #[error("channel_queue must be 1..={MAX_CHANNEL_QUEUE}, got {0}")]
    ChannelQueue(usize),
    /// A `name` longer than 255 bytes (its length).
    #[error("name must be at most 255 bytes")]
    NameTooLong(usize),
    /// A `cluster_secret` longer than the most accepted.
    #[error("cluster_secret must be at most {max} bytes, got {len}")]
    SecretTooLong {
        /// Its length.
        len: usize,
        /// The most accepted.
        max: usize,
    },
    /// A timeout of zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A timeout or interval longer than the most accepted.
    #[error("{what} must be at most {max:?}, got {got:?}")]
    TooLong {
        /// The option.
        what: &'static str,
        /// The most accepted.
        max: Duration,
        /// The value given.
        got: Duration,
    },
    /// An option that only makes sense with a data dir, given without one.
    #[error("{0}")]
    NeedsDataDir(&'static str),
    /// A `storage_passphrase` of a bad length (its length).
    #[error("storage_passphrase must be 1..={MAX_PASSPHRASE_LEN} bytes, got {0}")]
    Passphrase(usize),
    /// An address that is neither `ip:port` nor a name that resolves (the resolver's
    /// error is the source).
    #[error("invalid address {addr:?}: {source}")]
    BadAddress {
        /// The address given.
        addr: String,
        /// Why it could not be resolved.
        source: std::io::Error,
    },
    /// A name that resolved to no address.
    #[error("address {0:?} resolved to nothing")]
    Unresolved(String),
    /// A `redis_listen` on a non-loopback address without a `redis_password`.
    #[error(
        "redis_listen {0:?} is not a loopback address: set redis_password (clients must \
         AUTH), or listen on 127.0.0.1"
    )]
    RedisNeedsPassword(String),
    /// A `redis_password` of a bad length (its length), or one without `redis_listen`.
    #[error("redis_password must be 1..={MAX_PASSPHRASE_LEN} bytes and needs redis_listen, got {0} bytes")]
    RedisPassword(usize),
    /// An `http_listen` on a non-loopback address without an `http_token`.
    #[error(
        "http_listen {0:?} is not a loopback address: set http_token (clients must send \
         it as a bearer token), or listen on 127.0.0.1"
    )]
    HttpNeedsToken(String),
    /// An `http_token` of a bad length (its length), or one without `http_listen`.
    #[error(
        "http_token must be 16..={MAX_PASSPHRASE_LEN} bytes and needs http_listen, got {0} bytes"
    )]
    HttpToken(usize),
    /// A congestion controller name that is none of the known ones.
    #[error("congestion must be \"cubic\", \"newreno\" or \"bbr\", got {0:?}")]
    Congestion(String),
    /// A node id listed in both `devices` and `trusted_peers` (a device is a member).
    #[error("node {0} is listed in both devices and trusted_peers: a device holds the cluster secret, an outsider does not")]
    DeviceAndOutsider(String),
    /// A node id list that is not a list of node ids (the option, then why).
    #[error("{option}: {why}")]
    BadNodeId {
        /// The option (`devices`, `trusted_peers`).
        option: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl Classify for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// Everything a node is configured with. Build one with [`Node::builder`](crate::Node::builder).
/// Its `Debug` output never shows the cluster secret, the storage passphrase or the Redis
/// password.
#[derive(Clone)]
pub struct NodeConfig {
    /// Human-readable name shown to peers (default: `node-<short id>`).
    pub name: Option<String>,
    /// QUIC/UDP listen address (default `0.0.0.0:0`).
    pub listen: String,
    /// Only nodes holding the same secret can talk to this one (at most
    /// [`MAX_SECRET_LEN`](crate::transport::auth::MAX_SECRET_LEN) bytes). Make one with
    /// `memmesh secret new`; a short or repetitive secret is reported as weak at start.
    pub cluster_secret: Option<Vec<u8>>,
    /// Without a cluster secret, a node is in *protected mode*: it accepts and dials
    /// loopback peers only, and mDNS is off (ADR 0014). `open = true` lets it talk to
    /// anyone who can reach it, unauthenticated. No effect when a secret is set.
    pub open: bool,
    /// Peers to join (ADR 0027), each `IP:PORT` (dialled at start), `HOST:PORT` (every
    /// A/AAAA address of `HOST`, at `PORT`) or `srv:NAME` (the SRV records of `NAME`
    /// give targets and ports, e.g. `srv:_memmesh._udp.memmesh.default.svc.cluster.local`
    /// for a Kubernetes headless service). Names are resolved (system resolver:
    /// `/etc/resolv.conf`, `/etc/hosts`) at start and again while the node runs (every
    /// 30 s or the records' TTL, every 2 s while alone): new addresses are dialled,
    /// addresses gone from DNS no longer are. A name that does not resolve yet is retried,
    /// not an error; bad syntax fails the start with `InvalidInput`.
    pub bootstrap: Vec<String>,
    /// This node's own devices (ADR 0028): members (they hold the cluster secret) that
    /// may also receive its `private` documents. List each other on both sides.
    pub devices: Vec<NodeId>,
    /// Nodes outside the cluster this node trusts (ADR 0028): they connect with their own
    /// pinned key, without the cluster secret, and may sync `community` and `commons`
    /// documents and nothing else (no cache, blocks, channels, files, transfers; never
    /// members). This node dials them the same way; list each other on both sides.
    pub trusted_peers: Vec<NodeId>,
    /// Admit any authenticated node without the cluster secret to sync `commons`
    /// documents, and nothing else (default: off).
    pub serve_commons: bool,
    /// Multicast DNS discovery.
    pub mdns: bool,
    /// Network interfaces mDNS may use, by name (e.g. `["lo"]`, `["veth0"]`); `None` means
    /// every interface. Tests and benchmarks restrict it so that no multicast leaves the
    /// machine.
    pub mdns_interfaces: Option<Vec<String>>,
    /// Bytes of RAM this node lends to the mesh.
    pub memory_quota: u64,
    /// Directory for the identity and persistent stores (default: in-memory only).
    pub data_dir: Option<PathBuf>,
    /// Directory where offered transfers are received when no offer handler is set
    /// (default: none, offers are refused).
    pub inbox_dir: Option<PathBuf>,
    /// Most bytes the files store keeps on disk (ciphertext), or `None` for no limit. A
    /// put over it fails with `QuotaExceeded`. Needs `data_dir`.
    pub disk_quota: Option<u64>,
    /// A passphrase protecting the files store's storage key (Argon2id). A data dir made
    /// with one cannot be opened without it, and one made without refuses one. Needs
    /// `data_dir`.
    pub storage_passphrase: Option<String>,
    /// How long a node with a `data_dir` remembers a member it has not seen (default 7
    /// days, at most [`MAX_KNOWN_PEERS_TTL`]). Remembered members are redialled at start,
    /// so a restarted node rejoins its cluster without bootstrap addresses or mDNS.
    /// `Duration::ZERO` remembers nothing (and forgets what was remembered).
    pub known_peers_ttl: Duration,
    /// Serve the cache to Redis clients (RESP2/RESP3) on this TCP address, e.g.
    /// `"127.0.0.1:6379"` (default: off). Redis database `n` is the bucket `db{n}` (ADR
    /// 0021). A non-loopback address needs `redis_password`.
    pub redis_listen: Option<String>,
    /// The password Redis clients must give (`AUTH`, `HELLO 3 AUTH default ...`) before
    /// any other command. Needs `redis_listen`.
    pub redis_password: Option<String>,
    /// Bounds of the Redis front: bulk length, arguments, clients, a subscriber's output
    /// buffer, ... (default: [`RespLimits::default`]).
    pub redis_limits: RespLimits,
    /// Serve `FLUSHDB` and `FLUSHALL` to Redis clients (default: off, they are refused).
    /// A database is a bucket shared by the whole cluster, so a flush through this node
    /// clears it on every node (ADR 0021).
    pub redis_allow_flush: bool,
    /// What this node does for the mesh (ADR 0024): a [`Role::Client`] uses every
    /// capability but owns no cache partitions, holds no file replicas and is never
    /// chosen for `Auto` block placement (default [`Role::Member`]).
    pub role: Role,
    /// Serve the HTTP management API, Prometheus metrics, the live feed and the dashboard
    /// on this TCP address, e.g. `"127.0.0.1:7480"` (default: off; ADR 0025). A
    /// non-loopback address needs `http_token`.
    pub http_listen: Option<String>,
    /// The bearer token HTTP clients must send (`Authorization: Bearer ...`) on every
    /// route but `/health`. Needs `http_listen`.
    pub http_token: Option<String>,
    /// Worker threads of the node's own tokio runtime.
    pub threads: usize,
    /// Maximum size of one message, request or response.
    pub max_message_size: usize,
    /// Largest size of one document in the Automerge format: a local edit, an import, a
    /// merge or a peer's sync that would make it larger is refused (`QuotaExceeded`).
    pub docs_max_bytes: u64,
    /// Default deadline of [`crate::Channel::request`].
    pub request_timeout: Duration,
    /// Deadline for a message to be accepted into a peer's channel queue.
    pub send_timeout: Duration,
    /// Deadline for dialling and authenticating a peer.
    pub connect_timeout: Duration,
    /// Capacity of each channel's incoming-message queue.
    pub channel_queue: usize,
    /// QUIC transport tuning.
    pub tuning: TransportTuning,
    /// Failure detection and membership timing.
    pub membership: MembershipConfig,
}

/// The bounds of the RESP front. Every frame is checked against them before any of it is
/// buffered beyond them, so a client cannot make the node hold unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Longest bulk string (a key or a value) accepted.
    pub max_bulk: usize,
    /// Most elements of one array (the arguments of one command).
    pub max_array: usize,
    /// Longest inline command, or any line of a frame (type, length, simple string).
    pub max_inline: usize,
    /// Deepest nesting of aggregates (commands are one level deep).
    pub max_depth: usize,
    /// Most bytes received and not yet answered on one connection.
    pub max_pending: usize,
    /// Most connections the node serves at once.
    pub max_clients: usize,
    /// Most connections from one source address at once.
    pub max_clients_per_ip: usize,
    /// How long a client may take to finish a frame it started before it is dropped.
    pub frame_timeout: Duration,
    /// Most bytes of published messages waiting to be written to one subscriber; a
    /// subscriber further behind is disconnected, as Redis's
    /// `client-output-buffer-limit pubsub` does.
    pub max_output: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        Self {
            max_bulk: 16 * 1024 * 1024,
            max_array: 1024 * 1024,
            max_inline: 64 * 1024,
            max_depth: 8,
            max_pending: 64 * 1024 * 1024,
            max_clients: 1024,
            max_clients_per_ip: 256,
            frame_timeout: Duration::from_secs(30),
            max_output: 32 * 1024 * 1024,
        }
    }
}

/// What `Debug` shows of a secret: whether one is set, never its bytes.
fn redacted<T>(secret: &Option<T>) -> &'static str {
    match secret {
        Some(_) => "<redacted>",
        None => "<none>",
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured without `..`: a new field fails to compile until it is shown here
        // (or redacted, if it is a secret).
        let NodeConfig {
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
            inbox_dir,
            disk_quota,
            storage_passphrase,
            threads,
            max_message_size,
            docs_max_bytes,
            request_timeout,
            send_timeout,
            connect_timeout,
            channel_queue,
            tuning,
            membership,
            known_peers_ttl,
            redis_listen,
            redis_password,
            redis_limits,
            redis_allow_flush,
            role,
            http_listen,
            http_token,
        } = self;
        f.debug_struct("NodeConfig")
            .field("name", name)
            .field("listen", listen)
            .field("cluster_secret", &redacted(cluster_secret))
            .field("open", open)
            .field("bootstrap", bootstrap)
            .field("devices", devices)
            .field("trusted_peers", trusted_peers)
            .field("serve_commons", serve_commons)
            .field("mdns", mdns)
            .field("mdns_interfaces", mdns_interfaces)
            .field("memory_quota", memory_quota)
            .field("data_dir", data_dir)
            .field("inbox_dir", inbox_dir)
            .field("disk_quota", disk_quota)
            .field("storage_passphrase", &redacted(storage_passphrase))
            .field("threads", threads)
            .field("max_message_size", max_message_size)
            .field("docs_max_bytes", docs_max_bytes)
            .field("request_timeout", request_timeout)
            .field("send_timeout", send_timeout)
            .field("connect_timeout", connect_timeout)
            .field("channel_queue", channel_queue)
            .field("tuning", tuning)
            .field("membership", membership)
            .field("known_peers_ttl", known_peers_ttl)
            .field("redis_listen", redis_listen)
            .field("redis_password", &redacted(redis_password))
            .field("redis_limits", redis_limits)
            .field("redis_allow_flush", redis_allow_flush)
            .field("role", role)
            .field("http_listen", http_listen)
            .field("http_token", &redacted(http_token))
            .finish()
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            name: None,
            listen: "0.0.0.0:0".to_string(),
            cluster_secret: None,
            open: false,
            bootstrap: Vec::new(),
            devices: Vec::new(),
            trusted_peers: Vec::new(),
            serve_commons: false,
            mdns: true,
            mdns_interfaces: None,
            memory_quota: DEFAULT_MEMORY_QUOTA,
            data_dir: None,
            inbox_dir: None,
            disk_quota: None,
            storage_passphrase: None,
            known_peers_ttl: DEFAULT_KNOWN_PEERS_TTL,
            redis_listen: None,
            redis_password: None,
            redis_limits: RespLimits::default(),
            redis_allow_flush: false,
            role: Role::Member,
            http_listen: None,
            http_token: None,
            threads: 2,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            docs_max_bytes: DEFAULT_DOCS_MAX_BYTES,
            request_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            channel_queue: 1024,
            tuning: TransportTuning::default(),
            membership: MembershipConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Checks values a user could get wrong, with a clear message for each.
    pub fn validate(&self) -> Result<()> {
        if self.threads == 0 || self.threads > 256 {
            return Err(ConfigError::Threads(self.threads).into());
        }
        if self.max_message_size == 0 || self.max_message_size > MAX_BODY_CEILING {
            return Err(ConfigError::MaxMessageSize(self.max_message_size).into());
        }
        if self.docs_max_bytes == 0 {
            return Err(ConfigError::Zero("docs_max_bytes").into());
        }
        for (option, list) in [
            ("devices", &self.devices),
            ("trusted_peers", &self.trusted_peers),
        ] {
            if list.len() > MAX_TRUST_LIST {
                return Err(ConfigError::BadNodeId {
                    option,
                    why: format!("at most {MAX_TRUST_LIST} node ids, got {}", list.len()),
                }
                .into());
            }
        }
        if let Some(both) = self.devices.iter().find(|d| self.trusted_peers.contains(d)) {
            return Err(ConfigError::DeviceAndOutsider(both.to_string()).into());
        }
        if self.channel_queue == 0 || self.channel_queue > MAX_CHANNEL_QUEUE {
            return Err(ConfigError::ChannelQueue(self.channel_queue).into());
        }
        if let Some(name) = &self.name {
            if name.len() > 255 {
                return Err(ConfigError::NameTooLong(name.len()).into());
            }
        }
        if let Some(secret) = &self.cluster_secret {
            let max = crate::transport::auth::MAX_SECRET_LEN;
            if secret.len() > max {
                return Err(ConfigError::SecretTooLong {
                    len: secret.len(),
                    max,
                }
                .into());
            }
        }
        if self.data_dir.is_none() {
            if self.storage_passphrase.is_some() {
                return Err(ConfigError::NeedsDataDir(
                    "storage_passphrase needs a data_dir (it protects the files stored there)",
                )
                .into());
            }
            if self.disk_quota.is_some() {
                return Err(ConfigError::NeedsDataDir(
                    "disk_quota needs a data_dir (files are stored there)",
                )
                .into());
            }
        }
        if let Some(pass) = &self.storage_passphrase {
            if pass.is_empty() || pass.len() > MAX_PASSPHRASE_LEN {
                return Err(ConfigError::Passphrase(pass.len()).into());
            }
        }
        self.validate_redis()?;
        self.validate_http()?;
        self.membership.validate()?;
        for (what, d) in [
            ("request_timeout", self.request_timeout),
            ("send_timeout", self.send_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero(what).into());
            }
        }
        let m = &self.membership;
        for (what, d, max) in [
            ("request_timeout", self.request_timeout, MAX_TIMEOUT),
            ("send_timeout", self.send_timeout, MAX_TIMEOUT),
            ("connect_timeout", self.connect_timeout, MAX_TIMEOUT),
            ("membership.probe_period", m.probe_period, MAX_TIMEOUT),
            ("membership.probe_rtt", m.probe_rtt, MAX_TIMEOUT),
            ("membership.suspect_timeout", m.suspect_timeout, MAX_TIMEOUT),
            ("membership.down_grace", m.down_grace, MAX_TIMEOUT),
            (
                "membership.full_sync_interval",
                m.full_sync_interval,
                MAX_TIMEOUT,
            ),
            ("membership.rejoin_interval", m.rejoin_interval, MAX_TIMEOUT),
            ("membership.forget_after", m.forget_after, MAX_FORGET_AFTER),
            ("known_peers_ttl", self.known_peers_ttl, MAX_KNOWN_PEERS_TTL),
            ("tuning.keep_alive", self.tuning.keep_alive, MAX_TIMEOUT),
            ("tuning.idle_timeout", self.tuning.idle_timeout, MAX_TIMEOUT),
        ] {
            if d > max {
                return Err(ConfigError::TooLong { what, max, got: d }.into());
            }
        }
        Ok(())
    }
}

impl NodeConfig {
    /// `redis_listen` and `redis_password`: a password of a sane length, only with a
    /// listener, and required unless the listener is on loopback.
    fn validate_redis(&self) -> Result<()> {
        if let Some(p) = &self.redis_password {
            if p.is_empty() || p.len() > MAX_PASSPHRASE_LEN || self.redis_listen.is_none() {
                return Err(ConfigError::RedisPassword(p.len()).into());
            }
        }
        let Some(addr) = &self.redis_listen else {
            return Ok(());
        };
        if !is_loopback(addr) && self.redis_password.is_none() {
            return Err(ConfigError::RedisNeedsPassword(addr.clone()).into());
        }
        Ok(())
    }

    /// `http_listen` and `http_token`: a token of a sane length, only with a listener,
    /// and required unless the listener is on loopback (ADR 0025).
    fn validate_http(&self) -> Result<()> {
        if let Some(t) = &self.http_token {
            if t.len() < 16 || t.len() > MAX_PASSPHRASE_LEN || self.http_listen.is_none() {
                return Err(ConfigError::HttpToken(t.len()).into());
            }
        }
        let Some(addr) = &self.http_listen else {
            return Ok(());
        };
        if !is_loopback(addr) && self.http_token.is_none() {
            return Err(ConfigError::HttpNeedsToken(addr.clone()).into());
        }
        Ok(())
    }
}

/// Whether `addr` (`ip:port` or `localhost:port`) is a loopback address.
fn is_loopback(addr: &str) -> bool {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => addr
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

/// Builds and starts a [`Node`](crate::Node).
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .start() is awaited"]
pub struct NodeBuilder {
    config: NodeConfig,
}

impl NodeBuilder {
    /// A builder with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder starting from `config`.
    pub fn from_config(config: NodeConfig) -> Self {
        Self { config }
    }

    /// Human-readable name shown to peers.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// QUIC/UDP listen address, e.g. `"0.0.0.0:7400"` or `"127.0.0.1:0"`.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.config.listen = addr.into();
        self
    }

    /// Cluster secret: only nodes with the same secret can talk to this one.
    pub fn cluster_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.config.cluster_secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Lets a node without a cluster secret talk to non-loopback peers (it is in
    /// protected mode otherwise: loopback peers only, no mDNS). See [`NodeConfig::open`].
    pub fn open(mut self, open: bool) -> Self {
        self.config.open = open;
        self
    }

    /// Peers to join: `IP:PORT`, `HOST:PORT` or `srv:NAME` entries, DNS names re-resolved
    /// while the node runs. See [`NodeConfig::bootstrap`].
    pub fn bootstrap<I, S>(mut self, addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.bootstrap = addrs.into_iter().map(Into::into).collect();
        self
    }

    /// Enables or disables mDNS discovery.
    pub fn mdns(mut self, enabled: bool) -> Self {
        self.config.mdns = enabled;
        self
    }

    /// Restricts mDNS to these network interfaces (by name).
    pub fn mdns_interfaces<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.mdns_interfaces = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Serves the cache to Redis clients on this TCP address (see
    /// [`NodeConfig::redis_listen`]).
    pub fn redis_listen(mut self, addr: impl Into<String>) -> Self {
        self.config.redis_listen = Some(addr.into());
        self
    }

    /// The password Redis clients must give (see [`NodeConfig::redis_password`]).
    pub fn redis_password(mut self, password: impl Into<String>) -> Self {
        self.config.redis_password = Some(password.into());
        self
    }

    /// Bounds of the Redis front (see [`NodeConfig::redis_limits`]).
    pub fn redis_limits(mut self, limits: RespLimits) -> Self {
        self.config.redis_limits = limits;
        self
    }

    /// Serve `FLUSHDB`/`FLUSHALL` to Redis clients (see
    /// [`NodeConfig::redis_allow_flush`]).
    pub fn redis_allow_flush(mut self, allow: bool) -> Self {
        self.config.redis_allow_flush = allow;
        self
    }

    /// Serves the HTTP management API on this TCP address (see
    /// [`NodeConfig::http_listen`]).
    pub fn http_listen(mut self, addr: impl Into<String>) -> Self {
        self.config.http_listen = Some(addr.into());
        self
    }

    /// The bearer token HTTP clients must send (see [`NodeConfig::http_token`]).
    pub fn http_token(mut self, token: impl Into<String>) -> Self {
        self.config.http_token = Some(token.into());
        self
    }

    /// Bytes of RAM this node lends to the mesh.
    pub fn memory_quota(mut self, bytes: u64) -> Self {
        self.config.memory_quota = bytes;
        self
    }

    /// Directory where offered transfers are received (when no offer handler is set).
    pub fn inbox_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.inbox_dir = Some(dir.into());
        self
    }

    /// Directory for the persisted identity (and later, persistent stores).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// Most bytes the files store keeps on disk (needs a data dir).
    pub fn disk_quota(mut self, bytes: u64) -> Self {
        self.config.disk_quota = Some(bytes);
        self
    }

    /// A passphrase protecting the files store's storage key (needs a data dir).
    pub fn storage_passphrase(mut self, passphrase: impl Into<String>) -> Self {
        self.config.storage_passphrase = Some(passphrase.into());
        self
    }

    /// How long an unseen member is remembered (`Duration::ZERO`: never). See
    /// This node's role (see [`NodeConfig::role`]).
    pub fn role(mut self, role: Role) -> Self {
        self.config.role = role;
        self
    }

    /// [`NodeConfig::known_peers_ttl`].
    pub fn known_peers_ttl(mut self, ttl: Duration) -> Self {
        self.config.known_peers_ttl = ttl;
        self
    }

    /// Worker threads of the node's own runtime.
    pub fn threads(mut self, n: usize) -> Self {
        self.config.threads = n;
        self
    }

    /// Maximum size of one message, request or response.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// This node's devices (see [`NodeConfig::devices`]).
    pub fn devices(mut self, ids: impl IntoIterator<Item = NodeId>) -> Self {
        self.config.devices = ids.into_iter().collect();
        self
    }

    /// The outsiders this node trusts (see [`NodeConfig::trusted_peers`]).
    pub fn trusted_peers(mut self, ids: impl IntoIterator<Item = NodeId>) -> Self {
        self.config.trusted_peers = ids.into_iter().collect();
        self
    }

    /// Serve commons documents to any authenticated node (see
    /// [`NodeConfig::serve_commons`]).
    pub fn serve_commons(mut self, on: bool) -> Self {
        self.config.serve_commons = on;
        self
    }

    /// Largest size of one document (see [`NodeConfig::docs_max_bytes`]).
    pub fn docs_max_bytes(mut self, bytes: u64) -> Self {
        self.config.docs_max_bytes = bytes;
        self
    }

    /// Default request deadline.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.config.request_timeout = d;
        self
    }

    /// Deadline for a message to be accepted by a peer.
    pub fn send_timeout(mut self, d: Duration) -> Self {
        self.config.send_timeout = d;
        self
    }

    /// Deadline for dialling and authenticating a peer.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Capacity of each channel's incoming queue.
    pub fn channel_queue(mut self, n: usize) -> Self {
        self.config.channel_queue = n;
        self
    }

    /// QUIC transport tuning.
    pub fn tuning(mut self, tuning: TransportTuning) -> Self {
        self.config.tuning = tuning;
        self
    }

    /// Failure detection and membership timing.
    pub fn membership(mut self, membership: MembershipConfig) -> Self {
        self.config.membership = membership;
        self
    }

    /// The configuration built so far.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The configuration built (`start` is in `node/mod.rs`, the layer that has `Node`).
    pub(crate) fn into_config(self) -> NodeConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let config = NodeConfig {
            cluster_secret: Some(b"cluster-secret-marker".to_vec()),
            storage_passphrase: Some("passphrase-marker".into()),
            redis_password: Some("redis-marker".into()),
            data_dir: Some("/tmp/d".into()),
            ..NodeConfig::default()
        };
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("marker"), "{shown}");
        // The bytes of the secret, as a derived Debug would print them, are absent too.
        assert!(!shown.contains("99, 108, 117"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("/tmp/d"),
            "{shown}"
        );
        assert!(format!("{:?}", NodeConfig::default()).contains("<none>"));
    }

    #[test]
    fn files_options_need_a_data_dir_and_a_sane_passphrase() {
        let with_dir = || NodeConfig {
            data_dir: Some("/tmp/d".into()),
            ..NodeConfig::default()
        };
        let cases = [
            (
                NodeConfig {
                    storage_passphrase: Some("pw".into()),
                    ..NodeConfig::default()
                },
                "storage_passphrase needs a data_dir",
            ),
            (
                NodeConfig {
                    disk_quota: Some(1),
                    ..NodeConfig::default()
                },
                "disk_quota needs a data_dir",
            ),
            (
                NodeConfig {
                    storage_passphrase: Some(String::new()),
                    ..with_dir()
                },
                "storage_passphrase must be",
            ),
            (
                NodeConfig {
                    storage_passphrase: Some("x".repeat(MAX_PASSPHRASE_LEN + 1)),
                    ..with_dir()
                },
                "storage_passphrase must be",
            ),
        ];
        for (config, words) in cases {
            let e = config.validate().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
            assert!(e.message().contains(words), "{e}");
        }
        let ok = NodeConfig {
            storage_passphrase: Some("pw".into()),
            disk_quota: Some(1 << 30),
            ..with_dir()
        };
        assert!(ok.validate().is_ok());
        let b = NodeBuilder::new().disk_quota(5).storage_passphrase("p");
        assert_eq!(b.config().disk_quota, Some(5));
        assert_eq!(b.config().storage_passphrase.as_deref(), Some("p"));
    }

    #[test]
    fn absurd_durations_are_refused() {
        assert!(NodeConfig::default().validate().is_ok());
        let at_max = NodeConfig {
            request_timeout: MAX_TIMEOUT,
            ..NodeConfig::default()
        };
        assert!(at_max.validate().is_ok());
        type Set = Box<dyn Fn(&mut NodeConfig)>;
        let cases: Vec<(&str, Set)> = vec![
            (
                "request_timeout",
                Box::new(|c| c.request_timeout = Duration::MAX),
            ),
            ("send_timeout", Box::new(|c| c.send_timeout = Duration::MAX)),
            (
                "connect_timeout",
                Box::new(|c| c.connect_timeout = MAX_TIMEOUT * 2),
            ),
            (
                "probe_period",
                Box::new(|c| c.membership.probe_period = Duration::MAX),
            ),
            (
                "suspect_timeout",
                Box::new(|c| c.membership.suspect_timeout = Duration::MAX),
            ),
            (
                "down_grace",
                Box::new(|c| c.membership.down_grace = Duration::MAX),
            ),
            (
                "full_sync_interval",
                Box::new(|c| c.membership.full_sync_interval = Duration::MAX),
            ),
            (
                "rejoin_interval",
                Box::new(|c| c.membership.rejoin_interval = Duration::MAX),
            ),
            (
                "forget_after",
                Box::new(|c| c.membership.forget_after = MAX_FORGET_AFTER + Duration::from_secs(1)),
            ),
            (
                "keep_alive",
                Box::new(|c| c.tuning.keep_alive = Duration::MAX),
            ),
            (
                "known_peers_ttl",
                Box::new(|c| c.known_peers_ttl = MAX_KNOWN_PEERS_TTL + Duration::from_secs(1)),
            ),
            (
                "idle_timeout",
                Box::new(|c| c.tuning.idle_timeout = Duration::MAX),
            ),
        ];
        for (what, set) in cases {
            let mut c = NodeConfig::default();
            set(&mut c);
            let e = c.validate().expect_err(what);
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{what}");
            assert!(e.message().contains(what), "{what}: {}", e.message());
        }
        let forget = NodeConfig {
            membership: MembershipConfig {
                forget_after: MAX_FORGET_AFTER,
                ..MembershipConfig::default()
            },
            ..NodeConfig::default()
        };
        assert!(forget.validate().is_ok());
        for ttl in [Duration::ZERO, MAX_KNOWN_PEERS_TTL] {
            let c = NodeBuilder::new().known_peers_ttl(ttl).into_config();
            assert!(c.validate().is_ok());
            assert_eq!(c.known_peers_ttl, ttl);
        }
        assert_eq!(
            NodeConfig::default().known_peers_ttl,
            DEFAULT_KNOWN_PEERS_TTL
        );
    }

    #[test]
    fn secrets_and_queues_are_bounded_and_open_defaults_off() {
        let c = NodeConfig::default();
        assert!(!c.open);
        let long = NodeConfig {
            cluster_secret: Some(vec![b'x'; crate::transport::auth::MAX_SECRET_LEN + 1]),
            ..NodeConfig::default()
        };
        assert_eq!(
            long.validate().unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
        assert!(NodeBuilder::new().open(true).config().open);
        let queue = NodeConfig {
            channel_queue: usize::MAX,
            ..NodeConfig::default()
        };
        assert_eq!(
            queue.validate().unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn redis_listen_off_loopback_needs_a_password() {
        let on = |addr: &str, pass: Option<&str>| NodeConfig {
            redis_listen: Some(addr.to_string()),
            redis_password: pass.map(str::to_string),
            ..NodeConfig::default()
        };
        assert!(on("127.0.0.1:6379", None).validate().is_ok());
        assert!(on("[::1]:0", None).validate().is_ok());
        assert!(on("localhost:6379", None).validate().is_ok());
        assert!(on("0.0.0.0:6379", Some("pw")).validate().is_ok());
        for (addr, pass, what) in [
            ("0.0.0.0:6379", None, "redis_password"),
            ("10.0.0.1:6379", None, "redis_password"),
            ("127.0.0.1:6379", Some(""), "redis_password"),
        ] {
            let e = on(addr, pass).validate().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{addr}");
            assert!(e.message().contains(what), "{addr}: {}", e.message());
        }
        let orphan = NodeConfig {
            redis_password: Some("pw".into()),
            ..NodeConfig::default()
        };
        assert!(orphan
            .validate()
            .unwrap_err()
            .message()
            .contains("redis_listen"));
    }
}
