//! Node configuration as a UniFFI record (Swift: `NodeConfig(name: ..., listen: ...)`).
//!
//! Every field has a default equal to the core's `NodeConfig::default()` (the Python
//! suite checks `NodeConfig() == default_node_config()`), so foreign code names only what
//! it changes.
//! Durations are whole milliseconds.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Addresses dialled at start.
    #[uniffi(default = [])]
    pub bootstrap: Vec<String>,
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
    /// Worker threads of the node's own runtime.
    #[uniffi(default = 2)]
    pub threads: u32,
    /// Maximum size in bytes of one message, request or response (default 8 MiB).
    #[uniffi(default = 8388608)]
    pub max_message_size: u64,
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
}

impl From<memmesh::NodeConfig> for NodeConfig {
    fn from(c: memmesh::NodeConfig) -> Self {
        Self {
            name: c.name,
            listen: c.listen,
            cluster_secret: c
                .cluster_secret
                .map(|s| String::from_utf8_lossy(&s).into_owned()),
            open: c.open,
            bootstrap: c.bootstrap,
            mdns: c.mdns,
            mdns_interfaces: c.mdns_interfaces,
            memory_quota: c.memory_quota,
            data_dir: c.data_dir.map(|d| d.to_string_lossy().into_owned()),
            inbox_dir: c.inbox_dir.map(|d| d.to_string_lossy().into_owned()),
            threads: saturating_u32(c.threads),
            max_message_size: c.max_message_size as u64,
            request_timeout_ms: millis(c.request_timeout),
            send_timeout_ms: millis(c.send_timeout),
            connect_timeout_ms: millis(c.connect_timeout),
            channel_queue: saturating_u32(c.channel_queue),
        }
    }
}

impl TryFrom<NodeConfig> for memmesh::NodeConfig {
    type Error = MemmeshError;

    fn try_from(c: NodeConfig) -> Result<Self, MemmeshError> {
        let max_message_size =
            usize::try_from(c.max_message_size).map_err(|_| MemmeshError::InvalidInput {
                message: format!(
                    "max_message_size {} does not fit this platform",
                    c.max_message_size
                ),
            })?;
        Ok(memmesh::NodeConfig {
            name: c.name,
            listen: c.listen,
            cluster_secret: c.cluster_secret.map(String::into_bytes),
            open: c.open,
            bootstrap: c.bootstrap,
            mdns: c.mdns,
            mdns_interfaces: c.mdns_interfaces,
            memory_quota: c.memory_quota,
            data_dir: c.data_dir.map(PathBuf::from),
            inbox_dir: c.inbox_dir.map(PathBuf::from),
            threads: c.threads as usize,
            max_message_size,
            request_timeout: Duration::from_millis(c.request_timeout_ms),
            send_timeout: Duration::from_millis(c.send_timeout_ms),
            connect_timeout: Duration::from_millis(c.connect_timeout_ms),
            channel_queue: c.channel_queue as usize,
            ..memmesh::NodeConfig::default()
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_core_and_back() {
        let ffi = NodeConfig {
            name: Some("n".into()),
            listen: "127.0.0.1:0".into(),
            cluster_secret: Some("s3cret".into()),
            open: true,
            bootstrap: vec!["127.0.0.1:7400".into()],
            mdns: false,
            mdns_interfaces: Some(vec!["lo".into()]),
            memory_quota: 1 << 20,
            data_dir: Some("/tmp/x".into()),
            inbox_dir: Some("/tmp/inbox".into()),
            threads: 1,
            max_message_size: 4096,
            request_timeout_ms: 1500,
            send_timeout_ms: 2500,
            connect_timeout_ms: 3500,
            channel_queue: 8,
        };
        let core = memmesh::NodeConfig::try_from(ffi.clone()).unwrap();
        assert_eq!(core.cluster_secret.as_deref(), Some(&b"s3cret"[..]));
        assert!(core.open);
        assert!(!default_node_config().open, "protected mode by default");
        assert_eq!(core.request_timeout, Duration::from_millis(1500));
        assert_eq!(core.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(core.inbox_dir, Some(PathBuf::from("/tmp/inbox")));
        assert_eq!(NodeConfig::from(core), ffi);
    }
}
