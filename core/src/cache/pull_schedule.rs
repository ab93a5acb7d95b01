//! When the maintenance task starts, resumes or holds back the pulls of partitions from
//! other members, and when it purges old deletes. Pure: every decision takes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::identity::NodeId;

/// Pause before pulling again from a member that failed.
pub const PULL_RETRY: Duration = Duration::from_millis(500);

/// One pull: a bucket (by name) and the member pulled from.
pub type PullKey = (String, NodeId);

/// How a pull of some partitions of a bucket from one source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullEnd {
    /// The source gave everything it holds of them.
    Complete,
    /// Stopped part way (a round brought its share, or the quota is full): continue from
    /// `cursor` after `retry`.
    Paused {
        /// Where to continue.
        cursor: u32,
        /// Not before this long.
        retry: Duration,
    },
    /// Failed (the source did not answer, disagreed, or broke the protocol): start again
    /// after [`PULL_RETRY`].
    Failed,
}

/// Where a paused pull resumes: its partitions, the cursor, and not before when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Paused {
    partitions: Vec<u16>,
    cursor: u32,
    not_before: Instant,
}

/// The pulls' schedule on this node.
#[derive(Debug, Default)]
pub struct PullSchedule {
    /// Sources that failed, and when.
    failed: HashMap<NodeId, Instant>,
    paused: HashMap<PullKey, Paused>,
}

impl PullSchedule {
    /// Nothing paused, nothing failed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records how the pull `key` of `partitions` ended at `now`.
    pub fn ended(&mut self, key: PullKey, partitions: Vec<u16>, end: PullEnd, now: Instant) {
        match end {
            PullEnd::Complete => {
                self.paused.remove(&key);
            }
            PullEnd::Paused { cursor, retry } => {
                let not_before = now.checked_add(retry).unwrap_or(now);
                self.paused.insert(
                    key,
                    Paused {
                        partitions,
                        cursor,
                        not_before,
                    },
                );
            }
            PullEnd::Failed => {
                self.paused.remove(&key);
                self.failed.insert(key.1, now);
            }
        }
    }

    /// Forgets sources that failed long enough ago to be tried again (node ids churn,
    /// so the map would otherwise grow for ever).
    pub fn forget_old_failures(&mut self, now: Instant) {
        self.failed
            .retain(|_, t| now.saturating_duration_since(*t) < PULL_RETRY);
    }

    /// Forgets where pulls of `bucket` that are no longer wanted had paused: only those
    /// from a source for which `wanted` holds are kept.
    pub fn keep_wanted(&mut self, bucket: &str, wanted: impl Fn(&NodeId) -> bool) {
        self.paused
            .retain(|(name, source), _| name != bucket || wanted(source));
    }

    /// Whether the pull `key` of `partitions` may start at `now`, and from which
    /// cursor: not while its source failed within [`PULL_RETRY`]; a paused pull of the
    /// same partitions resumes where it stopped once due, and not before; anything else
    /// starts from the beginning.
    pub fn start(&self, key: &PullKey, partitions: &[u16], now: Instant) -> Option<u32> {
        if self
            .failed
            .get(&key.1)
            .is_some_and(|t| now.saturating_duration_since(*t) < PULL_RETRY)
        {
            return None;
        }
        match self.paused.get(key) {
            Some(p) if p.partitions == partitions => (now >= p.not_before).then_some(p.cursor),
            _ => Some(0),
        }
    }
}

/// Something done every `every`: due at `now` once the period since it was last due
/// has passed.
#[derive(Debug, Clone)]
pub struct Every {
    every: Duration,
    next: Instant,
}

impl Every {
    /// First due `every` after `now`.
    pub fn new(every: Duration, now: Instant) -> Self {
        Self {
            every,
            next: now.checked_add(every).unwrap_or(now),
        }
    }

    /// Whether it is due at `now` (and if so, the next time is `every` after `now`).
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now.checked_add(self.every).unwrap_or(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    const MS: Duration = Duration::from_millis(1);

    fn id() -> NodeId {
        Keypair::generate().unwrap().node_id()
    }

    #[test]
    fn a_new_pull_starts_at_the_beginning_and_a_completed_one_again() {
        let t0 = Instant::now();
        let mut s = PullSchedule::new();
        let key = ("b".to_string(), id());
        assert_eq!(s.start(&key, &[1, 2], t0), Some(0));
        s.ended(key.clone(), vec![1, 2], PullEnd::Complete, t0);
        assert_eq!(s.start(&key, &[1, 2], t0), Some(0));
    }

    #[test]
    fn a_paused_pull_resumes_at_its_cursor_once_due() {
        let t0 = Instant::now();
        let mut s = PullSchedule::new();
        let key = ("b".to_string(), id());
        let end = PullEnd::Paused {
            cursor: 42,
            retry: 200 * MS,
        };
        s.ended(key.clone(), vec![1, 2], end, t0);
        assert_eq!(s.start(&key, &[1, 2], t0 + 199 * MS), None);
        assert_eq!(s.start(&key, &[1, 2], t0 + 200 * MS), Some(42));
        // Other partitions (the table changed): start over.
        assert_eq!(s.start(&key, &[1, 2, 3], t0), Some(0));
        // Another bucket or source is not held back.
        assert_eq!(s.start(&("c".to_string(), key.1), &[1, 2], t0), Some(0));
        // No longer wanted: forgotten.
        s.keep_wanted("c", |_| false);
        assert_eq!(s.start(&key, &[1, 2], t0), None, "other bucket: kept");
        s.keep_wanted("b", |n| *n != key.1);
        assert_eq!(s.start(&key, &[1, 2], t0), Some(0));
    }

    #[test]
    fn a_failed_source_waits_then_is_forgotten() {
        let t0 = Instant::now();
        let mut s = PullSchedule::new();
        let source = id();
        let key = ("b".to_string(), source);
        s.ended(
            key.clone(),
            vec![1],
            PullEnd::Paused {
                cursor: 9,
                retry: MS,
            },
            t0,
        );
        s.ended(key.clone(), vec![1], PullEnd::Failed, t0);
        // Every bucket waits for that source.
        assert_eq!(s.start(&key, &[1], t0 + PULL_RETRY / 2), None);
        assert_eq!(s.start(&("x".to_string(), source), &[7], t0), None);
        // After the pause it starts over (the failure dropped the cursor).
        assert_eq!(s.start(&key, &[1], t0 + PULL_RETRY), Some(0));
        s.forget_old_failures(t0 + PULL_RETRY / 2);
        assert_eq!(s.failed.len(), 1);
        s.forget_old_failures(t0 + PULL_RETRY);
        assert!(s.failed.is_empty());
    }

    #[test]
    fn a_periodic_task_is_due_once_per_period() {
        let t0 = Instant::now();
        let mut e = Every::new(5000 * MS, t0);
        assert!(!e.due(t0));
        assert!(!e.due(t0 + 4999 * MS));
        assert!(e.due(t0 + 5000 * MS));
        assert!(!e.due(t0 + 9999 * MS));
        assert!(e.due(t0 + 10_000 * MS));
        // Late: the next period counts from when it ran.
        assert!(e.due(t0 + 30_000 * MS));
        assert!(!e.due(t0 + 34_999 * MS));
    }
}
