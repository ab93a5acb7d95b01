//! What a node knows about its peers, as plain JS objects.

use napi_derive::napi;

/// A peer known to this node.
#[napi(object)]
pub struct PeerInfo {
    /// The peer's node id (52-character base32 text).
    pub id: String,
    /// Its human-readable name.
    pub name: String,
    /// Addresses it can be reached at (`"ip:port"`).
    pub addrs: Vec<String>,
    /// Membership state: `"alive"`, `"suspect"` or `"down"`.
    pub state: String,
    /// Whether an authenticated connection to it is open right now.
    pub connected: bool,
    /// Smoothed round-trip time in milliseconds, when connected.
    pub rtt_ms: Option<f64>,
    /// Free bytes of its memory quota, as last advertised through membership.
    pub quota_free: Option<f64>,
    /// Its role: `"member"` or `"client"`.
    pub role: String,
}

impl From<memmesh::PeerInfo> for PeerInfo {
    fn from(p: memmesh::PeerInfo) -> Self {
        PeerInfo {
            id: p.id.to_string(),
            name: p.name,
            addrs: p.addrs.iter().map(ToString::to_string).collect(),
            state: p.state.as_str().to_string(),
            connected: p.connected,
            rtt_ms: p.rtt.map(|d| d.as_secs_f64() * 1000.0),
            quota_free: p.quota_free.map(|n| n as f64),
            role: p.role.as_str().to_string(),
        }
    }
}
