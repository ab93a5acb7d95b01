//! What a node knows about its peers.

use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::NodeId;

/// A peer's membership state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Answering probes (or connected and about to be confirmed by membership).
    Alive,
    /// Suspected of failure, or inside the grace period after being declared down.
    Suspect,
    /// Down: failed and not back within the grace period, or left.
    Down,
}

impl PeerState {
    /// The stable lowercase name (`"alive"`, `"suspect"`, `"down"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Alive => "alive",
            PeerState::Suspect => "suspect",
            PeerState::Down => "down",
        }
    }
}

/// A peer known to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's identity.
    pub id: NodeId,
    /// Its human-readable name.
    pub name: String,
    /// Addresses it can be reached at.
    pub addrs: Vec<SocketAddr>,
    /// Membership state.
    pub state: PeerState,
    /// Whether an authenticated connection to it is open right now.
    pub connected: bool,
    /// Smoothed round-trip time, when connected.
    pub rtt: Option<Duration>,
    /// Free bytes of its memory quota, as last advertised through membership.
    pub quota_free: Option<u64>,
}
