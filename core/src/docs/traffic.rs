//! What the documents service sent to each peer: frames and bytes of sync requests and
//! replies (what the reach tests count, ADR 0028).

use std::collections::HashMap;
use std::sync::Mutex;

use super::Docs;
use crate::identity::NodeId;

/// Most peers counted one by one (every peer is still counted in the total).
pub const MAX_COUNTED_PEERS: usize = 4096;

/// Documents frames and bytes sent to one peer (or to all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocsTraffic {
    /// Sync frames sent (requests this node drove and replies it served).
    pub frames: u64,
    /// Their body bytes.
    pub bytes: u64,
}

/// The counters, per peer and in total.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    counts: Mutex<(HashMap<NodeId, DocsTraffic>, DocsTraffic)>,
}

impl Traffic {
    /// Counts one frame of `len` body bytes sent to `peer`.
    pub(crate) fn add(&self, peer: NodeId, len: usize) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (per_peer, total) = &mut *c;
        total.frames += 1;
        total.bytes += len as u64;
        if per_peer.len() < MAX_COUNTED_PEERS || per_peer.contains_key(&peer) {
            let t = per_peer.entry(peer).or_default();
            t.frames += 1;
            t.bytes += len as u64;
        }
    }

    /// What was sent to `peer` (`None`: to every peer).
    pub(crate) fn get(&self, peer: Option<&NodeId>) -> DocsTraffic {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match peer {
            Some(p) => c.0.get(p).copied().unwrap_or_default(),
            None => c.1,
        }
    }
}

impl Docs {
    /// The sync frames and bytes this node's documents service sent to `peer` since the
    /// node started (requests it drove and replies it served; refusals carry no document
    /// bytes and are not counted).
    pub fn sent_to(&self, peer: &NodeId) -> DocsTraffic {
        self.svc.sent.get(Some(peer))
    }

    /// The sync frames and bytes sent to every peer since the node started.
    pub fn sent(&self) -> DocsTraffic {
        self.svc.sent.get(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_peer_and_in_total_within_the_bound() {
        let t = Traffic::default();
        let a = crate::identity::Keypair::generate().unwrap().node_id();
        t.add(a, 10);
        t.add(a, 5);
        assert_eq!(
            t.get(Some(&a)),
            DocsTraffic {
                frames: 2,
                bytes: 15
            }
        );
        let b = crate::identity::Keypair::generate().unwrap().node_id();
        assert_eq!(t.get(Some(&b)), DocsTraffic::default());
        {
            let mut c = t.counts.lock().unwrap();
            for i in 0..MAX_COUNTED_PEERS as u32 {
                let mut bytes = [0u8; 32];
                bytes[..4].copy_from_slice(&i.to_be_bytes());
                c.0.insert(NodeId::from_bytes(bytes), DocsTraffic::default());
            }
        }
        t.add(b, 7);
        assert_eq!(t.get(Some(&b)), DocsTraffic::default(), "past the bound");
        assert_eq!(
            t.get(None),
            DocsTraffic {
                frames: 3,
                bytes: 22
            }
        );
        t.add(a, 1);
        assert_eq!(t.get(Some(&a)).frames, 3, "a counted peer still counts");
    }
}
