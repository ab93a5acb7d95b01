//! Content files under `<data_dir>/files/`: one encrypted file per file id, written to a
//! temporary file, fsynced and renamed (the directory is fsynced by the committer before
//! the metadata commit), read back segment by segment, and swept of leftovers at start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::blocks::Shape;
use super::crypt::{plain_len, Decryptor, SegmentKey, HEADER_LEN, SEALED_SEGMENT};
use super::direct::Source;
use super::error::FilesError;
use super::key::StorageKey;
use super::parallel::{open_stream, seal_stream};

/// The contents directory's name inside the data dir.
pub const CONTENTS_DIR: &str = "files";
/// The name prefix of temporary files in the contents directory.
pub const TEMP_PREFIX: &str = "tmp-";

/// The hex name of a file id's content file.
pub fn file_name(id: &[u8; 32]) -> String {
    data_encoding::HEXLOWER.encode(id)
}

/// The id a content file's name stands for, if it is one.
pub fn id_of_name(name: &str) -> Option<[u8; 32]> {
    if name.len() != 64 {
        return None;
    }
    data_encoding::HEXLOWER
        .decode(name.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

/// A content file being written; removed on drop unless it was renamed into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
    kept: bool,
}

impl TempFile {
    /// A new, empty temporary file in the contents directory `dir` (readable by the
    /// owner only).
    pub fn create(dir: &Path) -> Result<TempFile, FilesError> {
        TempFile::create_in(dir, TEMP_PREFIX)
    }

    /// A new, empty temporary file in `dir` named `<prefix><random hex>`.
    pub fn create_in(dir: &Path, prefix: &str) -> Result<TempFile, FilesError> {
        let suffix: [u8; 8] = super::crypt::random()?;
        let path = dir.join(format!(
            "{prefix}{}",
            data_encoding::HEXLOWER.encode(&suffix)
        ));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .map_err(FilesError::io("creating", &path))?;
        Ok(TempFile {
            path,
            file: Some(file),
            kept: false,
        })
    }

    /// Takes over an existing, synced file at `path` (a finished partial replica) by
    /// renaming it to a new temporary name in the same directory: it is then renamed into
    /// place like a new one, or removed on drop (or at the next start).
    pub fn rename_from(path: &Path) -> Result<TempFile, FilesError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let suffix: [u8; 8] = super::crypt::random()?;
        let tmp = dir.join(format!(
            "{TEMP_PREFIX}{}",
            data_encoding::HEXLOWER.encode(&suffix)
        ));
        std::fs::rename(path, &tmp).map_err(FilesError::io("renaming", path))?;
        Ok(TempFile {
            path: tmp,
            file: None,
            kept: false,
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        match self.file.as_mut() {
            Some(f) => f
                .write_all(bytes)
                .map_err(FilesError::io("writing", &self.path)),
            None => Err(FilesError::Internal(
                "a temporary file written after its sync",
            )),
        }
    }

    /// Flushes the contents to the disk and closes the file.
    pub fn sync(&mut self) -> Result<(), FilesError> {
        if let Some(f) = self.file.take() {
            f.sync_all()
                .map_err(FilesError::io("syncing", &self.path))?;
        }
        Ok(())
    }

    /// Renames the (synced) file to `target`. The rename is durable once the directory
    /// is synced.
    pub fn rename_to(mut self, target: &Path) -> Result<(), FilesError> {
        self.sync()?;
        std::fs::rename(&self.path, target).map_err(FilesError::io("renaming", &self.path))?;
        self.kept = true;
        Ok(())
    }

    /// Links the (synced) file to `target`, failing if `target` exists, then removes the
    /// temporary name. Never replaces an existing file.
    pub fn link_to_new(mut self, target: &Path) -> Result<(), FilesError> {
        self.sync()?;
        std::fs::hard_link(&self.path, target).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                FilesError::Invalid(format!("{} already exists", target.display()))
            } else {
                FilesError::io("linking", target)(e)
            }
        })?;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            self.file = None;
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "files: removing a temporary file");
                }
            }
        }
    }
}

/// Encrypts everything `source` yields into `tmp` (header first), reading at most
/// `limit` bytes of plaintext: more is `Invalid` (the source grew while being read).
/// The segments are sealed on several threads (`parallel.rs`). Returns the plaintext's
/// BLAKE3 digest and size.
pub fn write_encrypted(
    source: impl Read,
    key: &StorageKey,
    tmp: &mut TempFile,
    limit: u64,
    what: &Path,
) -> Result<([u8; 32], u64), FilesError> {
    let (seg, header) = SegmentKey::new_file(key.aead())?;
    tmp.write(&header)?;
    seal_stream(source, &seg, limit, what, |b| tmp.write(b), Shape::here())
}

/// Decrypts the content file at `path` (expected `stored` bytes long) on several threads
/// (`parallel.rs`; read around the page cache where allowed, `direct.rs`), handing each
/// verified segment's plaintext to `sink` in order, and checks the whole against `id` (the
/// plaintext's BLAKE3). `what` names the file in errors. A missing file is `NotFound`;
/// any mismatch is `Corrupted`.
pub fn read_decrypted(
    path: &Path,
    key: &StorageKey,
    id: &[u8; 32],
    stored: u64,
    what: &str,
    sink: impl FnMut(&[u8]) -> Result<(), FilesError>,
) -> Result<(), FilesError> {
    let file = Source::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            FilesError::corrupted(format!("{what}: content file missing"))
        } else {
            FilesError::io("opening", path)(e)
        }
    })?;
    let len = file
        .file()
        .metadata()
        .map_err(FilesError::io("reading", path))?
        .len();
    if len != stored {
        return Err(FilesError::corrupted(format!(
            "{what}: content file is {len} bytes, expected {stored}"
        )));
    }
    let shape = Shape::for_get(plain_len(len).unwrap_or(0));
    open_stream(&file, len, key.aead(), id, what, sink, shape)
}

/// Decrypts `len` bytes of ciphertext (a content file's layout, header first) read from
/// `file`, handing each verified segment's plaintext to `sink`, and checks the whole
/// against `id`. Any mismatch is `Corrupted`. Shared by content files and inlined
/// contents (`inline.rs`).
pub fn decrypt_stream(
    mut file: impl Read,
    len: u64,
    key: &StorageKey,
    id: &[u8; 32],
    what: &str,
    mut sink: impl FnMut(&[u8]) -> Result<(), FilesError>,
) -> Result<(), FilesError> {
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|_| FilesError::corrupted(format!("{what}: short header")))?;
    let mut dec = Decryptor::new(key.aead(), &header, len, what)?;
    let mut body = len - HEADER_LEN as u64;
    let mut buf = vec![0u8; SEALED_SEGMENT.min(usize::try_from(len).unwrap_or(usize::MAX))];
    let mut hasher = blake3::Hasher::new();
    while body > 0 {
        let n = body.min(SEALED_SEGMENT as u64) as usize;
        file.read_exact(&mut buf[..n])
            .map_err(|_| FilesError::corrupted(format!("{what}: content file shrank")))?;
        body -= n as u64;
        let plain = dec.open(&mut buf[..n], what)?;
        hasher.update(plain);
        sink(plain)?;
    }
    if !dec.is_done() {
        return Err(FilesError::corrupted(format!("{what}: truncated")));
    }
    if hasher.finalize().as_bytes() != id {
        return Err(FilesError::corrupted(format!(
            "{what}: contents do not match the id"
        )));
    }
    Ok(())
}

/// What the contents directory holds at start.
#[derive(Debug, Default)]
pub struct Scan {
    /// Temporary files (left by a crash mid-put or mid-get).
    pub temps: Vec<PathBuf>,
    /// Content files by id, with their lengths.
    pub contents: HashMap<[u8; 32], u64>,
    /// Names of partial replicas and their checkpoints (`partial-*`, see `partials.rs`).
    pub partials: Vec<String>,
}

/// Lists the contents directory. Entries that are neither temporary nor content files are
/// left alone (and logged).
pub fn scan(dir: &Path) -> Result<Scan, FilesError> {
    let mut out = Scan::default();
    for entry in std::fs::read_dir(dir).map_err(FilesError::io("listing", dir))? {
        let entry = entry.map_err(FilesError::io("listing", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(path = %entry.path().display(), "files: unexpected entry in the contents dir");
            continue;
        };
        if name.starts_with(TEMP_PREFIX) {
            out.temps.push(entry.path());
        } else if name.starts_with(super::partials::PARTIAL_PREFIX) {
            out.partials.push(name.to_string());
        } else if let Some(id) = id_of_name(name) {
            let len = entry
                .metadata()
                .map_err(FilesError::io("reading", entry.path()))?
                .len();
            out.contents.insert(id, len);
        } else {
            tracing::warn!(path = %entry.path().display(), "files: unexpected entry in the contents dir");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_not_ids() {
        let id = [0xab; 32];
        assert_eq!(id_of_name(&file_name(&id)), Some(id));
        assert_eq!(id_of_name("tmp-00"), None);
        assert_eq!(id_of_name(&"g".repeat(64)), None);
    }

    #[test]
    fn a_stream_is_stored_and_read_back_and_a_dropped_temp_file_is_removed() {
        let dir = std::env::temp_dir().join(format!("memmesh-contents-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = StorageKey::from_bytes(&[5; 32]).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut tmp = TempFile::create(&dir).unwrap();
        let (digest, size) =
            write_encrypted(&data[..], &key, &mut tmp, data.len() as u64, Path::new("x")).unwrap();
        assert_eq!(size, data.len() as u64);
        let target = dir.join(file_name(&digest));
        tmp.rename_to(&target).unwrap();
        let stored = std::fs::metadata(&target).unwrap().len();
        let mut back = Vec::new();
        read_decrypted(&target, &key, &digest, stored, "x", |p| {
            back.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, data);
        let s = scan(&dir).unwrap();
        assert!(s.temps.is_empty());
        assert_eq!(s.contents.get(&digest), Some(&stored));

        let mut tmp = TempFile::create(&dir).unwrap();
        let e = write_encrypted(&data[..], &key, &mut tmp, 10, Path::new("x")).unwrap_err();
        assert!(matches!(e, FilesError::Invalid(_)));
        drop(tmp);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
