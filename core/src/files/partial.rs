//! The writer of a replica pulled from another node that survives an interruption
//! (ADR 0018): verified chunks are encrypted into `files/partial-<key>` as they arrive;
//! every [`CHECKPOINT_EVERY`] bytes, and when the pull stops before the end, the written
//! part is synced and a sealed checkpoint (`checkpoint.rs`) is written beside it. A later
//! pull of the same file from the same node reads the kept part back (every segment
//! authenticated, the plaintext hashed again), tells the transfer engine where it
//! resumes, and continues the same encryption. Once the whole is verified it is sealed
//! and synced like any received copy and handed to the store, which renames it into
//! place: no partial file is ever listed as a file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::checkpoint::{decide, Checkpoint, Decision, MAX_LEN};
use super::contents::TempFile;
use super::crypt::{Decryptor, Encryptor, HEADER_LEN, SEALED_SEGMENT, SEGMENT};
use super::error::FilesError;
use super::partials::Claim;
use super::reader::{Received, Slot};
use super::store::{now_ms, Store};

/// Bytes received between two checkpoints made while the pull runs (what a crash can
/// lose; a pull that stops cleanly checkpoints everything it wrote).
pub const CHECKPOINT_EVERY: u64 = 8 << 20;

struct Inner {
    store: Arc<Store>,
    claim: Claim,
    path: PathBuf,
    checkpoint: PathBuf,
    file: File,
    enc: Encryptor,
    header: Vec<u8>,
    out: Vec<u8>,
    id: [u8; 32],
    size: u64,
    /// Plaintext bytes fed so far.
    written: u64,
    /// Plaintext bytes covered by the last durable checkpoint.
    durable: u64,
    /// The engine's state for `written` bytes (given after each chunk).
    state: Option<Vec<u8>>,
    /// What an earlier pull kept (offered once to the engine).
    kept: Option<(u64, Vec<u8>)>,
    /// A write failed: nothing of this partial is trusted.
    poisoned: bool,
}

/// Verified chunks of a replica into a resumable partial file.
pub struct PartialWriter {
    inner: Option<Inner>,
    slot: Slot,
}

impl std::fmt::Debug for PartialWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialWriter").finish_non_exhaustive()
    }
}

fn io<'a>(
    doing: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> FilesError + use<'a> {
    FilesError::io(doing, path)
}

impl PartialWriter {
    /// Opens the partial file of `claim` for a pull of file `id` (`size` bytes): resumes
    /// what an earlier pull kept if its checkpoint opens and fits and every kept segment
    /// still authenticates, else starts a new one. Blocking (reads the kept part back).
    pub fn open(
        store: Arc<Store>,
        claim: Claim,
        id: [u8; 32],
        size: u64,
        slot: Slot,
    ) -> Result<PartialWriter, FilesError> {
        let mut claim = claim;
        claim.opened();
        let path = claim.path();
        let checkpoint = claim.checkpoint_path();
        let read = File::open(&checkpoint).ok().and_then(|f| {
            let mut buf = Vec::new();
            f.take(MAX_LEN + 1).read_to_end(&mut buf).ok().map(|_| buf)
        });
        let found = read
            .as_deref()
            .and_then(|b| Checkpoint::open(b, store.key().aead()));
        let on_disk = std::fs::metadata(&path).ok().map(|m| m.len());
        let age = Duration::from_millis(
            found
                .as_ref()
                .map_or(u64::MAX, |c| now_ms().saturating_sub(c.written)),
        );
        let decision = decide(found.as_ref(), on_disk, age, &id, &claim.origin, size);
        let resumed = match (decision, found) {
            (Decision::Resume { covered, len }, Some(c)) => {
                match read_back(&store, &path, &c, covered, len) {
                    Ok((file, enc)) => Some((file, enc, c)),
                    Err(e) => {
                        debug!(error = %e, "files: a partial replica does not read back; starting over");
                        None
                    }
                }
            }
            (Decision::Restart(why), _) if on_disk.is_some() || read.is_some() => {
                debug!(why, "files: not resuming a partial replica");
                None
            }
            _ => None,
        };
        let inner = match resumed {
            Some((file, enc, c)) => Inner {
                store,
                claim,
                path,
                checkpoint,
                file,
                enc,
                header: c.header,
                out: Vec::with_capacity(SEALED_SEGMENT * 2),
                id,
                size,
                written: c.covered,
                durable: c.covered,
                state: None,
                kept: Some((c.covered, c.state)),
                poisoned: false,
            },
            None => {
                let _ = std::fs::remove_file(&checkpoint);
                let (file, enc, header) = fresh(&store, &path)?;
                Inner {
                    store,
                    claim,
                    path,
                    checkpoint,
                    file,
                    enc,
                    header,
                    out: Vec::with_capacity(SEALED_SEGMENT * 2),
                    id,
                    size,
                    written: 0,
                    durable: 0,
                    state: None,
                    kept: None,
                    poisoned: false,
                }
            }
        };
        Ok(PartialWriter {
            inner: Some(inner),
            slot,
        })
    }

    /// Plaintext bytes an earlier pull kept and this one continues after (0 for a new
    /// partial file).
    pub fn kept_bytes(&self) -> u64 {
        self.inner
            .as_ref()
            .and_then(|i| i.kept.as_ref())
            .map_or(0, |(b, _)| *b)
    }

    fn inner(&mut self) -> Result<&mut Inner, FilesError> {
        self.inner.as_mut().ok_or(FilesError::Internal(
            "a partial replica was written after it finished",
        ))
    }
}

/// A new, empty partial file at `path` (its header written): the file, the encryptor
/// and the header.
fn fresh(store: &Store, path: &std::path::Path) -> Result<(File, Encryptor, Vec<u8>), FilesError> {
    let (enc, header) = Encryptor::new(store.key().aead())?;
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(io("creating", path))?;
    file.write_all(&header).map_err(io("writing", path))?;
    Ok((file, enc, header))
}

/// Reads the kept part of a partial file back: checks its header against the
/// checkpoint's, opens every sealed segment (authenticated) and hashes the plaintext,
/// cuts the file after `len` bytes, and returns it positioned there with the encryption
/// continued.
fn read_back(
    store: &Store,
    path: &std::path::Path,
    c: &Checkpoint,
    covered: u64,
    len: u64,
) -> Result<(File, Encryptor), FilesError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io("opening", path))?;
    let mut header = vec![0u8; HEADER_LEN];
    file.read_exact(&mut header).map_err(io("reading", path))?;
    if header != c.header {
        return Err(FilesError::corrupted("a partial file's header".to_string()));
    }
    let what = "partial file";
    let mut dec = Decryptor::partial(store.key().aead(), &header, what)?;
    let segments = covered / SEGMENT as u64;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; SEALED_SEGMENT];
    for _ in 0..segments {
        file.read_exact(&mut buf).map_err(io("reading", path))?;
        hasher.update(dec.open(&mut buf, what)?);
    }
    file.set_len(len).map_err(io("cutting", path))?;
    file.seek(SeekFrom::Start(len))
        .map_err(io("seeking", path))?;
    let counter = u32::try_from(segments)
        .map_err(|_| FilesError::Invalid("file too large (2^32 segments)".into()))?;
    let enc = Encryptor::resumed(store.key().aead(), &header, counter, hasher, covered)?;
    Ok((file, enc))
}

impl Inner {
    /// Syncs everything written and seals a checkpoint for it (only at a segment
    /// boundary with more to come, so that every byte covered is in a sealed segment
    /// that is not the last).
    fn persist(&mut self) -> Result<(), FilesError> {
        let Some(state) = self.state.clone() else {
            return Ok(());
        };
        if self.written >= self.size
            || !self.written.is_multiple_of(SEGMENT as u64)
            || self.written == 0
        {
            return Ok(());
        }
        self.enc.seal_full(&mut self.out)?;
        if self.enc.has_pending() {
            return Err(FilesError::Internal("a checkpoint inside a segment"));
        }
        self.file
            .write_all(&self.out)
            .map_err(io("writing", &self.path))?;
        self.out.clear();
        self.file.sync_data().map_err(io("syncing", &self.path))?;
        let sealed = Checkpoint {
            id: self.id,
            origin: self.claim.origin,
            size: self.size,
            covered: self.written,
            written: now_ms(),
            header: self.header.clone(),
            state,
        }
        .seal(self.store.key().aead())?;
        crate::durable::write_atomic(&self.checkpoint, &sealed, true)
            .map_err(|e| FilesError::Invalid(format!("checkpointing a partial replica: {e}")))?;
        self.durable = self.written;
        Ok(())
    }

    /// Makes the partial file a fresh, empty one (the engine could not use what was
    /// kept).
    fn restart(&mut self) -> Result<(), FilesError> {
        let _ = std::fs::remove_file(&self.checkpoint);
        let (file, enc, header) = fresh(&self.store, &self.path)?;
        self.file = file;
        self.enc = enc;
        self.header = header;
        self.written = 0;
        self.durable = 0;
        self.state = None;
        Ok(())
    }

    /// The pull stopped before the end: keep what is checkpointed (checkpointing what
    /// was written since, if it can be) and leave the partial at rest, or remove it.
    fn settle(mut self) {
        if !self.poisoned && self.durable < self.written {
            if let Err(e) = self.persist() {
                debug!(error = %e, "files: could not checkpoint a stopped replica");
                self.poisoned = true;
            }
        }
        if self.poisoned || self.durable == 0 {
            let _ = std::fs::remove_file(&self.checkpoint);
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        debug!(
            bytes = self.durable,
            "files: a stopped replica is kept to resume"
        );
        let Inner { claim, file, .. } = self;
        drop(file);
        claim.rest(len);
    }
}

impl crate::service::ChunkWriter for PartialWriter {
    fn write(&mut self, verified: &[u8]) -> crate::error::Result<()> {
        let inner = self.inner()?;
        if inner.poisoned {
            return Err(FilesError::Internal("a partial replica failed to write").into());
        }
        let result = (|| {
            if inner.written + verified.len() as u64 > inner.size {
                return Err(FilesError::Invalid(format!(
                    "the peer sent more than the {} bytes announced",
                    inner.size
                )));
            }
            inner.enc.update(verified, &mut inner.out)?;
            inner.written += verified.len() as u64;
            if !inner.out.is_empty() {
                inner
                    .file
                    .write_all(&inner.out)
                    .map_err(io("writing", &inner.path))?;
                inner.out.clear();
            }
            // The state given before this chunk no longer covers what is written.
            inner.state = None;
            Ok(())
        })();
        if result.is_err() {
            inner.poisoned = true;
        }
        Ok(result?)
    }

    fn resume_point(
        &mut self,
        usable: &dyn Fn(u64, &[u8]) -> bool,
    ) -> crate::error::Result<Option<Vec<u8>>> {
        let inner = self.inner()?;
        match inner.kept.take() {
            Some((bytes, state)) if usable(bytes, &state) => Ok(Some(state)),
            Some(_) => {
                debug!("files: the transfer engine cannot resume a partial replica; starting over");
                inner.restart()?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn checkpoint(&mut self, state: &[u8]) -> crate::error::Result<()> {
        let inner = self.inner()?;
        inner.state = Some(state.to_vec());
        if inner.written - inner.durable >= CHECKPOINT_EVERY {
            if let Err(e) = inner.persist() {
                inner.poisoned = true;
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> crate::error::Result<()> {
        let Some(mut inner) = self.inner.take() else {
            return Err(FilesError::Internal("a partial replica finished twice").into());
        };
        let done = (|| {
            let (digest, size) = inner.enc.finish(&mut inner.out)?;
            inner
                .file
                .write_all(&inner.out)
                .map_err(io("writing", &inner.path))?;
            inner.file.sync_all().map_err(io("syncing", &inner.path))?;
            Ok::<_, FilesError>((digest, size))
        })();
        // Whatever happens, the checkpoint goes: the partial is whole (or not trusted).
        let _ = std::fs::remove_file(&inner.checkpoint);
        let (digest, size) = match done {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&inner.path);
                return Err(e.into());
            }
        };
        // Out of the partial's name first: a later pull of the same file from the same
        // node may start a new partial there while the store renames this one into place.
        let tmp = match TempFile::rename_from(&inner.path) {
            Ok(tmp) => tmp,
            Err(e) => {
                let _ = std::fs::remove_file(&inner.path);
                return Err(e.into());
            }
        };
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Received { tmp, digest, size });
        Ok(())
    }
}

impl Drop for PartialWriter {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        // Syncing and checkpointing block: off the async threads.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || inner.settle())),
            Err(_) => inner.settle(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::contents::read_decrypted;
    use crate::files::crypt::stored_len;
    use crate::files::store::OpenOptions as StoreOptions;
    use crate::identity::NodeId;
    use crate::service::ChunkWriter;

    const MIB: usize = 1 << 20;

    fn store(name: &str) -> (Arc<Store>, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("memmesh-partial-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(StoreOptions {
            data_dir: dir.clone(),
            passphrase: None,
            quota: None,
            node: NodeId::from_bytes([1; 32]),
        })
        .unwrap();
        (Arc::new(store), dir)
    }

    fn writer(store: &Arc<Store>, id: [u8; 32], size: u64, slot: &Slot) -> PartialWriter {
        let (claim, _settled) = store.partials().claim(&id, &[9; 32]).expect("claim");
        PartialWriter::open(store.clone(), claim, id, size, slot.clone()).unwrap()
    }

    fn feed(w: &mut PartialWriter, data: &[u8], chunks: std::ops::Range<usize>) {
        for i in chunks {
            let end = ((i + 1) * MIB).min(data.len());
            w.write(&data[i * MIB..end]).unwrap();
            w.checkpoint(format!("state-{}", i + 1).as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_stopped_pull_keeps_its_verified_part_and_the_next_one_continues_it() {
        let (store, dir) = store("resume");
        let data: Vec<u8> = (0..5 * MIB + 7).map(|i| (i * 7 % 253) as u8).collect();
        let id = *blake3::hash(&data).as_bytes();
        let size = data.len() as u64;
        let slot = Slot::default();
        let mut w = writer(&store, id, size, &slot);
        assert_eq!(w.kept_bytes(), 0);
        assert_eq!(w.resume_point(&|_, _| true).unwrap(), None);
        feed(&mut w, &data, 0..3);
        // Stopped (no runtime here: it settles at once): checkpointed, at rest.
        drop(w);
        assert_eq!(store.partials().resting(), 1);

        // The engine refuses the kept state: the writer starts over from zero.
        let mut w = writer(&store, id, size, &slot);
        assert_eq!(w.kept_bytes(), 3 * MIB as u64);
        assert_eq!(w.resume_point(&|_, _| false).unwrap(), None);
        feed(&mut w, &data, 0..2);
        drop(w);

        // The engine accepts it: only the rest is written, and the whole reads back.
        let mut w = writer(&store, id, size, &slot);
        assert_eq!(w.kept_bytes(), 2 * MIB as u64);
        let state = w
            .resume_point(&|bytes, state| bytes == 2 * MIB as u64 && state == b"state-2")
            .unwrap();
        assert_eq!(state.as_deref(), Some(&b"state-2"[..]));
        feed(&mut w, &data, 2..6);
        Box::new(w).finish().unwrap();
        let received = slot.lock().unwrap().take().expect("handed over");
        assert_eq!((received.digest, received.size), (id, size));
        let target = dir.join("whole");
        received.tmp.rename_to(&target).unwrap();
        let mut back = Vec::new();
        read_decrypted(&target, store.key(), &id, stored_len(size), "t", |p| {
            back.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert!(back == data, "the resumed copy differs");
        // Nothing of the partial is left.
        let left: Vec<String> = std::fs::read_dir(dir.join("files"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("partial-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(store.partials().resting(), 0);
        store.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tampered_partial_or_one_too_short_is_not_resumed() {
        let (store, dir) = store("tamper");
        let data = vec![5u8; 3 * MIB];
        let id = *blake3::hash(&data).as_bytes();
        let size = data.len() as u64;
        let slot = Slot::default();
        let mut w = writer(&store, id, size, &slot);
        feed(&mut w, &data, 0..2);
        let path = store.partials().path(&partials_key(&id));
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_LEN + 10] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let w = writer(&store, id, size, &slot);
        assert_eq!(w.kept_bytes(), 0, "a segment that does not authenticate");
        drop(w);
        // Nothing was written by that one: nothing kept.
        assert_eq!(store.partials().resting(), 0);
        let mut w = writer(&store, id, size, &slot);
        feed(&mut w, &data, 0..2);
        drop(w);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let w = writer(&store, id, size, &slot);
        assert_eq!(w.kept_bytes(), 0, "shorter than its checkpoint");
        drop(w);
        store.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn partials_key(id: &[u8; 32]) -> [u8; 32] {
        crate::files::partials::partial_key(id, &[9; 32])
    }
}
