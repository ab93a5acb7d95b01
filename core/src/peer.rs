//! What a node knows about its peers.

use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::NodeId;

/// The state of a peer as seen by this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// An authenticated connection is open.
    Connected,
    /// Known, but no connection is open right now (it is re-dialled on demand).
    Disconnected,
}

impl PeerState {
    /// The stable name of the state (`"connected"`, `"disconnected"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Connected => "connected",
            PeerState::Disconnected => "disconnected",
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
    /// Connection state.
    pub state: PeerState,
    /// Smoothed round-trip time, when connected.
    pub rtt: Option<Duration>,
}
