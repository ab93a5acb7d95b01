//! The cache benchmark's results: memmesh's records (written by `cache-bench --out`), the
//! anchors `bench/run-cache.sh` collects (redis-benchmark CSV, Redis memory figures, the
//! JSON lines of the Python and Node.js local-get scripts), and the final tables.
//!
//! Files in the results directory (each optional; a missing figure prints as `-`):
//!
//! | file | written by | content |
//! |---|---|---|
//! | `memmesh.jsonl` | `cache-bench --out` | one [`Record`] per line |
//! | `redis-c{C}-p{P}.csv` | `redis-benchmark --csv -c C -P P -t set,get` | its CSV |
//! | `redis-memory.txt` | the script | `key=value` lines, see [`RedisMemory`] |
//! | `local.jsonl` | the local-get scripts | `{"lang": ..., "ops_per_s": N}` lines |

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::report::latency;
use crate::resident::Resident;
use crate::stats::Summary;

/// memmesh's records file in the results directory.
pub const MEMMESH_FILE: &str = "memmesh.jsonl";
/// The local-get scripts' output in the results directory.
pub const LOCAL_FILE: &str = "local.jsonl";
/// Redis's memory figures in the results directory.
pub const REDIS_MEMORY_FILE: &str = "redis-memory.txt";

/// The redis-benchmark CSV file of one concurrency and pipeline depth.
pub fn redis_csv_name(concurrency: usize, pipeline: usize) -> String {
    format!("redis-c{concurrency}-p{pipeline}.csv")
}

/// The (concurrency, pipeline depth) of a [`redis_csv_name`].
pub fn parse_redis_csv_name(name: &str) -> Option<(usize, usize)> {
    let (c, p) = name
        .strip_prefix("redis-c")?
        .strip_suffix(".csv")?
        .split_once("-p")?;
    Some((c.parse().ok()?, p.parse().ok()?))
}

/// One memmesh figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A remote case: client node to server node.
    Remote(Remote),
    /// Local-hit reads from Rust.
    Local(Local),
    /// Resident memory per entry.
    Resident(Resident),
}

/// A remote case's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    /// `GET` or `SET` (as redis-benchmark names its tests).
    pub op: String,
    /// Callers issuing requests in parallel.
    pub concurrency: usize,
    /// Keys per call: 1, or 16 for `get_many` / `set_many`.
    pub batch: usize,
    /// Calls completed per second.
    pub calls_per_s: f64,
    /// Keys per second (calls per second times `batch`).
    pub keys_per_s: f64,
    /// Median call latency, microseconds.
    pub p50_us: f64,
    /// 99th-percentile call latency, microseconds.
    pub p99_us: f64,
    /// Process CPU time (both nodes) per call, microseconds.
    pub cpu_us_per_call: Option<f64>,
}

impl Remote {
    /// The figures of a measured case.
    pub fn new(op: &str, concurrency: usize, batch: usize, s: &Summary) -> Self {
        Self {
            op: op.to_string(),
            concurrency,
            batch,
            calls_per_s: s.rps,
            keys_per_s: s.rps * batch as f64,
            p50_us: s.p50.as_secs_f64() * 1e6,
            p99_us: s.p99.as_secs_f64() * 1e6,
            cpu_us_per_call: s.cpu_per_request().map(|d| d.as_secs_f64() * 1e6),
        }
    }

    /// `GET c=1`, `SET x16 c=50`.
    pub fn label(&self) -> String {
        case_label(&self.op, self.concurrency, self.batch)
    }
}

/// The label of a remote case.
pub fn case_label(op: &str, concurrency: usize, batch: usize) -> String {
    if batch > 1 {
        format!("{op} x{batch} c={concurrency}")
    } else {
        format!("{op} c={concurrency}")
    }
}

/// Local-hit reads from one language and API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Local {
    /// The language (`rust`, `python`, `node`, `redis-py`).
    pub lang: String,
    /// The API called, if the source says.
    #[serde(default)]
    pub api: Option<String>,
    /// Reads per second.
    pub ops_per_s: f64,
}

/// One row of redis-benchmark's CSV output.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisRow {
    /// The test (`SET`, `GET`).
    pub test: String,
    /// Requests per second (with `-P`, every pipelined command counts).
    pub rps: f64,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency in microseconds.
    pub p99_us: f64,
}

/// Parses `redis-benchmark --csv` output (header line, then one quoted row per test).
pub fn parse_redis_csv(text: &str) -> Vec<RedisRow> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let fields = |l: &str| -> Vec<String> {
        l.split(',')
            .map(|f| f.trim().trim_matches('"').to_string())
            .collect()
    };
    let header = fields(header);
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(test), Some(rps), Some(p50), Some(p99)) = (
        col("test"),
        col("rps"),
        col("p50_latency_ms"),
        col("p99_latency_ms"),
    ) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f = fields(l);
            let num = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some(RedisRow {
                test: f.get(test)?.clone(),
                rps: num(rps)?,
                p50_us: num(p50)? * 1000.0,
                p99_us: num(p99)? * 1000.0,
            })
        })
        .collect()
}

/// Redis's memory for the same entries, from `INFO memory` before and after loading them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RedisMemory {
    /// Keys loaded (`DBSIZE` after the load).
    pub entries: u64,
    /// `used_memory` before the load.
    pub used_before: u64,
    /// `used_memory` after the load.
    pub used_after: u64,
    /// `used_memory_rss` before the load.
    pub rss_before: u64,
    /// `used_memory_rss` after the load.
    pub rss_after: u64,
}

impl RedisMemory {
    /// Parses `key=value` lines: `entries`, `used_memory_before`, `used_memory_after`,
    /// `used_memory_rss_before`, `used_memory_rss_after`. `None` without entries.
    pub fn parse(text: &str) -> Option<RedisMemory> {
        let mut m = RedisMemory::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let Ok(v) = v.trim().parse::<u64>() else {
                continue;
            };
            match k.trim() {
                "entries" => m.entries = v,
                "used_memory_before" => m.used_before = v,
                "used_memory_after" => m.used_after = v,
                "used_memory_rss_before" => m.rss_before = v,
                "used_memory_rss_after" => m.rss_after = v,
                _ => {}
            }
        }
        (m.entries > 0).then_some(m)
    }

    /// `used_memory` growth per entry.
    pub fn used_per_entry(&self) -> f64 {
        self.used_after.saturating_sub(self.used_before) as f64 / self.entries as f64
    }

    /// RSS growth per entry.
    pub fn rss_per_entry(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.entries as f64
    }
}

/// Parses the local-get scripts' JSON lines (other lines are ignored).
pub fn parse_local_lines(text: &str) -> Vec<Local> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Local>(l).ok())
        .collect()
}

/// Everything one run collected.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// memmesh's records.
    pub memmesh: Vec<Record>,
    /// redis-benchmark rows by (concurrency, pipeline depth).
    pub redis: Vec<((usize, usize), Vec<RedisRow>)>,
    /// Redis's memory figures.
    pub redis_memory: Option<RedisMemory>,
    /// Local-get figures from the scripts.
    pub local: Vec<Local>,
}

impl Results {
    /// Reads the results directory; missing files leave their figures out.
    pub fn load(dir: &Path) -> Result<Results> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let mut out = Results::default();
        if let Some(text) = read(MEMMESH_FILE) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                out.memmesh.push(
                    serde_json::from_str(line)
                        .with_context(|| format!("parsing {MEMMESH_FILE}: {line:?}"))?,
                );
            }
        }
        let listing = std::fs::read_dir(dir)
            .with_context(|| format!("reading the results directory {}", dir.display()))?;
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(case) = parse_redis_csv_name(&name) {
                if let Some(text) = read(&name) {
                    out.redis.push((case, parse_redis_csv(&text)));
                }
            }
        }
        out.redis.sort_by_key(|(case, _)| *case);
        out.redis_memory = read(REDIS_MEMORY_FILE).and_then(|t| RedisMemory::parse(&t));
        out.local = read(LOCAL_FILE)
            .map(|t| parse_local_lines(&t))
            .unwrap_or_default();
        Ok(out)
    }

    /// Redis's row for a case: `op` at `concurrency` with pipeline depth `batch`.
    pub fn redis_row(&self, op: &str, concurrency: usize, batch: usize) -> Option<&RedisRow> {
        self.redis
            .iter()
            .find(|((c, p), _)| *c == concurrency && *p == batch)?
            .1
            .iter()
            .find(|r| r.test.eq_ignore_ascii_case(op))
    }

    fn remotes(&self) -> impl Iterator<Item = &Remote> {
        self.memmesh.iter().filter_map(|r| match r {
            Record::Remote(r) => Some(r),
            _ => None,
        })
    }

    fn resident(&self) -> Option<&Resident> {
        self.memmesh.iter().find_map(|r| match r {
            Record::Resident(r) => Some(r),
            _ => None,
        })
    }

    /// Local-hit figures: memmesh's Rust records, then the scripts' lines, the redis-py
    /// anchor last.
    fn locals(&self) -> Vec<Local> {
        let mut out: Vec<Local> = self
            .memmesh
            .iter()
            .filter_map(|r| match r {
                Record::Local(l) => Some(l.clone()),
                _ => None,
            })
            .chain(self.local.iter().cloned())
            .collect();
        out.sort_by_key(|l| l.lang == "redis-py");
        out
    }
}

fn us(v: f64) -> String {
    latency(std::time::Duration::from_secs_f64(v.max(0.0) / 1e6))
}

fn ratio(num: f64, den: f64) -> String {
    if den > 0.0 && num.is_finite() {
        format!("{:.2}x", num / den)
    } else {
        "-".into()
    }
}

/// The remote table: memmesh's keys/s, p50 and p99 beside redis-benchmark's at the same
/// concurrency and pipeline depth, and the ratios (keys/s above 1: memmesh faster; p50
/// below 1: memmesh faster).
pub fn remote_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} | {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>10} {:>7}",
        "case",
        "mm keys/s",
        "mm p50",
        "mm p99",
        "r keys/s",
        "r p50",
        "r p99",
        "keys/s m/r",
        "p50 m/r"
    );
    let _ = writeln!(out, "{}", "-".repeat(101));
    for m in results.remotes() {
        let r = results.redis_row(&m.op, m.concurrency, m.batch);
        let (rk, rp50, rp99, kr, pr) = match r {
            Some(r) => (
                format!("{:.0}", r.rps),
                us(r.p50_us),
                us(r.p99_us),
                ratio(m.keys_per_s, r.rps),
                ratio(m.p50_us, r.p50_us),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<13} | {:>9.0} {:>8} {:>8} | {rk:>9} {rp50:>8} {rp99:>8} | {kr:>10} {pr:>7}",
            m.label(),
            m.keys_per_s,
            us(m.p50_us),
            us(m.p99_us),
        );
    }
    out
}

/// The local-hit table: reads/s per language and API, and the ratio to redis-py's GET
/// against the local Redis.
pub fn local_table(results: &Results) -> String {
    let locals = results.locals();
    let anchor = locals
        .iter()
        .find(|l| l.lang == "redis-py")
        .map(|l| l.ops_per_s);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} | {:>12} | {:>10}",
        "local-hit GET", "reads/s", "vs redis-py"
    );
    let _ = writeln!(out, "{}", "-".repeat(63));
    for l in &locals {
        let label = match &l.api {
            Some(api) => format!("{} {api}", l.lang),
            None => l.lang.clone(),
        };
        let vs = anchor
            .map(|a| ratio(l.ops_per_s, a))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "{label:<34} | {:>12.0} | {vs:>10}", l.ops_per_s);
    }
    if locals.is_empty() {
        let _ = writeln!(out, "(no figures)");
    }
    out
}

/// The memory table: bytes per entry for memmesh (RSS growth, and what the core accounts)
/// and Redis (`used_memory` and RSS growth), with the ratio memmesh RSS / Redis
/// `used_memory`.
pub fn memory_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} | {:>9} | {:>10} | {:>10}",
        "memory for N entries (11 B key, 100 B value)", "entries", "bytes/entry", "overhead"
    );
    let _ = writeln!(out, "{}", "-".repeat(84));
    let row = |out: &mut String, label: &str, entries: u64, per: f64, kv: f64| {
        let _ = writeln!(
            out,
            "{label:<44} | {entries:>9} | {per:>11.1} | {:>10.1}",
            per - kv
        );
    };
    let m = results.resident();
    if let Some(m) = m {
        let kv = (m.key_bytes + m.value_bytes) as f64;
        row(
            &mut out,
            "memmesh: process RSS growth",
            m.entries,
            m.rss_per_entry(),
            kv,
        );
        row(
            &mut out,
            "memmesh: accounted (CacheStats::bytes)",
            m.entries,
            m.accounted_per_entry(),
            kv,
        );
    }
    let r = results.redis_memory;
    if let Some(r) = r {
        row(
            &mut out,
            "redis: used_memory growth",
            r.entries,
            r.used_per_entry(),
            111.0,
        );
        row(
            &mut out,
            "redis: used_memory_rss growth",
            r.entries,
            r.rss_per_entry(),
            111.0,
        );
    }
    match (m, r) {
        (Some(m), Some(r)) => {
            let _ = writeln!(
                out,
                "memmesh RSS / redis used_memory per entry: {}   (target: overhead <= 100 B per entry)",
                ratio(m.rss_per_entry(), r.used_per_entry())
            );
        }
        (None, None) => {
            let _ = writeln!(out, "(no figures)");
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
\"SET\",\"18264.84\",\"0.050\",\"0.016\",\"0.039\",\"0.103\",\"0.191\",\"5.199\"\n\
\"GET\",\"13440.86\",\"0.067\",\"0.016\",\"0.040\",\"0.127\",\"0.271\",\"6.343\"\n";

    #[test]
    fn redis_csv_rows() {
        let rows = parse_redis_csv(CSV);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].test, "GET");
        assert!((rows[1].rps - 13440.86).abs() < 1e-6);
        assert!((rows[1].p50_us - 40.0).abs() < 1e-6);
        assert!((rows[1].p99_us - 271.0).abs() < 1e-6);
        assert!(parse_redis_csv("").is_empty());
        assert_eq!(
            parse_redis_csv_name(&redis_csv_name(50, 16)),
            Some((50, 16))
        );
        assert_eq!(parse_redis_csv_name("redis-memory.txt"), None);
        assert!(parse_redis_csv("\"a\",\"b\"\n\"1\",\"2\"\n").is_empty());
    }

    #[test]
    fn redis_memory_and_local_lines() {
        let m = RedisMemory::parse(
            "entries=1000\nused_memory_before=1000\nused_memory_after=101000\n\
             used_memory_rss_before=0\nused_memory_rss_after=200000\njunk\n",
        )
        .unwrap();
        assert!((m.used_per_entry() - 100.0).abs() < 1e-9);
        assert!((m.rss_per_entry() - 200.0).abs() < 1e-9);
        assert_eq!(RedisMemory::parse("used_memory_before=1\n"), None);
        let l = parse_local_lines(
            "warming up\n{\"lang\":\"python\",\"ops_per_s\":1500000.5}\n{\"lang\":\"redis-py\",\"ops_per_s\":12000}\n{bad\n",
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].lang, "redis-py");
        assert_eq!(l[0].api, None);
    }

    #[test]
    fn tables_put_memmesh_beside_redis() {
        let remote = Remote {
            op: "GET".into(),
            concurrency: 1,
            batch: 1,
            calls_per_s: 26881.72,
            keys_per_s: 26881.72,
            p50_us: 20.0,
            p99_us: 300.0,
            cpu_us_per_call: None,
        };
        let rust = Local {
            lang: "rust".into(),
            api: Some("try_get_local".into()),
            ops_per_s: 1.2e6,
        };
        let results = Results {
            memmesh: vec![Record::Remote(remote.clone()), Record::Local(rust)],
            redis: vec![((1, 1), parse_redis_csv(CSV))],
            redis_memory: None,
            local: parse_local_lines(
                "{\"lang\":\"redis-py\",\"ops_per_s\":12000}\n{\"lang\":\"node\",\"ops_per_s\":6000}\n",
            ),
        };
        let t = remote_table(&results);
        let row = t.lines().nth(2).unwrap();
        assert!(row.starts_with("GET c=1"), "{t}");
        assert!(row.contains("2.00x") && row.contains("0.50x"), "{t}");
        let t = local_table(&results);
        assert!(
            t.contains("rust try_get_local") && t.contains("100.00x"),
            "{t}"
        );
        assert!(memory_table(&results).contains("(no figures)"));
        // A record survives the JSON round trip the results file makes.
        let line = serde_json::to_string(&Record::Remote(remote.clone())).unwrap();
        assert!(line.contains("\"kind\":\"remote\""), "{line}");
        assert_eq!(
            serde_json::from_str::<Record>(&line).unwrap(),
            Record::Remote(remote)
        );
    }
}
