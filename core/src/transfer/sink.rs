//! Where received chunks are stored: a partial file of its own (see `partials.rs`),
//! opened only once data arrives, checkpointed as it is synced, and given its final name
//! only once the whole is verified; or memory charged to the node's memory quota.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::debug;

use crate::error::{Error, Result};
use crate::memory::MemoryBudget;
use crate::service::ChunkWriter;
use crate::transfer::error::TransferError;
use crate::transfer::partials::{Claim, Claims, Target};
use crate::transfer::prefault::Space;
use crate::transfer::stack::TreeStack;
use crate::transfer::state::Checkpoint;
use crate::transfer::tree::{chunk_count, chunk_hash, chunk_len};
use crate::transfer::verify::Verifier;
use crate::transfer::writeback::Writeback;

/// The partial file of a transfer, opened at the first chunk (an offer that sends
/// nothing holds no file descriptor). Moved to the blocking thread that verifies and
/// writes each chunk, and back. Dropped before the end (the stream broke, the transfer
/// was cancelled or superseded), it syncs what was written and checkpoints it on a
/// blocking thread, then lets go of the file.
pub(crate) struct FileOut {
    file: Option<Arc<std::fs::File>>,
    writeback: Option<Writeback>,
    partial: PathBuf,
    state: PathBuf,
    /// Bytes kept from an earlier attempt: the file is cut there when opened.
    start: u64,
    key: [u8; 32],
    size: u64,
    chunk_size: u32,
    /// The chunks on disk (those of `start` and the ones written since).
    tree: TreeStack,
    /// The chunks kept from an earlier attempt (the first `start` bytes), checked again
    /// once before delivery.
    resumed: Option<TreeStack>,
    /// `true` once synced for delivery, or discarded: nothing to checkpoint.
    settled: bool,
    claim: Option<Arc<Claim>>,
}

impl FileOut {
    fn opened(&mut self) -> Result<Arc<std::fs::File>> {
        if let Some(f) = &self.file {
            return Ok(f.clone());
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true);
        if self.start == 0 {
            // The state goes first, naming this transfer: a partial file of ours never
            // exists without one, so an attempt killed before its first background sync
            // (a SIGKILL checkpoints nothing on the way out) leaves a file the next
            // attempt of the same transfer takes back, not an orphan that sends it to
            // another name and keeps the disk it used until swept.
            crate::durable::write_atomic(&self.state, &self.checkpoint().encode(), false)
                .map_err(|e| e.context(format!("starting {}", self.partial.display())))?;
            opts.create(true).truncate(true);
        }
        let mut file = opts
            .open(&self.partial)
            .map_err(|e| self.failed(e, "opening"))?;
        if file.metadata()?.len() < self.start {
            return Err(TransferError::LostVerified(self.partial.clone()).into());
        }
        file.set_len(self.start)
            .and_then(|()| file.seek(std::io::SeekFrom::Start(self.start)))
            .map_err(|e| self.failed(e, "opening"))?;
        let file = Arc::new(file);
        self.writeback = Some(Writeback::new(file.clone(), self.state.clone()));
        self.file = Some(file.clone());
        Ok(file)
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            key: self.key,
            size: self.size,
            chunk_size: self.chunk_size,
            tree: self.tree.clone(),
        }
    }

    /// Appends a verified chunk; `tree` is the verifier's state once it is accepted.
    pub(crate) fn write(&mut self, data: &[u8], tree: &TreeStack) -> Result<()> {
        let file = self.opened()?;
        (&*file)
            .write_all(data)
            .map_err(|e| self.failed(e, "writing"))?;
        self.tree.clone_from(tree);
        let (key, size, chunk_size, tree) = (self.key, self.size, self.chunk_size, &self.tree);
        let checkpoint = || {
            let tree = tree.clone();
            Checkpoint {
                key,
                size,
                chunk_size,
                tree,
            }
            .encode()
        };
        match &mut self.writeback {
            Some(wb) => wb
                .wrote(data.len() as u64, checkpoint)
                .map_err(|e| e.context(format!("syncing {}", self.partial.display()))),
            None => Ok(()),
        }
    }

    /// Makes everything written durable (waiting for the background writeback).
    fn sync(&mut self) -> Result<()> {
        let file = self.opened()?;
        if let Some(wb) = &mut self.writeback {
            wb.finish()?;
        }
        file.sync_all().map_err(|e| self.failed(e, "syncing"))?;
        self.settled = true;
        Ok(())
    }

    /// Checks, once, that the part kept from an earlier attempt still holds the chunks
    /// verified then (this attempt wrote only verified data after it): the delivered file
    /// always hashes to the reported hash, and re-reading costs one pass over that part
    /// per delivery, never one per retry. Blocking.
    fn check_resumed(&self) -> Result<()> {
        let Some(expected) = &self.resumed else {
            return Ok(());
        };
        let count = chunk_count(self.size, self.chunk_size);
        let mut file =
            std::fs::File::open(&self.partial).map_err(|e| self.failed(e, "re-reading"))?;
        let mut tree = TreeStack::new();
        let mut buf = Vec::with_capacity(self.chunk_size as usize);
        for index in 0..expected.count() {
            let len = chunk_len(self.size, self.chunk_size, index);
            buf.clear();
            (&mut file)
                .take(u64::from(len))
                .read_to_end(&mut buf)
                .map_err(|e| self.failed(e, "re-reading"))?;
            tree.push(chunk_hash(index, count, self.chunk_size, &buf));
        }
        if &tree != expected {
            return Err(TransferError::KeptPartChanged(self.partial.clone()).into());
        }
        Ok(())
    }

    /// Removes the partial file and its state (its content proved wrong as a whole).
    fn discard(&mut self) {
        self.settled = true;
        if let Some(wb) = &mut self.writeback {
            // A checkpoint being written must not outlive the file.
            let _ = wb.finish();
        }
        let _ = std::fs::remove_file(&self.state);
        let _ = std::fs::remove_file(&self.partial);
    }

    fn failed(&self, e: std::io::Error, doing: &str) -> Error {
        TransferError::file(format!("{doing} {}", self.partial.display()), e).into()
    }
}

impl Drop for FileOut {
    fn drop(&mut self) {
        let claim = self.claim.take();
        let (Some(file), false) = (self.file.take(), self.settled) else {
            return;
        };
        let mut writeback = self.writeback.take();
        let (state, checkpoint) = (self.state.clone(), self.checkpoint());
        let keep = move || {
            let synced = writeback
                .as_mut()
                .map_or(Ok(()), |wb| wb.finish())
                .and_then(|()| file.sync_data().map_err(Error::from));
            if synced.is_ok() {
                if let Err(e) = crate::durable::write_atomic(&state, &checkpoint.encode(), false) {
                    debug!(error = %e, "could not checkpoint a stopped transfer");
                }
            }
            drop(file);
            // The file is let go only now: a newer attempt resumes from this checkpoint.
            drop(claim);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(keep)),
            Err(_) => keep(),
        }
    }
}

/// A file being received.
pub(crate) struct FileSink {
    dest: PathBuf,
    /// `None` while a chunk is being written (or after a write that did not come back).
    out: Option<FileOut>,
    /// Buffers to read chunks into, reused.
    spare: Vec<BytesMut>,
    chunk_size: usize,
}

/// Bytes charged to the memory quota until dropped.
#[derive(Debug)]
pub(crate) struct MemoryCharge {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl MemoryCharge {
    /// Charges `bytes`, or fails with `QuotaExceeded`.
    pub(crate) fn new(budget: &Arc<MemoryBudget>, bytes: u64) -> Result<Self> {
        budget.reserve(bytes).map_err(|e| {
            Error::from(TransferError::MemoryQuota {
                bytes,
                why: e.message().to_string(),
            })
        })?;
        Ok(Self {
            budget: budget.clone(),
            bytes,
        })
    }
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Received bytes and their charge: the quota is given back when the last clone of the
/// `Bytes` handed to the application is dropped.
struct Charged {
    data: Bytes,
    _charge: MemoryCharge,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// What verified chunks are written to, on a blocking thread: a partial file, or the
/// writer another service lent a fetch (the files store's encrypting writer).
pub(crate) enum Out {
    File(Box<FileOut>),
    Writer(Lent),
}

/// A writer another service lent, with what its checkpoints describe.
pub(crate) struct Lent {
    writer: Box<dyn ChunkWriter>,
    key: [u8; 32],
    size: u64,
    chunk_size: u32,
}

impl Lent {
    /// Appends a verified chunk, then hands the writer the state covering everything
    /// written so far (it may keep it to resume from).
    fn write(&mut self, data: &[u8], tree: &TreeStack) -> Result<()> {
        self.writer.write(data)?;
        let state = Checkpoint {
            key: self.key,
            size: self.size,
            chunk_size: self.chunk_size,
            tree: tree.clone(),
        };
        self.writer.checkpoint(&state.encode())
    }
}

impl Out {
    /// Appends a verified chunk; `tree` is the verifier's state once it is accepted.
    pub(crate) fn write(&mut self, data: &[u8], tree: &TreeStack) -> Result<()> {
        match self {
            Out::File(f) => f.write(data, tree),
            Out::Writer(w) => w.write(data, tree),
        }
    }
}

/// Chunks handed to a lent writer.
pub(crate) struct WriterSink {
    /// `None` while a chunk is being written.
    out: Option<Lent>,
    spare: Vec<BytesMut>,
    chunk_size: usize,
}

/// Where received chunks go.
pub(crate) enum Sink {
    File(Box<FileSink>),
    /// Into a writer another service lent (nothing of it is kept here).
    Writer(Box<WriterSink>),
    /// The verified content so far, and the rest of the space reserved for the whole
    /// (each chunk is read into the front of `rest`, split off, and joined to
    /// `assembled` once verified, without copying; `rest` is prefaulted ahead of the
    /// reader by the verifying thread), charged to the memory quota.
    Memory {
        assembled: BytesMut,
        rest: Space,
        charge: MemoryCharge,
    },
}

impl Sink {
    /// A buffer to read the next chunk into.
    pub(crate) fn read_buffer(&mut self) -> BytesMut {
        match self {
            Sink::File(f) => f
                .spare
                .pop()
                .unwrap_or_else(|| BytesMut::with_capacity(f.chunk_size)),
            Sink::Writer(w) => w
                .spare
                .pop()
                .unwrap_or_else(|| BytesMut::with_capacity(w.chunk_size)),
            Sink::Memory { rest, .. } => rest.read_buffer(),
        }
    }

    /// Takes back the buffer from [`Sink::read_buffer`] once a frame was read into it;
    /// returns the frame's body.
    pub(crate) fn after_read(&mut self, buf: BytesMut) -> BytesMut {
        match self {
            Sink::File(_) | Sink::Writer(_) => buf,
            Sink::Memory { rest, .. } => rest.after_read(buf),
        }
    }

    /// Space of a memory destination for the verifying thread to prefault (see
    /// [`Space::prefault_job`]); `None` for other sinks, or when none is due.
    pub(crate) fn prefault_job(&mut self) -> Option<BytesMut> {
        match self {
            Sink::Memory { rest, .. } => rest.prefault_job(),
            _ => None,
        }
    }

    /// Takes back the space from [`Sink::prefault_job`].
    pub(crate) fn prefaulted(&mut self, batch: BytesMut) {
        if let Sink::Memory { rest, .. } = self {
            rest.prefaulted(batch);
        }
    }

    /// Keeps a verified chunk (a file's was written already: its buffer is reused).
    pub(crate) fn keep(&mut self, mut data: BytesMut) {
        match self {
            Sink::File(f) => {
                data.clear();
                f.spare.push(data);
            }
            Sink::Writer(w) => {
                data.clear();
                w.spare.push(data);
            }
            Sink::Memory { assembled, .. } => assembled.unsplit(data),
        }
    }

    /// Takes the open file (or writer) out, to write chunks on a blocking thread.
    pub(crate) fn take_out(&mut self) -> Option<Out> {
        match self {
            Sink::File(f) => f.out.take().map(|o| Out::File(Box::new(o))),
            Sink::Writer(w) => w.out.take().map(Out::Writer),
            Sink::Memory { .. } => None,
        }
    }

    /// Puts the open file (or writer) back.
    pub(crate) fn put_out(&mut self, out: Option<Out>) {
        match (self, out) {
            (Sink::File(f), Some(Out::File(o))) => f.out = Some(*o),
            (Sink::Writer(w), Some(Out::Writer(o))) => w.out = Some(o),
            _ => {}
        }
    }

    /// A sink writing into `writer` the transfer `key` of `size` bytes in chunks of
    /// `chunk_size`.
    pub(crate) fn writer(
        writer: Box<dyn ChunkWriter>,
        key: [u8; 32],
        size: u64,
        chunk_size: u32,
    ) -> Sink {
        Sink::Writer(Box::new(WriterSink {
            out: Some(Lent {
                writer,
                key,
                size,
                chunk_size,
            }),
            spare: Vec::new(),
            chunk_size: chunk_size as usize,
        }))
    }

    /// The content proved wrong as a whole: its partial file is removed, so that the
    /// next attempt starts over.
    pub(crate) fn discard(&mut self) {
        if let Sink::File(f) = self {
            if let Some(mut out) = f.out.take() {
                let _ = std::thread::Builder::new()
                    .name("memmesh-discard".into())
                    .spawn(move || out.discard());
            }
        }
    }
}

/// Where a transfer of `size` bytes in chunks of `chunk_size` goes, opened (nothing is
/// opened on disk yet): the file `dest` through the claimed partial file `target` (whose
/// checkpoint, if any, `verifier` resumes from), or memory charged to `budget`.
pub(crate) fn open_sink(
    dest: Option<(PathBuf, Target)>,
    key: [u8; 32],
    size: u64,
    chunk_size: u32,
    verifier: &mut Verifier,
    budget: &Arc<MemoryBudget>,
) -> Result<Sink> {
    match dest {
        Some((dest, target)) => {
            let Target {
                partial,
                state,
                resume,
                claim,
            } = target;
            let (start, tree) = match resume {
                Some(c) => {
                    verifier.resume(c.tree.clone())?;
                    debug!(
                        chunks = c.tree.count(),
                        bytes = c.bytes(),
                        "resuming a transfer"
                    );
                    (c.bytes(), c.tree)
                }
                None => (0, TreeStack::new()),
            };
            let resumed = (tree.count() > 0).then(|| tree.clone());
            Ok(Sink::File(Box::new(FileSink {
                dest,
                out: Some(FileOut {
                    file: None,
                    writeback: None,
                    partial,
                    state,
                    start,
                    key,
                    size,
                    chunk_size,
                    tree,
                    resumed,
                    settled: false,
                    claim: Some(claim),
                }),
                spare: Vec::new(),
                chunk_size: chunk_size as usize,
            })))
        }
        None => {
            let charge = MemoryCharge::new(budget, size)?;
            let size = usize::try_from(size).ok();
            // Probe that the whole fits before reserving it (reserving cannot fail softly).
            let fits = size.is_some_and(|size| Vec::<u8>::new().try_reserve_exact(size).is_ok());
            match (size, fits) {
                (Some(size), true) => Ok(Sink::Memory {
                    assembled: BytesMut::new(),
                    rest: Space::new(BytesMut::with_capacity(size), chunk_size as usize),
                    charge,
                }),
                _ => Err(TransferError::Allocation(charge.bytes).into()),
            }
        }
    }
}

/// Makes a verified transfer durable: syncs the partial file and gives it its final
/// name (only now, never replacing a file: see [`Claims::deliver`]), or hands the memory
/// over with its charge.
pub(crate) async fn complete(
    sink: Sink,
    claims: &Arc<Claims>,
) -> Result<(Option<PathBuf>, Option<Bytes>)> {
    match sink {
        Sink::File(f) => {
            let FileSink { dest, out, .. } = *f;
            let mut out = out.ok_or(TransferError::Bug("the partial file was lost by a write"))?;
            let claims = claims.clone();
            let path = tokio::task::spawn_blocking(move || {
                out.sync()?;
                out.check_resumed().inspect_err(|_| out.discard())?;
                // Delivered while the claim is held (`out` is dropped after); if it
                // cannot be, the synced whole is checkpointed for the next attempt.
                claims
                    .deliver(&out.partial, &out.state, &dest)
                    .inspect_err(|_| out.settled = false)
            })
            .await
            .map_err(|e| TransferError::task("syncing", e))??;
            Ok((Some(path), None))
        }
        Sink::Writer(w) => {
            let out = w
                .out
                .ok_or(TransferError::Bug("the writer was lost by a write"))?;
            tokio::task::spawn_blocking(move || out.writer.finish())
                .await
                .map_err(|e| TransferError::task("finishing", e))??;
            Ok((None, None))
        }
        Sink::Memory {
            assembled, charge, ..
        } => {
            let data = Bytes::from_owner(Charged {
                data: assembled.freeze(),
                _charge: charge,
            });
            Ok((None, Some(data)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::partials::state_path;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// A receiving process killed before the first background sync of a fresh transfer
    /// (no checkpoint on the way out) leaves a partial file the next attempt of the same
    /// transfer takes back under the same name, from the first chunk; another transfer
    /// never does.
    #[tokio::test]
    async fn a_transfer_killed_before_its_first_sync_is_taken_back_by_its_next_attempt() {
        let dir = std::env::temp_dir().join(format!("memmesh-sink-kill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("f.bin");
        let (key, size, chunk_size) = ([3; 32], 4u64 << 20, 1u32 << 20);
        let stop = CancellationToken::new();
        let wait = Duration::from_secs(5);
        let budget = Arc::new(MemoryBudget::new(1 << 30));

        let claims = Arc::new(Claims::default());
        let target = claims
            .open(&dest, key, size, chunk_size, &stop, wait)
            .await
            .unwrap();
        let partial = target.partial.clone();
        assert_eq!(partial, dir.join("f.bin.memmesh-partial"));
        let mut verifier = Verifier::new(size, chunk_size).unwrap();
        let mut sink = open_sink(
            Some((dest.clone(), target)),
            key,
            size,
            chunk_size,
            &mut verifier,
            &budget,
        )
        .unwrap();
        let Some(Out::File(mut out)) = sink.take_out() else {
            panic!("a file sink")
        };
        out.write(&vec![9u8; 1 << 20], &TreeStack::new()).unwrap();
        // Killed: nothing runs on the way out (the file and its claim are never let go).
        std::mem::forget(out);
        assert_eq!(std::fs::metadata(&partial).unwrap().len(), 1 << 20);
        assert!(state_path(&partial).exists(), "the state came first");

        // The restarted process: its next attempt resumes (from nothing verified) in the
        // same file; another transfer to the same name gets a file of its own.
        let claims = Arc::new(Claims::default());
        let other = claims
            .open(&dest, [4; 32], size, chunk_size, &stop, wait)
            .await
            .unwrap();
        assert_ne!(other.partial, partial);
        let again = claims
            .open(&dest, key, size, chunk_size, &stop, wait)
            .await
            .unwrap();
        assert_eq!(again.partial, partial);
        let resume = again.resume.as_ref().expect("a checkpoint to resume from");
        assert_eq!(resume.bytes(), 0);

        // A crash between the state and the file: the state alone is taken back too.
        drop(again);
        std::fs::remove_file(&partial).unwrap();
        let claims = Arc::new(Claims::default());
        let after = claims
            .open(&dest, key, size, chunk_size, &stop, wait)
            .await
            .unwrap();
        assert_eq!(after.partial, partial);
        assert_eq!(after.resume.map(|c| c.bytes()), Some(0));
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
