//! Bounding online guessing of the cluster secret: failed authentications per source.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed authentications a source IP may accumulate before it is refused for a while.
pub const AUTH_FAILURE_BURST: u32 = 20;
/// Each failed authentication from a source blocks it for this long once its burst is
/// used up (so a source gets at most one guess per this interval, sustained).
pub const AUTH_FAILURE_INTERVAL: Duration = Duration::from_secs(3);
/// Sources tracked by the failure limiter (the oldest recovered entry is dropped first).
pub const AUTH_FAILURE_SOURCES: usize = 4096;

/// The source an authentication failure is charged to: an IPv4 address, or an IPv6 /64
/// (one host usually holds a whole /64).
fn source(ip: IpAddr) -> [u8; 8] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, 0, 0, 0, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let mut out = [0u8; 8];
            out.copy_from_slice(&v6.octets()[..8]);
            out
        }
    }
}

/// Bounds online guessing: each failed authentication from a source pushes its
/// "theoretical arrival time" [`AUTH_FAILURE_INTERVAL`] later (GCRA); a source whose
/// time runs more than [`AUTH_FAILURE_BURST`] intervals ahead of now is refused until
/// it catches up. Pure logic: the caller passes `now`.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    sources: HashMap<[u8; 8], Instant>,
}

impl FailureLimiter {
    fn window() -> Duration {
        AUTH_FAILURE_INTERVAL.saturating_mul(AUTH_FAILURE_BURST)
    }

    /// Whether `ip` may try to authenticate at `now`.
    pub fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        match self.sources.get(&source(ip)) {
            // Fewer than the burst of failures still outstanding.
            Some(tat) => {
                tat.saturating_duration_since(now)
                    .saturating_add(AUTH_FAILURE_INTERVAL)
                    <= Self::window()
            }
            None => true,
        }
    }

    /// Records a failure of `ip` at `now`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        let key = source(ip);
        if !self.sources.contains_key(&key) && self.sources.len() >= AUTH_FAILURE_SOURCES {
            self.sources.retain(|_, tat| *tat > now);
            if self.sources.len() >= AUTH_FAILURE_SOURCES {
                if let Some(oldest) = self
                    .sources
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| *k)
                {
                    self.sources.remove(&oldest);
                }
            }
        }
        let tat = self.sources.entry(key).or_insert(now);
        let base = (*tat).max(now);
        *tat = base.checked_add(AUTH_FAILURE_INTERVAL).unwrap_or(base);
    }

    /// Sources currently tracked.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_rate_limited_per_source() {
        let mut l = FailureLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..AUTH_FAILURE_BURST {
            assert!(l.allowed(a, t0));
            l.failed(a, t0);
        }
        assert!(!l.allowed(a, t0), "the burst is used up");
        assert!(l.allowed(b, t0), "another source is not affected");
        assert!(
            l.allowed(a, t0 + AUTH_FAILURE_INTERVAL),
            "one more try per interval"
        );
        // An IPv6 /64 is one source.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..AUTH_FAILURE_BURST {
            l.failed(v6a, t0);
        }
        assert!(!l.allowed(v6b, t0));
        // Bounded: many sources never grow the table past its limit.
        for i in 0..(AUTH_FAILURE_SOURCES as u32 + 100) {
            l.failed(IpAddr::V4(std::net::Ipv4Addr::from(i)), t0);
        }
        assert!(l.len() <= AUTH_FAILURE_SOURCES);
    }
}
