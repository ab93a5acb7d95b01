//! When to reach across a split: which members held as down to announce this node to, and
//! when to re-dial the bootstrap addresses. Pure logic: time is passed in.
//!
//! A member just declared down is tried every `interval` (1 s by default), so a short
//! split heals within about a second of the network coming back. The longer it stays down
//! the less often it is tried — a quarter of the time it has been down, at most
//! [`MAX_SPACING_FACTOR`] × `interval` (4 s) — so a node that is really gone costs one
//! futile dial every few seconds, not two a second, for as long as membership remembers
//! it, and any split still heals within about 4 s of the network coming back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::identity::NodeId;

/// Longest spacing between two announces to one down member, in `interval`s.
pub const MAX_SPACING_FACTOR: u32 = 4;
/// Longest pause between two rounds of bootstrap dials while this node is alone.
pub const MAX_BOOTSTRAP_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Down {
    since: Instant,
    next: Instant,
}

/// The schedule of announces to down members.
#[derive(Debug)]
pub struct RejoinSchedule {
    interval: Duration,
    down: HashMap<NodeId, Down>,
}

impl RejoinSchedule {
    /// A schedule trying fresh down members every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            down: HashMap::new(),
        }
    }

    /// Given the members held as down now, the ones due for an announce (at most
    /// `fanout`, chosen by `pick` among the due ones: `pick(n)` returns an index below
    /// `n`). Members no longer down are forgotten, so a member that comes back and goes
    /// down again starts over at `interval`.
    pub fn due(
        &mut self,
        down_now: &[NodeId],
        now: Instant,
        fanout: usize,
        mut pick: impl FnMut(usize) -> usize,
    ) -> Vec<NodeId> {
        self.down.retain(|id, _| down_now.contains(id));
        for id in down_now {
            self.down.entry(*id).or_insert(Down {
                since: now,
                next: now,
            });
        }
        let mut ready: Vec<NodeId> = self
            .down
            .iter()
            .filter(|(_, d)| d.next <= now)
            .map(|(id, _)| *id)
            .collect();
        ready.sort();
        let mut chosen = Vec::new();
        while chosen.len() < fanout && !ready.is_empty() {
            let i = pick(ready.len()).min(ready.len() - 1);
            chosen.push(ready.swap_remove(i));
        }
        for id in &chosen {
            if let Some(d) = self.down.get_mut(id) {
                let spacing = (now.saturating_duration_since(d.since) / 4)
                    .clamp(self.interval, self.interval * MAX_SPACING_FACTOR);
                d.next = now + spacing;
            }
        }
        chosen
    }
}

/// When to dial the bootstrap addresses again: while this node has no live member, and
/// while some bootstrap address is no live member's (an island: nodes that joined during
/// a split through one that could not reach its bootstrap peer know only each other, and
/// no member of the rest holds them as down to announce to; the bootstrap addresses are
/// the rendezvous both sides share, as seeds are in Cassandra's gossip).
#[derive(Debug)]
pub struct Bootstrap {
    addrs: Vec<SocketAddr>,
    /// The addresses the bootstrap DNS names give now (ADR 0027).
    named: Vec<SocketAddr>,
    next: Option<Instant>,
    backoff: Duration,
}

impl Bootstrap {
    /// The schedule for `addrs` (unparsable entries were refused by the node's config).
    pub fn new(addrs: &[String]) -> Self {
        Self {
            addrs: addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            named: Vec::new(),
            next: None,
            backoff: Duration::ZERO,
        }
    }

    /// The addresses to dial now, if any. `alone`: no member is live; `met`: whether a
    /// live member is at an address. Dialled: every address while alone, else the ones
    /// not met; first 5 × `interval` after there are some (the node's own start-up dials
    /// come first), then backing off from `interval` to [`MAX_BOOTSTRAP_BACKOFF`]; reset
    /// once there are none (every bootstrap peer met).
    pub fn due(
        &mut self,
        alone: bool,
        met: impl Fn(&SocketAddr) -> bool,
        now: Instant,
        interval: Duration,
    ) -> Vec<SocketAddr> {
        let mut wanted = self.addrs.clone();
        wanted.extend(self.named.iter().filter(|a| !self.addrs.contains(a)));
        if !alone {
            wanted.retain(|a| !met(a));
        }
        if wanted.is_empty() {
            self.next = None;
            self.backoff = Duration::ZERO;
            return Vec::new();
        }
        let next = *self.next.get_or_insert(now + interval * 5);
        if now < next {
            return Vec::new();
        }
        self.backoff = (self.backoff * 2).clamp(interval, MAX_BOOTSTRAP_BACKOFF);
        self.next = Some(now + self.backoff);
        wanted
    }

    /// Replaces the addresses the bootstrap DNS names give (the fixed ones stay); returns
    /// the ones not dialled before, to dial at once.
    pub fn set_named(&mut self, named: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let added = named
            .iter()
            .filter(|a| !self.named.contains(a) && !self.addrs.contains(a))
            .copied()
            .collect();
        self.named = named;
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    const S: Duration = Duration::from_secs(1);

    fn ids(n: usize) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = (0..n)
            .map(|_| Keypair::generate().unwrap().node_id())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn fresh_down_members_are_tried_every_interval_then_less_often() {
        let ids = ids(1);
        let mut s = RejoinSchedule::new(S);
        let t0 = Instant::now();
        let mut tries = Vec::new();
        for tick in 0..600u32 {
            let now = t0 + Duration::from_millis(100) * tick;
            if !s.due(&ids, now, 2, |_| 0).is_empty() {
                tries.push(now.duration_since(t0));
            }
        }
        // Every second for the first few seconds...
        assert_eq!(&tries[..4], &[Duration::ZERO, S, S * 2, S * 3]);
        // ...then spaced by a quarter of the time down, capped at 4 s.
        let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert_eq!(*gaps.last().unwrap(), S * MAX_SPACING_FACTOR);
    }

    #[test]
    fn at_most_fanout_per_round_and_a_member_back_up_starts_over() {
        let ids = ids(5);
        let mut s = RejoinSchedule::new(S);
        let t0 = Instant::now();
        let first = s.due(&ids, t0, 2, |n| n - 1);
        assert_eq!(first.len(), 2);
        // The three others are still due.
        assert_eq!(s.due(&ids, t0, 5, |_| 0).len(), 3);
        assert!(s.due(&ids, t0, 5, |_| 0).is_empty());
        // Long down, then up, then down again: tried at once.
        let later = t0 + Duration::from_secs(100);
        assert_eq!(s.due(&ids, later, 5, |_| 0).len(), 5);
        s.due(&ids[1..], later, 0, |_| 0);
        assert_eq!(s.due(&ids, later, 5, |_| 0), vec![ids[0]]);
    }

    #[test]
    fn bootstrap_is_dialled_while_alone_with_a_growing_pause() {
        let boot: SocketAddr = "10.0.0.1:7400".parse().unwrap();
        let mut b = Bootstrap::new(&[boot.to_string()]);
        let t0 = Instant::now();
        assert!(
            b.due(false, |x| [boot].contains(x), t0, S).is_empty(),
            "its peer is live"
        );
        assert!(
            b.due(true, |_| false, t0, S).is_empty(),
            "start-up dials come first"
        );
        let mut dials = Vec::new();
        for secs in 0..120 {
            let now = t0 + Duration::from_secs(secs);
            if !b.due(true, |_| false, now, S).is_empty() {
                dials.push(secs);
            }
        }
        assert_eq!(&dials[..5], &[5, 6, 8, 12, 20]);
        assert!(dials.windows(2).all(|w| w[1] - w[0] <= 30));
        // The bootstrap peer live resets it.
        assert!(b.due(false, |x| [boot].contains(x), t0, S).is_empty());
        assert!(b
            .due(true, |_| false, t0 + Duration::from_secs(200), S)
            .is_empty());
    }

    #[test]
    fn an_island_keeps_dialling_the_bootstrap_peers_no_live_member_is_at() {
        let (a, c): (SocketAddr, SocketAddr) = (
            "10.0.0.1:7400".parse().unwrap(),
            "10.0.0.3:7400".parse().unwrap(),
        );
        let mut b = Bootstrap::new(&[a.to_string(), c.to_string()]);
        let t0 = Instant::now();
        // Not alone (a member is live), but none at either address: both are dialled.
        assert!(
            b.due(false, |_| false, t0, S).is_empty(),
            "start-up dials come first"
        );
        assert_eq!(b.due(false, |_| false, t0 + S * 5, S), vec![a, c]);
        // `a` met: only `c`, on the same growing pause.
        assert!(b.due(false, |x| [a].contains(x), t0 + S * 5, S).is_empty());
        assert_eq!(b.due(false, |x| [a].contains(x), t0 + S * 6, S), vec![c]);
        assert!(b.due(false, |x| [a].contains(x), t0 + S * 7, S).is_empty());
        assert_eq!(b.due(false, |x| [a].contains(x), t0 + S * 8, S), vec![c]);
        // Both met: nothing, and the schedule starts over.
        assert!(b
            .due(false, |x| [c, a].contains(x), t0 + S * 100, S)
            .is_empty());
        assert!(b
            .due(false, |x| [a].contains(x), t0 + S * 101, S)
            .is_empty());
        assert_eq!(b.due(false, |x| [a].contains(x), t0 + S * 106, S), vec![c]);
    }

    #[test]
    fn named_addresses_join_the_dials_and_leave_when_gone_from_dns() {
        let fixed: SocketAddr = "10.0.0.1:7400".parse().unwrap();
        let named: SocketAddr = "10.0.0.2:7400".parse().unwrap();
        let mut b = Bootstrap::new(&[]);
        let t0 = Instant::now();
        assert!(b
            .due(true, |_| false, t0 + Duration::from_secs(60), S)
            .is_empty());
        assert_eq!(b.set_named(vec![named]), vec![named]);
        assert!(b.set_named(vec![named]).is_empty(), "already known");
        let mut b2 = Bootstrap::new(&[fixed.to_string()]);
        assert!(b2.set_named(vec![fixed]).is_empty(), "a fixed address");
        let t1 = t0 + Duration::from_secs(100);
        b.due(true, |_| false, t1, S);
        assert_eq!(b.due(true, |_| false, t1 + S * 5, S), vec![named]);
        b.set_named(Vec::new());
        assert!(b.due(true, |_| false, t1 + S * 60, S).is_empty());
    }
}
