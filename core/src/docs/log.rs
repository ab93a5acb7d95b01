//! A document's encrypted, append-only log on disk (ADR 0020, `docs/storage-format.md`).
//!
//! `<data_dir>/docs/<id>.amlog` is `"memmeshD" ‖ version (1)` followed by records, each
//! `u32 LE length ‖ box`, where the box is the storage key's AEAD box (`files::crypt`)
//! of `kind ‖ payload`, bound (associated data) to the document id and the record's
//! sequence number in the file, so records cannot be moved between documents or
//! reordered. Kinds: the document's reach, a full Automerge save (a snapshot), and
//! Automerge incremental bytes (the changes since the previous record). Every append is
//! fsynced before the edit returns. A torn last record (a crash during an append) is
//! cut off when the log is read; a damaged record before the end is `Corrupted`.
//! Compaction writes the reach and a snapshot into a temporary file, fsyncs it and
//! renames it over the log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::error::DocsError;

/// Seals and opens records with the node's storage key (the API layer hands the
/// documents store one made from the files store's key: `node/docs_key.rs`).
pub trait Sealer: Send + Sync + 'static {
    /// An AEAD box of `plain` bound to `aad`.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String>;
    /// The plaintext of a box made by [`Sealer::seal`] with the same `aad`, or `None` if
    /// it fails authentication.
    fn open(&self, aad: &[u8], boxed: &[u8]) -> Option<Vec<u8>>;
}

/// The first bytes of a log.
pub const LOG_MAGIC: &[u8; 8] = b"memmeshD";
/// The log format version.
pub const LOG_VERSION: u8 = 1;
/// Record kind: the reach (one byte).
pub const KIND_REACH: u8 = 0;
/// Record kind: a full Automerge save.
pub const KIND_SNAPSHOT: u8 = 1;
/// Record kind: Automerge incremental bytes.
pub const KIND_CHANGES: u8 = 2;
/// Largest record accepted when reading (a damaged length must not allocate without bound).
pub const MAX_RECORD: usize = 256 * 1024 * 1024;
/// The file-name extension of logs.
pub const EXT: &str = "amlog";

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its kind.
    pub kind: u8,
    /// Its payload.
    pub payload: Vec<u8>,
}

fn aad(id: &[u8; 16], seq: u64) -> [u8; 8 + 16 + 8] {
    let mut a = [0u8; 32];
    a[..8].copy_from_slice(LOG_MAGIC);
    a[8..24].copy_from_slice(id);
    a[24..].copy_from_slice(&seq.to_le_bytes());
    a
}

fn encode(key: &dyn Sealer, id: &[u8; 16], seq: u64, r: &Record) -> Result<Vec<u8>, DocsError> {
    let mut plain = Vec::with_capacity(1 + r.payload.len());
    plain.push(r.kind);
    plain.extend_from_slice(&r.payload);
    let boxed = key
        .seal(&aad(id, seq), &plain)
        .map_err(|e| DocsError::Automerge(format!("sealing a record: {e}")))?;
    let len = u32::try_from(boxed.len()).map_err(|_| DocsError::TooLarge {
        what: "a log record",
        size: boxed.len(),
        limit: u32::MAX as usize,
    })?;
    let mut out = Vec::with_capacity(4 + boxed.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// A document's log, open for appending.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    file: File,
    id: [u8; 16],
    seq: u64,
    len: u64,
    /// Records appended since the last snapshot.
    pub since_snapshot: u64,
    /// Bytes appended since the last snapshot.
    pub bytes_since_snapshot: u64,
}

/// The path of document `hex`'s log in `dir`.
pub fn log_path(dir: &Path, hex: &str) -> PathBuf {
    dir.join(format!("{hex}.{EXT}"))
}

impl Log {
    /// Creates a new log holding `records` (durably: temp file, fsync, rename, dir fsync).
    pub fn create(
        dir: &Path,
        key: &dyn Sealer,
        id: [u8; 16],
        hex: &str,
        records: &[Record],
    ) -> Result<Log, DocsError> {
        let path = log_path(dir, hex);
        let tmp = dir.join(format!("tmp-{hex}"));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(LOG_MAGIC);
        bytes.push(LOG_VERSION);
        for (seq, r) in records.iter().enumerate() {
            bytes.extend_from_slice(&encode(key, &id, seq as u64, r)?);
        }
        {
            let mut f = private_create(&tmp).map_err(DocsError::io("creating", &tmp))?;
            f.write_all(&bytes)
                .map_err(DocsError::io("writing", &tmp))?;
            f.sync_all().map_err(DocsError::io("syncing", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(DocsError::io("renaming", &tmp))?;
        crate::durable::sync_dir(dir).map_err(DocsError::io("syncing", dir))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(DocsError::io("opening", &path))?;
        Ok(Log {
            path,
            file,
            id,
            seq: records.len() as u64,
            len: bytes.len() as u64,
            since_snapshot: 0,
            bytes_since_snapshot: 0,
        })
    }

    /// Reads the log at `path`, cutting off a torn last record; returns the log open for
    /// appending and its records.
    pub fn open(
        path: &Path,
        key: &dyn Sealer,
        id: [u8; 16],
    ) -> Result<(Log, Vec<Record>), DocsError> {
        let what = || format!("document log {}", path.display());
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(DocsError::io("reading", path))?;
        if bytes.len() < 9 || &bytes[..8] != LOG_MAGIC || bytes[8] != LOG_VERSION {
            return Err(DocsError::Corrupted {
                what: format!("{}: not a version-1 document log", what()),
            });
        }
        let mut at = 9usize;
        let mut records = Vec::new();
        let (mut since, mut since_bytes) = (0u64, 0u64);
        while at < bytes.len() {
            let rest = &bytes[at..];
            let torn = |good: usize| -> Result<usize, DocsError> {
                tracing::warn!(log = %path.display(), at = good, "cutting a torn record off a document log");
                Ok(good)
            };
            if rest.len() < 4 {
                at = torn(at)?;
                break;
            }
            let mut n = [0u8; 4];
            n.copy_from_slice(&rest[..4]);
            let n = u32::from_le_bytes(n) as usize;
            if n > MAX_RECORD {
                return Err(DocsError::Corrupted { what: what() });
            }
            if rest.len() < 4 + n {
                at = torn(at)?;
                break;
            }
            let seq = records.len() as u64;
            let Some(plain) = key.open(&aad(&id, seq), &rest[4..4 + n]) else {
                if rest.len() == 4 + n && seq > 0 {
                    // The last record failed authentication: a torn write (the first
                    // record is written whole by a rename, so it cannot be torn).
                    at = torn(at)?;
                    break;
                }
                return Err(DocsError::Corrupted {
                    what: format!("{}: record {seq}", what()),
                });
            };
            let Some((&kind, payload)) = plain.split_first() else {
                return Err(DocsError::Corrupted { what: what() });
            };
            if kind == KIND_SNAPSHOT {
                since = 0;
                since_bytes = 0;
            } else {
                since += 1;
                since_bytes += n as u64;
            }
            records.push(Record {
                kind,
                payload: payload.to_vec(),
            });
            at += 4 + n;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(DocsError::io("opening", path))?;
        if (at as u64) < bytes.len() as u64 {
            file.set_len(at as u64)
                .and_then(|_| file.sync_all())
                .map_err(DocsError::io("truncating", path))?;
        }
        let log = Log {
            path: path.to_path_buf(),
            file,
            id,
            seq: records.len() as u64,
            len: at as u64,
            since_snapshot: since,
            bytes_since_snapshot: since_bytes,
        };
        Ok((log, records))
    }

    /// Appends `r` durably (written and fsynced before it returns).
    pub fn append(&mut self, key: &dyn Sealer, r: &Record) -> Result<(), DocsError> {
        let bytes = encode(key, &self.id, self.seq, r)?;
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            // Leave no partial record behind for the next append to follow.
            let _ = self.file.set_len(self.len);
            return Err(DocsError::io("appending to", &self.path)(e));
        }
        self.seq += 1;
        self.len += bytes.len() as u64;
        self.since_snapshot += 1;
        self.bytes_since_snapshot += bytes.len() as u64;
        Ok(())
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn private_create(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_create(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::crypt::{aead_key, open_box, seal_box};
    use ring::aead::LessSafeKey;

    struct K(LessSafeKey);

    impl Sealer for K {
        fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
            seal_box(&self.0, aad, plain).map_err(|e| e.to_string())
        }

        fn open(&self, aad: &[u8], boxed: &[u8]) -> Option<Vec<u8>> {
            open_box(&self.0, aad, boxed)
        }
    }

    fn rec(kind: u8, p: &[u8]) -> Record {
        Record {
            kind,
            payload: p.to_vec(),
        }
    }

    #[test]
    fn appends_reopen_and_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("mm-doclog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = K(aead_key(&[3u8; 32]).unwrap());
        let key = &key;
        let id = [9u8; 16];
        let mut log = Log::create(&dir, key, id, "ab", &[rec(KIND_REACH, &[1])]).unwrap();
        log.append(key, &rec(KIND_CHANGES, b"one")).unwrap();
        log.append(key, &rec(KIND_CHANGES, b"two")).unwrap();
        let path = log.path().to_path_buf();
        drop(log);
        let (_, records) = Log::open(&path, key, id).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], rec(KIND_CHANGES, b"two"));
        // Tear the last record.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let (mut log, records) = Log::open(&path, key, id).unwrap();
        assert_eq!(records.len(), 2);
        log.append(key, &rec(KIND_CHANGES, b"three")).unwrap();
        let (_, records) = Log::open(&path, key, id).unwrap();
        assert_eq!(records[2], rec(KIND_CHANGES, b"three"));
        // Another document id cannot read it.
        assert!(Log::open(&path, key, [1u8; 16]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
