//! A hybrid logical clock: versions for last-writer-wins that follow wall time but never go
//! backwards, and that move past any version seen from a peer. Pure logic.
//!
//! A stamp is `milliseconds since the Unix epoch << 16 | logical counter`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of a stamp used by the logical counter.
pub const LOGICAL_BITS: u32 = 16;

/// The clock.
#[derive(Debug, Default)]
pub struct Hlc {
    last: AtomicU64,
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Hlc {
    /// A new stamp, greater than every stamp issued or observed before.
    pub fn now(&self) -> u64 {
        self.now_at(wall_ms())
    }

    /// [`Hlc::now`] with the wall time given (for tests).
    pub fn now_at(&self, wall_ms: u64) -> u64 {
        let physical = wall_ms << LOGICAL_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = physical.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Moves the clock past a stamp seen from a peer.
    pub fn observe(&self, stamp: u64) {
        self.last.fetch_max(stamp, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_even_when_the_wall_clock_goes_back() {
        let c = Hlc::default();
        let a = c.now_at(1000);
        let b = c.now_at(900);
        assert!(b > a);
        c.observe(5000 << LOGICAL_BITS);
        assert!(c.now_at(1000) > 5000 << LOGICAL_BITS);
        let d = c.now_at(6000);
        assert_eq!(d, 6000 << LOGICAL_BITS);
    }
}
