//! The node's memory budget: the bytes it lends to the mesh (`memory_quota`), shared by
//! blocks and cache entries, counted with their bookkeeping overhead.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Classify, ErrorKind, Result};

/// A reservation the budget cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory quota exceeded: {needed} more bytes needed, {used} of {limit} in use")]
pub struct QuotaExceeded {
    /// Bytes asked for.
    pub needed: u64,
    /// Bytes in use then.
    pub used: u64,
    /// The budget's limit.
    pub limit: u64,
}

impl Classify for QuotaExceeded {
    fn kind(&self) -> ErrorKind {
        ErrorKind::QuotaExceeded
    }
}

/// A byte budget that can be reserved from and released to, lock-free.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Reserves `bytes`, or fails with `QuotaExceeded` and reserves nothing.
    pub fn reserve(&self, bytes: u64) -> Result<()> {
        Ok(self.try_reserve(bytes)?)
    }

    /// [`MemoryBudget::reserve`] with the typed refusal.
    pub fn try_reserve(&self, bytes: u64) -> std::result::Result<(), QuotaExceeded> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if next > self.limit {
                return Err(QuotaExceeded {
                    needed: bytes,
                    used,
                    limit: self.limit,
                });
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Reserves `bytes` even past the limit (data moved in by rebalancing must not be
    /// dropped); the excess shows in [`MemoryBudget::used`].
    pub fn force(&self, bytes: u64) {
        // Saturating: a wrapped counter would read as an empty budget.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| {
                Some(used.saturating_add(bytes))
            });
    }

    /// Returns `bytes` to the budget.
    pub fn release(&self, bytes: u64) {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_sub(bytes);
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => used = now,
            }
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Bytes still free.
    pub fn free(&self) -> u64 {
        self.limit.saturating_sub(self.used())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_over_the_limit_fails_and_takes_nothing() {
        let b = MemoryBudget::new(100);
        b.reserve(60).unwrap();
        assert_eq!(b.reserve(41).unwrap_err().kind(), ErrorKind::QuotaExceeded);
        assert_eq!(b.used(), 60);
        b.reserve(40).unwrap();
        assert_eq!(b.free(), 0);
        b.release(100);
        assert_eq!(b.used(), 0);
        b.release(5);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn forcing_past_the_limit_saturates_instead_of_wrapping() {
        let b = MemoryBudget::new(100);
        b.force(u64::MAX - 1);
        b.force(10);
        assert_eq!(b.used(), u64::MAX);
        assert_eq!(b.free(), 0);
        assert_eq!(b.reserve(1).unwrap_err().kind(), ErrorKind::QuotaExceeded);
    }

    #[test]
    fn a_refusal_is_a_typed_quota_error() {
        let b = MemoryBudget::new(100);
        b.reserve(60).unwrap();
        let e = b.reserve(50).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(
            e.message(),
            "memory quota exceeded: 50 more bytes needed, 60 of 100 in use"
        );
        assert_eq!(
            e.downcast_ref::<QuotaExceeded>(),
            Some(&QuotaExceeded {
                needed: 50,
                used: 60,
                limit: 100
            })
        );
    }
}
