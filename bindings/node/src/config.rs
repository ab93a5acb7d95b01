//! Node options as a JS object (camelCase), converted to a core `NodeConfig`.

use std::time::Duration;

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
    /// Addresses dialled at start (`"ip:port"`).
    pub bootstrap: Option<Vec<String>>,
    /// Multicast DNS discovery (default true).
    pub mdns: Option<bool>,
    /// Network interfaces mDNS may use, by name (e.g. `["lo"]`; default: every interface).
    pub mdns_interfaces: Option<Vec<String>>,
    /// Bytes of RAM this node lends to the mesh.
    pub memory_quota: Option<f64>,
    /// Directory for the persisted identity (default: in-memory identity).
    pub data_dir: Option<String>,
    /// Worker threads of the node's own runtime.
    pub threads: Option<f64>,
    /// Maximum size of one message, request or response, in bytes.
    pub max_message_size: Option<f64>,
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

fn size(what: &str, n: f64) -> memmesh::Result<usize> {
    usize::try_from(whole(what, n)?).map_err(|_| invalid(format!("{what} is too large: {n}")))
}

impl NodeOptions {
    /// The core configuration these options describe; the core validates the rest.
    pub fn into_config(self) -> memmesh::Result<NodeConfig> {
        let mut c = NodeConfig {
            name: self.name,
            ..NodeConfig::default()
        };
        if let Some(listen) = self.listen {
            c.listen = listen;
        }
        c.cluster_secret = self.cluster_secret.map(|s| match s {
            Either::A(text) => text.into_bytes(),
            Either::B(bytes) => bytes.to_vec(),
        });
        if let Some(open) = self.open {
            c.open = open;
        }
        if let Some(bootstrap) = self.bootstrap {
            c.bootstrap = bootstrap;
        }
        if let Some(mdns) = self.mdns {
            c.mdns = mdns;
        }
        if let Some(interfaces) = self.mdns_interfaces {
            c.mdns_interfaces = Some(interfaces);
        }
        if let Some(n) = self.memory_quota {
            c.memory_quota = whole("memoryQuota", n)?;
        }
        c.data_dir = self.data_dir.map(Into::into);
        c.inbox_dir = self.inbox_dir.map(Into::into);
        if let Some(n) = self.threads {
            c.threads = size("threads", n)?;
        }
        if let Some(n) = self.max_message_size {
            c.max_message_size = size("maxMessageSize", n)?;
        }
        if let Some(n) = self.request_timeout_ms {
            c.request_timeout = millis("requestTimeoutMs", n)?;
        }
        if let Some(n) = self.send_timeout_ms {
            c.send_timeout = millis("sendTimeoutMs", n)?;
        }
        if let Some(n) = self.connect_timeout_ms {
            c.connect_timeout = millis("connectTimeoutMs", n)?;
        }
        if let Some(n) = self.channel_queue {
            c.channel_queue = size("channelQueue", n)?;
        }
        Ok(c)
    }
}
