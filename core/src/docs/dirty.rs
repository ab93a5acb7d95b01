//! The documents changed since the sync task's last pass, and to whom each is to be
//! offered: every peer, or every peer but the one whose changes it just applied (pushing
//! a peer's own changes back to it, while that peer's exchange is still under way, made
//! the two exchanges of one (document, peer) interleave and the changes cross twice).
//! The peer that brought them still gets this node's own later changes: a local change
//! (or another peer's) widens the offer to every peer. Pure: no I/O.

use std::collections::HashMap;

use super::DocId;
use crate::identity::NodeId;

/// To whom a changed document is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Every peer it may flow to.
    All,
    /// Every peer it may flow to but this one (whose changes were the only ones since).
    AllBut(NodeId),
}

impl Offer {
    /// Whether `peer` is offered the document.
    pub fn includes(&self, peer: &NodeId) -> bool {
        match self {
            Offer::All => true,
            Offer::AllBut(p) => p != peer,
        }
    }
}

/// The changed documents.
#[derive(Debug, Default)]
pub struct Dirty(HashMap<DocId, Offer>);

impl Dirty {
    /// `id` changed here (a local edit, a change of reach, a forced sync): offered to all.
    pub fn mark(&mut self, id: DocId) {
        self.0.insert(id, Offer::All);
    }

    /// `id` changed by what `peer` sent: offered to every other peer (and to `peer` too
    /// if something else changed it since the last pass).
    pub fn mark_from(&mut self, id: DocId, peer: NodeId) {
        let offer = match self.0.get(&id) {
            None => Offer::AllBut(peer),
            Some(Offer::AllBut(p)) if *p == peer => Offer::AllBut(peer),
            Some(_) => Offer::All,
        };
        self.0.insert(id, offer);
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every changed document and its offer, emptying the set.
    pub fn take(&mut self) -> Vec<(DocId, Offer)> {
        std::mem::take(&mut self.0).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> NodeId {
        NodeId::from_bytes([n; 32])
    }

    #[test]
    fn a_peers_changes_are_not_offered_back_to_it_unless_something_else_changed() {
        let id = DocId([1; 16]);
        let mut d = Dirty::default();
        d.mark_from(id, p(1));
        d.mark_from(id, p(1));
        assert_eq!(d.take(), vec![(id, Offer::AllBut(p(1)))]);
        assert!(d.is_empty());
        assert!(!Offer::AllBut(p(1)).includes(&p(1)) && Offer::AllBut(p(1)).includes(&p(2)));

        d.mark_from(id, p(1));
        d.mark_from(id, p(2));
        assert_eq!(
            d.take(),
            vec![(id, Offer::All)],
            "two peers' changes go to both"
        );

        d.mark_from(id, p(1));
        d.mark(id);
        assert_eq!(
            d.take(),
            vec![(id, Offer::All)],
            "a local change goes to all"
        );
        d.mark(id);
        d.mark_from(id, p(1));
        assert_eq!(d.take(), vec![(id, Offer::All)]);
    }
}
