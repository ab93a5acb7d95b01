//! The keyword arguments of `memmesh.Node(...)` as a [`memmesh::NodeConfig`].

use std::path::PathBuf;
use std::time::Duration;

use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use memmesh::node::options::{
    node_ids, MembershipOptions, NodeOptions, RedisLimitsOptions, TuningOptions,
};
use memmesh::NodeConfig;

use crate::error::{invalid, IntoPyResult};

/// Node options as given by Python; `None` keeps the core default.
#[derive(Default)]
pub struct Options {
    /// Human-readable name.
    pub name: Option<String>,
    /// Listen address.
    pub listen: Option<String>,
    /// Cluster secret (`str` or `bytes`).
    pub cluster_secret: Option<Py<PyAny>>,
    /// Without a secret, accept non-loopback peers anyway (protected mode otherwise).
    pub open: Option<bool>,
    /// Peers to join: `ip:port`, `host:port` or `srv:NAME` (DNS names re-resolved).
    pub bootstrap: Option<Vec<String>>,
    /// This node's devices (node ids): members that may receive private documents.
    pub devices: Option<Vec<String>>,
    /// Outsiders trusted by node id, without the cluster secret (community documents).
    pub trusted_peers: Option<Vec<String>>,
    /// Admit any authenticated node for commons documents.
    pub serve_commons: Option<bool>,
    /// mDNS discovery.
    pub mdns: Option<bool>,
    /// Interfaces mDNS may use, by name (`None`: all).
    pub mdns_interfaces: Option<Vec<String>>,
    /// Bytes of RAM lent to the mesh.
    pub memory_quota: Option<i64>,
    /// Directory for the identity and persistent stores.
    pub data_dir: Option<PathBuf>,
    /// Directory where offered transfers land when no offer handler is set.
    pub inbox_dir: Option<PathBuf>,
    /// Worker threads of the node runtime.
    pub threads: Option<i64>,
    /// Largest message, request or response, in bytes.
    pub max_message_size: Option<i64>,
    /// Largest document, in bytes (Automerge format).
    pub docs_max_bytes: Option<i64>,
    /// Default request deadline, in seconds.
    pub request_timeout: Option<f64>,
    /// Deadline for a peer to accept a message, in seconds.
    pub send_timeout: Option<f64>,
    /// Deadline for dialling a peer, in seconds.
    pub connect_timeout: Option<f64>,
    /// Capacity of each channel's incoming queue.
    pub channel_queue: Option<i64>,
    /// Membership timing: a dict of seconds (`probe_period`, `suspect_timeout`, …).
    pub membership: Option<Py<PyDict>>,
    /// QUIC transport tuning: a dict (`keep_alive` in seconds, `congestion`, …).
    pub tuning: Option<Py<PyDict>>,
    /// Most bytes the files store keeps on disk.
    pub disk_quota: Option<i64>,
    /// A passphrase protecting the files store's storage key.
    pub storage_passphrase: Option<String>,
    /// How long an unseen member is remembered, in seconds (0: never).
    pub known_peers_ttl: Option<f64>,
    /// TCP address of the Redis-protocol listener.
    pub redis_listen: Option<String>,
    /// The password Redis clients must give.
    pub redis_password: Option<String>,
    /// `"member"` (default) or `"client"` (ADR 0024).
    pub role: Option<String>,
    /// TCP address of the HTTP management listener.
    pub http_listen: Option<String>,
    /// The bearer token HTTP clients must send.
    pub http_token: Option<String>,
    /// Serve `FLUSHDB`/`FLUSHALL` to Redis clients.
    pub redis_allow_flush: Option<bool>,
    /// Bounds of the Redis front: a dict of ints (`max_clients`, …) and `frame_timeout`
    /// in seconds.
    pub redis_limits: Option<Py<PyDict>>,
}

impl Options {
    /// The core configuration (defaults and validation are the core's); a bad value
    /// raises `InvalidInputError`.
    pub fn into_config(self, py: Python<'_>) -> PyResult<NodeConfig> {
        fn n<T: TryFrom<i64>>(py: Python<'_>, what: &str, v: Option<i64>) -> PyResult<Option<T>> {
            v.map(|v| count(py, what, v)).transpose()
        }
        let s = |what: &str, v: Option<f64>| v.map(|v| seconds(py, what, v)).transpose();
        let options = NodeOptions {
            name: self.name,
            listen: self.listen,
            cluster_secret: self
                .cluster_secret
                .map(|secret| secret_bytes(secret.bind(py)))
                .transpose()?,
            open: self.open,
            bootstrap: self.bootstrap,
            devices: self
                .devices
                .map(|l| node_ids("devices", &l))
                .transpose()
                .into_py(py)?,
            trusted_peers: self
                .trusted_peers
                .map(|l| node_ids("trusted_peers", &l))
                .transpose()
                .into_py(py)?,
            serve_commons: self.serve_commons,
            mdns: self.mdns,
            mdns_interfaces: self.mdns_interfaces,
            memory_quota: n(py, "memory_quota", self.memory_quota)?,
            data_dir: self.data_dir,
            inbox_dir: self.inbox_dir,
            disk_quota: n(py, "disk_quota", self.disk_quota)?,
            storage_passphrase: self.storage_passphrase,
            known_peers_ttl: s("known_peers_ttl", self.known_peers_ttl)?,
            redis_listen: self.redis_listen,
            redis_password: self.redis_password,
            role: self
                .role
                .map(|r| r.parse::<memmesh::Role>().map_err(memmesh::Error::from))
                .transpose()
                .into_py(py)?,
            http_listen: self.http_listen,
            http_token: self.http_token,
            threads: n(py, "threads", self.threads)?,
            max_message_size: n(py, "max_message_size", self.max_message_size)?,
            docs_max_bytes: n(py, "docs_max_bytes", self.docs_max_bytes)?,
            request_timeout: s("request_timeout", self.request_timeout)?,
            send_timeout: s("send_timeout", self.send_timeout)?,
            connect_timeout: s("connect_timeout", self.connect_timeout)?,
            channel_queue: n(py, "channel_queue", self.channel_queue)?,
            membership: match self.membership {
                Some(d) => membership(d.bind(py))?,
                None => MembershipOptions::default(),
            },
            tuning: match self.tuning {
                Some(d) => tuning(d.bind(py))?,
                None => TuningOptions::default(),
            },
            redis_limits: match self.redis_limits {
                Some(d) => redis_limits(d.bind(py))?,
                None => RedisLimitsOptions::default(),
            },
            redis_allow_flush: self.redis_allow_flush,
        };
        options.into_config().into_py(py)
    }
}

/// The keys of a `membership` or `tuning` dict, with their values, or `InvalidInputError`
/// for a key that is not a `str`.
fn items<'py>(dict: &Bound<'py, PyDict>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    dict.iter()
        .map(|(k, v)| {
            let key = k
                .extract::<String>()
                .map_err(|_| invalid(dict.py(), "option names must be str"))?;
            Ok((key, v))
        })
        .collect()
}

/// A dict value as `T`, or `InvalidInputError` naming the option and the expected type.
fn value<'py, T: FromPyObjectOwned<'py>>(
    what: &str,
    v: &Bound<'py, PyAny>,
    expected: &str,
) -> PyResult<T> {
    v.extract::<T>()
        .map_err(|_| invalid(v.py(), format!("{what} must be {expected}")))
}

fn secs(what: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    seconds(v.py(), what, value(what, v, "a number of seconds")?)
}

fn int<T: TryFrom<i64>>(what: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    count(v.py(), what, value(what, v, "an int")?)
}

fn unknown(py: Python<'_>, group: &str, key: &str, known: &[&str]) -> PyErr {
    invalid(
        py,
        format!(
            "unknown {group} option {key:?}; known options: {}",
            known.join(", ")
        ),
    )
}

/// `membership={...}`: durations in seconds.
fn membership(dict: &Bound<'_, PyDict>) -> PyResult<MembershipOptions> {
    const KNOWN: &[&str] = &[
        "probe_period",
        "probe_rtt",
        "suspect_timeout",
        "down_grace",
        "forget_after",
        "full_sync_interval",
        "rejoin_interval",
    ];
    let mut m = MembershipOptions::default();
    for (key, v) in items(dict)? {
        let slot = match key.as_str() {
            "probe_period" => &mut m.probe_period,
            "probe_rtt" => &mut m.probe_rtt,
            "suspect_timeout" => &mut m.suspect_timeout,
            "down_grace" => &mut m.down_grace,
            "forget_after" => &mut m.forget_after,
            "full_sync_interval" => &mut m.full_sync_interval,
            "rejoin_interval" => &mut m.rejoin_interval,
            _ => return Err(unknown(dict.py(), "membership", &key, KNOWN)),
        };
        *slot = Some(secs(&format!("membership.{key}"), &v)?);
    }
    Ok(m)
}

/// `tuning={...}`: byte counts and stream limits as ints, `keep_alive` and
/// `idle_timeout` in seconds, `segmentation_offload` a bool, `congestion` a str.
fn tuning(dict: &Bound<'_, PyDict>) -> PyResult<TuningOptions> {
    const KNOWN: &[&str] = &[
        "mtu_upper_bound",
        "segmentation_offload",
        "stream_receive_window",
        "receive_window",
        "send_window",
        "socket_buffer",
        "max_bidi_streams",
        "max_uni_streams",
        "keep_alive",
        "idle_timeout",
        "congestion",
    ];
    let py = dict.py();
    let mut t = TuningOptions::default();
    for (key, v) in items(dict)? {
        let what = format!("tuning.{key}");
        match key.as_str() {
            "mtu_upper_bound" => t.mtu_upper_bound = Some(int(&what, &v)?),
            "segmentation_offload" => t.segmentation_offload = Some(value(&what, &v, "a bool")?),
            "stream_receive_window" => t.stream_receive_window = Some(int(&what, &v)?),
            "receive_window" => t.receive_window = Some(int(&what, &v)?),
            "send_window" => t.send_window = Some(int(&what, &v)?),
            "socket_buffer" => t.socket_buffer = Some(int(&what, &v)?),
            "max_bidi_streams" => t.max_bidi_streams = Some(int(&what, &v)?),
            "max_uni_streams" => t.max_uni_streams = Some(int(&what, &v)?),
            "keep_alive" => t.keep_alive = Some(secs(&what, &v)?),
            "idle_timeout" => t.idle_timeout = Some(secs(&what, &v)?),
            "congestion" => {
                let name: String = value(&what, &v, "a str")?;
                t.congestion = Some(name.parse().into_py(py)?);
            }
            _ => return Err(unknown(py, "tuning", &key, KNOWN)),
        }
    }
    Ok(t)
}

/// `redis_limits={...}`: ints, and `frame_timeout` in seconds.
fn redis_limits(dict: &Bound<'_, PyDict>) -> PyResult<RedisLimitsOptions> {
    const KNOWN: &[&str] = &[
        "max_bulk",
        "max_array",
        "max_inline",
        "max_pending",
        "max_clients",
        "max_clients_per_ip",
        "frame_timeout",
        "max_output",
    ];
    let mut r = RedisLimitsOptions::default();
    for (key, v) in items(dict)? {
        let what = format!("redis_limits.{key}");
        let slot = match key.as_str() {
            "max_bulk" => &mut r.max_bulk,
            "max_array" => &mut r.max_array,
            "max_inline" => &mut r.max_inline,
            "max_pending" => &mut r.max_pending,
            "max_clients" => &mut r.max_clients,
            "max_clients_per_ip" => &mut r.max_clients_per_ip,
            "max_output" => &mut r.max_output,
            "frame_timeout" => {
                r.frame_timeout = Some(secs(&what, &v)?);
                continue;
            }
            _ => return Err(unknown(dict.py(), "redis_limits", &key, KNOWN)),
        };
        *slot = Some(int(&what, &v)?);
    }
    Ok(r)
}

fn secret_bytes(secret: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = secret.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = secret.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    Err(invalid(
        secret.py(),
        format!(
            "cluster_secret must be str or bytes, got {}",
            secret.get_type().name()?
        ),
    ))
}

/// A non-negative integer option (`what` names it in the error).
pub fn count<T: TryFrom<i64>>(py: Python<'_>, what: &str, n: i64) -> PyResult<T> {
    T::try_from(n).map_err(|_| {
        invalid(
            py,
            format!("{what} must be a non-negative integer, got {n}"),
        )
    })
}

/// A duration given in seconds (float), e.g. a timeout.
pub fn seconds(py: Python<'_>, what: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        invalid(
            py,
            format!("{what} must be a non-negative number of seconds, got {s}"),
        )
    })
}
