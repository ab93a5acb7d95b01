//! The one retry policy of cache operations: attempts go on, a pause apart, while the
//! membership settles and until the operation's deadline; errors that another attempt
//! cannot fix end it at once. Pure: every decision takes `now`.

use std::time::{Duration, Instant};

use crate::cache::time::deadline_from;
use crate::error::ErrorKind;

/// Pause between attempts while the membership settles.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What to do after an attempt that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    Wait(Duration),
    /// The deadline leaves no room for another attempt: fail with the last error.
    GiveUp,
}

/// The retries of one operation: its deadline and the pause between attempts (which
/// may grow, doubling up to a ceiling, when the policy is built with one).
#[derive(Debug, Clone)]
pub struct Retry {
    deadline: Instant,
    pause: Duration,
    max_pause: Duration,
}

impl Retry {
    /// An operation that started at `now` and may take `timeout` (a timeout too long to
    /// represent gives a deadline decades away), retried every [`RETRY_PAUSE`].
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Self::with_backoff(now, timeout, RETRY_PAUSE, RETRY_PAUSE)
    }

    /// [`Retry::new`] with a first pause of `pause` that doubles after each failed
    /// attempt up to `max_pause` (a `max_pause` below `pause` keeps it constant).
    pub fn with_backoff(
        now: Instant,
        timeout: Duration,
        pause: Duration,
        max_pause: Duration,
    ) -> Self {
        Self {
            deadline: deadline_from(now, timeout),
            pause,
            max_pause: max_pause.max(pause),
        }
    }

    /// When the operation must be over.
    #[cfg(test)]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The time left at `now` (zero once past the deadline).
    pub fn left(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }

    /// After an attempt failed at `now`: wait and try again, or give up when the pause
    /// would reach the deadline. Each call that says wait grows the next pause.
    pub fn after_failure(&mut self, now: Instant) -> Next {
        let pause = self.pause;
        if deadline_from(now, pause) >= self.deadline {
            return Next::GiveUp;
        }
        self.pause = self.pause.saturating_mul(2).min(self.max_pause);
        Next::Wait(pause)
    }

    /// How long one attempt started at `now` may wait for its answer: at most `cap` while
    /// other candidates remain to be tried after it (`last` false), all the time left
    /// otherwise.
    pub fn attempt_wait(&self, now: Instant, cap: Duration, last: bool) -> Duration {
        let left = self.left(now);
        if last {
            left
        } else {
            left.min(cap)
        }
    }

    /// Whether an error of `kind` ends a write or a read-modify-write at once: another
    /// attempt would fail the same way (no room, a refused input, a closed node).
    pub fn is_final(kind: ErrorKind) -> bool {
        matches!(
            kind,
            ErrorKind::QuotaExceeded | ErrorKind::InvalidInput | ErrorKind::Closed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn attempts_go_on_a_pause_apart_until_the_pause_would_reach_the_deadline() {
        let t0 = Instant::now();
        let mut r = Retry::new(t0, 1000 * MS);
        assert_eq!(r.deadline(), t0 + 1000 * MS);
        assert_eq!(r.after_failure(t0), Next::Wait(RETRY_PAUSE));
        assert_eq!(r.after_failure(t0 + 500 * MS), Next::Wait(RETRY_PAUSE));
        assert_eq!(r.after_failure(t0 + 899 * MS), Next::Wait(RETRY_PAUSE));
        // A pause ending exactly at the deadline leaves no time for the attempt.
        assert_eq!(r.after_failure(t0 + 900 * MS), Next::GiveUp);
        assert_eq!(r.after_failure(t0 + 5000 * MS), Next::GiveUp);
        // Giving up is not final: an earlier `now` (a clock read before) may still wait.
        assert_eq!(r.after_failure(t0 + 10 * MS), Next::Wait(RETRY_PAUSE));
    }

    #[test]
    fn the_pause_doubles_up_to_its_ceiling() {
        let t0 = Instant::now();
        let mut r = Retry::with_backoff(t0, 10_000 * MS, 100 * MS, 350 * MS);
        let waits: Vec<Next> = (0..5).map(|_| r.after_failure(t0)).collect();
        assert_eq!(
            waits,
            [100, 200, 350, 350, 350].map(|ms| Next::Wait(ms * MS))
        );
        // The grown pause is what must fit before the deadline.
        assert_eq!(r.after_failure(t0 + 9_650 * MS), Next::GiveUp);
        assert_eq!(r.after_failure(t0 + 9_649 * MS), Next::Wait(350 * MS));
        // A ceiling below the first pause keeps it constant.
        let mut c = Retry::with_backoff(t0, 10_000 * MS, 100 * MS, MS);
        assert_eq!(c.after_failure(t0), Next::Wait(100 * MS));
        assert_eq!(c.after_failure(t0), Next::Wait(100 * MS));
    }

    #[test]
    fn an_endless_timeout_never_gives_up_and_a_zero_one_does_at_once() {
        let t0 = Instant::now();
        let mut r = Retry::new(t0, Duration::MAX);
        assert!(r.deadline() > t0 + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            r.after_failure(t0 + Duration::from_secs(3600)),
            Next::Wait(RETRY_PAUSE)
        );
        let mut z = Retry::new(t0, Duration::ZERO);
        assert_eq!(z.after_failure(t0), Next::GiveUp);
        assert_eq!(z.left(t0 + MS), Duration::ZERO);
    }

    #[test]
    fn an_attempt_waits_at_most_its_cap_unless_it_is_the_last() {
        let t0 = Instant::now();
        let r = Retry::new(t0, 5000 * MS);
        assert_eq!(r.attempt_wait(t0, 1000 * MS, false), 1000 * MS);
        assert_eq!(r.attempt_wait(t0, 1000 * MS, true), 5000 * MS);
        assert_eq!(r.attempt_wait(t0 + 4500 * MS, 1000 * MS, false), 500 * MS);
        assert_eq!(
            r.attempt_wait(t0 + 6000 * MS, 1000 * MS, true),
            Duration::ZERO
        );
    }

    #[test]
    fn only_errors_another_attempt_cannot_fix_are_final() {
        for kind in ErrorKind::ALL {
            let fin = matches!(
                kind,
                ErrorKind::QuotaExceeded | ErrorKind::InvalidInput | ErrorKind::Closed
            );
            assert_eq!(Retry::is_final(kind), fin, "{kind}");
        }
        assert!(!Retry::is_final(ErrorKind::Timeout));
        assert!(!Retry::is_final(ErrorKind::PeerUnavailable));
    }
}
