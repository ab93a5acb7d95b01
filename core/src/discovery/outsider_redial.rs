//! When to redial the trusted outsiders this node has lost (ADR 0028, amendment). Pure:
//! it takes `now` and the connection status of each remembered outsider, and says which
//! to dial; the known-peers shell (`node::known`) dials them.
//!
//! Outsiders never join membership, so nothing else notices when their connection is
//! lost: without this a community document stopped flowing until a user dialled again.
//! A lost outsider is dialled at once, then again after [`FIRST_RETRY`], doubling up to
//! [`MAX_RETRY`] for as long as it stays unreachable (and remembered: the known-peers
//! table forgets it after `known_peers_ttl`). A connection, from either side, resets it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::identity::NodeId;

/// The wait after the first failed redial.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two redials of one outsider.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The redial schedule of the lost outsiders.
#[derive(Debug, Default)]
pub struct OutsiderRedial {
    /// Per lost outsider: when it may be dialled next, and the wait after that.
    lost: HashMap<NodeId, (Instant, Duration)>,
}

impl OutsiderRedial {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Given every outsider to keep connected with whether it is connected now, the ones
    /// to dial at `now`. Connected ones (and ones no longer given) leave the schedule;
    /// a lost one is due at once the first time, then after a doubling wait.
    pub fn due(
        &mut self,
        now: Instant,
        outsiders: impl IntoIterator<Item = (NodeId, bool)>,
    ) -> Vec<NodeId> {
        let mut keep: HashMap<NodeId, (Instant, Duration)> = HashMap::new();
        let mut out = Vec::new();
        for (id, connected) in outsiders {
            if connected {
                continue;
            }
            let (next, wait) = match self.lost.get(&id) {
                None => (now, FIRST_RETRY),
                Some(&(next, wait)) => (next, wait),
            };
            if now >= next {
                out.push(id);
                keep.insert(id, (now + wait, (wait * 2).min(MAX_RETRY)));
            } else {
                keep.insert(id, (next, wait));
            }
        }
        self.lost = keep;
        out.sort();
        out
    }

    /// How many outsiders are lost and scheduled.
    pub fn lost(&self) -> usize {
        self.lost.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[0] = n;
        NodeId::from_bytes(bytes)
    }

    #[test]
    fn a_lost_outsider_is_dialled_at_once_then_after_doubling_waits() {
        let mut r = OutsiderRedial::new();
        let t0 = Instant::now();
        assert_eq!(r.due(t0, [(id(1), false)]), vec![id(1)]);
        // Not again before the first wait has passed.
        assert!(r
            .due(t0 + Duration::from_millis(999), [(id(1), false)])
            .is_empty());
        let t1 = t0 + FIRST_RETRY;
        assert_eq!(r.due(t1, [(id(1), false)]), vec![id(1)]);
        assert!(r.due(t1 + FIRST_RETRY, [(id(1), false)]).is_empty());
        let t2 = t1 + FIRST_RETRY * 2;
        assert_eq!(r.due(t2, [(id(1), false)]), vec![id(1)]);
        // The wait stops growing at MAX_RETRY.
        let mut t = t2;
        for _ in 0..20 {
            t += MAX_RETRY;
            assert_eq!(r.due(t, [(id(1), false)]), vec![id(1)]);
        }
        assert!(r
            .due(t + MAX_RETRY - Duration::from_millis(1), [(id(1), false)])
            .is_empty());
        assert_eq!(r.due(t + MAX_RETRY, [(id(1), false)]), vec![id(1)]);
    }

    #[test]
    fn a_connection_resets_the_schedule_and_unlisted_outsiders_are_forgotten() {
        let mut r = OutsiderRedial::new();
        let t0 = Instant::now();
        assert_eq!(
            r.due(t0, [(id(2), false), (id(1), false), (id(3), true)]),
            vec![id(1), id(2)]
        );
        assert_eq!(r.lost(), 2);
        // 1 reconnected; 2 is no longer to be kept connected.
        assert!(r
            .due(t0 + Duration::from_millis(10), [(id(1), true)])
            .is_empty());
        assert_eq!(r.lost(), 0);
        // Lost again later: due at once, as the first time.
        let later = t0 + Duration::from_millis(20);
        assert_eq!(
            r.due(later, [(id(1), false), (id(2), false)]),
            vec![id(1), id(2)]
        );
    }
}
