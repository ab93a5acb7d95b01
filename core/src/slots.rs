//! Counted slots per peer and per node: how many transfers, holds, searches or document
//! syncs a node serves at once. Pure logic (no I/O); a [`Slot`] gives its place back when
//! dropped. Every service that bounds concurrent work per peer and per node uses this one
//! type (transfers, files, documents).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::error::{Classify, ErrorKind};

/// A refusal: the peer or the node already runs as many as its budget allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotsError {
    /// Too many of this kind from one peer at once.
    #[error("too many {what} from this peer at once ({max} per peer); try again later")]
    PeerBusy {
        /// What is counted (`"transfers"`, `"file holds"`, `"document syncs"` …).
        what: &'static str,
        /// The limit per peer.
        max: usize,
    },
    /// Too many of this kind on this node at once.
    #[error("too many {what} at once on this node ({max} in all); try again later")]
    NodeBusy {
        /// What is counted.
        what: &'static str,
        /// The limit per node.
        max: usize,
    },
}

impl Classify for SlotsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::QuotaExceeded
    }
}

/// A budget of concurrent work, per peer and in total.
#[derive(Debug)]
pub(crate) struct Slots<K: Hash + Eq + Clone> {
    what: &'static str,
    per_peer: usize,
    per_node: usize,
    taken: Mutex<Taken<K>>,
}

#[derive(Debug)]
struct Taken<K> {
    total: usize,
    by_peer: HashMap<K, usize>,
}

/// A place taken in [`Slots`]; given back on drop.
#[derive(Debug)]
pub(crate) struct Slot<K: Hash + Eq + Clone> {
    slots: Arc<Slots<K>>,
    peer: K,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// At most `per_peer` `what`s per peer and `per_node` in total.
    pub(crate) fn new(what: &'static str, per_peer: usize, per_node: usize) -> Arc<Self> {
        Arc::new(Self {
            what,
            per_peer,
            per_node,
            taken: Mutex::new(Taken {
                total: 0,
                by_peer: HashMap::new(),
            }),
        })
    }

    /// Takes a place for `peer`, or fails with `QuotaExceeded` (saying which budget).
    pub(crate) fn take(self: &Arc<Self>, peer: &K) -> Result<Slot<K>, SlotsError> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let mine = taken.by_peer.get(peer).copied().unwrap_or(0);
        if mine >= self.per_peer {
            return Err(SlotsError::PeerBusy {
                what: self.what,
                max: self.per_peer,
            });
        }
        if taken.total >= self.per_node {
            return Err(SlotsError::NodeBusy {
                what: self.what,
                max: self.per_node,
            });
        }
        taken.total += 1;
        taken.by_peer.insert(peer.clone(), mine + 1);
        Ok(Slot {
            slots: self.clone(),
            peer: peer.clone(),
        })
    }

    /// Places taken in all.
    pub(crate) fn in_use(&self) -> usize {
        self.taken.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Places taken by `peer`, and in total.
    #[cfg(test)]
    fn used(&self, peer: &K) -> (usize, usize) {
        let taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        (taken.by_peer.get(peer).copied().unwrap_or(0), taken.total)
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|p| p.into_inner());
        taken.total = taken.total.saturating_sub(1);
        if let Some(n) = taken.by_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                taken.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn per_peer_then_per_node_then_given_back() {
        let slots = Slots::new("transfers", 2, 3);
        let a1 = slots.take(&'a').unwrap();
        let _a2 = slots.take(&'a').unwrap();
        let e = slots.take(&'a').unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(e.to_string().contains("per peer"), "{e}");
        let _b1 = slots.take(&'b').unwrap();
        let e = slots.take(&'c').unwrap_err();
        assert!(e.to_string().contains("this node"), "{e}");
        assert_eq!(slots.used(&'a'), (2, 3));
        drop(a1);
        assert_eq!(slots.used(&'a'), (1, 2));
        let _c1 = slots.take(&'c').unwrap();
        assert_eq!(slots.used(&'c'), (1, 3));
    }

    #[test]
    fn the_peer_map_does_not_grow_with_peers_gone() {
        let slots = Slots::new("fetches", 1, 1);
        for peer in 0..1000u32 {
            drop(slots.take(&peer).unwrap());
        }
        assert!(slots.taken.lock().unwrap().by_peer.is_empty());
    }
}
