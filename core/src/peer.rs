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

/// What a node does for the mesh (ADR 0024).
///
/// A *member* owns cache partitions, holds file replicas and is chosen for `Auto` block
/// placement. A *client* uses every capability through the members but holds nothing for
/// others: it owns no partitions, holds no replicas, is never chosen for placement, and
/// its joining or leaving moves no data. The role travels in the member's SWIM identity,
/// so every node knows it before it routes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Role {
    /// A full member (the default).
    #[default]
    Member,
    /// A client: uses the mesh, holds nothing for others.
    Client,
}

impl Role {
    /// The stable lowercase name (`"member"`, `"client"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Client => "client",
        }
    }

    /// Whether the node may own partitions, hold replicas and take placed blocks.
    pub fn holds_data(self) -> bool {
        self == Role::Member
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `"member"` nor `"client"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected \"member\" or \"client\"")]
pub struct UnknownRole(pub String);

impl crate::error::Classify for UnknownRole {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::InvalidInput
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    /// Parses `"member"` or `"client"` (ASCII case ignored, surrounding spaces trimmed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "member" => Ok(Role::Member),
            "client" => Ok(Role::Client),
            _ => Err(UnknownRole(s.to_string())),
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
    /// Its role, as its membership identity says ([`Role::Member`] until membership
    /// has confirmed it).
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_their_names() {
        assert_eq!("member".parse::<Role>(), Ok(Role::Member));
        assert_eq!(" Client ".parse::<Role>(), Ok(Role::Client));
        assert!("observer".parse::<Role>().is_err());
        assert_eq!(Role::default(), Role::Member);
        for r in [Role::Member, Role::Client] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }
}
