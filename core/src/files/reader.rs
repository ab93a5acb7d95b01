//! Reading and writing a stored file as a stream, for the network: a reader of a content
//! file's verified plaintext (what a fetch of a stored file sends) and a writer that
//! encrypts verified chunks into a new content file (what a replica or a repair
//! receives). No plaintext touches the disk either way.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::contents::TempFile;
use super::crypt::{Decryptor, Encryptor, HEADER_LEN, SEALED_SEGMENT};
use super::error::FilesError;
use super::key::StorageKey;

/// A stored file's plaintext (from its content file, or its inlined contents), each
/// segment authenticated before it is handed out, and the whole checked against the id at
/// the end (a mismatch is an `InvalidData` read error).
pub struct PlainReader {
    file: Box<dyn Read + Send>,
    dec: Decryptor,
    body: u64,
    sealed: Vec<u8>,
    plain: Vec<u8>,
    at: usize,
    hasher: blake3::Hasher,
    id: [u8; 32],
    what: String,
    finished: bool,
}

impl std::fmt::Debug for PlainReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainReader")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl PlainReader {
    /// Opens the content file at `path` (expected `stored` bytes long) of file `id`.
    pub fn open(
        path: &Path,
        key: &StorageKey,
        id: [u8; 32],
        stored: u64,
        what: String,
    ) -> Result<PlainReader, FilesError> {
        let file = File::open(path).map_err(FilesError::io("opening", path))?;
        let len = file
            .metadata()
            .map_err(FilesError::io("reading", path))?
            .len();
        if len != stored {
            return Err(FilesError::corrupted(format!(
                "{what}: content file is {len} bytes, expected {stored}"
            )));
        }
        PlainReader::over(Box::new(file), len, key, id, what)
    }

    /// Reads the inlined contents of file `id` (expected `stored` bytes long).
    pub fn inlined(
        content: Vec<u8>,
        key: &StorageKey,
        id: [u8; 32],
        stored: u64,
        what: String,
    ) -> Result<PlainReader, FilesError> {
        let len = content.len() as u64;
        if len != stored {
            return Err(FilesError::corrupted(format!(
                "{what}: inlined contents are {len} bytes, expected {stored}"
            )));
        }
        PlainReader::over(Box::new(std::io::Cursor::new(content)), len, key, id, what)
    }

    /// Reads `len` bytes of stored contents (header and sealed segments) from `file`.
    fn over(
        mut file: Box<dyn Read + Send>,
        len: u64,
        key: &StorageKey,
        id: [u8; 32],
        what: String,
    ) -> Result<PlainReader, FilesError> {
        let mut header = [0u8; HEADER_LEN];
        file.read_exact(&mut header)
            .map_err(|_| FilesError::corrupted(format!("{what}: short header")))?;
        let dec = Decryptor::new(key.aead(), &header, len, &what)?;
        Ok(PlainReader {
            file,
            dec,
            body: len - HEADER_LEN as u64,
            sealed: vec![0u8; SEALED_SEGMENT],
            plain: Vec::new(),
            at: 0,
            hasher: blake3::Hasher::new(),
            id,
            what,
            finished: false,
        })
    }

    /// Decrypts the next segment into `plain`; `false` at the end.
    fn refill(&mut self) -> Result<bool, FilesError> {
        if self.body == 0 {
            if !self.finished {
                self.finished = true;
                if !self.dec.is_done() {
                    return Err(FilesError::corrupted(format!("{}: truncated", self.what)));
                }
                if self.hasher.finalize().as_bytes() != &self.id {
                    return Err(FilesError::corrupted(format!(
                        "{}: contents do not match the id",
                        self.what
                    )));
                }
            }
            return Ok(false);
        }
        let n = self.body.min(SEALED_SEGMENT as u64) as usize;
        self.file
            .read_exact(&mut self.sealed[..n])
            .map_err(|_| FilesError::corrupted(format!("{}: content file shrank", self.what)))?;
        self.body -= n as u64;
        let plain = self.dec.open(&mut self.sealed[..n], &self.what)?;
        self.hasher.update(plain);
        self.plain.clear();
        self.plain.extend_from_slice(plain);
        self.at = 0;
        Ok(true)
    }
}

impl Read for PlainReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.plain.len() {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    tracing::warn!(error = %e, "files: a stored copy is damaged");
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
            }
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A content file received from the network, written and synced (not yet in place).
#[derive(Debug)]
pub struct Received {
    /// The temporary file.
    pub tmp: TempFile,
    /// The plaintext's BLAKE3 digest.
    pub digest: [u8; 32],
    /// The plaintext size.
    pub size: u64,
}

/// Where a [`EncryptingWriter`] leaves its result once finished.
pub type Slot = Arc<Mutex<Option<Received>>>;

/// Encrypts verified chunks into a new temporary content file; `finish` syncs it and
/// leaves it in the slot for the store to rename into place and record.
pub struct EncryptingWriter {
    tmp: Option<TempFile>,
    enc: Option<Encryptor>,
    out: Vec<u8>,
    limit: u64,
    written: u64,
    slot: Slot,
}

impl EncryptingWriter {
    /// A writer into a new temporary file in `dir`, for at most `limit` plaintext bytes.
    pub fn create(
        dir: &Path,
        key: &StorageKey,
        limit: u64,
        slot: Slot,
    ) -> Result<EncryptingWriter, FilesError> {
        let (enc, header) = Encryptor::new(key.aead())?;
        let mut tmp = TempFile::create(dir)?;
        tmp.write(&header)?;
        Ok(EncryptingWriter {
            tmp: Some(tmp),
            enc: Some(enc),
            out: Vec::with_capacity(SEALED_SEGMENT * 2),
            limit,
            written: 0,
            slot,
        })
    }

    fn lost() -> FilesError {
        FilesError::Internal("a received file was written after it finished")
    }

    /// Encrypts and appends `data`.
    pub fn append(&mut self, data: &[u8]) -> Result<(), FilesError> {
        self.written += data.len() as u64;
        if self.written > self.limit {
            return Err(FilesError::Invalid(format!(
                "the peer sent more than the {} bytes announced",
                self.limit
            )));
        }
        let enc = self.enc.as_mut().ok_or_else(Self::lost)?;
        enc.update(data, &mut self.out)?;
        if !self.out.is_empty() {
            self.tmp.as_mut().ok_or_else(Self::lost)?.write(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Seals the last segment, syncs the file and leaves it in the slot.
    pub fn complete(&mut self) -> Result<(), FilesError> {
        let enc = self.enc.take().ok_or_else(Self::lost)?;
        let mut tmp = self.tmp.take().ok_or_else(Self::lost)?;
        let (digest, size) = enc.finish(&mut self.out)?;
        tmp.write(&self.out)?;
        tmp.sync()?;
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Received { tmp, digest, size });
        Ok(())
    }
}

impl crate::service::ChunkWriter for EncryptingWriter {
    fn write(&mut self, verified: &[u8]) -> crate::error::Result<()> {
        Ok(self.append(verified)?)
    }

    fn finish(mut self: Box<Self>) -> crate::error::Result<()> {
        Ok(self.complete()?)
    }
}

/// Verified chunks into memory (a get of a file stored elsewhere), up to `limit` bytes.
pub struct MemoryWriter {
    /// The bytes so far.
    pub data: Vec<u8>,
    limit: u64,
    slot: Arc<Mutex<Option<Vec<u8>>>>,
}

impl MemoryWriter {
    /// A writer for at most `limit` bytes, leaving them in `slot` when finished.
    pub fn new(limit: u64, slot: Arc<Mutex<Option<Vec<u8>>>>) -> MemoryWriter {
        MemoryWriter {
            data: Vec::new(),
            limit,
            slot,
        }
    }
}

impl crate::service::ChunkWriter for MemoryWriter {
    fn write(&mut self, verified: &[u8]) -> crate::error::Result<()> {
        if (self.data.len() + verified.len()) as u64 > self.limit {
            return Err(FilesError::Invalid("the peer sent more than it announced".into()).into());
        }
        self.data.extend_from_slice(verified);
        Ok(())
    }

    fn finish(self: Box<Self>) -> crate::error::Result<()> {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.data);
        Ok(())
    }
}
