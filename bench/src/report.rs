//! Formatting the results as plain-text tables.

use std::fmt::Write;
use std::time::Duration;

use crate::stats::Summary;

/// One remote case: memmesh and the quinn anchor, measured in the same run.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The case, e.g. `64 B c=1`.
    pub case: String,
    /// memmesh's figures.
    pub memmesh: Option<Summary>,
    /// The bare-quinn figures.
    pub quinn: Option<Summary>,
}

/// One local-call case.
#[derive(Debug, Clone)]
pub struct Local {
    /// The case, e.g. `64 B c=1 on the node runtime`.
    pub case: String,
    /// Its figures.
    pub summary: Summary,
}

/// `64 B`, `64 KiB`, `1 MiB`.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// A latency in microseconds below 10 ms, else in milliseconds.
pub fn latency(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.0} us")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

/// A rate with no decimals.
pub fn rate(r: f64) -> String {
    format!("{r:.0}")
}

fn ratio(num: f64, den: f64) -> String {
    if den > 0.0 {
        format!("{:.2}x", num / den)
    } else {
        "-".into()
    }
}

fn cells(s: Option<Summary>) -> [String; 3] {
    match s {
        Some(s) => [latency(s.p50), latency(s.p99), rate(s.rps)],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

/// The comparison table: case, memmesh p50/p99/req/s, quinn p50/p99/req/s, and the
/// memmesh/quinn ratios of req/s (higher is better for memmesh) and of p50 (lower is).
pub fn comparison_table(rows: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} | {:>9} {:>9} {:>8} | {:>9} {:>9} {:>8} | {:>9} {:>9}",
        "case", "mm p50", "mm p99", "mm req/s", "q p50", "q p99", "q req/s", "rps m/q", "p50 m/q"
    );
    let _ = writeln!(out, "{}", "-".repeat(98));
    for r in rows {
        let [mp50, mp99, mrps] = cells(r.memmesh);
        let [qp50, qp99, qrps] = cells(r.quinn);
        let (rps_ratio, p50_ratio) = match (r.memmesh, r.quinn) {
            (Some(m), Some(q)) => (
                ratio(m.rps, q.rps),
                ratio(m.p50.as_secs_f64(), q.p50.as_secs_f64()),
            ),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<12} | {mp50:>9} {mp99:>9} {mrps:>8} | {qp50:>9} {qp99:>9} {qrps:>8} | {rps_ratio:>9} {p50_ratio:>9}",
            r.case
        );
    }
    out
}

/// The local-call table.
pub fn local_table(rows: &[Local]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} | {:>9} {:>9} {:>9}",
        "local call", "p50", "p99", "calls/s"
    );
    let _ = writeln!(out, "{}", "-".repeat(76));
    for r in rows {
        let _ = writeln!(
            out,
            "{:<44} | {:>9} {:>9} {:>9}",
            r.case,
            latency(r.summary.p50),
            latency(r.summary.p99),
            rate(r.summary.rps)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50_us: u64, rps: f64) -> Summary {
        Summary {
            count: 10,
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p50_us * 2),
            rps,
        }
    }

    #[test]
    fn labels_and_units() {
        assert_eq!(size_label(64), "64 B");
        assert_eq!(size_label(64 * 1024), "64 KiB");
        assert_eq!(size_label(3 << 20), "3 MiB");
        assert_eq!(size_label(1000), "1000 B");
        assert_eq!(latency(Duration::from_micros(183)), "183 us");
        assert_eq!(latency(Duration::from_micros(12_345)), "12.3 ms");
    }

    #[test]
    fn ratios_are_memmesh_over_quinn() {
        let table = comparison_table(&[
            Comparison {
                case: "64 B c=1".into(),
                memmesh: Some(summary(300, 3000.0)),
                quinn: Some(summary(200, 4000.0)),
            },
            Comparison {
                case: "64 KiB c=1".into(),
                memmesh: None,
                quinn: Some(summary(200, 4000.0)),
            },
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(
            lines[2].contains("0.75x") && lines[2].contains("1.50x"),
            "{table}"
        );
        assert!(lines[3].contains('-') && !lines[3].contains('x'), "{table}");
    }
}
