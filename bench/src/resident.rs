//! Resident memory per cache entry: one node in a fresh process stores `entries` entries
//! of 100-byte values under 11-byte keys (`key:0000001` ...), and the process's resident
//! set size (`VmRSS`) is read before and after.
//!
//! The parent runs [`measure_in_child`], which spawns the benchmark binary itself with the
//! `resident` subcommand, so the figure is not disturbed by what the parent allocated.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::executor::block_on;
use memmesh::Node;
use serde::{Deserialize, Serialize};

use crate::cache_mesh::{bucket_options, VALUE_SIZE};

/// Entries per `set_many` call while filling.
const FILL_BATCH: usize = 1000;
/// Bucket of the resident measurement.
const BUCKET: &str = "resident";

/// What one fill measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resident {
    /// Entries stored.
    pub entries: u64,
    /// Length of every key.
    pub key_bytes: u64,
    /// Length of every value.
    pub value_bytes: u64,
    /// `VmRSS` of the process after the node started and the bucket opened.
    pub rss_before: u64,
    /// `VmRSS` after every entry was stored.
    pub rss_after: u64,
    /// What the bucket's own accounting says it holds (`CacheStats::bytes`: keys, values
    /// and the overhead the core charges per entry against `memory_quota`).
    pub accounted_bytes: u64,
    /// Seconds the fill took.
    pub fill_seconds: f64,
}

impl Resident {
    /// Resident bytes per entry: the RSS growth divided by the entries.
    pub fn rss_per_entry(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.entries.max(1) as f64
    }

    /// Resident bytes per entry beyond the key and value themselves.
    pub fn rss_overhead(&self) -> f64 {
        self.rss_per_entry() - (self.key_bytes + self.value_bytes) as f64
    }

    /// Bytes per entry the core accounts for.
    pub fn accounted_per_entry(&self) -> f64 {
        self.accounted_bytes as f64 / self.entries.max(1) as f64
    }
}

/// The resident set size of this process in bytes (Linux `/proc/self/status`).
pub fn rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/self/status")
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// The `i`-th key of the fill (`key:0000001` for 1).
pub fn fill_key(i: usize) -> String {
    format!("key:{i:07}")
}

/// Starts one node (mDNS off, a memory quota large enough for everything), opens a bucket
/// with `replicas = 1` and stores `entries` entries through `set_many` batches, each value
/// its own 100-byte allocation; measures RSS around the fill. Meant to run in a fresh
/// process.
pub fn fill(entries: usize, threads: usize) -> Result<Resident> {
    ensure!(
        (1..=9_999_999).contains(&entries),
        "entries must be 1..=9999999 (7-digit keys), got {entries}"
    );
    let quota = (entries as u64 * 1024).max(256 << 20);
    let node = Node::builder()
        .name("resident")
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(threads)
        .memory_quota(quota)
        .start_blocking()
        .context("starting the node")?;
    let cache = block_on(node.cache(BUCKET, Some(bucket_options()))).context("cache()")?;
    let rss_before = rss_bytes()?;
    let started = Instant::now();
    let mut next = 1;
    while next <= entries {
        let end = (next + FILL_BATCH).min(entries + 1);
        let batch: Vec<(String, Bytes)> = (next..end)
            .map(|i| (fill_key(i), crate::cache_mesh::value_for(i)))
            .collect();
        block_on(cache.set_many(batch, None))
            .with_context(|| format!("set_many at entry {next}"))?;
        next = end;
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes()?;
    let stats = cache.stats();
    ensure!(
        stats.entries == entries as u64,
        "the bucket holds {} entries after storing {entries}",
        stats.entries
    );
    let probe = fill_key(entries);
    ensure!(
        cache.try_get_local(&probe) == Some(Some(crate::cache_mesh::value_for(entries))),
        "the last entry ({probe}) does not read back"
    );
    let out = Resident {
        entries: entries as u64,
        key_bytes: fill_key(entries).len() as u64,
        value_bytes: VALUE_SIZE as u64,
        rss_before,
        rss_after,
        accounted_bytes: stats.bytes,
        fill_seconds,
    };
    node.shutdown_blocking()?;
    Ok(out)
}

/// Runs `<this executable> resident --entries N` and returns what it measured (the last
/// line of its standard output, JSON).
pub fn measure_in_child(entries: usize, threads: usize) -> Result<Resident> {
    let exe = std::env::current_exe().context("locating the benchmark executable")?;
    let out = Command::new(&exe)
        .args([
            "resident",
            "--entries",
            &entries.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} resident", exe.display()))?;
    if !out.status.success() {
        bail!("the resident-memory child failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("the resident-memory child printed no result")?;
    serde_json::from_str(line).with_context(|| format!("parsing the child's result {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kilobytes() {
        let status = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t   1234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_bytes().unwrap() > 0);
    }

    #[test]
    fn per_entry_figures() {
        let r = Resident {
            entries: 1000,
            key_bytes: 11,
            value_bytes: 100,
            rss_before: 10_000_000,
            rss_after: 10_200_000,
            accounted_bytes: 150_000,
            fill_seconds: 1.0,
        };
        assert!((r.rss_per_entry() - 200.0).abs() < 1e-9);
        assert!((r.rss_overhead() - 89.0).abs() < 1e-9);
        assert!((r.accounted_per_entry() - 150.0).abs() < 1e-9);
        assert_eq!(fill_key(1), "key:0000001");
        assert_eq!(fill_key(1_000_000), "key:1000000");
    }
}
