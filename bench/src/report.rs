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

/// One row of a detail table (local calls, attribution).
#[derive(Debug, Clone)]
pub struct Detail {
    /// What was measured.
    pub label: String,
    /// Its figures.
    pub summary: Summary,
    /// UDP datagrams (sent plus received) per request, where counted.
    pub datagrams: Option<f64>,
}

/// `64 B`, `64 KiB`, `1 MiB`.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// A latency in microseconds (one decimal below 100 us) below 10 ms, else in
/// milliseconds.
pub fn latency(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 100.0 {
        format!("{us:.1} us")
    } else if us < 10_000.0 {
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

fn cpu(s: &Summary) -> String {
    s.cpu_per_request()
        .map(latency)
        .unwrap_or_else(|| "-".into())
}

fn cells(s: Option<Summary>) -> [String; 4] {
    match s {
        Some(s) => [latency(s.p50), latency(s.p99), rate(s.rps), cpu(&s)],
        None => ["-".into(), "-".into(), "-".into(), "-".into()],
    }
}

/// The comparison table: case; memmesh p50, p99, req/s and CPU per request; the same
/// for quinn; and the memmesh/quinn ratios of req/s (above 1: memmesh faster) and of p50
/// (below 1: memmesh faster).
pub fn comparison_table(rows: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} | {:>8} {:>8} {:>7} {:>8} | {:>8} {:>8} {:>7} {:>8} | {:>7} {:>7}",
        "case",
        "mm p50",
        "mm p99",
        "mm rps",
        "mm cpu",
        "q p50",
        "q p99",
        "q rps",
        "q cpu",
        "rps m/q",
        "p50 m/q"
    );
    let _ = writeln!(out, "{}", "-".repeat(110));
    for r in rows {
        let [mp50, mp99, mrps, mcpu] = cells(r.memmesh);
        let [qp50, qp99, qrps, qcpu] = cells(r.quinn);
        let (rps_ratio, p50_ratio) = match (r.memmesh, r.quinn) {
            (Some(m), Some(q)) => (
                ratio(m.rps, q.rps),
                ratio(m.p50.as_secs_f64(), q.p50.as_secs_f64()),
            ),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<11} | {mp50:>8} {mp99:>8} {mrps:>7} {mcpu:>8} | {qp50:>8} {qp99:>8} {qrps:>7} {qcpu:>8} | {rps_ratio:>7} {p50_ratio:>7}",
            r.case
        );
    }
    out
}

/// A table of single measurements: label, p50, p99, rate (headed `rate_name`), CPU and
/// context switches per request, and datagrams per request if any row counted them.
pub fn detail_table(title: &str, rate_name: &str, rows: &[Detail]) -> String {
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|r| r.label.len())
        .chain([title.len()])
        .max()
        .unwrap_or(0);
    let with_datagrams = rows.iter().any(|r| r.datagrams.is_some());
    let _ = write!(
        out,
        "{title:<width$} | {:>8} {:>8} {:>8} {:>8} {:>7}",
        "p50", "p99", rate_name, "cpu", "cs"
    );
    if with_datagrams {
        let _ = write!(out, " {:>7}", "dgrams");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        "-".repeat(width + 46 + if with_datagrams { 8 } else { 0 })
    );
    for r in rows {
        let s = &r.summary;
        let per_request =
            |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        let _ = write!(
            out,
            "{:<width$} | {:>8} {:>8} {:>8} {:>8} {:>7}",
            r.label,
            latency(s.p50),
            latency(s.p99),
            rate(s.rps),
            cpu(s),
            per_request(s.switches_per_request())
        );
        if with_datagrams {
            let _ = write!(out, " {:>7}", per_request(r.datagrams));
        }
        let _ = writeln!(out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Usage;

    fn summary(p50_us: u64, rps: f64) -> Summary {
        Summary {
            count: 10,
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p50_us * 2),
            rps,
            usage: Some(Usage {
                cpu: Duration::from_micros(1000),
                switches: 25,
            }),
        }
    }

    #[test]
    fn labels_and_units() {
        assert_eq!(size_label(64), "64 B");
        assert_eq!(size_label(64 * 1024), "64 KiB");
        assert_eq!(size_label(3 << 20), "3 MiB");
        assert_eq!(size_label(1000), "1000 B");
        assert_eq!(latency(Duration::from_micros(183)), "183 us");
        assert_eq!(latency(Duration::from_nanos(1_460)), "1.5 us");
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
        assert!(lines[2].contains("100 us"), "cpu per request: {table}");
        assert!(lines[3].contains('-') && !lines[3].contains('x'), "{table}");
    }

    #[test]
    fn detail_rows_show_cpu_and_switches_per_request() {
        let table = detail_table(
            "local call",
            "calls/s",
            &[Detail {
                label: "64 B c=1".into(),
                summary: summary(5, 200_000.0),
                datagrams: None,
            }],
        );
        let row = table.lines().nth(2).unwrap();
        assert!(
            row.contains("5.0 us") && row.contains("200000") && row.contains("2.50"),
            "{table}"
        );
        assert!(!table.contains("dgrams"), "{table}");
    }

    #[test]
    fn datagrams_column_appears_when_counted() {
        let table = detail_table(
            "attribution",
            "req/s",
            &[
                Detail {
                    label: "quinn".into(),
                    summary: summary(80, 5000.0),
                    datagrams: Some(2.75),
                },
                Detail {
                    label: "memmesh".into(),
                    summary: summary(120, 4000.0),
                    datagrams: None,
                },
            ],
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].ends_with("dgrams"), "{table}");
        assert!(lines[2].ends_with("2.75"), "{table}");
        assert!(lines[3].ends_with('-'), "{table}");
    }
}
