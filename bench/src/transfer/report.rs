//! Results of a transfer-bench run (JSON lines), iperf3's JSON, and the tables printed
//! from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::transfer::{Case, Run, System, GIB, MIB};

/// One line of a results file (and of the netns sending process's output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    /// A measured transfer.
    Run(Run),
    /// The largest resident size of the processes of one path, at its end.
    MaxRss {
        /// `loopback` or `netns`.
        path: String,
        /// The sending process (on loopback: the only process).
        sender: u64,
        /// The receiving process, when it is a process of its own.
        receiver: Option<u64>,
    },
}

/// iperf3's figures for one path (`iperf3 -c .. -n .. -J`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iperf {
    /// Bytes received.
    pub bytes: u64,
    /// Seconds the receiver measured.
    pub seconds: f64,
    /// MB/s (10^6 bytes per second) received.
    pub mb_per_s: f64,
    /// CPU seconds of client and server per GiB, from iperf3's `cpu_utilization_percent`.
    pub cpu_per_gib: Option<f64>,
}

/// Reads iperf3's `-J` output.
pub fn parse_iperf3(json: &str) -> Result<Iperf> {
    let v: Value = serde_json::from_str(json).context("iperf3 output is not JSON")?;
    if let Some(e) = v.get("error") {
        bail!("iperf3 reported an error: {e}");
    }
    let end = v.get("end").context("no \"end\" in iperf3's output")?;
    let received = &end["sum_received"];
    let bytes = received["bytes"]
        .as_u64()
        .context("no end.sum_received.bytes")?;
    let seconds = received["seconds"]
        .as_f64()
        .context("no end.sum_received.seconds")?;
    let bps = received["bits_per_second"]
        .as_f64()
        .context("no end.sum_received.bits_per_second")?;
    let cpu = &end["cpu_utilization_percent"];
    let cpu_per_gib = match (cpu["host_total"].as_f64(), cpu["remote_total"].as_f64()) {
        (Some(h), Some(r)) if bytes > 0 => {
            Some((h + r) / 100.0 * seconds * GIB as f64 / bytes as f64)
        }
        _ => None,
    };
    Ok(Iperf {
        bytes,
        seconds,
        mb_per_s: bps / 8.0 / 1e6,
        cpu_per_gib,
    })
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Measured transfers.
    pub runs: Vec<Run>,
    /// Largest resident sizes per path: (sender, receiver).
    pub max_rss: BTreeMap<String, (u64, Option<u64>)>,
    /// iperf3 per path.
    pub iperf: BTreeMap<String, Iperf>,
}

/// The file cache-bench's script writes memmesh's records to.
pub const MEMMESH_FILE: &str = "memmesh.jsonl";

/// `iperf3-<path>.json`.
pub fn iperf_file(path: &str) -> String {
    format!("iperf3-{path}.json")
}

impl Results {
    /// Collects records.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Results {
        let mut out = Results::default();
        for r in records {
            out.add(r);
        }
        out
    }

    /// Adds one record.
    pub fn add(&mut self, record: Record) {
        match record {
            Record::Run(run) => self.runs.push(run),
            Record::MaxRss {
                path,
                sender,
                receiver,
            } => {
                self.max_rss.insert(path, (sender, receiver));
            }
        }
    }

    /// Reads `memmesh.jsonl` and every `iperf3-<path>.json` of `dir`.
    pub fn load(dir: &Path) -> Result<Results> {
        let file = dir.join(MEMMESH_FILE);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let mut out = Results::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", file.display(), i + 1))?;
            out.add(record);
        }
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some(path) = name
                .strip_prefix("iperf3-")
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(dir.join(&name))?;
            match parse_iperf3(&text) {
                Ok(i) => {
                    out.iperf.insert(path.to_string(), i);
                }
                Err(e) => eprintln!("ignoring {name}: {e:#}"),
            }
        }
        Ok(out)
    }

    /// The paths measured, loopback first.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.runs.iter().map(|r| r.path.clone()).collect();
        paths.sort_by_key(|p| (p != "loopback", p.clone()));
        paths.dedup();
        paths
    }

    fn select(&self, path: &str, system: System, case: Option<Case>) -> Vec<&Run> {
        self.runs
            .iter()
            .filter(|r| r.path == path && r.system == system && case.is_none_or(|c| r.case == c))
            .collect()
    }

    /// Median MB/s and median CPU s/GiB of `system` on `path` (quinn: every case).
    pub fn median(&self, path: &str, system: System, case: Option<Case>) -> Option<(f64, f64)> {
        let runs = self.select(path, system, case);
        Some((
            median(runs.iter().map(|r| r.mb_per_s()).collect())?,
            median(runs.iter().map(|r| r.cpu_per_gib()).collect())?,
        ))
    }
}

/// The median (mean of the middle two for an even count); `None` if empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

fn ratio(num: Option<f64>, den: Option<f64>) -> String {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}x", n / d),
        _ => "-".into(),
    }
}

/// The lines printed above the tables: the target and what each anchor is.
pub const TARGET: &str = "\
target (DESIGN.md): memmesh >= 0.90x bare quinn with DEFAULT settings (q-dflt, one stream), verified; MB = 10^6 bytes
stricter: mm/q, bare quinn with memmesh's tuned settings (TransportTuning::default()); q+b3: tuned + BLAKE3 on receive";

/// The widths of the throughput table's cells: case | 5 x MB/s | 4 ratios | 5 x CPU.
const CASE_W: usize = 15;
const RATE_W: usize = 7;
const RATIO_W: [usize; 4] = [9, 6, 7, 6];
const CPU_W: usize = 6;

fn row(case: &str, rates: [String; 5], ratios: [String; 4], cpus: [String; 5]) -> String {
    let mut line = format!("{case:<CASE_W$} |");
    for r in rates {
        let _ = write!(line, " {r:>RATE_W$}");
    }
    line.push_str(" |");
    for (r, w) in ratios.into_iter().zip(RATIO_W) {
        let _ = write!(line, " {r:>w$}");
    }
    line.push_str(" |");
    for c in cpus {
        let _ = write!(line, " {c:>CPU_W$}");
    }
    line
}

/// The main table: one row per path and case; MB/s of memmesh, quinn with default
/// settings, quinn (tuned), quinn+blake3 and iperf3 (medians), the ratios of memmesh to
/// each anchor, and CPU seconds per GiB of each. Anchors missing from the records (older
/// results) print `-`.
pub fn throughput_table(results: &Results) -> String {
    let mut out = String::new();
    let s = |x: &str| x.to_string();
    let header = row(
        "case",
        [
            s("memmesh"),
            s("q-dflt"),
            s("quinn"),
            s("q+b3"),
            s("iperf3"),
        ],
        [s("mm/q-dflt"), s("mm/q"), s("mm/q+b3"), s("mm/ip3")],
        [s("mm"), s("q-dflt"), s("quinn"), s("q+b3"), s("iperf3")],
    );
    let rates_w = 5 * (RATE_W + 1) - 1;
    let ratios_w = RATIO_W.iter().map(|w| w + 1).sum::<usize>() - 1;
    let cpu_w = 5 * (CPU_W + 1) - 1;
    let _ = writeln!(out, "{header}");
    let groups = format!(
        "{:<CASE_W$} | {:^rates_w$} | {:^ratios_w$} | {:^cpu_w$}",
        "", "MB/s (median)", "ratios", "CPU s/GiB (both sides)"
    );
    let _ = writeln!(out, "{}", groups.trim_end());
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for path in results.paths() {
        let default = results.median(&path, System::QuinnDefault, None);
        let quinn = results.median(&path, System::Quinn, None);
        let blake = results.median(&path, System::QuinnBlake3, None);
        let iperf = results.iperf.get(&path);
        for case in [Case::Memory, Case::File] {
            let Some(mm) = results.median(&path, System::Memmesh, Some(case)) else {
                continue;
            };
            let d = default.map(|x| x.0);
            let q = quinn.map(|x| x.0);
            let b = blake.map(|x| x.0);
            let i = iperf.map(|x| x.mb_per_s);
            let line = row(
                &format!("{path} {}", case.label()),
                [
                    cell(Some(mm.0), 1),
                    cell(d, 1),
                    cell(q, 1),
                    cell(b, 1),
                    cell(i, 1),
                ],
                [
                    ratio(Some(mm.0), d),
                    ratio(Some(mm.0), q),
                    ratio(Some(mm.0), b),
                    ratio(Some(mm.0), i),
                ],
                [
                    cell(Some(mm.1), 2),
                    cell(default.map(|x| x.1), 2),
                    cell(quinn.map(|x| x.1), 2),
                    cell(blake.map(|x| x.1), 2),
                    cell(iperf.and_then(|x| x.cpu_per_gib), 2),
                ],
            );
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// The ceiling of the memory case: one row per path with memmesh memory to memory, quinn
/// with BLAKE3 (`q+b3`, into a reused buffer) and quinn with BLAKE3 into one fresh buffer of
/// the whole size kept until the end (`q+keep`, what a memory destination must do), MB/s
/// (medians), memmesh's ratio to the ceiling (`mm/q+keep`), what keeping costs the bare
/// transport (`keep/q+b3`), and CPU seconds per GiB of each. Results without the anchor
/// print `-`.
pub fn ceiling_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ceiling of the memory case: q+keep = tuned quinn + BLAKE3 into one fresh buffer of the \
         whole size, kept"
    );
    let header = format!(
        "{:<CASE_W$} | {:>RATE_W$} {:>RATE_W$} {:>RATE_W$} | {:>9} {:>9} | {:>CPU_W$} {:>CPU_W$} {:>CPU_W$}",
        "case", "memmesh", "q+b3", "q+keep", "mm/q+keep", "keep/q+b3", "mm", "q+b3", "q+keep"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for path in results.paths() {
        let Some(mm) = results.median(&path, System::Memmesh, Some(Case::Memory)) else {
            continue;
        };
        let blake = results.median(&path, System::QuinnBlake3, None);
        let keep = results.median(&path, System::QuinnKeep, None);
        let (b, k) = (blake.map(|x| x.0), keep.map(|x| x.0));
        let _ = writeln!(
            out,
            "{:<CASE_W$} | {:>RATE_W$} {:>RATE_W$} {:>RATE_W$} | {:>9} {:>9} | {:>CPU_W$} {:>CPU_W$} {:>CPU_W$}",
            format!("{path} memory"),
            cell(Some(mm.0), 1),
            cell(b, 1),
            cell(k, 1),
            ratio(Some(mm.0), k),
            ratio(k, b),
            cell(Some(mm.1), 2),
            cell(blake.map(|x| x.1), 2),
            cell(keep.map(|x| x.1), 2),
        );
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / MIB as f64)
}

/// Resident memory per path, system and case: the resident size before the first
/// transfer, the largest rise of the peak above the size before a transfer, and the largest
/// difference after minus before (MiB), for the sending and the receiving process; then
/// the processes' largest resident sizes.
pub fn memory_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<29} | {:>6} {:>9} {:>9} | {:>9} {:>9}",
        "resident memory (MiB)", "before", "peak +", "after +", "recv peak+", "recv after+"
    );
    let _ = writeln!(out, "{}", "-".repeat(82));
    for path in results.paths() {
        for (system, case) in [
            (System::Memmesh, Case::Memory),
            (System::Memmesh, Case::File),
            (System::QuinnDefault, Case::Memory),
            (System::Quinn, Case::Memory),
            (System::QuinnBlake3, Case::Memory),
            (System::QuinnKeep, Case::Memory),
        ] {
            let runs = results.select(&path, system, Some(case));
            let Some(first) = runs.first() else { continue };
            let growth = |f: &dyn Fn(&Run) -> Option<i64>| -> String {
                runs.iter()
                    .filter_map(|r| f(r))
                    .max()
                    .map(|v| format!("{:.0}", v as f64 / MIB as f64))
                    .unwrap_or_else(|| "-".into())
            };
            let label = match system {
                System::Memmesh => format!("{path} memmesh {}", case.label()),
                _ => format!("{path} {}", system.label()),
            };
            let _ = writeln!(
                out,
                "{:<29} | {:>6} {:>9} {:>9} | {:>10} {:>11}",
                label,
                mib(first.sender_rss.before),
                growth(&|r| Some(r.sender_rss.peak_growth() as i64)),
                growth(&|r| Some(r.sender_rss.after as i64 - r.sender_rss.before as i64)),
                growth(&|r| r.receiver_rss.map(|x| x.peak_growth() as i64)),
                growth(&|r| r.receiver_rss.map(|x| x.after as i64 - x.before as i64)),
            );
        }
    }
    for (path, (sender, receiver)) in &results.max_rss {
        let _ = match receiver {
            Some(r) => writeln!(
                out,
                "{path}: largest resident size: sending process {} MiB, receiving process {} MiB",
                mib(*sender),
                mib(*r)
            ),
            None => writeln!(
                out,
                "{path}: largest resident size of the process (both sides): {} MiB",
                mib(*sender)
            ),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::Rss;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn iperf3_json_is_read() {
        let json = r#"{"start":{},"intervals":[],"end":{
            "sum_sent":{"bytes":1073741824,"seconds":1.0,"bits_per_second":8589934592},
            "sum_received":{"bytes":1073741824,"seconds":2.0,"bits_per_second":4294967296},
            "cpu_utilization_percent":{"host_total":50.0,"remote_total":30.0}}}"#;
        let i = parse_iperf3(json).unwrap();
        assert_eq!(i.bytes, GIB);
        assert!((i.mb_per_s - 536.870912).abs() < 1e-6, "{i:?}");
        assert!((i.cpu_per_gib.unwrap() - 1.6).abs() < 1e-9, "{i:?}");
        let err = parse_iperf3(r#"{"error":"unable to connect"}"#).unwrap_err();
        assert!(err.to_string().contains("unable to connect"), "{err}");
    }

    fn run(path: &str, system: System, case: Case, seconds: f64) -> Run {
        Run {
            path: path.into(),
            system,
            case,
            repeat: 1,
            bytes: GIB,
            seconds,
            cpu_seconds: seconds * 2.0,
            sender_rss: Rss {
                before: 100 * MIB,
                peak: 110 * MIB,
                after: 101 * MIB,
            },
            receiver_rss: None,
            attempts: 1,
            hash: String::new(),
        }
    }

    #[test]
    fn the_table_shows_ratios_to_each_anchor() {
        let mut results = Results::from_records([
            Record::Run(run("netns", System::Memmesh, Case::Memory, 8.0)),
            Record::Run(run("loopback", System::Memmesh, Case::Memory, 4.0)),
            Record::Run(run("loopback", System::Memmesh, Case::File, 8.0)),
            Record::Run(run("loopback", System::QuinnDefault, Case::Memory, 5.0)),
            Record::Run(run("loopback", System::Quinn, Case::Memory, 2.0)),
            Record::Run(run("loopback", System::QuinnBlake3, Case::Memory, 4.0)),
            Record::Run(run("loopback", System::QuinnKeep, Case::Memory, 8.0)),
            Record::MaxRss {
                path: "loopback".into(),
                sender: 2048 * MIB,
                receiver: None,
            },
        ]);
        results.iperf.insert(
            "loopback".into(),
            Iperf {
                bytes: GIB,
                seconds: 1.0,
                mb_per_s: 1073.741824,
                cpu_per_gib: Some(1.0),
            },
        );
        let table = throughput_table(&results);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines.iter().all(|l| l.len() <= 130), "{table}");
        assert!(lines[0].contains("q-dflt") && lines[0].contains("mm/q-dflt"));
        assert!(lines[3].starts_with("loopback memory"), "{table}");
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        // memmesh, q-dflt, quinn, q+b3, iperf3 | mm/q-dflt, mm/q, mm/q+b3, mm/ip3 | CPU
        assert_eq!(
            &cells[2..19],
            [
                "|", "268.4", "214.7", "536.9", "268.4", "1073.7", "|", "1.25x", "0.50x", "1.00x",
                "0.25x", "|", "8.00", "10.00", "4.00", "8.00", "1.00"
            ],
            "{table}"
        );
        assert!(lines[4].starts_with("loopback file"), "{table}");
        assert!(lines[4].contains("0.50x"), "{table}");
        assert!(lines[5].starts_with("netns memory"), "{table}");
        assert!(lines[5].contains(" - "), "no anchors on netns: {table}");
        assert_eq!(table.lines().count(), 6, "{table}");
        let ceiling = ceiling_table(&results);
        let lines: Vec<&str> = ceiling.lines().collect();
        assert!(lines.iter().all(|l| l.len() <= 130), "{ceiling}");
        assert!(lines[3].starts_with("loopback memory"), "{ceiling}");
        let cells: Vec<&str> = lines[3].split_whitespace().collect();
        // memmesh, q+b3, q+keep | mm/q+keep, keep/q+b3 | CPU mm, q+b3, q+keep
        assert_eq!(
            &cells[2..],
            ["|", "268.4", "268.4", "134.2", "|", "2.00x", "0.50x", "|", "8.00", "8.00", "16.00"],
            "{ceiling}"
        );
        assert!(lines[4].starts_with("netns memory"), "{ceiling}");
        assert!(lines[4].contains(" - "), "no anchors on netns: {ceiling}");
        let memory = memory_table(&results);
        assert!(memory.contains("loopback quinn+blake3+keep"), "{memory}");
        assert!(memory.contains("loopback memmesh file"), "{memory}");
        assert!(memory.contains("loopback quinn default"), "{memory}");
        assert!(memory.contains("2048 MiB"), "{memory}");
        assert!(TARGET.lines().all(|l| l.len() <= 130), "{TARGET}");
    }

    #[test]
    fn records_without_the_default_anchor_still_load() {
        // A results file written before the quinn-default anchor existed.
        let dir = std::env::temp_dir().join(format!("tb-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = [
            Record::Run(run("loopback", System::Memmesh, Case::Memory, 4.0)),
            Record::Run(run("loopback", System::Quinn, Case::Memory, 2.0)),
            Record::Run(run("loopback", System::QuinnBlake3, Case::Memory, 4.0)),
        ];
        let text: String = old
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        assert!(!text.contains("quinn-default"));
        std::fs::write(dir.join(MEMMESH_FILE), text).unwrap();
        let loaded = Results::load(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let table = throughput_table(&loaded.unwrap());
        let row = table.lines().nth(3).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        // q-dflt, mm/q-dflt and its CPU are missing; the other anchors are there.
        assert_eq!(cells[4], "-", "{table}");
        assert_eq!(cells[9], "-", "{table}");
        assert_eq!(cells[10], "0.50x", "{table}");
        assert_eq!(cells[15], "-", "{table}");
        assert_eq!(cells[16], "4.00", "{table}");
        let json = serde_json::to_string(&Record::Run(run(
            "netns",
            System::QuinnDefault,
            Case::Memory,
            1.0,
        )))
        .unwrap();
        assert!(json.contains("\"system\":\"quinn-default\""), "{json}");
    }
}
