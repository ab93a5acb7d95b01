//! The peer list of `Node::peers`: what the connection pool knows about each peer, merged
//! with its state in the membership view and its last free-quota advert. Pure: no locks,
//! no sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::NodeId;
use crate::peer::{PeerInfo, PeerState, Role};

/// A peer as the connection pool knows it: its id, name, addresses and, while an
/// authenticated connection to it is open, the round-trip time of that connection.
pub(crate) type PoolEntry = (NodeId, String, Vec<SocketAddr>, Option<Duration>);

/// Merges the pool's peers with the membership states, sorted by id.
///
/// A peer in the view has its state there; a connected peer that membership has not
/// confirmed yet is listed as alive; a peer that is neither (an address only learnt, a
/// member forgotten) is left out. `quota_free` gives a peer's last advertised free bytes.
pub(crate) fn merge(
    pool: Vec<PoolEntry>,
    states: &HashMap<NodeId, PeerState>,
    quota_free: impl Fn(&NodeId) -> Option<u64>,
) -> Vec<PeerInfo> {
    let mut out: Vec<PeerInfo> = pool
        .into_iter()
        .filter_map(|(id, name, addrs, rtt)| {
            let state = match (states.get(&id), rtt) {
                (Some(s), _) => *s,
                (None, Some(_)) => PeerState::Alive,
                (None, None) => return None,
            };
            Some(PeerInfo {
                id,
                name,
                addrs,
                state,
                connected: rtt.is_some(),
                rtt,
                quota_free: quota_free(&id),
                // Set from the membership view by the caller (`Node::peers`).
                role: Role::Member,
            })
        })
        .collect();
    out.sort_by_key(|p| p.id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[0] = n;
        NodeId::from_bytes(bytes)
    }

    fn entry(n: u8, rtt: Option<Duration>) -> PoolEntry {
        let addr: SocketAddr = ([127, 0, 0, 1], 7000 + u16::from(n)).into();
        (id(n), format!("node-{n}"), vec![addr], rtt)
    }

    #[test]
    fn the_view_decides_the_state_and_connections_fill_in_unconfirmed_peers() {
        let rtt = Some(Duration::from_millis(3));
        let pool = vec![entry(4, None), entry(1, rtt), entry(3, None), entry(2, rtt)];
        let states = HashMap::from([(id(1), PeerState::Suspect), (id(3), PeerState::Down)]);
        let peers = merge(pool, &states, |p| (*p == id(2)).then_some(42));
        let summary: Vec<_> = peers
            .iter()
            .map(|p| (p.id, p.state, p.connected, p.rtt, p.quota_free))
            .collect();
        assert_eq!(
            summary,
            vec![
                // In the view: its state there, even while connected.
                (id(1), PeerState::Suspect, true, rtt, None),
                // Connected, not confirmed by membership yet: alive.
                (id(2), PeerState::Alive, true, rtt, Some(42)),
                // In the view, not connected.
                (id(3), PeerState::Down, false, None, None),
                // Neither in the view nor connected (node 4): left out.
            ]
        );
        assert_eq!(peers[1].name, "node-2");
        assert_eq!(
            peers[1].addrs,
            vec![SocketAddr::from(([127, 0, 0, 1], 7002))]
        );
    }

    #[test]
    fn members_the_pool_does_not_know_are_not_listed() {
        let states = HashMap::from([(id(9), PeerState::Alive)]);
        assert!(merge(Vec::new(), &states, |_| None).is_empty());
    }
}
