//! Rates and queues for what peers make membership do. Pure logic: time is passed in.
//!
//! - [`TokenBucket`]: so many per second, up to a burst (SWIM dials, syncs per peer).
//! - [`PeerBuckets`]: one bucket per peer, bounded in number.
//! - [`Queue`]: packets waiting for the membership actor, per peer and in total.
//! - [`Throttle`]: at most one warning per interval, counting what it summarises.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::identity::NodeId;
use crate::slots::{Slot, Slots};

/// `rate` tokens per second, saved up to `burst`; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, n: u32, now: Instant) -> bool {
        self.refill(now);
        let n = f64::from(n);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether `n` tokens could be taken now (none are taken).
    pub fn has(&mut self, n: u32, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= f64::from(n)
    }

    /// Whether the bucket is full (nothing to remember about it).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// One [`TokenBucket`] per peer; at most `max_peers` are kept (full ones are dropped
/// first, and a peer with no bucket left gets a full one).
#[derive(Debug)]
pub struct PeerBuckets {
    rate: u32,
    burst: u32,
    max_peers: usize,
    buckets: HashMap<NodeId, TokenBucket>,
}

impl PeerBuckets {
    /// Buckets of `rate` per second up to `burst`, for at most `max_peers` peers.
    pub fn new(rate: u32, burst: u32, max_peers: usize) -> Self {
        Self {
            rate,
            burst,
            max_peers,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token from `peer`'s bucket if it has one.
    pub fn try_take(&mut self, peer: NodeId, now: Instant) -> bool {
        if self.buckets.len() >= self.max_peers && !self.buckets.contains_key(&peer) {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.max_peers {
                // Every bucket is in use: refuse rather than grow.
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .entry(peer)
            .or_insert_with(|| TokenBucket::new(rate, burst))
            .try_take(1, now)
    }

    /// How many peers have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no peer has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// A bound on items waiting (per peer and in total); a [`Ticket`] holds a place until it
/// is dropped.
#[derive(Debug, Clone)]
pub struct Queue {
    slots: Arc<Slots<NodeId>>,
}

/// A place in a [`Queue`], given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    _slot: Slot<NodeId>,
}

impl Queue {
    /// A queue of at most `per_peer` items per peer and `total` in all.
    pub fn new(per_peer: usize, total: usize) -> Self {
        Self {
            slots: Slots::new("queued membership packets", per_peer, total),
        }
    }

    /// A place for an item from `peer`, if it is within both bounds.
    pub fn enter(&self, peer: NodeId) -> Option<Ticket> {
        self.slots
            .take(&peer)
            .ok()
            .map(|slot| Ticket { _slot: slot })
    }

    /// Items waiting in all.
    pub fn len(&self) -> usize {
        self.slots.in_use()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// At most one report per `every`: [`Throttle::note`] adds to a count and says when to
/// report it (with everything noted since the last report).
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    next: Option<Instant>,
    pending: u64,
}

impl Throttle {
    /// A throttle reporting at most once per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            next: None,
            pending: 0,
        }
    }

    /// Notes `n` more; returns the total to report now, if a report is due.
    pub fn note(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.pending = self.pending.saturating_add(n);
        if self.pending == 0 || self.next.is_some_and(|next| now < next) {
            return None;
        }
        self.next = Some(now + self.every);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(8, 32);
        assert!(b.try_take(32, t0));
        assert!(!b.try_take(1, t0));
        // Half a second: four more.
        let t1 = t0 + S / 2;
        assert!(b.try_take(4, t1));
        assert!(!b.try_take(1, t1));
        // Over ten seconds, at most burst + rate × elapsed.
        let mut taken = 0;
        for ms in (0..10_000u64).step_by(10) {
            if b.try_take(1, t1 + Duration::from_millis(ms)) {
                taken += 1;
            }
        }
        assert!((79..=81).contains(&taken), "{taken}");
        // More than the burst is never possible; a long pause refills only to the burst.
        assert!(!b.try_take(33, t1 + S * 3600));
        assert!(b.is_full(t1 + S * 3600));
        // Time going backwards takes nothing and gives nothing.
        assert!(b.try_take(32, t1 + S * 3600));
        assert!(!b.try_take(1, t0));
    }

    #[test]
    fn peer_buckets_are_separate_and_bounded_in_number() {
        let t0 = Instant::now();
        let ids: Vec<NodeId> = (0..3)
            .map(|_| Keypair::generate().unwrap().node_id())
            .collect();
        let mut p = PeerBuckets::new(1, 2, 2);
        assert!(p.try_take(ids[0], t0) && p.try_take(ids[0], t0));
        assert!(!p.try_take(ids[0], t0), "peer 0 spent its burst");
        assert!(p.try_take(ids[1], t0), "peer 1 has its own");
        // A third peer while both buckets are in use: refused, not added.
        assert!(!p.try_take(ids[2], t0));
        assert_eq!(p.len(), 2);
        // Once the others are idle (full), their buckets make room.
        assert!(p.try_take(ids[2], t0 + S * 10));
        assert!(p.len() <= 2);
    }

    #[test]
    fn the_queue_bounds_each_peer_and_the_total_and_tickets_give_places_back() {
        let a = Keypair::generate().unwrap().node_id();
        let b = Keypair::generate().unwrap().node_id();
        let q = Queue::new(2, 3);
        let t1 = q.enter(a).unwrap();
        let _t2 = q.enter(a).unwrap();
        assert!(q.enter(a).is_none(), "per peer");
        let _t3 = q.enter(b).unwrap();
        assert!(q.enter(b).is_none(), "in total");
        drop(t1);
        assert_eq!(q.len(), 2);
        assert!(q.enter(b).is_some());
    }

    #[test]
    fn the_throttle_reports_at_most_once_per_interval_with_everything_noted() {
        let t0 = Instant::now();
        let mut t = Throttle::new(S * 10);
        assert_eq!(t.note(0, t0), None, "nothing to report");
        assert_eq!(t.note(5, t0), Some(5));
        assert_eq!(t.note(3, t0 + S), None);
        assert_eq!(t.note(4, t0 + S * 2), None);
        assert_eq!(t.note(1, t0 + S * 10), Some(8));
        assert_eq!(t.note(0, t0 + S * 30), None);
    }
}
