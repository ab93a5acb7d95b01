//! Which of two connections to one peer a node keeps (ADR 0006, "one connection per
//! peer"): a pure decision, taken by each side on its own, that both sides must agree on.
//!
//! Two connections to one peer exist when the two nodes dial each other at the same
//! instant, or when the peer dials again because it lost its connection (or restarted)
//! before this side noticed. Each side registers its two connections in the order their
//! handshakes completed, and the two orders can differ. "Newest wins" alone then made
//! each side keep a different connection, and each closed the one the other kept when
//! the replaced connection's grace ended: the calls in flight on it failed, and the pair
//! dialled again.
//!
//! The rule: a connection from the same process of the peer (same `boot`) registered less
//! than `window` (a handshake's time) after the pooled one is a duplicate of a
//! simultaneous dial; of the two, the one with the lower `rank` is kept. The rank is
//! drawn from the connection's TLS exporter, so both sides read the same value for the
//! same connection. Otherwise the newer connection wins, as before: a peer that restarted
//! (another `boot`), or dials again long after, has most likely lost the pooled one.

use std::time::{Duration, Instant};

/// What the decision needs to know of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The peer's per-process random number, from its hello.
    pub boot: u64,
    /// A value both ends of the connection derive alike (its TLS exporter).
    pub rank: u128,
    /// When this side registered the connection.
    pub since: Instant,
}

/// Which connection to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The pooled connection stays; the newer one is retired.
    Pooled,
    /// The newer connection replaces the pooled one, which is retired.
    Newer,
}

/// Decides between the `pooled` connection (still open) and a `newer` one registered at
/// `now`. `window` is how far apart two handshakes of a simultaneous dial can complete
/// (the handshake timeout).
pub fn keep(pooled: &Held, newer: &Held, now: Instant, window: Duration) -> Keep {
    let same_process = pooled.boot == newer.boot;
    let simultaneous = now.saturating_duration_since(pooled.since) < window;
    if same_process && simultaneous && pooled.rank < newer.rank {
        Keep::Pooled
    } else {
        Keep::Newer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn held(boot: u64, rank: u128, since: Instant) -> Held {
        Held { boot, rank, since }
    }

    /// Both sides see the same two connections in opposite orders and must keep the same.
    #[test]
    fn both_orders_of_a_simultaneous_dial_keep_the_same_connection() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(30);
        let (low, high) = (7u128, 9u128);
        // This side registered `low` first, the other side `high` first.
        let here = keep(&held(1, low, t0), &held(1, high, t1), t1, WINDOW);
        let there = keep(&held(1, high, t0), &held(1, low, t1), t1, WINDOW);
        assert_eq!(here, Keep::Pooled, "keeps low");
        assert_eq!(there, Keep::Newer, "keeps low");
    }

    #[test]
    fn a_restarted_peer_replaces_its_dead_connection_at_once() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        assert_eq!(
            keep(&held(1, 1, t0), &held(2, u128::MAX, t1), t1, WINDOW),
            Keep::Newer
        );
    }

    #[test]
    fn a_dial_long_after_the_pooled_one_replaces_it() {
        let t0 = Instant::now();
        let later = t0 + WINDOW;
        assert_eq!(
            keep(&held(1, 1, t0), &held(1, u128::MAX, later), later, WINDOW),
            Keep::Newer
        );
        // Just inside the window the rank decides.
        let inside = later - Duration::from_millis(1);
        assert_eq!(
            keep(&held(1, 1, t0), &held(1, u128::MAX, inside), inside, WINDOW),
            Keep::Pooled
        );
    }

    #[test]
    fn a_clock_that_seems_to_go_back_counts_as_simultaneous() {
        let t1 = Instant::now();
        let t0 = t1 + Duration::from_secs(1);
        assert_eq!(
            keep(&held(1, 1, t0), &held(1, 2, t1), t1, WINDOW),
            Keep::Pooled
        );
    }
}
