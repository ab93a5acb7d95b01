//! What a node knows about its peers, as UniFFI types.

/// The core's peer state, crossing as it is (`uniffi::remote` below mirrors its
/// definition for the interface; the mirror's doc comments are the Swift docs).
pub use memmesh::PeerState;

/// A peer's membership state.
#[uniffi::remote(Enum)]
pub enum PeerState {
    /// Answering probes (or connected and about to be confirmed by membership).
    Alive,
    /// Suspected of failure, or inside the grace period after being declared down.
    Suspect,
    /// Down: failed and not back within the grace period, or left.
    Down,
}

/// A peer known to this node.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PeerInfo {
    /// The peer's node id (52 base32 characters).
    pub id: String,
    /// Its human-readable name.
    pub name: String,
    /// Addresses it can be reached at (`"ip:port"`).
    pub addrs: Vec<String>,
    /// Membership state.
    pub state: PeerState,
    /// Whether an authenticated connection to it is open right now.
    pub connected: bool,
    /// Smoothed round-trip time in milliseconds, when connected.
    pub rtt_ms: Option<f64>,
    /// Free bytes of its memory quota, as last advertised through membership (`None`
    /// until it has advertised).
    pub quota_free: Option<u64>,
    /// Its role: `"member"` or `"client"` (ADR 0024).
    pub role: String,
}

impl From<memmesh::PeerInfo> for PeerInfo {
    fn from(p: memmesh::PeerInfo) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            addrs: p.addrs.iter().map(ToString::to_string).collect(),
            state: p.state,
            connected: p.connected,
            rtt_ms: p.rtt.map(|d| d.as_secs_f64() * 1000.0),
            role: p.role.as_str().to_string(),
            quota_free: p.quota_free,
        }
    }
}
