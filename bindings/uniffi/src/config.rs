//! Node configuration as a UniFFI record (Swift: `NodeConfig(name: ..., listen: ...)`).
//!
//! Every field has a default equal to the core's `NodeConfig::default()` (the Python
//! suite checks `NodeConfig() == default_node_config()`), so foreign code names only what
//! it changes. The membership and transport records have no literal defaults: each of
//! their fields is optional, `None` keeping the core's value. The record converts into
//! the core's `NodeOptions`, which applies and validates it.
//! Durations are whole milliseconds.

use std::path::PathBuf;
use std::time::Duration;

use memmesh::node::options;
/// The core's congestion controller, crossing as it is (`uniffi::remote` below mirrors
/// its definition for the interface).
pub use memmesh::CongestionControl;

use crate::error::MemmeshError;

/// Everything a node is configured with.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeConfig {
    /// Human-readable name shown to peers (default: `node-<short id>`).
    #[uniffi(default = None)]
    pub name: Option<String>,
    /// QUIC/UDP listen address, e.g. `"0.0.0.0:7400"` or `"127.0.0.1:0"`.
    #[uniffi(default = "0.0.0.0:0")]
    pub listen: String,
    /// Only nodes holding the same secret can talk to this one (default: none). Without
    /// one the node is in protected mode: loopback peers only, no mDNS.
    #[uniffi(default = None)]
    pub cluster_secret: Option<String>,
    /// Without a cluster secret, talk to peers beyond loopback anyway, unauthenticated
    /// (default false: protected mode).
    #[uniffi(default = false)]
    pub open: bool,
    /// Peers to join: `ip:port`, `host:port` or `srv:NAME` (DNS names re-resolved).
    #[uniffi(default = [])]
    pub bootstrap: Vec<String>,
    /// Node ids of this node's own devices: members (same secret) that may also receive
    /// its `private` documents (list each other on both sides).
    #[uniffi(default = [])]
    pub devices: Vec<String>,
    /// Node ids of nodes outside the cluster this node trusts: they connect by their
    /// pinned key without the cluster secret and sync `community` and `commons`
    /// documents only (no cache, blocks, channels, files; never members). A bad id
    /// throws `InvalidInput`.
    #[uniffi(default = [])]
    pub trusted_peers: Vec<String>,
    /// Admit any authenticated node for `commons` documents.
    #[uniffi(default = false)]
    pub serve_commons: bool,
    /// Multicast DNS discovery on the local network.
    #[uniffi(default = true)]
    pub mdns: bool,
    /// Network interfaces mDNS may use, by name (e.g. `["lo"]`); `None` = every one.
    #[uniffi(default = None)]
    pub mdns_interfaces: Option<Vec<String>>,
    /// Bytes of RAM this node lends to the mesh (default 512 MiB).
    #[uniffi(default = 536870912)]
    pub memory_quota: u64,
    /// Directory for the persisted identity and stores (default: in-memory only).
    #[uniffi(default = None)]
    pub data_dir: Option<String>,
    /// Directory where offered transfers are received when no offer handler is set
    /// (default: none, offers are refused).
    #[uniffi(default = None)]
    pub inbox_dir: Option<String>,
    /// Most bytes the files store keeps on disk (default: no limit; needs `data_dir`). A
    /// put over it throws `QuotaExceeded`.
    #[uniffi(default = None)]
    pub disk_quota: Option<u64>,
    /// A passphrase protecting the files store's key (needs `data_dir`): a data dir made
    /// with one opens only with it (a wrong one throws `Unauthorized`).
    #[uniffi(default = None)]
    pub storage_passphrase: Option<String>,
    /// How long a node with a `data_dir` remembers a member it has not seen, in
    /// milliseconds (default 7 days, at most 365 days; 0 remembers nothing). Remembered
    /// members are redialled at start, so a restarted node rejoins without `bootstrap`.
    #[uniffi(default = 604800000)]
    pub known_peers_ttl_ms: u64,
    /// Serve the cache to Redis clients on this TCP address, e.g. `"127.0.0.1:6379"`
    /// (default: off; Redis database `n` is the bucket `db{n}`). Off loopback it needs
    /// `redis_password`.
    #[uniffi(default = None)]
    pub redis_listen: Option<String>,
    /// The password Redis clients must `AUTH` with.
    #[uniffi(default = None)]
    pub redis_password: Option<String>,
    /// Serve `FLUSHDB`/`FLUSHALL` to Redis clients (default false: refused). A database
    /// is a bucket shared by the cluster: a flush clears it on every node.
    #[uniffi(default = false)]
    pub redis_allow_flush: bool,
    /// Bounds of the Redis front (default: the core's).
    #[uniffi(default = None)]
    pub redis_limits: Option<RedisLimitsOptions>,
    /// `"member"` (default) or `"client"`: a client owns no cache partitions, holds no
    /// file replicas and is never chosen for `"auto"` block placement (ADR 0024).
    #[uniffi(default = "member")]
    pub role: String,
    /// Serve the HTTP management API, `/metrics`, the live feed and the dashboard on this
    /// TCP address, e.g. `"127.0.0.1:7480"` (default: off). Off loopback it needs
    /// `http_token`.
    #[uniffi(default = None)]
    pub http_listen: Option<String>,
    /// The bearer token HTTP clients must send (16 bytes or more).
    #[uniffi(default = None)]
    pub http_token: Option<String>,
    /// Worker threads of the node's own runtime.
    #[uniffi(default = 2)]
    pub threads: u32,
    /// Maximum size in bytes of one message, request or response (default 8 MiB).
    #[uniffi(default = 8388608)]
    pub max_message_size: u64,
    /// Largest document in bytes, Automerge format (default 4 MiB): an edit, import,
    /// merge or peer sync past it throws `QuotaExceeded`.
    #[uniffi(default = 4194304)]
    pub docs_max_bytes: u64,
    /// Default deadline of `Channel.request`, in milliseconds.
    #[uniffi(default = 30000)]
    pub request_timeout_ms: u64,
    /// Deadline for a message to be accepted into a peer's channel queue, in milliseconds.
    #[uniffi(default = 30000)]
    pub send_timeout_ms: u64,
    /// Deadline for dialling and authenticating a peer, in milliseconds.
    #[uniffi(default = 5000)]
    pub connect_timeout_ms: u64,
    /// Capacity of each channel's incoming-message queue.
    #[uniffi(default = 1024)]
    pub channel_queue: u32,
    /// Failure detection and membership timing (default: the core's).
    #[uniffi(default = None)]
    pub membership: Option<MembershipOptions>,
    /// QUIC transport tuning (default: the core's).
    #[uniffi(default = None)]
    pub tuning: Option<TuningOptions>,
}

/// Membership timing overrides, in milliseconds; `None` keeps the core's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct MembershipOptions {
    /// How often each node probes a random member (core default 500 ms).
    #[uniffi(default = None)]
    pub probe_period_ms: Option<u64>,
    /// How long to wait for a direct probe reply (200 ms; less than `probe_period_ms`).
    #[uniffi(default = None)]
    pub probe_rtt_ms: Option<u64>,
    /// How long a suspect member has to refute before it is declared down (1 s).
    #[uniffi(default = None)]
    pub suspect_timeout_ms: Option<u64>,
    /// How long after that verdict `PeerDown` is reported (500 ms).
    #[uniffi(default = None)]
    pub down_grace_ms: Option<u64>,
    /// How long a down member is remembered (1 h).
    #[uniffi(default = None)]
    pub forget_after_ms: Option<u64>,
    /// How often the full member list is exchanged with a random member (5 s).
    #[uniffi(default = None)]
    pub full_sync_interval_ms: Option<u64>,
    /// How often a node announces itself to members declared down (1 s).
    #[uniffi(default = None)]
    pub rejoin_interval_ms: Option<u64>,
}

/// Redis front limit overrides; `None` keeps the core's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct RedisLimitsOptions {
    /// Longest bulk string (one argument), in bytes (core default 16 MiB).
    #[uniffi(default = None)]
    pub max_bulk: Option<u64>,
    /// Most arguments of one command (1 Mi).
    #[uniffi(default = None)]
    pub max_array: Option<u64>,
    /// Longest inline command line, in bytes (64 KiB).
    #[uniffi(default = None)]
    pub max_inline: Option<u64>,
    /// Most bytes of unanswered input per connection (64 MiB).
    #[uniffi(default = None)]
    pub max_pending: Option<u64>,
    /// Most clients connected to this node (1024).
    #[uniffi(default = None)]
    pub max_clients: Option<u64>,
    /// Most clients connected from one address (256).
    #[uniffi(default = None)]
    pub max_clients_per_ip: Option<u64>,
    /// Time to finish a frame once begun, in milliseconds (30 s).
    #[uniffi(default = None)]
    pub frame_timeout_ms: Option<u64>,
    /// Most bytes of published messages waiting for one subscriber (32 MiB).
    #[uniffi(default = None)]
    pub max_output: Option<u64>,
}

impl From<&memmesh::resp::RespLimits> for RedisLimitsOptions {
    fn from(l: &memmesh::resp::RespLimits) -> Self {
        Self {
            max_bulk: Some(l.max_bulk as u64),
            max_array: Some(l.max_array as u64),
            max_inline: Some(l.max_inline as u64),
            max_pending: Some(l.max_pending as u64),
            max_clients: Some(l.max_clients as u64),
            max_clients_per_ip: Some(l.max_clients_per_ip as u64),
            frame_timeout_ms: Some(millis(l.frame_timeout)),
            max_output: Some(l.max_output as u64),
        }
    }
}

impl TryFrom<RedisLimitsOptions> for options::RedisLimitsOptions {
    type Error = MemmeshError;

    fn try_from(r: RedisLimitsOptions) -> Result<Self, MemmeshError> {
        let size = |what: &str, n: Option<u64>| n.map(|n| platform_size(what, n)).transpose();
        Ok(Self {
            max_bulk: size("redis_limits.max_bulk", r.max_bulk)?,
            max_array: size("redis_limits.max_array", r.max_array)?,
            max_inline: size("redis_limits.max_inline", r.max_inline)?,
            max_pending: size("redis_limits.max_pending", r.max_pending)?,
            max_clients: size("redis_limits.max_clients", r.max_clients)?,
            max_clients_per_ip: size("redis_limits.max_clients_per_ip", r.max_clients_per_ip)?,
            frame_timeout: r.frame_timeout_ms.map(Duration::from_millis),
            max_output: size("redis_limits.max_output", r.max_output)?,
        })
    }
}

/// The congestion controller of the QUIC transport.
#[uniffi::remote(Enum)]
pub enum CongestionControl {
    /// CUBIC (the default).
    Cubic,
    /// NewReno.
    NewReno,
    /// BBR (experimental).
    Bbr,
}

/// QUIC transport tuning overrides; `None` keeps the core's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct TuningOptions {
    /// Upper bound for path MTU discovery, bytes of UDP payload.
    #[uniffi(default = None)]
    pub mtu_upper_bound: Option<u16>,
    /// Keep segmentation offload (GSO) enabled.
    #[uniffi(default = None)]
    pub segmentation_offload: Option<bool>,
    /// Per-stream receive window in bytes.
    #[uniffi(default = None)]
    pub stream_receive_window: Option<u32>,
    /// Per-connection receive window in bytes.
    #[uniffi(default = None)]
    pub receive_window: Option<u32>,
    /// Per-connection send window in bytes.
    #[uniffi(default = None)]
    pub send_window: Option<u64>,
    /// UDP socket send and receive buffer size in bytes.
    #[uniffi(default = None)]
    pub socket_buffer: Option<u64>,
    /// Concurrent bidirectional streams a peer may open.
    #[uniffi(default = None)]
    pub max_bidi_streams: Option<u32>,
    /// Concurrent unidirectional streams a peer may open.
    #[uniffi(default = None)]
    pub max_uni_streams: Option<u32>,
    /// Keep-alive interval in milliseconds.
    #[uniffi(default = None)]
    pub keep_alive_ms: Option<u64>,
    /// Idle time in milliseconds after which a silent peer's connection is lost.
    #[uniffi(default = None)]
    pub idle_timeout_ms: Option<u64>,
    /// Congestion controller.
    #[uniffi(default = None)]
    pub congestion: Option<CongestionControl>,
}

impl From<memmesh::NodeConfig> for NodeConfig {
    fn from(c: memmesh::NodeConfig) -> Self {
        let membership = (c.membership != memmesh::membership::MembershipConfig::default())
            .then(|| MembershipOptions::from(&c.membership));
        let tuning = (c.tuning != memmesh::TransportTuning::default())
            .then(|| TuningOptions::from(&c.tuning));
        let redis_limits = (c.redis_limits != memmesh::resp::RespLimits::default())
            .then(|| RedisLimitsOptions::from(&c.redis_limits));
        Self {
            name: c.name,
            listen: c.listen,
            cluster_secret: c
                .cluster_secret
                .map(|s| String::from_utf8_lossy(&s).into_owned()),
            open: c.open,
            bootstrap: c.bootstrap,
            devices: c.devices.iter().map(|i| i.to_string()).collect(),
            trusted_peers: c.trusted_peers.iter().map(|i| i.to_string()).collect(),
            serve_commons: c.serve_commons,
            mdns: c.mdns,
            mdns_interfaces: c.mdns_interfaces,
            memory_quota: c.memory_quota,
            data_dir: c.data_dir.map(|d| d.to_string_lossy().into_owned()),
            inbox_dir: c.inbox_dir.map(|d| d.to_string_lossy().into_owned()),
            disk_quota: c.disk_quota,
            storage_passphrase: c.storage_passphrase,
            known_peers_ttl_ms: millis(c.known_peers_ttl),
            redis_listen: c.redis_listen,
            redis_password: c.redis_password,
            redis_allow_flush: c.redis_allow_flush,
            redis_limits,
            role: c.role.as_str().to_string(),
            http_listen: c.http_listen,
            http_token: c.http_token,
            threads: saturating_u32(c.threads),
            max_message_size: c.max_message_size as u64,
            docs_max_bytes: c.docs_max_bytes,
            request_timeout_ms: millis(c.request_timeout),
            send_timeout_ms: millis(c.send_timeout),
            connect_timeout_ms: millis(c.connect_timeout),
            channel_queue: saturating_u32(c.channel_queue),
            membership,
            tuning,
        }
    }
}

impl From<&memmesh::membership::MembershipConfig> for MembershipOptions {
    fn from(m: &memmesh::membership::MembershipConfig) -> Self {
        Self {
            probe_period_ms: Some(millis(m.probe_period)),
            probe_rtt_ms: Some(millis(m.probe_rtt)),
            suspect_timeout_ms: Some(millis(m.suspect_timeout)),
            down_grace_ms: Some(millis(m.down_grace)),
            forget_after_ms: Some(millis(m.forget_after)),
            full_sync_interval_ms: Some(millis(m.full_sync_interval)),
            rejoin_interval_ms: Some(millis(m.rejoin_interval)),
        }
    }
}

impl From<MembershipOptions> for options::MembershipOptions {
    fn from(m: MembershipOptions) -> Self {
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        Self {
            probe_period: ms(m.probe_period_ms),
            probe_rtt: ms(m.probe_rtt_ms),
            suspect_timeout: ms(m.suspect_timeout_ms),
            down_grace: ms(m.down_grace_ms),
            forget_after: ms(m.forget_after_ms),
            full_sync_interval: ms(m.full_sync_interval_ms),
            rejoin_interval: ms(m.rejoin_interval_ms),
        }
    }
}

impl From<&memmesh::TransportTuning> for TuningOptions {
    fn from(t: &memmesh::TransportTuning) -> Self {
        Self {
            mtu_upper_bound: Some(t.mtu_upper_bound),
            segmentation_offload: Some(t.segmentation_offload),
            stream_receive_window: Some(t.stream_receive_window),
            receive_window: Some(t.receive_window),
            send_window: Some(t.send_window),
            socket_buffer: Some(t.socket_buffer as u64),
            max_bidi_streams: Some(t.max_bidi_streams),
            max_uni_streams: Some(t.max_uni_streams),
            keep_alive_ms: Some(millis(t.keep_alive)),
            idle_timeout_ms: Some(millis(t.idle_timeout)),
            congestion: Some(t.congestion),
        }
    }
}

impl TryFrom<TuningOptions> for options::TuningOptions {
    type Error = MemmeshError;

    fn try_from(t: TuningOptions) -> Result<Self, MemmeshError> {
        Ok(Self {
            mtu_upper_bound: t.mtu_upper_bound,
            segmentation_offload: t.segmentation_offload,
            stream_receive_window: t.stream_receive_window,
            receive_window: t.receive_window,
            send_window: t.send_window,
            socket_buffer: t
                .socket_buffer
                .map(|n| platform_size("socket_buffer", n))
                .transpose()?,
            max_bidi_streams: t.max_bidi_streams,
            max_uni_streams: t.max_uni_streams,
            keep_alive: t.keep_alive_ms.map(Duration::from_millis),
            idle_timeout: t.idle_timeout_ms.map(Duration::from_millis),
            congestion: t.congestion,
        })
    }
}

impl TryFrom<NodeConfig> for memmesh::NodeConfig {
    type Error = MemmeshError;

    /// Converts and validates (a bad value is `InvalidInput` naming the option).
    fn try_from(c: NodeConfig) -> Result<Self, MemmeshError> {
        let options = options::NodeOptions {
            name: c.name,
            listen: Some(c.listen),
            cluster_secret: c.cluster_secret.map(String::into_bytes),
            open: Some(c.open),
            bootstrap: Some(c.bootstrap),
            devices: Some(options::node_ids("devices", &c.devices)?),
            trusted_peers: Some(options::node_ids("trusted_peers", &c.trusted_peers)?),
            serve_commons: Some(c.serve_commons),
            mdns: Some(c.mdns),
            mdns_interfaces: c.mdns_interfaces,
            memory_quota: Some(c.memory_quota),
            data_dir: c.data_dir.map(PathBuf::from),
            inbox_dir: c.inbox_dir.map(PathBuf::from),
            disk_quota: c.disk_quota,
            storage_passphrase: c.storage_passphrase,
            known_peers_ttl: Some(Duration::from_millis(c.known_peers_ttl_ms)),
            redis_listen: c.redis_listen,
            redis_password: c.redis_password,
            role: Some(
                c.role
                    .parse::<memmesh::Role>()
                    .map_err(memmesh::Error::from)?,
            ),
            http_listen: c.http_listen,
            http_token: c.http_token,
            threads: Some(c.threads as usize),
            max_message_size: Some(platform_size("max_message_size", c.max_message_size)?),
            docs_max_bytes: Some(c.docs_max_bytes),
            request_timeout: Some(Duration::from_millis(c.request_timeout_ms)),
            send_timeout: Some(Duration::from_millis(c.send_timeout_ms)),
            connect_timeout: Some(Duration::from_millis(c.connect_timeout_ms)),
            channel_queue: Some(c.channel_queue as usize),
            membership: c.membership.map(Into::into).unwrap_or_default(),
            tuning: c
                .tuning
                .map(TryInto::try_into)
                .transpose()?
                .unwrap_or_default(),
            redis_limits: c
                .redis_limits
                .map(TryInto::try_into)
                .transpose()?
                .unwrap_or_default(),
            redis_allow_flush: Some(c.redis_allow_flush),
        };
        Ok(options.into_config()?)
    }
}

/// A byte count as this platform's `usize`.
fn platform_size(what: &str, n: u64) -> Result<usize, MemmeshError> {
    usize::try_from(n).map_err(|_| MemmeshError::InvalidInput {
        message: format!("{what} {n} does not fit this platform"),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The core's default configuration (the same values as `NodeConfig()` with no arguments).
#[uniffi::export]
pub fn default_node_config() -> NodeConfig {
    memmesh::NodeConfig::default().into()
}

/// The literal defaults (`#[uniffi(default = ...)]`) of the record `record` in the Rust
/// `source`, as (field, literal) pairs in order: UniFFI takes only literals there, so tests
/// compare them with the core's `Default` values (see `literal_defaults_are_the_core_defaults`).
#[cfg(test)]
pub(crate) fn literal_defaults(source: &str, record: &str) -> Vec<(String, String)> {
    let start = source
        .find(&format!("pub struct {record} {{"))
        .unwrap_or_else(|| panic!("no record {record}"));
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    let mut out = Vec::new();
    let mut literal = None;
    for line in body.lines().skip(1).map(str::trim) {
        if let Some(rest) = line.strip_prefix("#[uniffi(default = ") {
            literal = rest.strip_suffix(")]").map(str::to_string);
        } else if let Some(field) = line.strip_prefix("pub ") {
            let name = field.split(':').next().unwrap_or_default().to_string();
            out.push((
                name,
                literal.take().expect("every field has a literal default"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A default as UniFFI's literal spells it: `None` for an absent option (UniFFI has no
    /// other literal for an option here), strings quoted, lists empty.
    fn none(v: &Option<impl std::fmt::Debug>) -> String {
        match v {
            None => "None".into(),
            Some(v) => format!("Some({v:?}) (no UniFFI literal)"),
        }
    }

    #[test]
    fn literal_defaults_are_the_core_defaults() {
        // `NodeConfig()` in Swift takes these literals; `default_node_config()` is built
        // from the core's `NodeConfig::default()`. They must not drift.
        let d = default_node_config();
        let list = |v: &[String]| format!("{v:?}");
        let expected = [
            ("name", none(&d.name)),
            ("listen", format!("{:?}", d.listen)),
            ("cluster_secret", none(&d.cluster_secret)),
            ("open", d.open.to_string()),
            ("bootstrap", list(&d.bootstrap)),
            ("devices", list(&d.devices)),
            ("trusted_peers", list(&d.trusted_peers)),
            ("serve_commons", d.serve_commons.to_string()),
            ("mdns", d.mdns.to_string()),
            ("mdns_interfaces", none(&d.mdns_interfaces)),
            ("memory_quota", d.memory_quota.to_string()),
            ("data_dir", none(&d.data_dir)),
            ("inbox_dir", none(&d.inbox_dir)),
            ("disk_quota", none(&d.disk_quota)),
            ("storage_passphrase", none(&d.storage_passphrase)),
            ("known_peers_ttl_ms", d.known_peers_ttl_ms.to_string()),
            ("redis_listen", none(&d.redis_listen)),
            ("redis_password", none(&d.redis_password)),
            ("redis_allow_flush", d.redis_allow_flush.to_string()),
            ("redis_limits", none(&d.redis_limits)),
            ("role", format!("{:?}", d.role)),
            ("http_listen", none(&d.http_listen)),
            ("http_token", none(&d.http_token)),
            ("threads", d.threads.to_string()),
            ("max_message_size", d.max_message_size.to_string()),
            ("docs_max_bytes", d.docs_max_bytes.to_string()),
            ("request_timeout_ms", d.request_timeout_ms.to_string()),
            ("send_timeout_ms", d.send_timeout_ms.to_string()),
            ("connect_timeout_ms", d.connect_timeout_ms.to_string()),
            ("channel_queue", d.channel_queue.to_string()),
            ("membership", none(&d.membership)),
            ("tuning", none(&d.tuning)),
        ]
        .map(|(f, v)| (f.to_string(), v));
        assert_eq!(
            literal_defaults(include_str!("config.rs"), "NodeConfig"),
            expected
        );
        for record in ["MembershipOptions", "TuningOptions", "RedisLimitsOptions"] {
            for (field, literal) in literal_defaults(include_str!("config.rs"), record) {
                assert_eq!(
                    literal, "None",
                    "{record}.{field}: None keeps the core's value"
                );
            }
        }
    }

    #[test]
    fn converts_to_core_and_back() {
        let ffi = NodeConfig {
            name: Some("n".into()),
            listen: "127.0.0.1:0".into(),
            cluster_secret: Some("s3cret".into()),
            open: true,
            bootstrap: vec!["127.0.0.1:7400".into()],
            devices: vec![],
            trusted_peers: vec![memmesh::Keypair::generate().unwrap().node_id().to_string()],
            serve_commons: true,
            mdns: false,
            mdns_interfaces: Some(vec!["lo".into()]),
            memory_quota: 1 << 20,
            data_dir: Some("/tmp/x".into()),
            inbox_dir: Some("/tmp/inbox".into()),
            disk_quota: Some(1 << 30),
            storage_passphrase: Some("pw".into()),
            known_peers_ttl_ms: 60_000,
            redis_listen: Some("127.0.0.1:6379".into()),
            redis_password: Some("rpw".into()),
            redis_allow_flush: true,
            redis_limits: Some(RedisLimitsOptions {
                max_clients: Some(1),
                frame_timeout_ms: Some(2000),
                ..RedisLimitsOptions::default()
            }),
            role: "client".into(),
            http_listen: Some("127.0.0.1:7480".into()),
            http_token: Some("an-http-token-0123".into()),
            threads: 1,
            max_message_size: 4096,
            docs_max_bytes: 12345,
            request_timeout_ms: 1500,
            send_timeout_ms: 2500,
            connect_timeout_ms: 3500,
            channel_queue: 8,
            membership: Some(MembershipOptions {
                suspect_timeout_ms: Some(3000),
                ..MembershipOptions::default()
            }),
            tuning: Some(TuningOptions {
                keep_alive_ms: Some(1000),
                congestion: Some(CongestionControl::Bbr),
                ..TuningOptions::default()
            }),
        };
        let core = memmesh::NodeConfig::try_from(ffi.clone()).unwrap();
        assert_eq!(core.cluster_secret.as_deref(), Some(&b"s3cret"[..]));
        assert!(core.open);
        assert!(!default_node_config().open, "protected mode by default");
        assert_eq!(core.request_timeout, Duration::from_millis(1500));
        assert_eq!(core.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(core.inbox_dir, Some(PathBuf::from("/tmp/inbox")));
        assert_eq!(core.disk_quota, Some(1 << 30));
        assert_eq!(core.storage_passphrase.as_deref(), Some("pw"));
        assert_eq!(core.known_peers_ttl, Duration::from_secs(60));
        assert_eq!(core.redis_listen.as_deref(), Some("127.0.0.1:6379"));
        assert_eq!(core.redis_password.as_deref(), Some("rpw"));
        assert!(core.redis_allow_flush);
        assert_eq!(core.redis_limits.max_clients, 1);
        assert_eq!(core.redis_limits.frame_timeout, Duration::from_secs(2));
        assert_eq!(
            core.redis_limits.max_bulk,
            memmesh::resp::RespLimits::default().max_bulk
        );
        assert_eq!(core.role, memmesh::Role::Client);
        assert_eq!(core.http_listen.as_deref(), Some("127.0.0.1:7480"));
        assert_eq!(core.http_token.as_deref(), Some("an-http-token-0123"));
        assert_eq!(core.docs_max_bytes, 12345);
        assert_eq!(core.trusted_peers.len(), 1);
        assert!(core.serve_commons);
        let bad = NodeConfig {
            devices: vec!["nope".into()],
            ..ffi.clone()
        };
        let e = memmesh::NodeConfig::try_from(bad).unwrap_err();
        assert!(matches!(e, MemmeshError::InvalidInput { .. }), "{e:?}");
        assert_eq!(core.membership.suspect_timeout, Duration::from_secs(3));
        assert_eq!(core.tuning.keep_alive, Duration::from_secs(1));
        assert_eq!(core.tuning.congestion, memmesh::CongestionControl::Bbr);
        let back = NodeConfig::from(core);
        let core_defaults = memmesh::NodeConfig::default();
        assert_eq!(
            back.membership.as_ref().and_then(|m| m.probe_period_ms),
            Some(millis(core_defaults.membership.probe_period)),
            "unset fields come back as the core's defaults"
        );
        assert_eq!(
            NodeConfig {
                membership: None,
                tuning: None,
                redis_limits: None,
                ..back
            },
            NodeConfig {
                membership: None,
                tuning: None,
                redis_limits: None,
                ..ffi
            }
        );
    }

    #[test]
    fn default_records_are_the_core_defaults_and_bad_timings_are_invalid() {
        let d = default_node_config();
        assert_eq!(d.membership, None);
        assert_eq!(d.tuning, None);
        let bad = NodeConfig {
            membership: Some(MembershipOptions {
                probe_rtt_ms: Some(0),
                ..MembershipOptions::default()
            }),
            ..d.clone()
        };
        let e = memmesh::NodeConfig::try_from(bad).unwrap_err();
        assert!(matches!(e, MemmeshError::InvalidInput { .. }), "{e:?}");
        let bad = NodeConfig {
            tuning: Some(TuningOptions {
                idle_timeout_ms: Some(u64::MAX),
                ..TuningOptions::default()
            }),
            ..d
        };
        let e = memmesh::NodeConfig::try_from(bad).unwrap_err();
        assert!(matches!(e, MemmeshError::InvalidInput { .. }), "{e:?}");
    }

    #[test]
    fn known_peers_ttl_is_taken_and_an_absurd_one_is_invalid() {
        let d = default_node_config();
        assert_eq!(d.known_peers_ttl_ms, 7 * 24 * 3600 * 1000);
        for ms in [0, 1000, 365 * 24 * 3600 * 1000] {
            let c = NodeConfig {
                known_peers_ttl_ms: ms,
                ..d.clone()
            };
            let core = memmesh::NodeConfig::try_from(c).unwrap();
            assert_eq!(core.known_peers_ttl, Duration::from_millis(ms));
        }
        for ms in [366 * 24 * 3600 * 1000, u64::MAX] {
            let bad = NodeConfig {
                known_peers_ttl_ms: ms,
                ..d.clone()
            };
            match memmesh::NodeConfig::try_from(bad) {
                Err(MemmeshError::InvalidInput { message }) => {
                    assert!(
                        message.contains("known_peers_ttl must be at most"),
                        "{message}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
