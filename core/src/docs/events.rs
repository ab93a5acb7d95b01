//! The node's document event log and the stream positions (ADR 0020, seventh slice).
//!
//! Every change to a document held here (a local edit, changes a peer brought, a new
//! document, a change of reach) is an event with the next number of a per-node,
//! monotonic sequence. Only the last event of each document is kept (one entry per
//! document), which is all a question "what happened since position P?" needs: the
//! documents whose last event is after P. A [`Position`] is a point in one node's log,
//! tagged with that log's *epoch* (random, new whenever the log cannot vouch for its
//! past: a first start, or a start after a crash), so a position in a log that was lost
//! reads as "from the beginning", never as "nothing happened".
//!
//! A node keeps, for each peer, its position in that peer's log: everything the peer's
//! log held up to there has been synced here. When the two meet again it asks the peer
//! for what happened since, and syncs only those documents (`sync.rs`). Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::DocId;

/// A point in one node's event log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The log's epoch (0: no log; a real epoch is never 0).
    pub epoch: u64,
    /// The last event number seen (0: none).
    pub seq: u64,
}

impl Position {
    /// The beginning of any log.
    pub const START: Position = Position { epoch: 0, seq: 0 };
}

/// What happened in a log since a position: one page of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// The documents whose last event is after the position (in event order), at most
    /// the page's limit, only those the asker may see.
    pub docs: Vec<DocId>,
    /// The position this page brings the asker to once it has synced `docs`.
    pub up_to: Position,
    /// Whether more events follow `up_to`.
    pub more: bool,
}

/// A node's event log: the last event of each document.
#[derive(Debug, Clone)]
pub struct EventLog {
    epoch: u64,
    head: u64,
    last: HashMap<DocId, u64>,
    order: BTreeMap<u64, DocId>,
}

impl EventLog {
    /// An empty log of `epoch` (never 0: 0 becomes 1).
    pub fn new(epoch: u64) -> EventLog {
        EventLog {
            epoch: epoch.max(1),
            head: 0,
            last: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// A log of `epoch` back from saved `(document, last event)` pairs and its `head`
    /// (pairs past the head, or a document twice, are dropped: the later one wins).
    pub fn restore(epoch: u64, head: u64, events: impl IntoIterator<Item = (DocId, u64)>) -> Self {
        let mut log = EventLog::new(epoch);
        log.head = head;
        for (doc, seq) in events {
            if seq == 0 || seq > head {
                continue;
            }
            if let Some(old) = log.last.get(&doc).copied() {
                if old >= seq {
                    continue;
                }
                log.order.remove(&old);
            }
            if let Some(other) = log.order.insert(seq, doc) {
                log.last.remove(&other);
            }
            log.last.insert(doc, seq);
        }
        log
    }

    /// Records an event of `doc`: its number.
    pub fn record(&mut self, doc: DocId) -> u64 {
        self.head += 1;
        if let Some(old) = self.last.insert(doc, self.head) {
            self.order.remove(&old);
        }
        self.order.insert(self.head, doc);
        self.head
    }

    /// Forgets `doc` (deleted here: nothing of it flows any more).
    pub fn forget(&mut self, doc: DocId) {
        if let Some(old) = self.last.remove(&doc) {
            self.order.remove(&old);
        }
    }

    /// The log's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The position of the last event.
    pub fn head(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.head,
        }
    }

    /// Every document with its last event, in event order (what is saved).
    pub fn entries(&self) -> Vec<(DocId, u64)> {
        self.order.iter().map(|(s, d)| (*d, *s)).collect()
    }

    /// The documents held in the log.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether the log holds no document.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// The (event, document) pairs after `from` (everything if `from` is of another
    /// epoch, or ahead of this log), in event order. The caller filters what the asker
    /// may see and pages with [`page`], outside this log's lock.
    pub fn after(&self, from: Position) -> Vec<(u64, DocId)> {
        self.order
            .range(self.start(from) + 1..)
            .map(|(s, d)| (*s, *d))
            .collect()
    }

    /// Whether [`EventLog::after`] would list anything for `from` (without listing it).
    pub fn any_after(&self, from: Position) -> bool {
        self.order.range(self.start(from) + 1..).next().is_some()
    }

    /// The event `from` points at in this log (0, the start, if it is of another epoch
    /// or ahead of this log).
    fn start(&self, from: Position) -> u64 {
        if from.epoch == self.epoch && from.seq <= self.head {
            from.seq
        } else {
            0
        }
    }
}

/// One page of an answer to "what happened since?" from `after` (the log's events after
/// the asked position, from [`EventLog::after`]) and `head` (the log's head when they
/// were taken): at most `limit` documents that `visible` lets through.
pub fn page(
    after: &[(u64, DocId)],
    head: Position,
    limit: usize,
    mut visible: impl FnMut(DocId) -> bool,
) -> Since {
    let mut docs = Vec::new();
    for (seq, doc) in after {
        if !visible(*doc) {
            continue;
        }
        docs.push(*doc);
        if docs.len() >= limit.max(1) {
            let more = after.last().is_some_and(|(last, _)| last > seq);
            return Since {
                docs,
                up_to: Position {
                    epoch: head.epoch,
                    seq: *seq,
                },
                more,
            };
        }
    }
    Since {
        docs,
        up_to: head,
        more: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> DocId {
        DocId([n; 16])
    }

    fn all(log: &EventLog, from: Position) -> Since {
        let since = page(&log.after(from), log.head(), 100, |_| true);
        assert_eq!(
            log.any_after(from),
            !since.docs.is_empty(),
            "any_after({from:?})"
        );
        since
    }

    #[test]
    fn only_the_documents_changed_since_a_position_are_listed_once_each() {
        let mut log = EventLog::new(7);
        log.record(d(1));
        log.record(d(2));
        let p = log.head();
        assert_eq!(p, Position { epoch: 7, seq: 2 });
        assert_eq!(all(&log, p).docs, vec![]);
        log.record(d(1));
        log.record(d(3));
        log.record(d(1));
        let s = all(&log, p);
        assert_eq!(
            s.docs,
            vec![d(3), d(1)],
            "each document once, by its last event"
        );
        assert_eq!(s.up_to, Position { epoch: 7, seq: 5 });
        assert!(!s.more);
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn a_position_of_another_epoch_or_from_the_future_starts_from_the_beginning() {
        let mut log = EventLog::new(9);
        for n in 1..=3 {
            log.record(d(n));
        }
        for from in [
            Position::START,
            Position { epoch: 8, seq: 3 },
            Position { epoch: 9, seq: 99 },
        ] {
            assert_eq!(all(&log, from).docs, vec![d(1), d(2), d(3)], "{from:?}");
        }
        assert_eq!(EventLog::new(0).epoch(), 1, "epoch 0 means no log");
    }

    #[test]
    fn pages_stop_at_the_limit_and_skip_what_the_asker_may_not_see() {
        let mut log = EventLog::new(3);
        for n in 1..=6 {
            log.record(d(n));
        }
        let hidden = |doc: DocId| doc != d(2) && doc != d(6);
        let first = page(&log.after(Position::START), log.head(), 2, hidden);
        assert_eq!(first.docs, vec![d(1), d(3)]);
        assert_eq!(first.up_to.seq, 3);
        assert!(first.more);
        let second = page(&log.after(first.up_to), log.head(), 2, hidden);
        assert_eq!(second.docs, vec![d(4), d(5)]);
        assert!(second.more, "event 6 follows, even if hidden");
        let third = page(&log.after(second.up_to), log.head(), 2, hidden);
        assert_eq!(third.docs, vec![]);
        assert_eq!(third.up_to, log.head(), "hidden events are passed");
        assert!(!third.more);
    }

    #[test]
    fn forgotten_documents_are_not_listed_and_a_log_restores_from_its_entries() {
        let mut log = EventLog::new(5);
        for n in 1..=4 {
            log.record(d(n));
        }
        log.record(d(2));
        log.forget(d(3));
        assert_eq!(all(&log, Position::START).docs, vec![d(1), d(4), d(2)]);
        let back = EventLog::restore(5, log.head().seq, log.entries());
        assert_eq!(back.head(), log.head());
        assert_eq!(back.entries(), log.entries());
        // Damaged saves: events past the head and duplicates are dropped.
        let odd = EventLog::restore(5, 3, vec![(d(1), 2), (d(1), 1), (d(2), 9), (d(3), 2)]);
        assert_eq!(odd.entries(), vec![(d(3), 2)]);
    }
}
