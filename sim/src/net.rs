//! The in-memory network: per-link loss and delay, and partitions. Pure: it decides the
//! fate of each message with the simulation's seeded random generator.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::RngExt;

/// How one direction of a link between two nodes behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Probability that a message is lost (0 to 1).
    pub loss: f64,
    /// Shortest one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`.
    pub jitter: Duration,
}

impl Default for Link {
    /// A LAN: 1 ms one way, up to 1 ms of jitter, no loss.
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
        }
    }
}

/// The network between the simulated nodes (indexed `0..n`).
#[derive(Debug, Clone, Default)]
pub struct Network {
    default: Link,
    links: BTreeMap<(usize, usize), Link>,
    /// The side of each node while the network is split (`None`: not split).
    sides: Option<Vec<u32>>,
}

impl Network {
    /// A network where every link behaves as `default`.
    pub fn new(default: Link) -> Self {
        Self {
            default,
            ..Self::default()
        }
    }

    /// Sets how every link without its own setting behaves.
    pub fn set_default(&mut self, link: Link) {
        self.default = link;
    }

    /// Sets how messages from `from` to `to` travel (one direction).
    pub fn set_link(&mut self, from: usize, to: usize, link: Link) {
        self.links.insert((from, to), link);
    }

    /// The link from `from` to `to`.
    pub fn link(&self, from: usize, to: usize) -> Link {
        self.links.get(&(from, to)).copied().unwrap_or(self.default)
    }

    /// Splits the network: `side[i]` is the side of node `i` (nodes beyond the list are on
    /// side 0); messages cross no side.
    pub fn split(&mut self, sides: Vec<u32>) {
        self.sides = Some(sides);
    }

    /// Heals a split.
    pub fn heal(&mut self) {
        self.sides = None;
    }

    /// Whether a split separates `a` and `b`.
    pub fn separated(&self, a: usize, b: usize) -> bool {
        match &self.sides {
            None => false,
            Some(sides) => {
                let side = |i: usize| sides.get(i).copied().unwrap_or(0);
                side(a) != side(b)
            }
        }
    }

    /// The delay of a connection handshake from `from` to `to` (a round trip), or `None`
    /// across a split. Handshakes are retried by QUIC, so loss only delays them (ignored
    /// here). Draws from `rng` the same number of times whatever the outcome.
    pub fn handshake(&self, from: usize, to: usize, rng: &mut StdRng) -> Option<Duration> {
        let there = self.link(from, to);
        let back = self.link(to, from);
        let mut draw = |l: Link| {
            let jitter_us = u64::try_from(l.jitter.as_micros()).unwrap_or(u64::MAX);
            l.delay + Duration::from_micros(rng.random_range(0..=jitter_us))
        };
        let rtt = draw(there) + draw(back);
        (!self.separated(from, to)).then_some(rtt)
    }

    /// The fate of one message from `from` to `to`: its delay, or `None` if it is lost.
    /// Draws from `rng` the same number of times whatever the outcome.
    pub fn route(&self, from: usize, to: usize, rng: &mut StdRng) -> Option<Duration> {
        let link = self.link(from, to);
        let lost = rng.random::<f64>() < link.loss;
        let jitter_us = u64::try_from(link.jitter.as_micros()).unwrap_or(u64::MAX);
        let extra = Duration::from_micros(rng.random_range(0..=jitter_us));
        if lost || self.separated(from, to) {
            None
        } else {
            Some(link.delay + extra)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn splits_loss_and_delay() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut net = Network::new(Link::default());
        let d = net.route(0, 1, &mut rng).unwrap();
        assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(2));
        net.split(vec![0, 1, 1]);
        assert!(net.route(0, 1, &mut rng).is_none());
        assert!(net.route(1, 2, &mut rng).is_some());
        assert!(
            net.route(5, 0, &mut rng).is_some(),
            "unlisted nodes are on side 0"
        );
        net.heal();
        net.set_link(
            0,
            1,
            Link {
                loss: 1.0,
                ..Link::default()
            },
        );
        assert!(net.route(0, 1, &mut rng).is_none());
        assert!(net.route(1, 0, &mut rng).is_some());
    }
}
