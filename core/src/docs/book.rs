//! What this node remembers of each peer's copy of a document, for the sync status: the
//! peer's heads as it last told them, when an exchange last left both at the same heads,
//! and how many changes held here those heads lack ("behind by N").
//!
//! Kept in memory beside the document, for the peers it was exchanged with since the node
//! started; unlike Automerge's per-peer `sync::State`, which starts afresh after an error,
//! a reconnection or a change of reach, a book stays until the node stops (or the document
//! is deleted), so "last synced" outlives those. At most [`MAX_BOOKS`] per document: the
//! one heard from longest ago gives way (any node may sync a commons document).

use std::collections::HashMap;

use automerge::ChangeHash;

use crate::identity::NodeId;

/// The most peers remembered per document.
pub const MAX_BOOKS: usize = 256;

/// What is known of one peer's copy of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerBook {
    /// The peer's heads as it last told them (sorted; `None`: not told yet).
    their_heads: Option<Vec<ChangeHash>>,
    /// When (unix ms) an exchange last left both sides at the same heads.
    last_synced: Option<u64>,
    /// When (unix ms) the peer was last heard from about this document.
    heard: u64,
    /// The last "behind" count and the (our heads, their heads) it was counted for.
    behind: Option<(Vec<ChangeHash>, Vec<ChangeHash>, u64)>,
}

fn sorted(h: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut h = h.to_vec();
    h.sort_unstable();
    h
}

impl PeerBook {
    /// Notes what the peer just told (its heads, `theirs`), with this node's heads now
    /// `ours`, at `now_ms`: equal heads mean the two are synced now.
    pub fn heard(&mut self, theirs: Option<&[ChangeHash]>, ours: &[ChangeHash], now_ms: u64) {
        self.heard = now_ms;
        let Some(theirs) = theirs else {
            return;
        };
        let theirs = sorted(theirs);
        if theirs == sorted(ours) {
            self.last_synced = Some(now_ms);
        }
        self.their_heads = Some(theirs);
    }

    /// When an exchange last left both sides at the same heads (unix ms).
    pub fn last_synced(&self) -> Option<u64> {
        self.last_synced
    }

    /// The peer's heads as it last told them (sorted), if it did.
    pub fn their_heads(&self) -> Option<&[ChangeHash]> {
        self.their_heads.as_deref()
    }

    /// Restores the peer's heads saved before a restart, unless it told newer ones since.
    /// With the stream positions (`events.rs`) they stay true: a change the peer makes
    /// later is an event in its log, and brings a new exchange that tells its heads.
    pub fn restore_their_heads(&mut self, heads: &[ChangeHash]) {
        if self.their_heads.is_none() {
            self.their_heads = Some(sorted(heads));
        }
    }

    /// Restores a "last synced" time saved before a restart (the later one wins).
    pub fn restore_last_synced(&mut self, at_ms: u64) {
        self.last_synced = Some(self.last_synced.map_or(at_ms, |t| t.max(at_ms)));
    }

    /// Whether the peer's last heads are `ours`.
    pub fn in_sync(&self, ours: &[ChangeHash]) -> bool {
        self.their_heads.as_deref() == Some(sorted(ours).as_slice())
    }

    /// How many changes held here (whose heads are `ours`) the peer's last heads lack;
    /// all of them if it has not told its heads yet. `count(have)` counts the changes
    /// not reachable from the heads `have`; it runs only when either side's heads moved
    /// since the last count.
    pub fn behind(&mut self, ours: &[ChangeHash], count: impl FnOnce(&[ChangeHash]) -> u64) -> u64 {
        let ours = sorted(ours);
        let theirs = self.their_heads.clone().unwrap_or_default();
        if theirs == ours {
            return 0;
        }
        if let Some((o, t, n)) = &self.behind {
            if *o == ours && *t == theirs {
                return *n;
            }
        }
        let n = count(&theirs);
        self.behind = Some((ours, theirs, n));
        n
    }
}

/// The books of one document, by peer.
#[derive(Debug, Clone, Default)]
pub struct Books(HashMap<NodeId, PeerBook>);

impl Books {
    /// The book of `peer`, made if new (making room by forgetting the peer heard from
    /// longest ago).
    pub fn of(&mut self, peer: NodeId) -> &mut PeerBook {
        if !self.0.contains_key(&peer) && self.0.len() >= MAX_BOOKS {
            let oldest = self.0.iter().min_by_key(|(_, b)| b.heard).map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.0.remove(&p);
            }
        }
        self.0.entry(peer).or_default()
    }

    /// Every book, in peer order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&NodeId, &mut PeerBook)> {
        let mut v: Vec<_> = self.0.iter_mut().collect();
        v.sort_by_key(|(p, _)| **p);
        v.into_iter()
    }

    /// The book of `peer`, if it has one.
    pub fn get(&self, peer: &NodeId) -> Option<&PeerBook> {
        self.0.get(peer)
    }

    /// Every peer with a book.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.0.keys()
    }

    /// Forgets every peer.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// How many peers are remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The time now in unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> ChangeHash {
        ChangeHash([b; 32])
    }

    #[test]
    fn synced_when_told_our_heads_and_behind_until_then() {
        let mut b = PeerBook::default();
        // Not told anything yet: behind by everything, never synced.
        assert_eq!(b.behind(&[h(1)], |have| 10 + have.len() as u64), 10);
        assert!(!b.in_sync(&[h(1)]));
        b.heard(None, &[h(1)], 5);
        assert_eq!(b.last_synced(), None);
        // Told older heads: behind by what they lack, still never synced.
        b.heard(Some(&[h(0)]), &[h(1)], 7);
        assert_eq!(b.last_synced(), None);
        assert_eq!(b.behind(&[h(1)], |have| have.len() as u64 + 2), 3);
        // Told our heads (in any order): synced now, behind by nothing.
        b.heard(Some(&[h(2), h(1)]), &[h(1), h(2)], 9);
        assert_eq!(b.last_synced(), Some(9));
        assert!(b.in_sync(&[h(2), h(1)]));
        assert_eq!(b.behind(&[h(1), h(2)], |_| unreachable!()), 0);
        // A local change later: behind again, last synced stays.
        assert!(!b.in_sync(&[h(3)]));
        assert_eq!(b.behind(&[h(3)], |_| 1), 1);
        assert_eq!(b.last_synced(), Some(9));
        // A later exchange that ends apart does not move it.
        b.heard(Some(&[h(2)]), &[h(3)], 11);
        assert_eq!(b.last_synced(), Some(9));
        // Heads saved before a restart come back, unless newer ones were told.
        assert_eq!(b.their_heads(), Some(&[h(2)][..]));
        let mut back = PeerBook::default();
        back.restore_their_heads(&[h(3), h(1)]);
        assert!(back.in_sync(&[h(1), h(3)]));
        back.restore_their_heads(&[h(4)]);
        assert!(back.in_sync(&[h(1), h(3)]), "the first restore stays");
    }

    #[test]
    fn behind_is_counted_once_per_pair_of_heads() {
        let mut b = PeerBook::default();
        b.heard(Some(&[h(0)]), &[h(1)], 1);
        let mut calls = 0;
        for _ in 0..3 {
            assert_eq!(
                b.behind(&[h(1)], |_| {
                    calls += 1;
                    4
                }),
                4
            );
        }
        assert_eq!(calls, 1);
        assert_eq!(b.behind(&[h(2)], |_| 5), 5);
        b.heard(Some(&[h(1)]), &[h(2)], 2);
        assert_eq!(b.behind(&[h(2)], |_| 1), 1);
    }

    #[test]
    fn books_are_bounded_forgetting_the_longest_silent() {
        let mut books = Books::default();
        for i in 0..MAX_BOOKS {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            books
                .of(NodeId::from_bytes(id))
                .heard(None, &[], 100 + i as u64);
        }
        let first = NodeId::from_bytes([0u8; 32]);
        assert_eq!(books.len(), MAX_BOOKS);
        books
            .of(NodeId::from_bytes([9u8; 32]))
            .heard(None, &[], 1_000);
        assert_eq!(books.len(), MAX_BOOKS);
        assert!(books.iter_mut().all(|(p, _)| *p != first));
        // Hearing from a known peer makes no room.
        books.of(NodeId::from_bytes([9u8; 32]));
        assert_eq!(books.len(), MAX_BOOKS);
        books.clear();
        assert!(books.is_empty());
    }
}
