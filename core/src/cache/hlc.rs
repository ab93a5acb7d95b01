//! A hybrid logical clock: versions for last-writer-wins that follow wall time but never go
//! backwards, and that move past any version seen from a peer. Pure logic.
//!
//! A stamp is `milliseconds since the Unix epoch << 16 | logical counter`. A peer's stamp
//! moves the clock only up to [`MAX_CLOCK_DRIFT`] ahead of this node's wall clock: a stamp
//! further ahead is refused (`InvalidInput`), so no peer can push the clock to the end of
//! its range, where no later write could ever win again (ADR 0010, *Clocks*). Every
//! arithmetic on stamps saturates.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::error::CacheError;
use crate::cache::limits::MAX_CLOCK_DRIFT;
use crate::cache::time::saturating_millis;
use crate::error::Result;

/// Bits of a stamp used by the logical counter.
pub const LOGICAL_BITS: u32 = 16;

/// The largest wall-clock time (ms since the epoch) a stamp can carry (year 10889).
const MAX_MS: u64 = u64::MAX >> LOGICAL_BITS;

/// The clock.
#[derive(Debug, Default)]
pub struct Hlc {
    last: AtomicU64,
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(saturating_millis)
        .unwrap_or(0)
}

/// The wall-clock part of `stamp` (ms since the epoch).
pub fn stamp_ms(stamp: u64) -> u64 {
    stamp >> LOGICAL_BITS
}

/// The first stamp of wall-clock millisecond `ms` (saturating at the last one a stamp
/// can carry).
pub fn stamp_of(ms: u64) -> u64 {
    ms.min(MAX_MS) << LOGICAL_BITS
}

/// The greatest stamp a peer may move the clock to when the wall clock reads `wall_ms`:
/// the last stamp of the millisecond [`MAX_CLOCK_DRIFT`] later.
pub fn horizon(wall_ms: u64) -> u64 {
    let ms = wall_ms.saturating_add(saturating_millis(MAX_CLOCK_DRIFT));
    stamp_of(ms) | ((1 << LOGICAL_BITS) - 1)
}

impl Hlc {
    /// A new stamp, greater than every stamp issued or observed before.
    pub fn now(&self) -> u64 {
        self.now_at(wall_ms())
    }

    /// [`Hlc::now`] with the wall time given (for tests).
    pub fn now_at(&self, wall_ms: u64) -> u64 {
        let physical = stamp_of(wall_ms);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            // Saturates only past year 10889 (stamps then stop increasing).
            let next = physical.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// The last stamp issued or observed.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Whether a peer's `stamp` may be accepted when the wall clock reads `wall_ms`: it
    /// moves the clock no further than [`horizon`] (a stamp not past the clock's last one
    /// moves nothing and is always accepted). `InvalidInput` otherwise, saying by how much
    /// it is ahead.
    pub fn check_at(&self, stamp: u64, wall_ms: u64) -> Result<()> {
        if stamp <= self.last() || stamp <= horizon(wall_ms) {
            return Ok(());
        }
        let ahead = stamp_ms(stamp).saturating_sub(wall_ms);
        Err(CacheError::ClockAhead {
            stamp,
            ahead,
            max_ms: saturating_millis(MAX_CLOCK_DRIFT),
        }
        .into())
    }

    /// [`Hlc::check_at`] at the current wall time.
    pub fn check(&self, stamp: u64) -> Result<()> {
        self.check_at(stamp, wall_ms())
    }

    /// Moves the clock past a stamp seen from a peer, if [`Hlc::check_at`] accepts it;
    /// otherwise the clock does not move and the error says why.
    pub fn observe_at(&self, stamp: u64, wall_ms: u64) -> Result<()> {
        self.check_at(stamp, wall_ms)?;
        self.last.fetch_max(stamp, Ordering::AcqRel);
        Ok(())
    }

    /// [`Hlc::observe_at`] at the current wall time.
    pub fn observe(&self, stamp: u64) -> Result<()> {
        self.observe_at(stamp, wall_ms())
    }

    /// A stamp for a write that must follow `held` (a version an owner holds, or the one
    /// a read-modify-write replaces): the clock observes `held` (within the drift bound)
    /// and issues a stamp past it.
    pub fn after_at(&self, held: u64, wall_ms: u64) -> Result<u64> {
        self.observe_at(held, wall_ms)?;
        Ok(self.now_at(wall_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const DRIFT_MS: u64 = MAX_CLOCK_DRIFT.as_millis() as u64;

    #[test]
    fn stamps_increase_even_when_the_wall_clock_goes_back() {
        let c = Hlc::default();
        let a = c.now_at(1000);
        let b = c.now_at(900);
        assert!(b > a);
        c.observe_at(5000 << LOGICAL_BITS, 1000).unwrap();
        assert!(c.now_at(1000) > 5000 << LOGICAL_BITS);
        let d = c.now_at(6000);
        assert_eq!(d, 6000 << LOGICAL_BITS);
    }

    #[test]
    fn a_stamp_of_u64_max_is_refused_and_moves_nothing() {
        let c = Hlc::default();
        let wall = 1_700_000_000_000;
        let before = c.now_at(wall);
        let err = c.observe_at(u64::MAX, wall).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("ahead"), "{}", err.message());
        assert_eq!(c.last(), before);
        // The clock keeps issuing increasing stamps near the wall clock.
        let next = c.now_at(wall);
        assert!(next > before && stamp_ms(next) == wall);
        assert!(c.after_at(u64::MAX, wall).is_err());
        assert_eq!(c.last(), next);
    }

    #[test]
    fn the_drift_bound_is_relative_to_the_wall_clock_and_cannot_be_ratcheted() {
        let c = Hlc::default();
        let wall = 1_700_000_000_000;
        // Up to the drift: accepted, and the clock follows.
        let edge = horizon(wall);
        assert_eq!(stamp_ms(edge), wall + DRIFT_MS);
        c.observe_at(edge, wall).unwrap();
        assert_eq!(c.last(), edge);
        // One past it: refused.
        assert_eq!(
            c.observe_at(edge + 1, wall).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        // Stamps at or below the clock are always accepted (they move nothing), even when
        // this node's wall clock has stepped back a long way since.
        c.observe_at(edge, wall - 10 * DRIFT_MS).unwrap();
        c.observe_at(edge - 5, wall - 10 * DRIFT_MS).unwrap();
        // But a peer cannot push the clock further by repeating: the bound follows the
        // wall clock, not the clock's own last stamp.
        assert!(c
            .observe_at(stamp_of(wall + DRIFT_MS + 1000), wall)
            .is_err());
        assert_eq!(c.last(), edge);
        // Once the wall clock has moved on, the bound has too.
        c.observe_at(stamp_of(wall + DRIFT_MS + 1000), wall + 1000)
            .unwrap();
    }

    #[test]
    fn restamping_goes_past_a_held_version_within_the_bound_only() {
        let c = Hlc::default();
        let wall = 1_700_000_000_000;
        let hour_ahead = stamp_of(wall + 3_600_000) + 7;
        let s = c.after_at(hour_ahead, wall).unwrap();
        assert!(s > hour_ahead);
        assert!(c.after_at(horizon(wall) + 1, wall).is_err());
        assert!(c.now_at(wall) > s);
    }

    #[test]
    fn arithmetic_saturates_at_the_end_of_time() {
        let c = Hlc::default();
        // A wall clock past what a stamp can carry (year 10889) does not overflow.
        let s = c.now_at(u64::MAX);
        assert_eq!(stamp_ms(s), MAX_MS);
        assert_eq!(horizon(u64::MAX), u64::MAX);
        c.observe_at(u64::MAX, u64::MAX).unwrap();
        assert_eq!(c.now_at(0), u64::MAX);
        assert_eq!(stamp_of(u64::MAX), MAX_MS << LOGICAL_BITS);
    }
}
