//! Durations from users and peers turned into instants and expiry times without
//! overflow: whatever the duration (`Duration::MAX` included), the result saturates.

use std::time::{Duration, Instant};

/// The furthest deadline used when `now + d` cannot be represented (about 30 years).
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `d` in whole milliseconds, saturating at `u64::MAX`.
pub fn saturating_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The expiry (ms since the epoch) of an entry written at `now_ms` with time to live
/// `ttl`: at least 1 ms later, saturating at `u64::MAX` (a TTL that would end past it
/// effectively never ends). `0` means "never" on the wire, which this never returns.
pub fn expiry_after(now_ms: u64, ttl: Duration) -> u64 {
    now_ms.saturating_add(saturating_millis(ttl).max(1))
}

/// The instant `d` after `now`; a `d` too long to represent gives a deadline decades
/// away (or `now` itself if even that cannot be represented).
pub fn deadline_from(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_saturate() {
        assert_eq!(saturating_millis(Duration::MAX), u64::MAX);
        assert_eq!(saturating_millis(Duration::from_millis(1500)), 1500);
        assert_eq!(expiry_after(1000, Duration::MAX), u64::MAX);
        assert_eq!(expiry_after(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(expiry_after(1000, Duration::from_micros(10)), 1001);
        assert_eq!(expiry_after(1000, Duration::from_secs(2)), 3000);
        let t0 = Instant::now();
        let far = deadline_from(t0, Duration::MAX);
        assert!(far > t0 + Duration::from_secs(365 * 24 * 3600));
        assert_eq!(
            deadline_from(t0, Duration::from_secs(3)),
            t0 + Duration::from_secs(3)
        );
        assert_eq!(deadline_from(t0, Duration::MAX), t0 + FAR);
    }
}
