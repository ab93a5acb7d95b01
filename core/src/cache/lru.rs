//! The exact least-recently-used order of a store's slots: a doubly linked list kept in a
//! vector indexed by slot (no allocation per entry, no pointers). Pure logic.
//!
//! The store names its entries by slot index (`u32`); this list only orders those
//! indices. A slot is either linked (somewhere in the order) or not; [`Lru::touch`] makes
//! it the most recently used, [`Lru::unlink`] takes it out, [`Lru::last`] is the next
//! victim of eviction.

/// The index that means "no slot".
const NIL: u32 = u32::MAX;

/// The neighbours of one slot in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    /// The more recently used neighbour.
    prev: u32,
    /// The less recently used neighbour.
    next: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

/// Slots ordered from most to least recently used.
#[derive(Debug)]
pub struct Lru {
    links: Vec<Link>,
    head: u32,
    tail: u32,
}

impl Default for Lru {
    fn default() -> Self {
        Self::new()
    }
}

impl Lru {
    /// An empty order.
    pub fn new() -> Self {
        Self {
            links: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Takes slot `i` out of the order (nothing happens if it is not in it).
    pub fn unlink(&mut self, i: u32) {
        let Some(&Link { prev, next }) = self.links.get(i as usize) else {
            return;
        };
        if prev == NIL && next == NIL && self.head != i {
            return;
        }
        match self.links.get_mut(prev as usize) {
            Some(l) => l.next = next,
            None => self.head = next,
        }
        match self.links.get_mut(next as usize) {
            Some(l) => l.prev = prev,
            None => self.tail = prev,
        }
        if let Some(l) = self.links.get_mut(i as usize) {
            *l = UNLINKED;
        }
    }

    /// Makes slot `i` the most recently used (linking it if it was not in the order).
    pub fn touch(&mut self, i: u32) {
        if i == NIL {
            return;
        }
        self.unlink(i);
        let at = i as usize;
        if self.links.len() <= at {
            self.links.resize(at + 1, UNLINKED);
        }
        let old = self.head;
        self.links[at] = Link {
            prev: NIL,
            next: old,
        };
        match self.links.get_mut(old as usize) {
            Some(l) => l.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    /// The least recently used slot, if any.
    pub fn last(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The most recently used slot, if any.
    #[cfg(test)]
    pub fn first(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The slots from most to least recently used (for tests).
    #[cfg(test)]
    pub fn order(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = self.head;
        while at != NIL && out.len() < self.links.len() {
            out.push(at);
            at = self.links.get(at as usize).map_or(NIL, |l| l.next);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_slots_move_to_the_front_and_the_last_is_the_victim() {
        let mut lru = Lru::new();
        assert_eq!((lru.first(), lru.last()), (None, None));
        for i in [0, 1, 2] {
            lru.touch(i);
        }
        assert_eq!(lru.order(), vec![2, 1, 0]);
        assert_eq!(lru.last(), Some(0));
        lru.touch(0);
        assert_eq!(lru.order(), vec![0, 2, 1]);
        assert_eq!(lru.last(), Some(1));
        lru.touch(0);
        assert_eq!(
            lru.order(),
            vec![0, 2, 1],
            "touching the head changes nothing"
        );
    }

    #[test]
    fn unlinking_anywhere_keeps_the_order_of_the_rest() {
        let mut lru = Lru::new();
        for i in 0..5 {
            lru.touch(i);
        }
        lru.unlink(2); // middle
        assert_eq!(lru.order(), vec![4, 3, 1, 0]);
        lru.unlink(4); // head
        assert_eq!(lru.order(), vec![3, 1, 0]);
        lru.unlink(0); // tail
        assert_eq!(lru.order(), vec![3, 1]);
        assert_eq!((lru.first(), lru.last()), (Some(3), Some(1)));
        // Unlinking what is not linked (or was never seen) changes nothing.
        lru.unlink(2);
        lru.unlink(99);
        assert_eq!(lru.order(), vec![3, 1]);
        lru.unlink(3);
        lru.unlink(1);
        assert_eq!((lru.first(), lru.last()), (None, None));
        assert!(lru.order().is_empty());
        // A freed slot index is linked again like a new one.
        lru.touch(7);
        lru.touch(1);
        assert_eq!(lru.order(), vec![1, 7]);
    }

    #[test]
    fn a_single_slot_is_both_ends() {
        let mut lru = Lru::new();
        lru.touch(3);
        assert_eq!((lru.first(), lru.last()), (Some(3), Some(3)));
        lru.unlink(3);
        assert_eq!((lru.first(), lru.last()), (None, None));
        lru.touch(u32::MAX);
        assert!(lru.order().is_empty(), "NIL is never linked");
    }
}
