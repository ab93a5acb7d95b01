//! Which advertised nodes to dial, and when. Pure logic: the caller passes `now` and does
//! the dialling (`discovery::mdns`).
//!
//! Every advert is a stranger's request to dial an address of their choosing, and the
//! cluster tag that selects ours is public. So:
//! - adverts wait in a bounded set ([`Limits::max_pending`]); when it is full the oldest
//!   advert of the *loudest* source (the destination IP with the most waiting adverts) is
//!   dropped, so a flood from one place cannot push out a newcomer from another (and the
//!   caller replays mdns-sd's cache later, see [`Admission::take_dropped`]);
//! - the waiting advert of the node first seen most recently is dialled first (a node
//!   that just appeared is not queued behind a backlog of fakes, nor behind old ones that
//!   come back when mdns-sd's cache is replayed);
//! - at most [`Limits::max_in_flight`] adverts are dialled at once, dials start at most at
//!   a token-bucket rate in total, and per destination IP at most
//!   [`Limits::max_in_flight_per_source`] at once, [`Limits::source_spacing`] apart, with a
//!   wait that doubles on each consecutive failure;
//! - one advert names at most [`Limits::max_addrs`] addresses to dial;
//! - a (node, address) whose dial failed is not dialled again for
//!   [`Limits::failed_retry_after`], however often the same record comes back (an IP
//!   backs off only when nothing answered there, see [`Outcome::refused`]);
//! - nodes already connected are skipped, when offered and again when their turn comes.
//!
//! Everything it holds is bounded: waiting adverts, dials, per-IP state and failure memory.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::discovery::advert::Advert;
use crate::discovery::limits;
use crate::discovery::rate::{after, TokenBucket};
use crate::identity::NodeId;

/// The bounds an [`Admission`] enforces (defaults: the constants of `discovery::limits`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Adverts dialled at the same time.
    pub max_in_flight: usize,
    /// Addresses of one destination IP reserved by dials at the same time.
    pub max_in_flight_per_source: usize,
    /// Addresses dialled for one advertised node.
    pub max_addrs: usize,
    /// Adverts waiting to be dialled.
    pub max_pending: usize,
    /// Dials that may start at once after a quiet period.
    pub burst: u32,
    /// One more dial may start every `refill`.
    pub refill: Duration,
    /// Minimum gap between two dials that start towards one IP.
    pub source_spacing: Duration,
    /// Wait imposed on an IP after its first failed dial (doubling per failure).
    pub backoff_min: Duration,
    /// Longest wait imposed on an IP; one left alone this long after is forgotten.
    pub backoff_max: Duration,
    /// Destination IPs whose state is kept.
    pub max_sources: usize,
    /// How long a failed (node, address) is not dialled again.
    pub failed_retry_after: Duration,
    /// Failed (node, address) pairs remembered.
    pub max_failed: usize,
    /// Nodes whose first sighting is remembered (for the dial order).
    pub max_seen: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: limits::MAX_DIALS_IN_FLIGHT,
            max_in_flight_per_source: limits::MAX_DIALS_IN_FLIGHT_PER_SOURCE,
            max_addrs: limits::MAX_ADDRS_PER_ADVERT,
            max_pending: limits::MAX_PENDING,
            burst: limits::DIAL_BURST,
            refill: limits::DIAL_REFILL,
            source_spacing: limits::SOURCE_SPACING,
            backoff_min: limits::SOURCE_BACKOFF_MIN,
            backoff_max: limits::SOURCE_BACKOFF_MAX,
            max_sources: limits::MAX_SOURCES,
            failed_retry_after: limits::FAILED_RETRY_AFTER,
            max_failed: limits::MAX_FAILED_REMEMBERED,
            max_seen: limits::MAX_SEEN_REMEMBERED,
        }
    }
}

/// What became of an offered advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It waits for its turn.
    Queued,
    /// Its new addresses were added to a waiting advert of the same node.
    Merged,
    /// It is this node's own advert.
    Own,
    /// Its cluster tag is not ours.
    OtherCluster,
    /// The node is already connected.
    Connected,
    /// Nothing new: each address is waiting, being dialled, or failed recently.
    Known,
}

impl Verdict {
    /// Whether the advert added something to dial.
    pub fn added(self) -> bool {
        matches!(self, Verdict::Queued | Verdict::Merged)
    }
}

/// A dial to make now: `addrs` one after another, pinned to `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The advertised node (the dial checks that the peer holds its key).
    pub id: NodeId,
    /// Addresses to try, in order, until one connects.
    pub addrs: Vec<SocketAddr>,
}

/// How a [`Dial`] ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The node is connected now (by this dial, or otherwise meanwhile).
    pub connected: bool,
    /// The address that connected, if this dial did.
    pub reached: Option<SocketAddr>,
    /// Addresses where nothing usable answered (timed out, unreachable ...): their IP
    /// backs off.
    pub failed: Vec<SocketAddr>,
    /// Addresses where a node answered but refused the advertised identity (another key,
    /// another cluster): the record lied, not the IP, which does not back off (a fake
    /// record aimed at a real node's IP must not keep that node from being dialled).
    pub refused: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
struct Candidate {
    addrs: Vec<SocketAddr>,
    /// Arrival order: larger is newer.
    seq: u64,
}

impl Candidate {
    fn source(&self) -> Option<IpAddr> {
        self.addrs.first().map(SocketAddr::ip)
    }
}

#[derive(Debug, Clone)]
struct Source {
    in_flight: usize,
    failures: u32,
    not_before: Instant,
}

/// The decision part of mDNS discovery: adverts in, dials out.
#[derive(Debug)]
pub struct Admission {
    own: NodeId,
    cluster: String,
    limits: Limits,
    pending: HashMap<NodeId, Candidate>,
    seq: u64,
    seen: HashMap<NodeId, u64>,
    seen_order: BTreeMap<u64, NodeId>,
    in_flight: HashMap<NodeId, Vec<SocketAddr>>,
    sources: HashMap<IpAddr, Source>,
    failed: HashMap<(NodeId, SocketAddr), Instant>,
    bucket: TokenBucket,
    dropped: u64,
}

impl Admission {
    /// Admission for the node `own` of cluster `cluster`, with the default limits.
    pub fn new(own: NodeId, cluster: &str, now: Instant) -> Self {
        Self::with_limits(own, cluster, Limits::default(), now)
    }

    /// Admission with explicit limits (zero counts are raised to one).
    pub fn with_limits(own: NodeId, cluster: &str, mut limits: Limits, now: Instant) -> Self {
        limits.max_in_flight = limits.max_in_flight.max(1);
        limits.max_in_flight_per_source = limits.max_in_flight_per_source.max(1);
        limits.max_addrs = limits.max_addrs.max(1);
        limits.max_pending = limits.max_pending.max(1);
        limits.burst = limits.burst.max(1);
        limits.max_sources = limits.max_sources.max(1);
        limits.max_failed = limits.max_failed.max(1);
        limits.max_seen = limits.max_seen.max(1);
        Self {
            own,
            cluster: cluster.to_string(),
            bucket: TokenBucket::new(limits.burst, limits.refill, now),
            limits,
            pending: HashMap::new(),
            seq: 0,
            seen: HashMap::new(),
            seen_order: BTreeMap::new(),
            in_flight: HashMap::new(),
            sources: HashMap::new(),
            failed: HashMap::new(),
            dropped: 0,
        }
    }

    /// Adverts waiting to be dialled.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adverts being dialled.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Failed (node, address) pairs remembered.
    pub fn remembered_failures(&self) -> usize {
        self.failed.len()
    }

    /// Destination IPs whose rate state is kept.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }

    /// Nodes whose first sighting is remembered.
    pub fn seen(&self) -> usize {
        self.seen.len()
    }

    fn failed_recently(&self, id: &NodeId, addr: &SocketAddr, now: Instant) -> bool {
        self.failed
            .get(&(*id, *addr))
            .is_some_and(|until| now < *until)
    }

    /// An advert was seen. `connected`: whether the node is connected right now.
    pub fn offer(&mut self, ad: Advert, connected: bool, now: Instant) -> Verdict {
        if ad.id == self.own {
            return Verdict::Own;
        }
        if ad.cluster != self.cluster {
            return Verdict::OtherCluster;
        }
        if connected {
            self.pending.remove(&ad.id);
            return Verdict::Connected;
        }
        let waiting: &[SocketAddr] = self
            .pending
            .get(&ad.id)
            .map(|c| c.addrs.as_slice())
            .unwrap_or(&[]);
        let dialling: &[SocketAddr] = self.in_flight.get(&ad.id).map(Vec::as_slice).unwrap_or(&[]);
        let room = self.limits.max_addrs.saturating_sub(waiting.len());
        let mut fresh: Vec<SocketAddr> = Vec::new();
        for addr in &ad.addrs {
            if fresh.len() >= room {
                break;
            }
            if waiting.contains(addr)
                || dialling.contains(addr)
                || fresh.contains(addr)
                || self.failed_recently(&ad.id, addr, now)
            {
                continue;
            }
            fresh.push(*addr);
        }
        if fresh.is_empty() {
            return Verdict::Known;
        }
        if let Some(c) = self.pending.get_mut(&ad.id) {
            c.addrs.extend(fresh);
            return Verdict::Merged;
        }
        let seq = self.first_seen(ad.id);
        self.pending.insert(ad.id, Candidate { addrs: fresh, seq });
        while self.pending.len() > self.limits.max_pending {
            self.evict_one();
        }
        Verdict::Queued
    }

    /// The arrival rank of `id`: when it was first seen, so a node seen again (a replay of
    /// mdns-sd's cache, a record that comes back after its failure is forgotten) does not
    /// pass a node that has just appeared.
    fn first_seen(&mut self, id: NodeId) -> u64 {
        if let Some(seq) = self.seen.get(&id) {
            return *seq;
        }
        self.seq = self.seq.saturating_add(1);
        self.seen.insert(id, self.seq);
        self.seen_order.insert(self.seq, id);
        while self.seen.len() > self.limits.max_seen {
            match self.seen_order.pop_first() {
                Some((_, old)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seq
    }

    /// Drops the oldest waiting advert of the source with the most waiting adverts.
    fn evict_one(&mut self) {
        let mut counts: HashMap<Option<IpAddr>, usize> = HashMap::new();
        for c in self.pending.values() {
            *counts.entry(c.source()).or_default() += 1;
        }
        let loudest = counts.values().copied().max().unwrap_or(0);
        let victim = self
            .pending
            .iter()
            .filter(|(_, c)| counts.get(&c.source()).copied() == Some(loudest))
            .min_by_key(|(_, c)| c.seq)
            .map(|(id, _)| *id);
        if let Some(id) = victim {
            self.pending.remove(&id);
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// How many waiting adverts were dropped (the waiting set was full) since the last
    /// call. The caller replays mdns-sd's cache later, so those still advertised return.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn source_ready(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources.get(&ip).is_none_or(|s| {
            s.in_flight < self.limits.max_in_flight_per_source && s.not_before <= now
        })
    }

    /// The next dial to start now, if the limits allow one. `connected` tells whether a
    /// node is connected by now (such adverts are dropped instead of dialled).
    pub fn next(&mut self, now: Instant, connected: impl Fn(&NodeId) -> bool) -> Option<Dial> {
        if self.in_flight.len() >= self.limits.max_in_flight || !self.bucket.ready(now) {
            return None;
        }
        let mut order: Vec<(u64, NodeId)> = self
            .pending
            .iter()
            .filter(|(id, _)| !self.in_flight.contains_key(id))
            .map(|(id, c)| (c.seq, *id))
            .collect();
        order.sort_unstable_by_key(|o| std::cmp::Reverse(o.0));
        for (_, id) in order {
            if connected(&id) {
                self.pending.remove(&id);
                continue;
            }
            let Some(mut cand) = self.pending.remove(&id) else {
                continue;
            };
            cand.addrs.retain(|a| !self.failed_recently(&id, a, now));
            let usable: Vec<SocketAddr> = cand
                .addrs
                .iter()
                .filter(|a| self.source_ready(a.ip(), now))
                .copied()
                .collect();
            if usable.is_empty() {
                if !cand.addrs.is_empty() {
                    self.pending.insert(id, cand);
                }
                continue;
            }
            self.bucket.try_take(now);
            for addr in &usable {
                let spacing = self.limits.source_spacing;
                let s = self.source_entry(addr.ip(), now);
                s.in_flight = s.in_flight.saturating_add(1);
                s.not_before = s.not_before.max(after(now, spacing));
            }
            cand.addrs.retain(|a| !usable.contains(a));
            if !cand.addrs.is_empty() {
                // The rest waits for its sources (dialled once this dial has ended).
                self.pending.insert(id, cand);
            }
            self.in_flight.insert(id, usable.clone());
            return Some(Dial { id, addrs: usable });
        }
        None
    }

    /// When a waiting advert may next become dialable (for the caller's timer). `None`:
    /// nothing waits, or only a dial ending can free what it waits for.
    pub fn next_wake(&mut self, now: Instant) -> Option<Instant> {
        if self.pending.is_empty() || self.in_flight.len() >= self.limits.max_in_flight {
            return None;
        }
        let mut best: Option<Instant> = None;
        for (id, c) in &self.pending {
            if self.in_flight.contains_key(id) {
                continue;
            }
            for addr in &c.addrs {
                let at = match self.sources.get(&addr.ip()) {
                    None => now,
                    Some(s) if s.in_flight >= self.limits.max_in_flight_per_source => continue,
                    Some(s) => s.not_before.max(now),
                };
                best = Some(best.map_or(at, |b| b.min(at)));
            }
        }
        let best = best?;
        Some(best.max(self.bucket.next_token_at(now)))
    }

    /// A dial handed out by [`Admission::next`] ended.
    pub fn finished(&mut self, id: &NodeId, outcome: &Outcome, now: Instant) {
        let Some(dispatched) = self.in_flight.remove(id) else {
            return;
        };
        for addr in &dispatched {
            if let Some(s) = self.sources.get_mut(&addr.ip()) {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
        }
        if let Some(addr) = outcome.reached.filter(|a| dispatched.contains(a)) {
            if let Some(s) = self.sources.get_mut(&addr.ip()) {
                s.failures = 0;
            }
        }
        for addr in outcome.refused.iter().filter(|a| dispatched.contains(a)) {
            self.remember_failed(*id, *addr, now);
        }
        for addr in outcome.failed.iter().filter(|a| dispatched.contains(a)) {
            self.remember_failed(*id, *addr, now);
            let (min, max) = (self.limits.backoff_min, self.limits.backoff_max);
            let s = self.source_entry(addr.ip(), now);
            s.failures = s.failures.saturating_add(1);
            let doublings = s.failures.saturating_sub(1).min(31);
            let wait = min.saturating_mul(1u32 << doublings).min(max);
            s.not_before = s.not_before.max(after(now, wait));
        }
        if outcome.connected {
            self.pending.remove(id);
        }
    }

    fn remember_failed(&mut self, id: NodeId, addr: SocketAddr, now: Instant) {
        self.failed
            .insert((id, addr), after(now, self.limits.failed_retry_after));
        if self.failed.len() > self.limits.max_failed {
            self.failed.retain(|_, until| now < *until);
        }
        while self.failed.len() > self.limits.max_failed {
            let soonest = self
                .failed
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k);
            match soonest {
                Some(k) => {
                    self.failed.remove(&k);
                }
                None => break,
            }
        }
    }

    /// The state of `ip`, created if absent (forgetting idle sources beyond the bound).
    fn source_entry(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.limits.max_sources {
            let forget_after = self.limits.backoff_max;
            self.sources
                .retain(|_, s| s.in_flight > 0 || now < after(s.not_before, forget_after));
            while self.sources.len() >= self.limits.max_sources {
                let idlest = self
                    .sources
                    .iter()
                    .filter(|(_, s)| s.in_flight == 0)
                    .min_by_key(|(_, s)| s.not_before)
                    .map(|(ip, _)| *ip);
                match idlest {
                    Some(old) => {
                        self.sources.remove(&old);
                    }
                    None => break,
                }
            }
        }
        self.sources.entry(ip).or_insert(Source {
            in_flight: 0,
            failures: 0,
            not_before: now,
        })
    }
}

#[cfg(test)]
mod tests;
