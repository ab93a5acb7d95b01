//! Starting a (document, peer) sync state afresh after an exchange was lost (an error, a
//! reconnection, a message the peer could not apply). Pure: no I/O.
//!
//! Automerge's sync state counts the changes it sent as sent until the peer's heads
//! cover them, and never sends them again. An exchange is lost on both sides: this
//! node's message may not have arrived, and the peer's reply (which the peer counts as
//! sent) may not have come back. So a restarted state keeps only what
//! `sync::State::encode` keeps (the heads both are known to share), and its first
//! message asks the peer to forget what it counts as sent to this node too (Automerge's
//! `SYNC_RESET` flag, which every memmesh node understands: they all run the same
//! Automerge major). Without that, a lost reply's changes were never sent again and the
//! two copies stayed apart for good.

use std::collections::HashMap;

use automerge::sync::{Capability, State};

use crate::identity::NodeId;

/// `old` started afresh: the shared heads kept, the rest dropped, and the peer asked to
/// forget what it counts as sent.
pub fn restarted(old: &State) -> State {
    let mut state = State::decode(&old.encode()).unwrap_or_default();
    // A state loaded from disk or lost early has not heard the peer's capabilities;
    // Automerge sends a reset to such a peer as empty heads, which would make the peer
    // send the whole document. Every memmesh node speaks both of these.
    state.their_capabilities = Some(
        old.their_capabilities
            .clone()
            .unwrap_or_else(|| vec![Capability::MessageV2, Capability::SyncReset]),
    );
    state.needs_reset = true;
    state
}

/// Starts the state with `peer` afresh in `peers` (nothing if there is none: the next
/// exchange starts from a new state, and so does the peer's at a new connection).
pub fn restart(peers: &mut HashMap<NodeId, State>, peer: NodeId) {
    if let Some(old) = peers.get(&peer) {
        let state = restarted(old);
        peers.insert(peer, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::{Message, SyncDoc};
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    use automerge::{AutoCommit, ROOT};

    fn doc(actor: u8, key: &str) -> AutoCommit {
        let mut d = AutoCommit::new();
        d.set_actor(automerge::ActorId::from(vec![actor; 16]));
        d.put(ROOT, key, 1_i64).unwrap();
        d
    }

    /// Runs request/reply exchanges from `a` until neither side has more to say.
    fn exchange(a: &mut AutoCommit, sa: &mut State, b: &mut AutoCommit, sb: &mut State) {
        for _ in 0..32 {
            let Some(m) = a.sync().generate_sync_message(sa) else {
                return;
            };
            b.sync()
                .receive_sync_message(sb, Message::decode(&m.encode()).unwrap())
                .unwrap();
            if let Some(r) = b.sync().generate_sync_message(sb) {
                a.sync()
                    .receive_sync_message(sa, Message::decode(&r.encode()).unwrap())
                    .unwrap();
            }
        }
        panic!("the exchange did not end");
    }

    #[test]
    fn a_lost_reply_is_sent_again_once_the_asker_restarts_its_state() {
        let (mut a, mut b) = (doc(1, "a"), doc(2, "b"));
        let (mut sa, mut sb) = (State::new(), State::new());
        // A's messages arrive; the first reply of B's that carries B's change is lost.
        let mut lost = false;
        for _ in 0..8 {
            let m = a.sync().generate_sync_message(&mut sa).unwrap();
            b.sync().receive_sync_message(&mut sb, m).unwrap();
            let r = b.sync().generate_sync_message(&mut sb).unwrap();
            if !r.changes.is_empty() {
                lost = true;
                break;
            }
            a.sync().receive_sync_message(&mut sa, r).unwrap();
        }
        assert!(lost, "B sent its change");
        // A's exchange fails; its state starts afresh and the sync goes on.
        sa = restarted(&sa);
        exchange(&mut a, &mut sa, &mut b, &mut sb);
        assert_eq!(a.get_heads(), b.get_heads());
        assert!(a.get(ROOT, "b").unwrap().is_some() && b.get(ROOT, "a").unwrap().is_some());
    }

    #[test]
    fn a_restarted_state_keeps_the_shared_heads_and_asks_for_a_reset() {
        let (mut a, mut b) = (doc(1, "a"), doc(2, "b"));
        let (mut sa, mut sb) = (State::new(), State::new());
        exchange(&mut a, &mut sa, &mut b, &mut sb);
        assert_eq!(a.get_heads(), b.get_heads());
        let r = restarted(&sa);
        assert_eq!(r.shared_heads, sa.shared_heads);
        assert!(r.needs_reset && !r.in_flight && r.sent_hashes.is_empty());
        // Its first message carries the reset with the real heads (not empty heads, which
        // would cost the whole document).
        let mut r = r;
        let m = a.sync().generate_sync_message(&mut r).unwrap();
        assert_eq!(m.heads, a.get_heads());
        let flags = m.flags.expect("flags");
        assert!(flags.contains(automerge::sync::MessageFlags::SYNC_RESET));
        let r = restarted(&State::new());
        assert!(r
            .their_capabilities
            .unwrap()
            .contains(&Capability::SyncReset));
        let mut peers = HashMap::from([(NodeId::from_bytes([9; 32]), sa)]);
        restart(&mut peers, NodeId::from_bytes([9; 32]));
        restart(&mut peers, NodeId::from_bytes([8; 32]));
        assert_eq!(peers.len(), 1, "no state is made for a peer that had none");
        assert!(peers.values().all(|s| s.needs_reset));
    }
}
