//! While a put replicates, the holders' pulls are served from the plaintext the caller
//! gave (the source file, or the bytes) rather than by decrypting the copy just stored:
//! one AEAD pass fewer per holder at the origin (ADR 0018, amendment "Replicas served
//! from the put's source").
//!
//! A source is lent only while its put replicates, and a file only while it is still the
//! file that was stored: same length as the stored record, same modification time as
//! before the put read it. Anything else (the file changed, was removed, or is not
//! lent) falls back to the store. The holder verifies what it pulls against the id
//! either way, so a file changed after this check fails that pull (`Corrupted`), and
//! never stores wrong bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;

/// The plaintext of a put, as the caller gave it.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A file, as it was before the put read it.
    Path {
        /// Where it is.
        path: PathBuf,
        /// Its length then.
        len: u64,
        /// Its modification time then.
        modified: SystemTime,
    },
    /// Bytes held in memory.
    Bytes(Bytes),
}

impl Origin {
    /// `path` as it is now, to lend once the put stored it (`None` if it cannot be
    /// read as a file with a modification time: the store serves the pulls then).
    pub fn of_path(path: &Path) -> Option<Origin> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        Some(Origin::Path {
            path: path.to_path_buf(),
            len: meta.len(),
            modified: meta.modified().ok()?,
        })
    }

    /// A reader of this plaintext if it still is `size` bytes as lent, else `None`.
    fn open(&self, size: u64) -> Option<Box<dyn Read + Send>> {
        match self {
            Origin::Bytes(data) => {
                (data.len() as u64 == size).then(|| Box::new(Cursor(data.clone())) as _)
            }
            Origin::Path {
                path,
                len,
                modified,
            } => {
                if *len != size {
                    return None;
                }
                let file = File::open(path).ok()?;
                let meta = file.metadata().ok()?;
                let same =
                    meta.is_file() && meta.len() == *len && meta.modified().ok()? == *modified;
                same.then(|| Box::new(file) as _)
            }
        }
    }
}

/// Bytes read in order (without copying them into a `std::io::Cursor`'s `Vec`).
struct Cursor(Bytes);

impl Read for Cursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0.split_to(n));
        Ok(n)
    }
}

/// The sources lent for one digest, each under the serial of its [`Lent`].
type Lenders = Vec<(u64, Origin)>;

/// The sources lent now, by digest; several puts of the same content may lend at once.
#[derive(Debug, Default)]
pub struct Lending {
    lent: Mutex<HashMap<[u8; 32], Lenders>>,
    next: std::sync::atomic::AtomicU64,
    served: std::sync::atomic::AtomicU64,
}

impl Lending {
    /// Lends `origin` as the plaintext of `digest` until the returned guard drops.
    pub fn lend(self: &Arc<Self>, digest: [u8; 32], origin: Origin) -> Lent {
        let serial = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(digest)
            .or_default()
            .push((serial, origin));
        Lent {
            lending: self.clone(),
            digest,
            serial,
        }
    }

    /// A reader of the plaintext of `digest` (`size` bytes) from a source lent for it
    /// that is still as it was, if any.
    pub fn open(&self, digest: &[u8; 32], size: u64) -> Option<Box<dyn Read + Send>> {
        let origins: Vec<Origin> = self
            .lent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)?
            .iter()
            .map(|(_, o)| o.clone())
            .collect();
        let reader = origins.iter().find_map(|o| o.open(size))?;
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(reader)
    }

    /// Whether anything is lent for `digest` now.
    pub fn has(&self, digest: &[u8; 32]) -> bool {
        self.lent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(digest)
    }

    /// How many readers [`Lending::open`] returned.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A source lent; withdrawn when dropped.
#[derive(Debug)]
pub struct Lent {
    lending: Arc<Lending>,
    digest: [u8; 32],
    serial: u64,
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut lent = self.lending.lent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(origins) = lent.get_mut(&self.digest) {
            origins.retain(|(s, _)| *s != self.serial);
            if origins.is_empty() {
                lent.remove(&self.digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(mut r: Box<dyn Read + Send>) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn bytes_are_served_while_lent_and_not_after() {
        let lending = Arc::new(Lending::default());
        let data = Bytes::from(vec![7u8; 100_000]);
        let guard = lending.lend([1; 32], Origin::Bytes(data.clone()));
        assert_eq!(read_all(lending.open(&[1; 32], 100_000).unwrap()), data);
        assert!(lending.open(&[2; 32], 100_000).is_none(), "another digest");
        assert!(lending.open(&[1; 32], 99_999).is_none(), "another size");
        drop(guard);
        assert!(lending.open(&[1; 32], 100_000).is_none(), "withdrawn");
        assert_eq!(lending.served(), 1);
    }

    #[test]
    fn two_lenders_of_one_digest_each_withdraw_only_their_own() {
        let lending = Arc::new(Lending::default());
        let a = lending.lend([1; 32], Origin::Bytes(Bytes::from_static(b"abc")));
        let b = lending.lend([1; 32], Origin::Bytes(Bytes::from_static(b"abc")));
        drop(a);
        assert_eq!(read_all(lending.open(&[1; 32], 3).unwrap()), b"abc");
        drop(b);
        assert!(lending.open(&[1; 32], 3).is_none());
        assert!(lending.lent.lock().unwrap().is_empty());
    }

    #[test]
    fn a_file_is_served_only_while_unchanged() {
        let dir = std::env::temp_dir().join(format!("memmesh-lend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("src");
        std::fs::write(&path, vec![3u8; 5000]).unwrap();
        let origin = Origin::of_path(&path).unwrap();
        let lending = Arc::new(Lending::default());
        let _guard = lending.lend([9; 32], origin);
        assert_eq!(
            read_all(lending.open(&[9; 32], 5000).unwrap()),
            vec![3u8; 5000]
        );
        assert!(
            lending.open(&[9; 32], 4999).is_none(),
            "not the stored size"
        );

        // Rewritten with the same length: a new modification time.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(&[4u8; 5000]).unwrap();
        f.set_modified(later).unwrap();
        drop(f);
        assert!(lending.open(&[9; 32], 5000).is_none(), "changed since lent");

        std::fs::remove_file(&path).unwrap();
        assert!(lending.open(&[9; 32], 5000).is_none(), "removed");
        assert!(Origin::of_path(&dir).is_none(), "a directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
