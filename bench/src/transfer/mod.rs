//! The pieces of `transfer-bench` (issue 6, item 8): verified transfers of 1 GiB between
//! two memmesh nodes, memory to memory and file to file, measured beside a bare quinn
//! stream with memmesh's TLS and either quinn's default transport settings (the baseline of
//! DESIGN.md's target) or memmesh's tuned ones (with and without BLAKE3 on the receive
//! side), on loopback and across two network namespaces joined by a veth.
//!
//! The receiving side ([`receiver::Receiver`]) and the sending side ([`sender::Sender`])
//! are separate objects that talk only over the network (the sender asks the receiver for
//! its CPU time, its memory and what it received over a memmesh channel), so the same code
//! runs in one process on loopback and in two processes in two namespaces
//! ([`netns`]). Every transfer is checked: the hash memmesh reports, and a BLAKE3 hash of
//! what actually landed (the memory buffer or the file), recomputed by the benchmark
//! outside the timed window. A last anchor, quinn+blake3+keep, is the ceiling of the
//! memory case: the bare transport receiving into one fresh buffer of the whole size.

pub mod netns;
pub mod procfs;
pub mod quinn_stream;
pub mod receiver;
pub mod report;
pub mod sender;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One GiB.
pub const GIB: u64 = 1 << 30;
/// One MiB.
pub const MIB: u64 = 1 << 20;

/// What sent the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// `node.transfer().send(..)` between two memmesh nodes.
    Memmesh,
    /// A bare quinn stream with memmesh's tuned transport settings: the bytes written on
    /// one stream and read by the receiver, nothing else.
    Quinn,
    /// The tuned bare quinn stream with a BLAKE3 hash over everything received, computed
    /// inline in the receiving task.
    QuinnBlake3,
    /// The bare quinn stream with quinn's DEFAULT transport settings (same TLS, plain
    /// reading): DESIGN.md's baseline for the transfer target.
    QuinnDefault,
    /// The ceiling of a memory destination: the tuned bare quinn stream, BLAKE3 on the
    /// receiver, received into one fresh buffer of the whole size kept until the end (as
    /// memmesh's memory destination must).
    QuinnKeep,
}

impl System {
    /// The name printed in tables.
    pub fn label(self) -> &'static str {
        match self {
            System::Memmesh => "memmesh",
            System::Quinn => "quinn",
            System::QuinnBlake3 => "quinn+blake3",
            System::QuinnDefault => "quinn default",
            System::QuinnKeep => "quinn+blake3+keep",
        }
    }
}

/// Where the bytes come from and go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// `Source::Bytes` into `Destination::Memory` (quinn: a buffer into a reading task).
    Memory,
    /// `Source::Path` into the receiver's inbox directory on the same disk.
    File,
}

impl Case {
    /// The name printed in tables.
    pub fn label(self) -> &'static str {
        match self {
            Case::Memory => "memory",
            Case::File => "file",
        }
    }
}

/// Resident memory of one process around one measured transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rss {
    /// `VmRSS` right before the transfer (bytes).
    pub before: u64,
    /// `VmHWM` at its end, after the high-water mark was reset right before it (bytes).
    pub peak: u64,
    /// `VmRSS` right after the transfer (bytes).
    pub after: u64,
}

impl Rss {
    /// How far the peak rose above the resident size before the transfer.
    pub fn peak_growth(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }
}

/// One measured transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `loopback` or `netns`.
    pub path: String,
    /// What sent the bytes.
    pub system: System,
    /// Memory or file (the quinn anchors are always memory).
    pub case: Case,
    /// 1-based repeat number.
    pub repeat: u32,
    /// Bytes transferred and verified.
    pub bytes: u64,
    /// Wall time from the call to the confirmed end.
    pub seconds: f64,
    /// CPU time (user + system) of both sides over the transfer.
    pub cpu_seconds: f64,
    /// The sending process (on loopback: the only process, both sides).
    pub sender_rss: Rss,
    /// The receiving process, when it is a process of its own.
    pub receiver_rss: Option<Rss>,
    /// Attempts memmesh reported (1 for the quinn anchors).
    pub attempts: u32,
    /// `blake3:<hex>` of what the receiver holds, recomputed by the benchmark (memmesh,
    /// quinn+blake3) or reported by the receiver's count only (quinn, quinn default: empty).
    pub hash: String,
}

impl Run {
    /// Throughput in MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / self.seconds / 1e6
        } else {
            0.0
        }
    }

    /// CPU seconds (both sides) per GiB transferred.
    pub fn cpu_per_gib(&self) -> f64 {
        if self.bytes > 0 {
            self.cpu_seconds * GIB as f64 / self.bytes as f64
        } else {
            0.0
        }
    }
}

/// `blake3:<hex>`, as memmesh prints a content hash.
pub fn hash_label(hash: &blake3::Hash) -> String {
    format!("blake3:{}", hash.to_hex())
}

/// The length and BLAKE3 hash of a file, read in 1 MiB pieces.
pub fn hash_file(path: &Path) -> Result<(u64, blake3::Hash)> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok((len, hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// `len` bytes of a deterministic pseudo-random pattern (xorshift64), the same in every
/// process, so that the two processes of the netns mode agree on the expected hash.
pub fn pattern(len: usize) -> Bytes {
    let mut out = vec![0u8; len];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    Bytes::from(out)
}

/// Parses `1073741824`, `64K`, `64M`, `64MiB`, `1G`, `1GiB` (binary units; a `B` suffix is
/// allowed).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .with_context(|| format!("bad size {text:?}: expected e.g. 1G, 64M, 4096"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => bail!("bad size {text:?}: unknown unit {other:?} (use K, M or G)"),
    };
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {text:?} is too large"))
}

/// `64 MiB`, `1 GiB`, `1000 B`.
pub fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= GIB && b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= 1024 && b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} B"),
    }
}

/// Seconds as a float, for JSON records.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), GIB);
        assert_eq!(parse_size("1 GiB").unwrap(), GIB);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(size_label(GIB), "1 GiB");
        assert_eq!(size_label(64 * MIB), "64 MiB");
        assert_eq!(size_label(1000), "1000 B");
    }

    #[test]
    fn the_pattern_is_deterministic_and_not_trivial() {
        let a = pattern(1001);
        assert_eq!(a, pattern(1001));
        assert_eq!(&a[..], &pattern(2000)[..1001]);
        assert_ne!(&a[..8], &a[8..16]);
    }

    #[test]
    fn systems_have_stable_json_names() {
        for (system, name) in [
            (System::Memmesh, "\"memmesh\""),
            (System::Quinn, "\"quinn\""),
            (System::QuinnBlake3, "\"quinn-blake3\""),
            (System::QuinnDefault, "\"quinn-default\""),
            (System::QuinnKeep, "\"quinn-keep\""),
        ] {
            assert_eq!(serde_json::to_string(&system).unwrap(), name);
            assert_eq!(serde_json::from_str::<System>(name).unwrap(), system);
        }
    }

    #[test]
    fn rates_are_decimal_megabytes_and_cpu_is_per_gib() {
        let run = Run {
            path: "loopback".into(),
            system: System::Memmesh,
            case: Case::Memory,
            repeat: 1,
            bytes: GIB,
            seconds: 4.0,
            cpu_seconds: 8.0,
            sender_rss: Rss::default(),
            receiver_rss: None,
            attempts: 1,
            hash: String::new(),
        };
        assert!((run.mb_per_s() - 268.435456).abs() < 1e-6);
        assert!((run.cpu_per_gib() - 8.0).abs() < 1e-9);
    }
}
