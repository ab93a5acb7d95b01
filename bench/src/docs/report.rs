//! The tables `docs-bench` prints: every memmesh figure beside its anchor or target,
//! with the ratio.

use std::fmt::Write;
use std::time::Duration;

use crate::report::latency;

/// `num / den` as `1.23x`, `-` if `den` is not positive.
pub fn ratio(num: f64, den: f64) -> String {
    if den > 0.0 {
        format!("{:.2}x", num / den)
    } else {
        "-".into()
    }
}

/// A byte count: `123 B`, `12.3 KiB`, `1.23 MiB`.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.2} MiB", f / (1024.0 * 1024.0))
    }
}

/// The median (nearest rank) and the largest of `times`; `None` if empty.
pub fn p50_max(times: &[Duration]) -> Option<(Duration, Duration)> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let p50 = crate::stats::percentile(&sorted, 0.5)?;
    Some((p50, *sorted.last()?))
}

/// One row of part (a): a way of syncing the document and what it took (medians over
/// the rounds).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRow {
    /// What synced, e.g. `memmesh, memory only`.
    pub label: String,
    /// Median time until the fresh side had the same heads.
    pub time: Duration,
    /// Bytes sent, both directions (median over the rounds).
    pub bytes: u64,
}

/// Part (a)'s table: each row's time and bytes, and both as ratios to the first row (the
/// anchor).
pub fn sync_table(title: &str, rows: &[SyncRow]) -> String {
    let width = rows
        .iter()
        .map(|r| r.label.len())
        .chain([title.len()])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{title:<width$} | {:>9} {:>11} | {:>9} {:>9}",
        "time", "bytes", "time/anc", "bytes/anc"
    );
    let _ = writeln!(out, "{}", "-".repeat(width + 46));
    let anchor = rows.first();
    for r in rows {
        let (t, b) = match anchor {
            Some(a) => (
                ratio(r.time.as_secs_f64(), a.time.as_secs_f64()),
                ratio(r.bytes as f64, a.bytes as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<width$} | {:>9} {:>11} | {t:>9} {b:>9}",
            r.label,
            latency(r.time),
            bytes(r.bytes)
        );
    }
    out
}

/// Part (b)'s summary line: p50 and max of the convergence times beside the target.
pub fn converge_line(times: &[Duration], target: Duration) -> String {
    match p50_max(times) {
        Some((p50, max)) => format!(
            "converged after the last edit: p50 {}, max {} over {} round(s)   target <= {}  (max/target {})",
            latency(p50),
            latency(max),
            times.len(),
            latency(target),
            ratio(max.as_secs_f64(), target.as_secs_f64())
        ),
        None => "converged after the last edit: no round".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn units_and_ratios() {
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 << 20), "3.00 MiB");
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(1.0, 0.0), "-");
    }

    #[test]
    fn median_and_max() {
        assert_eq!(p50_max(&[]), None);
        assert_eq!(p50_max(&[ms(30), ms(10), ms(20)]), Some((ms(20), ms(30))));
    }

    #[test]
    fn sync_rows_are_divided_by_the_anchor() {
        let t = sync_table(
            "(a) sync",
            &[
                SyncRow {
                    label: "automerge in memory".into(),
                    time: ms(100),
                    bytes: 1000,
                },
                SyncRow {
                    label: "memmesh".into(),
                    time: ms(150),
                    bytes: 2000,
                },
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[2].contains("1.00x"), "{t}");
        assert!(
            lines[3].contains("1.50x") && lines[3].contains("2.00x"),
            "{t}"
        );
    }

    #[test]
    fn the_converge_line_names_the_target() {
        let l = converge_line(&[ms(300), ms(500)], Duration::from_secs(1));
        assert!(l.contains("max 500") && l.contains("0.50x"), "{l}");
        assert!(converge_line(&[], Duration::from_secs(1)).contains("no round"));
    }
}
