//! When to start a browse again after it ended. Pure logic.
//!
//! mdns-sd ends a browse subscription when its event channel fills (a flood of records,
//! or a reader that fell behind). Discovery must not end with it: the browse is started
//! again, after a wait that doubles while browses keep ending quickly (each restart makes
//! mdns-sd replay its whole cache) and resets once one has lasted.

use std::time::{Duration, Instant};

use crate::discovery::limits::{BROWSE_RESTART_MAX, BROWSE_RESTART_MIN, BROWSE_STABLE};

/// The restart wait of one browser.
#[derive(Debug, Clone)]
pub struct Restart {
    next: Duration,
    min: Duration,
    max: Duration,
    stable: Duration,
}

impl Default for Restart {
    fn default() -> Self {
        Self::new(BROWSE_RESTART_MIN, BROWSE_RESTART_MAX, BROWSE_STABLE)
    }
}

impl Restart {
    /// Waits from `min` doubling to `max`; a browse that lasted `stable` resets the wait.
    pub fn new(min: Duration, max: Duration, stable: Duration) -> Self {
        Self {
            next: min,
            min,
            max: max.max(min),
            stable,
        }
    }

    /// The browse that started at `started` ended at `now` (or could not start): how long
    /// to wait before starting the next one.
    pub fn ended(&mut self, started: Instant, now: Instant) -> Duration {
        if now.saturating_duration_since(started) >= self.stable {
            self.next = self.min;
        }
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_ends_back_off_and_a_lasting_browse_resets_the_wait() {
        let s = Duration::from_secs;
        let mut r = Restart::new(Duration::from_millis(500), s(30), s(60));
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..9).map(|_| r.ended(t0, t0 + s(1))).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
                .map(Duration::from_millis)
                .to_vec()
        );
        // A browse that lasted a minute: back to the minimum.
        assert_eq!(r.ended(t0, t0 + s(60)), Duration::from_millis(500));
        assert_eq!(r.ended(t0, t0 + s(1)), s(1));
        // A clock that goes backwards counts as a quick end, and never panics.
        assert_eq!(r.ended(t0 + s(5), t0), s(2));
    }

    #[test]
    fn the_defaults_are_the_documented_limits() {
        let mut r = Restart::default();
        let t0 = Instant::now();
        assert_eq!(r.ended(t0, t0), BROWSE_RESTART_MIN);
        for _ in 0..64 {
            assert!(r.ended(t0, t0) <= BROWSE_RESTART_MAX);
        }
        assert_eq!(r.ended(t0, t0), BROWSE_RESTART_MAX);
    }
}
