//! The identity a node has in the SWIM membership protocol.

use std::net::SocketAddr;

use crate::identity::NodeId;

/// A member as SWIM knows it: the node id plus what peers need to reach and show it.
///
/// `generation` distinguishes incarnations of the same node across restarts: a node starts
/// with the current time in milliseconds, so a restarted node's identity wins over the
/// one the cluster may still remember, and rejoins cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MemberId {
    /// The node.
    pub id: NodeId,
    /// Restart counter (milliseconds since the epoch at start, bumped on renew).
    pub generation: u64,
    /// Human-readable name.
    pub name: String,
    /// Addresses the node listens on.
    pub addrs: Vec<SocketAddr>,
}

impl foca::Identity for MemberId {
    type Addr = NodeId;

    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            generation: self.generation.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> NodeId {
        self.id
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// The starting generation for a node started now.
pub fn initial_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use foca::Identity;

    #[test]
    fn a_restarted_node_wins_over_its_old_identity() {
        let id = Keypair::generate().unwrap().node_id();
        let old = MemberId {
            id,
            generation: 10,
            name: "n".into(),
            addrs: vec![],
        };
        let new = MemberId {
            generation: 11,
            ..old.clone()
        };
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
        assert_eq!(old.renew().unwrap().generation, 11);
        assert_eq!(old.addr(), new.addr());
    }
}
