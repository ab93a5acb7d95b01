//! The transfers in progress, as the HTTP API lists them: built from the node's progress
//! events (a pure table taking `now`; the listener feeds it). A transfer leaves the table
//! when its last report says it is complete, or when it has not reported for
//! [`STALE_AFTER`] (it failed or was cancelled: progress events carry no outcome).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::identity::NodeId;
use crate::transfer::{Direction, Progress};

/// A transfer that has not reported progress for this long is no longer listed.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// The most transfers listed (the oldest reports are dropped beyond it).
pub const MAX_LISTED: usize = 1024;

type Key = (NodeId, String, Direction);

/// The transfers in progress on one node.
#[derive(Debug, Default)]
pub struct ActiveTransfers {
    live: HashMap<Key, (Progress, Instant)>,
}

impl ActiveTransfers {
    /// Takes a progress report seen at `now`; returns the bytes it adds to what was
    /// reported before for the same transfer (what the byte counters count).
    pub fn update(&mut self, p: Progress, now: Instant) -> u64 {
        let key = (p.peer, p.name.clone(), p.direction);
        let before = self.live.get(&key).map_or(0, |(old, _)| old.done);
        let added = p.done.saturating_sub(before);
        if p.done >= p.total {
            self.live.remove(&key);
        } else {
            self.live.insert(key, (p, now));
            if self.live.len() > MAX_LISTED {
                self.drop_oldest();
            }
        }
        added
    }

    fn drop_oldest(&mut self) {
        let oldest = self
            .live
            .iter()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.live.remove(&k);
        }
    }

    /// The transfers in progress at `now` (stale ones are forgotten), by peer, name and
    /// direction.
    pub fn list(&mut self, now: Instant) -> Vec<Progress> {
        self.live
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < STALE_AFTER);
        let mut out: Vec<Progress> = self.live.values().map(|(p, _)| p.clone()).collect();
        out.sort_by(|a, b| {
            (a.peer, &a.name, a.direction.as_str()).cmp(&(b.peer, &b.name, b.direction.as_str()))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(name: &str, done: u64, total: u64) -> Progress {
        Progress {
            peer: NodeId::from_bytes([7; 32]),
            name: name.into(),
            direction: Direction::Sending,
            done,
            total,
            rate: 1.0,
        }
    }

    #[test]
    fn a_transfer_is_listed_until_complete_and_counts_its_bytes_once() {
        let t0 = Instant::now();
        let mut a = ActiveTransfers::default();
        assert_eq!(a.update(progress("f", 10, 100), t0), 10);
        assert_eq!(a.update(progress("f", 60, 100), t0), 50);
        assert_eq!(a.list(t0).len(), 1);
        assert_eq!(a.list(t0)[0].done, 60);
        assert_eq!(a.update(progress("f", 100, 100), t0), 40);
        assert!(a.list(t0).is_empty());
    }

    #[test]
    fn a_silent_transfer_is_forgotten() {
        let t0 = Instant::now();
        let mut a = ActiveTransfers::default();
        a.update(progress("f", 10, 100), t0);
        a.update(progress("g", 10, 100), t0 + Duration::from_secs(20));
        let later = t0 + STALE_AFTER + Duration::from_secs(1);
        let names: Vec<String> = a.list(later).into_iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["g".to_string()]);
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut a = ActiveTransfers::default();
        for i in 0..(MAX_LISTED + 10) {
            a.update(
                progress(&format!("f{i}"), 1, 100),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(a.list(t0 + Duration::from_secs(1)).len(), MAX_LISTED);
    }
}
