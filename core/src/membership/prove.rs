//! Asking members only heard of to prove who they are. Pure logic: time is passed in.
//!
//! A member enters the view (and so the cache's routing and block placement) only once it
//! proved its key to this node (`Admission::proved`: it spoke for itself in SWIM, or was
//! connected). Left to SWIM alone, that happens when one of the two probes the other: each
//! node probes one member per probe period in round robin, so a newcomer reached every
//! routing table of an N-node cluster only after about N probe periods (the simulator
//! measured 23 s for 50 nodes, 90 s for 200). Instead, a live member heard of but not
//! proved is announced to: a real member answers, speaking for itself, within a round trip.
//!
//! Announces go through the same dial budget as SWIM's own packets to unconnected members
//! (a fake member's address costs this node no more than SWIM probing it would), at most
//! [`PROVE_FANOUT`] per round, and the same member is asked again only after
//! [`PROVE_RETRY`], then less and less often (doubling up to [`MAX_PROVE_SPACING`]), so a
//! member that never answers costs one announce every half minute at most. A member the
//! announce could not go to now (the dial budget is spent, or a dial to it is under way:
//! the packet would be dropped) is not counted as asked: it stays first in line, and its
//! spacing does not double for an announce that never left. Without that, a node joining
//! a cluster of 64 spent its budget on SWIM's own packets, its announces were dropped
//! while their spacing doubled (1, 2, 4, … 32 s), and 64 nodes had not converged after
//! 120 s (issue 19).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::identity::NodeId;

/// Members announced to per round (a round is a membership tick, 100 ms).
pub const PROVE_FANOUT: usize = 4;
/// How long before a member that did not prove itself is asked again.
pub const PROVE_RETRY: Duration = Duration::from_secs(1);
/// Longest spacing between two announces to a member that never answers.
pub const MAX_PROVE_SPACING: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy)]
struct Asked {
    next: Instant,
    spacing: Duration,
}

/// Which unproved members to announce to, and when.
#[derive(Debug, Default)]
pub struct Proving {
    asked: HashMap<NodeId, Asked>,
}

impl Proving {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Given the live members heard of but not proved now (in a stable order), the ones
    /// to announce to: at most `fanout`, those never asked first, then those whose retry
    /// is due, among those `can_send` accepts (it is asked in that order, and may count
    /// what it accepted: an accepted member is announced to). A member it refuses is not
    /// recorded as asked. Members no longer in `unproved` are forgotten, so the schedule
    /// holds at most as many entries as membership holds members.
    pub fn due(
        &mut self,
        unproved: &[NodeId],
        now: Instant,
        fanout: usize,
        mut can_send: impl FnMut(&NodeId) -> bool,
    ) -> Vec<NodeId> {
        self.asked.retain(|id, _| unproved.contains(id));
        let mut fresh: Vec<NodeId> = Vec::new();
        let mut again: Vec<(Instant, NodeId)> = Vec::new();
        for id in unproved {
            match self.asked.get(id) {
                None => fresh.push(*id),
                Some(a) if a.next <= now => again.push((a.next, *id)),
                Some(_) => {}
            }
        }
        // The longest waiting first.
        again.sort();
        let chosen: Vec<NodeId> = fresh
            .into_iter()
            .chain(again.into_iter().map(|(_, id)| id))
            .filter(|id| can_send(id))
            .take(fanout)
            .collect();
        for id in &chosen {
            let spacing = match self.asked.get(id) {
                None => PROVE_RETRY,
                Some(a) => (a.spacing * 2).min(MAX_PROVE_SPACING),
            };
            self.asked.insert(
                *id,
                Asked {
                    next: now + spacing,
                    spacing,
                },
            );
        }
        chosen
    }

    /// How many members the schedule holds.
    pub fn len(&self) -> usize {
        self.asked.len()
    }

    /// Whether the schedule holds no member.
    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<NodeId> {
        (1..=n).map(|i| NodeId::from_bytes([i; 32])).collect()
    }

    #[test]
    fn new_members_are_asked_at_once_within_the_fanout() {
        let mut p = Proving::new();
        let t = Instant::now();
        let all = ids(6);
        assert_eq!(p.due(&all, t, 4, |_| true), all[..4].to_vec());
        // The next round takes the rest; the first four are not due yet.
        assert_eq!(p.due(&all, t, 4, |_| true), all[4..].to_vec());
        assert!(p
            .due(&all, t + Duration::from_millis(999), 4, |_| true)
            .is_empty());
    }

    #[test]
    fn a_silent_member_is_asked_less_and_less_often() {
        let mut p = Proving::new();
        let t = Instant::now();
        let one = ids(1);
        let mut at = Vec::new();
        let mut now = t;
        while now < t + Duration::from_secs(200) {
            if !p.due(&one, now, 4, |_| true).is_empty() {
                at.push(now.duration_since(t).as_secs());
            }
            now += Duration::from_millis(100);
        }
        // 0, then after 1, 2, 4, 8, 16 and 32 s, then every 32 s.
        assert_eq!(at[..7], [0, 1, 3, 7, 15, 31, 63]);
        assert!(at.windows(2).all(|w| w[1] - w[0] <= 32));
        assert!(at.len() < 13, "{at:?}");
    }

    #[test]
    fn proved_or_gone_members_are_forgotten_and_start_over() {
        let mut p = Proving::new();
        let t = Instant::now();
        let all = ids(3);
        p.due(&all, t, 4, |_| true);
        assert_eq!(p.len(), 3);
        // Two proved themselves (or left): only one is kept.
        p.due(&all[2..], t, 4, |_| true);
        assert_eq!(p.len(), 1);
        // Heard of again later (a new identity): asked at once.
        assert_eq!(
            p.due(&all, t + Duration::from_millis(1), 4, |_| true),
            all[..2].to_vec()
        );
    }

    #[test]
    fn a_member_that_cannot_be_sent_to_now_is_not_counted_as_asked() {
        let mut p = Proving::new();
        let t = Instant::now();
        let all = ids(3);
        // The budget allows one announce: the first goes, the others wait unrecorded.
        let mut budget = 1;
        let mut take = |_: &NodeId| {
            let ok = budget > 0;
            budget -= usize::from(ok);
            ok
        };
        assert_eq!(p.due(&all, t, 4, &mut take), all[..1].to_vec());
        assert_eq!(p.len(), 1);
        // A moment later, with budget again, the other two are fresh: asked at once.
        let later = t + Duration::from_millis(100);
        assert_eq!(p.due(&all, later, 4, |_| true), all[1..].to_vec());
        // A retry that cannot go keeps its spacing: when it finally goes, it is the
        // first retry (spacing 2 s next), not a doubled one.
        let retry = t + Duration::from_secs(5);
        assert!(p.due(&all[..1], retry, 4, |_| false).is_empty());
        assert_eq!(p.due(&all[..1], retry, 4, |_| true), all[..1].to_vec());
        assert!(p
            .due(&all[..1], retry + Duration::from_millis(1999), 4, |_| true)
            .is_empty());
        assert_eq!(
            p.due(&all[..1], retry + Duration::from_secs(2), 4, |_| true),
            all[..1].to_vec()
        );
    }

    #[test]
    fn due_retries_go_longest_waiting_first() {
        let mut p = Proving::new();
        let t = Instant::now();
        let all = ids(3);
        p.due(&all[..1], t, 1, |_| true);
        p.due(&all[..2], t + Duration::from_millis(500), 1, |_| true);
        // Both due at 1.5 s: the first asked goes first; a new member before either.
        let later = t + Duration::from_millis(1500);
        assert_eq!(p.due(&all, later, 2, |_| true), vec![all[2], all[0]]);
    }
}
