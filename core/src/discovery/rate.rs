//! A token bucket driven by the caller's clock. Pure logic.

use std::time::{Duration, Instant};

/// `at + d`, saturating at the latest representable instant instead of panicking.
pub fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| {
        // Halve until it fits: Instant has no MAX.
        let mut step = d;
        let mut t = at;
        while !step.is_zero() {
            match t.checked_add(step) {
                Some(next) => t = next,
                None => step /= 2,
            }
        }
        t
    })
}

/// `capacity` tokens at most; one more every `every`. Starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: u32,
    capacity: u32,
    every: Duration,
    /// When the last whole token was added (or the bucket was last seen full).
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A zero `every` is treated as one nanosecond.
    pub fn new(capacity: u32, every: Duration, now: Instant) -> Self {
        Self {
            tokens: capacity,
            capacity,
            every: every.max(Duration::from_nanos(1)),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if self.tokens >= self.capacity {
            self.last = now.max(self.last);
            return;
        }
        let elapsed = now.saturating_duration_since(self.last);
        let whole = elapsed.as_nanos() / self.every.as_nanos();
        if whole == 0 {
            return;
        }
        let add = u32::try_from(whole).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(add).min(self.capacity);
        if self.tokens >= self.capacity {
            self.last = now;
        } else {
            self.last = after(self.last, self.every.saturating_mul(add));
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Whether a token is available at `now`.
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens > 0
    }

    /// When the next token is available (`now` if one is).
    pub fn next_token_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens > 0 {
            now
        } else {
            after(self.last, self.every)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_one_token_per_interval() {
        let t0 = Instant::now();
        let every = Duration::from_millis(250);
        let mut b = TokenBucket::new(3, every, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert_eq!(b.next_token_at(t0), t0 + every);
        assert!(!b.try_take(t0 + every - Duration::from_millis(1)));
        assert!(b.try_take(t0 + every));
        assert!(!b.try_take(t0 + every));
        // A long pause refills to the capacity, never beyond.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.ready(later));
        for _ in 0..3 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn partial_intervals_are_not_lost() {
        let t0 = Instant::now();
        let every = Duration::from_millis(100);
        let mut b = TokenBucket::new(2, every, t0);
        assert!(b.try_take(t0) && b.try_take(t0));
        // 150 ms: one token, and the half interval counts towards the next one.
        assert!(b.try_take(t0 + Duration::from_millis(150)));
        assert!(!b.try_take(t0 + Duration::from_millis(199)));
        assert!(b.try_take(t0 + Duration::from_millis(200)));
    }

    #[test]
    fn huge_intervals_saturate_instead_of_panicking() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1, Duration::MAX, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_secs(3600)));
        assert!(b.next_token_at(t0) > t0 + Duration::from_secs(3600));
        assert!(after(t0, Duration::MAX) > t0);
    }

    #[test]
    fn a_clock_that_goes_backwards_does_not_panic_or_mint_tokens() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1, Duration::from_secs(1), t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }
}
