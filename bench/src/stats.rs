//! Latency percentiles and throughput of one measured case.

use std::time::Duration;

use crate::usage::Usage;

/// The figures of one measured case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Requests that completed inside the measurement window.
    pub count: usize,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Completed requests per second of measurement window.
    pub rps: f64,
    /// What the whole process consumed during the window, if known.
    pub usage: Option<Usage>,
}

/// The nearest-rank `p`-quantile (`0 < p <= 1`) of `sorted` (ascending).
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !(p > 0.0 && p <= 1.0) {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Summary {
    /// Summarises the latencies of the requests that completed within a window of
    /// `window`. `None` if no request completed.
    pub fn from_latencies(mut latencies: Vec<Duration>, window: Duration) -> Option<Summary> {
        latencies.sort_unstable();
        Some(Summary {
            count: latencies.len(),
            p50: percentile(&latencies, 0.50)?,
            p99: percentile(&latencies, 0.99)?,
            rps: latencies.len() as f64 / window.as_secs_f64(),
            usage: None,
        })
    }

    /// Process CPU time per completed request (both sides of the exchange).
    pub fn cpu_per_request(&self) -> Option<Duration> {
        let usage = self.usage?;
        let count = u32::try_from(self.count).ok().filter(|&c| c > 0)?;
        Some(usage.cpu / count)
    }

    /// Process context switches per completed request.
    pub fn switches_per_request(&self) -> Option<f64> {
        let usage = self.usage?;
        (self.count > 0).then(|| usage.switches as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(us).collect();
        assert_eq!(percentile(&sorted, 0.50), Some(us(50)));
        assert_eq!(percentile(&sorted, 0.99), Some(us(99)));
        assert_eq!(percentile(&sorted, 1.0), Some(us(100)));
        assert_eq!(percentile(&[us(7)], 0.99), Some(us(7)));
        assert_eq!(percentile(&[us(1), us(2), us(3)], 0.5), Some(us(2)));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&sorted, 0.0), None);
        assert_eq!(percentile(&sorted, 1.5), None);
    }

    #[test]
    fn summary_sorts_and_divides_by_the_window() {
        let s =
            Summary::from_latencies(vec![us(30), us(10), us(20), us(40)], Duration::from_secs(2))
                .unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.p50, us(20));
        assert_eq!(s.p99, us(40));
        assert!((s.rps - 2.0).abs() < 1e-9);
        assert_eq!(
            Summary::from_latencies(Vec::new(), Duration::from_secs(1)),
            None
        );
    }
}
