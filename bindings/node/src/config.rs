//! Node options as a JS object (camelCase), converted to a core `NodeConfig`.

use std::time::Duration;

use memmesh::node::options;
use memmesh::NodeConfig;
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;

use crate::error::invalid;

/// Options of `Node.start`. Every field is optional; the core's defaults apply.
#[napi(object)]
#[derive(Default)]
pub struct NodeOptions {
    /// Human-readable name shown to peers (default `node-<short id>`).
    pub name: Option<String>,
    /// QUIC/UDP listen address, e.g. `"127.0.0.1:0"` (default `"0.0.0.0:0"`).
    pub listen: Option<String>,
    /// Only nodes holding the same secret can talk to this one.
    pub cluster_secret: Option<Either<String, Buffer>>,
    /// Without a cluster secret the node is in protected mode (loopback peers only, no
    /// mDNS); `true` lets anyone who can reach it in, unauthenticated (default false).
    pub open: Option<bool>,
    /// Peers to join: `"ip:port"`, `"host:port"` or `"srv:NAME"` (DNS names re-resolved).
    pub bootstrap: Option<Vec<String>>,
    /// This node's own devices by node id: members that may also receive its private
    /// documents.
    pub devices: Option<Vec<String>>,
    /// Outsiders this node trusts by node id: they connect by pinned key without the
    /// cluster secret and sync community and commons documents only.
    pub trusted_peers: Option<Vec<String>>,
    /// Admit any authenticated node for commons documents (default false).
    pub serve_commons: Option<bool>,
    /// Multicast DNS discovery (default true).
    pub mdns: Option<bool>,
    /// Network interfaces mDNS may use, by name (e.g. `["lo"]`; default: every interface).
    pub mdns_interfaces: Option<Vec<String>>,
    /// Bytes of RAM this node lends to the mesh.
    pub memory_quota: Option<f64>,
    /// Directory for the persisted identity and the files store (default: in-memory
    /// identity, no files).
    pub data_dir: Option<String>,
    /// Worker threads of the node's own runtime.
    pub threads: Option<f64>,
    /// Maximum size of one message, request or response, in bytes.
    pub max_message_size: Option<f64>,
    /// Largest document in bytes, Automerge format (default 4 MiB).
    pub docs_max_bytes: Option<f64>,
    /// Default request deadline, in milliseconds.
    pub request_timeout_ms: Option<f64>,
    /// Deadline for a message to be accepted by a peer, in milliseconds.
    pub send_timeout_ms: Option<f64>,
    /// Deadline for dialling and authenticating a peer, in milliseconds.
    pub connect_timeout_ms: Option<f64>,
    /// Capacity of each channel's incoming queue.
    pub channel_queue: Option<f64>,
    /// Directory where offered transfers land when no offer handler is set (default:
    /// none, offers are refused).
    pub inbox_dir: Option<String>,
    /// Most bytes the files store keeps on disk (default: no limit; needs `dataDir`).
    pub disk_quota: Option<f64>,
    /// A passphrase protecting the files store's storage key (needs `dataDir`).
    pub storage_passphrase: Option<String>,
    /// How long a node with a `dataDir` remembers a member it has not seen, in
    /// milliseconds (default 7 days, at most 365 days; 0 remembers nothing). Remembered
    /// members are redialled at start, so a restarted node rejoins without bootstrap.
    pub known_peers_ttl_ms: Option<f64>,
    /// Serve the cache to Redis clients on this TCP address, e.g. `"127.0.0.1:6379"`
    /// (default: off; Redis database `n` is the bucket `db{n}`). Off loopback it needs
    /// `redisPassword`.
    pub redis_listen: Option<String>,
    /// The password Redis clients must `AUTH` with.
    pub redis_password: Option<String>,
    /// `"member"` (default) or `"client"`: a client owns no cache partitions, holds no
    /// file replicas and is never chosen for `"auto"` block placement (ADR 0024).
    pub role: Option<String>,
    /// Serve the HTTP management API, `/metrics`, the live feed and the dashboard on this
    /// TCP address, e.g. `"127.0.0.1:7480"` (default: off). Off loopback it needs
    /// `httpToken`.
    pub http_listen: Option<String>,
    /// The bearer token HTTP clients must send (16 bytes or more).
    pub http_token: Option<String>,
    /// Failure detection and membership timing (default: the core's).
    pub membership: Option<MembershipOptions>,
    /// QUIC transport tuning (default: the core's).
    pub tuning: Option<TuningOptions>,
    /// Serve `FLUSHDB`/`FLUSHALL` to Redis clients (default false: refused). A database
    /// is a bucket shared by the cluster: a flush clears it on every node.
    pub redis_allow_flush: Option<bool>,
    /// Bounds of the Redis front (default: the core's).
    pub redis_limits: Option<RedisLimitsOptions>,
}

/// `redisLimits` of `Node.start`'s options; each field is optional.
#[napi(object)]
#[derive(Default)]
pub struct RedisLimitsOptions {
    /// Longest bulk string (one argument), in bytes (default 16 MiB).
    pub max_bulk: Option<f64>,
    /// Most arguments of one command (default 1 Mi).
    pub max_array: Option<f64>,
    /// Longest inline command line, in bytes (default 64 KiB).
    pub max_inline: Option<f64>,
    /// Most bytes of unanswered input per connection (default 64 MiB).
    pub max_pending: Option<f64>,
    /// Most clients connected to this node (default 1024).
    pub max_clients: Option<f64>,
    /// Most clients connected from one address (default 256).
    pub max_clients_per_ip: Option<f64>,
    /// Time to finish a frame once begun, in milliseconds (default 30 s).
    pub frame_timeout_ms: Option<f64>,
    /// Most bytes of published messages waiting for one subscriber (default 32 MiB).
    pub max_output: Option<f64>,
}

/// `membership` of `Node.start`'s options, in milliseconds; each field is optional.
#[napi(object)]
#[derive(Default)]
pub struct MembershipOptions {
    /// How often each node probes a random member (default 500).
    pub probe_period_ms: Option<f64>,
    /// How long to wait for a direct probe reply (default 200; below `probePeriodMs`).
    pub probe_rtt_ms: Option<f64>,
    /// How long a suspect member has to refute before it is declared down (default 1000).
    pub suspect_timeout_ms: Option<f64>,
    /// How long after that verdict `peerDown` is reported (default 500).
    pub down_grace_ms: Option<f64>,
    /// How long a down member is remembered (default one hour).
    pub forget_after_ms: Option<f64>,
    /// How often the full member list is exchanged with a random member (default 5000).
    pub full_sync_interval_ms: Option<f64>,
    /// How often a node announces itself to members declared down (default 1000).
    pub rejoin_interval_ms: Option<f64>,
}

/// `tuning` of `Node.start`'s options (QUIC transport); each field is optional.
#[napi(object)]
#[derive(Default)]
pub struct TuningOptions {
    /// Upper bound for path MTU discovery, bytes of UDP payload.
    pub mtu_upper_bound: Option<f64>,
    /// Keep segmentation offload (GSO) enabled.
    pub segmentation_offload: Option<bool>,
    /// Per-stream receive window in bytes.
    pub stream_receive_window: Option<f64>,
    /// Per-connection receive window in bytes.
    pub receive_window: Option<f64>,
    /// Per-connection send window in bytes.
    pub send_window: Option<f64>,
    /// UDP socket send and receive buffer size in bytes.
    pub socket_buffer: Option<f64>,
    /// Concurrent bidirectional streams a peer may open.
    pub max_bidi_streams: Option<f64>,
    /// Concurrent unidirectional streams a peer may open.
    pub max_uni_streams: Option<f64>,
    /// Keep-alive interval in milliseconds.
    pub keep_alive_ms: Option<f64>,
    /// Idle time in milliseconds after which a silent peer's connection is lost.
    pub idle_timeout_ms: Option<f64>,
    /// Congestion controller: `"cubic"` (default), `"newreno"` or `"bbr"`.
    pub congestion: Option<String>,
}

/// A JS number that must be a non-negative integer (exactly representable).
pub fn whole(what: &str, n: f64) -> memmesh::Result<u64> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if !n.is_finite() || n < 0.0 || n.fract() != 0.0 || n > MAX_SAFE {
        return Err(invalid(format!(
            "{what} must be a non-negative integer, got {n}"
        )));
    }
    Ok(n as u64)
}

/// A JS number that must be an integer (exactly representable), possibly negative.
pub fn signed(what: &str, n: f64) -> memmesh::Result<i64> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if !n.is_finite() || n.fract() != 0.0 || n.abs() > MAX_SAFE {
        return Err(invalid(format!("{what} must be an integer, got {n}")));
    }
    Ok(n as i64)
}

/// A JS number of milliseconds as a duration.
pub fn millis(what: &str, n: f64) -> memmesh::Result<Duration> {
    Ok(Duration::from_millis(whole(what, n)?))
}

/// An optional JS number as an integer of type `T` (`what` names it in the error).
fn int<T: TryFrom<u64>>(what: &str, n: Option<f64>) -> memmesh::Result<Option<T>> {
    n.map(|n| {
        T::try_from(whole(what, n)?).map_err(|_| invalid(format!("{what} is too large: {n}")))
    })
    .transpose()
}

/// An optional JS number of milliseconds as a duration.
fn ms(what: &str, n: Option<f64>) -> memmesh::Result<Option<Duration>> {
    n.map(|n| millis(what, n)).transpose()
}

impl NodeOptions {
    /// The core configuration these options describe (defaults and validation are the
    /// core's: [`options::NodeOptions::into_config`]).
    pub fn into_config(self) -> memmesh::Result<NodeConfig> {
        options::NodeOptions {
            name: self.name,
            listen: self.listen,
            cluster_secret: self.cluster_secret.map(|s| match s {
                Either::A(text) => text.into_bytes(),
                Either::B(bytes) => bytes.to_vec(),
            }),
            open: self.open,
            bootstrap: self.bootstrap,
            devices: self
                .devices
                .map(|l| options::node_ids("devices", &l))
                .transpose()?,
            trusted_peers: self
                .trusted_peers
                .map(|l| options::node_ids("trustedPeers", &l))
                .transpose()?,
            serve_commons: self.serve_commons,
            mdns: self.mdns,
            mdns_interfaces: self.mdns_interfaces,
            memory_quota: int("memoryQuota", self.memory_quota)?,
            data_dir: self.data_dir.map(Into::into),
            inbox_dir: self.inbox_dir.map(Into::into),
            disk_quota: int("diskQuota", self.disk_quota)?,
            storage_passphrase: self.storage_passphrase,
            known_peers_ttl: ms("knownPeersTtlMs", self.known_peers_ttl_ms)?,
            redis_listen: self.redis_listen,
            redis_password: self.redis_password,
            role: self.role.map(|r| r.parse::<memmesh::Role>()).transpose()?,
            http_listen: self.http_listen,
            http_token: self.http_token,
            threads: int("threads", self.threads)?,
            max_message_size: int("maxMessageSize", self.max_message_size)?,
            docs_max_bytes: int("docsMaxBytes", self.docs_max_bytes)?,
            request_timeout: ms("requestTimeoutMs", self.request_timeout_ms)?,
            send_timeout: ms("sendTimeoutMs", self.send_timeout_ms)?,
            connect_timeout: ms("connectTimeoutMs", self.connect_timeout_ms)?,
            channel_queue: int("channelQueue", self.channel_queue)?,
            membership: self.membership.unwrap_or_default().into_options()?,
            tuning: self.tuning.unwrap_or_default().into_options()?,
            redis_limits: self.redis_limits.unwrap_or_default().into_options()?,
            redis_allow_flush: self.redis_allow_flush,
        }
        .into_config()
    }
}

impl MembershipOptions {
    fn into_options(self) -> memmesh::Result<options::MembershipOptions> {
        Ok(options::MembershipOptions {
            probe_period: ms("membership.probePeriodMs", self.probe_period_ms)?,
            probe_rtt: ms("membership.probeRttMs", self.probe_rtt_ms)?,
            suspect_timeout: ms("membership.suspectTimeoutMs", self.suspect_timeout_ms)?,
            down_grace: ms("membership.downGraceMs", self.down_grace_ms)?,
            forget_after: ms("membership.forgetAfterMs", self.forget_after_ms)?,
            full_sync_interval: ms("membership.fullSyncIntervalMs", self.full_sync_interval_ms)?,
            rejoin_interval: ms("membership.rejoinIntervalMs", self.rejoin_interval_ms)?,
        })
    }
}

impl RedisLimitsOptions {
    fn into_options(self) -> memmesh::Result<options::RedisLimitsOptions> {
        Ok(options::RedisLimitsOptions {
            max_bulk: int("redisLimits.maxBulk", self.max_bulk)?,
            max_array: int("redisLimits.maxArray", self.max_array)?,
            max_inline: int("redisLimits.maxInline", self.max_inline)?,
            max_pending: int("redisLimits.maxPending", self.max_pending)?,
            max_clients: int("redisLimits.maxClients", self.max_clients)?,
            max_clients_per_ip: int("redisLimits.maxClientsPerIp", self.max_clients_per_ip)?,
            frame_timeout: ms("redisLimits.frameTimeoutMs", self.frame_timeout_ms)?,
            max_output: int("redisLimits.maxOutput", self.max_output)?,
        })
    }
}

impl TuningOptions {
    fn into_options(self) -> memmesh::Result<options::TuningOptions> {
        Ok(options::TuningOptions {
            mtu_upper_bound: int("tuning.mtuUpperBound", self.mtu_upper_bound)?,
            segmentation_offload: self.segmentation_offload,
            stream_receive_window: int("tuning.streamReceiveWindow", self.stream_receive_window)?,
            receive_window: int("tuning.receiveWindow", self.receive_window)?,
            send_window: int("tuning.sendWindow", self.send_window)?,
            socket_buffer: int("tuning.socketBuffer", self.socket_buffer)?,
            max_bidi_streams: int("tuning.maxBidiStreams", self.max_bidi_streams)?,
            max_uni_streams: int("tuning.maxUniStreams", self.max_uni_streams)?,
            keep_alive: ms("tuning.keepAliveMs", self.keep_alive_ms)?,
            idle_timeout: ms("tuning.idleTimeoutMs", self.idle_timeout_ms)?,
            congestion: self.congestion.map(|c| c.parse()).transpose()?,
        })
    }
}
