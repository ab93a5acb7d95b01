//! Helpers for the transfer tests: scratch directories removed on drop, generated files,
//! and a hostile member that speaks the transfer protocol by hand.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use memmesh::wire::codec::{encode_frame, FrameLimits};
use memmesh::wire::io::{read_frame, read_raw_frame_opt};
use memmesh::wire::messages::TransferOffer;
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::ErrorKind;

use super::RawPeer;

/// A scratch directory removed when dropped, also when the test fails (the large tests
/// leave gibibytes behind otherwise).
pub struct Scratch {
    dir: PathBuf,
    /// A tmpfs is mounted on it (unmounted when dropped).
    mounted: bool,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("memmesh-th-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch {
            dir,
            mounted: false,
        }
    }

    /// A scratch directory on a tmpfs of `size` (e.g. "4300m") when this process may
    /// mount one (root, as in CI), else on the temporary directory's disk. The large
    /// tests write gigabytes; on a machine whose shared disk runs low they would fail
    /// with no space left, which is not what they test (a full disk has its own test).
    pub fn on_tmpfs(name: &str, size: &str) -> Scratch {
        let mut s = Scratch::new(name);
        s.mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&s.dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        s
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `size` bytes where every MiB differs (its index in its first 8 bytes, `seed`
/// in the next 8), quickly even in a debug build; returns their `blake3:<hex>`.
pub fn write_generated(path: &Path, size: u64, seed: u64) -> String {
    let mut hasher = blake3::Hasher::new();
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut block: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    let mut written = 0u64;
    let mut n = 0u64;
    while written < size {
        block[..8].copy_from_slice(&n.to_le_bytes());
        block[8..16].copy_from_slice(&seed.to_le_bytes());
        let len = (size - written).min(block.len() as u64) as usize;
        f.write_all(&block[..len]).unwrap();
        hasher.update(&block[..len]);
        written += len as u64;
        n += 1;
    }
    f.flush().unwrap();
    format!("blake3:{}", hasher.finalize().to_hex())
}

/// `blake3:<hex>` of a file.
pub fn hash_file(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path).unwrap()).unwrap();
    format!("blake3:{}", h.finalize().to_hex())
}

/// `blake3:<hex>` of bytes.
pub fn hash_bytes(data: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(data).to_hex())
}

/// Files under `dir` (recursively) whose name contains `memmesh-`.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if e.file_name().to_string_lossy().contains("memmesh-") {
                out.push(p);
            }
        }
    }
    out
}

/// What a receiver answered to an offer written by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// `Accept`.
    Accepted,
    /// `Reject`, with the kind of the error reply that follows it.
    Refused(ErrorKind, String),
    /// The stream ended or broke without an answer.
    Nothing(String),
}

fn limits() -> FrameLimits {
    FrameLimits::with_body(1 << 20)
}

/// Opens a transfer stream on `peer` with this offer and reads the receiver's answer.
pub async fn raw_offer(
    peer: &RawPeer,
    offer: TransferOffer,
) -> (quinn::SendStream, quinn::RecvStream, Answered) {
    let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
    let frame = encode_frame(&StreamHeader::new(Service::Transfer(offer)), &[], limits()).unwrap();
    send.write_all(&frame).await.unwrap();
    let answered = read_answer(&mut recv).await;
    (send, recv, answered)
}

/// Reads an `Answer` frame (variant 0 is `Accept`, 1 is `Reject`) and, after a refusal,
/// the error reply that follows it.
pub async fn read_answer(recv: &mut quinn::RecvStream) -> Answered {
    let raw = match read_raw_frame_opt(recv, limits()).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Answered::Nothing("the stream ended".into()),
        Err(e) => return Answered::Nothing(e.to_string()),
    };
    match raw.header.first() {
        Some(0) => Answered::Accepted,
        Some(1) => match read_frame::<Reply>(recv, limits()).await {
            Ok(frame) => match frame.header.into_result() {
                Err(e) => Answered::Refused(e.kind(), e.message().to_string()),
                Ok(()) => Answered::Nothing("a refusal followed by Ok".into()),
            },
            Err(e) => Answered::Nothing(format!("no reply after the refusal: {e}")),
        },
        _ => Answered::Nothing(format!("unexpected answer {:?}", raw.header)),
    }
}

/// An offer of `size` bytes in chunks of `chunk_size`, with a random id.
pub fn offer(name: &str, size: u64, chunk_size: u32) -> TransferOffer {
    let mut id = [0u8; 32];
    id[..16].copy_from_slice(&rand_u128().to_le_bytes());
    TransferOffer {
        id,
        name: name.to_string(),
        size,
        chunk_size,
    }
}

fn rand_u128() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    t ^ (u128::from(n) << 64) ^ u128::from(std::process::id())
}
