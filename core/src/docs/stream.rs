//! The store's side of the stream positions (ADR 0020, seventh slice): this node's event
//! log (`events.rs`) and its position in each peer's log, shared by the edits that record
//! events and the sync task that asks and answers "what happened since?". Kept across
//! restarts in `<data_dir>/docs/stream` (`stream_file.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::events::{EventLog, Position};
use super::stream_file::{Saved, MAX_PEERS};
use super::DocId;
use crate::identity::NodeId;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new epoch: 64 random bits (never 0).
fn new_epoch() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // No random generator: the clock's nanoseconds still differ between starts.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        b = t.to_le_bytes();
    }
    u64::from_le_bytes(b).max(1)
}

/// The event log and the positions in peers' logs.
#[derive(Debug)]
pub(crate) struct Stream {
    log: Mutex<EventLog>,
    /// This node's position in each peer's log, and when it last moved (unix ms).
    positions: Mutex<HashMap<NodeId, (Position, u64)>>,
    /// Set when the log was saved as clean (an orderly shutdown): an event recorded
    /// after it must rewrite the file as not clean.
    saved_clean: AtomicBool,
    /// Serializes the file's writes (a clean save and a later unclean one).
    pub(crate) writing: Mutex<()>,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            log: Mutex::new(EventLog::new(new_epoch())),
            positions: Mutex::new(HashMap::new()),
            saved_clean: AtomicBool::new(false),
            writing: Mutex::new(()),
        }
    }
}

impl Stream {
    /// Records an event of `doc`. Returns true if the log had been saved as clean, so
    /// the file must now be rewritten as not clean.
    pub fn record(&self, doc: DocId) -> bool {
        lock(&self.log).record(doc);
        self.saved_clean.swap(false, Ordering::AcqRel)
    }

    /// Forgets `doc` (deleted here).
    pub fn forget(&self, doc: DocId) {
        lock(&self.log).forget(doc);
    }

    /// The (event, document) pairs after `from` and the log's head when they were taken.
    pub fn after(&self, from: Position) -> (Vec<(u64, DocId)>, Position) {
        let log = lock(&self.log);
        (log.after(from), log.head())
    }

    /// The head of the log if nothing happened after `from` ([`Stream::after`] would list
    /// nothing), else `None`; without copying what did.
    pub fn nothing_after(&self, from: Position) -> Option<Position> {
        let log = lock(&self.log);
        (!log.any_after(from)).then(|| log.head())
    }

    /// The head of the log.
    #[cfg(test)]
    pub fn head(&self) -> Position {
        lock(&self.log).head()
    }

    /// This node's position in `peer`'s log ([`Position::START`] if it never synced).
    pub fn position(&self, peer: &NodeId) -> Position {
        lock(&self.positions)
            .get(peer)
            .map(|(p, _)| *p)
            .unwrap_or(Position::START)
    }

    /// Moves this node's position in `peer`'s log to `to` (everything up to it is synced
    /// here). The positions are bounded: beyond [`MAX_PEERS`] the least recently moved
    /// one is forgotten (that peer is asked from the beginning next time).
    pub fn advance(&self, peer: NodeId, to: Position) {
        let mut pos = lock(&self.positions);
        if !pos.contains_key(&peer) && pos.len() >= MAX_PEERS {
            let oldest = pos.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| *p);
            if let Some(p) = oldest {
                pos.remove(&p);
            }
        }
        pos.insert(peer, (to, super::book::now_ms()));
    }

    /// What is saved ([`Saved::clean`] as given).
    pub fn saved(&self, clean: bool) -> Saved {
        let (epoch, head, events) = {
            let log = lock(&self.log);
            let events = log.entries().into_iter().map(|(d, s)| (d.0, s)).collect();
            (log.epoch(), log.head().seq, events)
        };
        let mut peers: Vec<_> = lock(&self.positions)
            .iter()
            .map(|(p, (pos, t))| (*t, *p.as_bytes(), *pos))
            .collect();
        peers.sort_by_key(|p| std::cmp::Reverse(p.0));
        Saved {
            epoch,
            head,
            clean,
            events,
            peers: peers.into_iter().map(|(_, p, pos)| (p, pos)).collect(),
        }
    }

    /// Marks the log as saved clean (before the clean save is taken, see
    /// [`Stream::record`]).
    pub fn mark_saved_clean(&self) {
        self.saved_clean.store(true, Ordering::Release);
    }

    /// Puts back what was saved: the positions always (they only cover changes already
    /// durable here); the log only from a clean save (else a new epoch starts). Every
    /// document `held` that the log lacks is recorded.
    pub fn restore(&self, saved: Option<Saved>, held: &[DocId]) {
        let mut log = lock(&self.log);
        if let Some(s) = saved {
            if s.clean {
                let events = s.events.into_iter().map(|(d, seq)| (DocId(d), seq));
                *log = EventLog::restore(s.epoch, s.head, events);
            }
            let now = super::book::now_ms();
            let mut pos = lock(&self.positions);
            for (i, (p, at)) in s.peers.into_iter().enumerate() {
                // Saved latest-moved first: keep that order for the bound.
                pos.insert(NodeId::from_bytes(p), (at, now.saturating_sub(i as u64)));
            }
        }
        let known: std::collections::HashSet<DocId> =
            log.entries().into_iter().map(|(d, _)| d).collect();
        for d in held {
            if !known.contains(d) {
                log.record(*d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> DocId {
        DocId([n; 16])
    }

    #[test]
    fn a_clean_save_keeps_the_epoch_and_an_unclean_one_starts_a_new_one() {
        let s = Stream::default();
        s.record(d(1));
        s.record(d(2));
        let peer = NodeId::from_bytes([4; 32]);
        s.advance(peer, Position { epoch: 77, seq: 3 });
        let head = s.head();

        let clean = Stream::default();
        clean.restore(Some(s.saved(true)), &[d(1), d(2), d(3)]);
        assert_eq!(clean.head().epoch, head.epoch);
        assert_eq!(
            clean.after(head).0,
            vec![(3, d(3))],
            "a held document the log lacked"
        );
        assert_eq!(clean.position(&peer), Position { epoch: 77, seq: 3 });

        let crashed = Stream::default();
        crashed.restore(Some(s.saved(false)), &[d(1), d(2)]);
        assert_ne!(crashed.head().epoch, head.epoch);
        assert_eq!(
            crashed.after(head).0.len(),
            2,
            "everything, from the beginning"
        );
        assert_eq!(crashed.position(&peer), Position { epoch: 77, seq: 3 });
    }

    #[test]
    fn an_event_after_a_clean_save_asks_for_an_unclean_rewrite_once() {
        let s = Stream::default();
        assert!(!s.record(d(1)));
        s.mark_saved_clean();
        assert!(s.record(d(2)));
        assert!(!s.record(d(3)));
    }

    #[test]
    fn positions_are_bounded_forgetting_the_least_recently_moved() {
        let s = Stream::default();
        for i in 0..MAX_PEERS as u32 + 1 {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            s.advance(NodeId::from_bytes(b), Position { epoch: 1, seq: 1 });
            std::thread::sleep(std::time::Duration::from_micros(if i == 0 {
                2000
            } else {
                0
            }));
        }
        assert_eq!(s.saved(false).peers.len(), MAX_PEERS);
        assert_eq!(s.position(&NodeId::from_bytes([0; 32])), Position::START);
    }
}
