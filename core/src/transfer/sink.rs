//! Where received chunks are stored: a file written as `<dest>.memmesh-partial` with the
//! hashes of its verified chunks in `<dest>.memmesh-chunks` (renamed to `dest` only once
//! the whole is verified), or memory reserved up front for the whole content.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::transfer::verify::{chunk_len, ChunkHeader, Verifier};
use crate::transfer::writeback::Writeback;
use crate::wire::messages::TransferOffer;

/// Suffix of a file being received.
pub const PARTIAL_SUFFIX: &str = ".memmesh-partial";
/// Suffix of the list of verified chunk hashes kept beside it.
pub const CHUNKS_SUFFIX: &str = ".memmesh-chunks";

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The open partial file and its list of chunk hashes. Moved to the blocking thread that
/// verifies and writes each chunk, and back.
pub(crate) struct FileOut {
    file: std::fs::File,
    hashes: std::fs::File,
    partial: PathBuf,
    writeback: Writeback,
}

impl FileOut {
    /// Appends a verified chunk and its hash.
    pub(crate) fn write(&mut self, data: &[u8], hash: &[u8; 32]) -> Result<()> {
        self.file
            .write_all(data)
            .and_then(|()| self.hashes.write_all(hash))
            .and_then(|()| self.writeback.wrote(data.len() as u64))
            .map_err(|e| self.failed(e, "writing"))
    }

    /// Makes everything written durable (waiting for the background writeback).
    fn sync(mut self) -> Result<()> {
        self.writeback
            .finish()
            .and_then(|()| self.file.sync_all())
            .map_err(|e| self.failed(e, "syncing"))
    }

    fn failed(&self, e: std::io::Error, doing: &str) -> Error {
        Error::from(e).context(format!("{doing} {}", self.partial.display()))
    }
}

/// A file being received.
pub(crate) struct FileSink {
    dest: PathBuf,
    partial: PathBuf,
    chunks: PathBuf,
    /// `None` while a chunk is being written (or after a write that did not come back).
    out: Option<FileOut>,
    /// Buffers to read chunks into, reused.
    spare: Vec<BytesMut>,
    chunk_size: usize,
}

/// Where received chunks go.
pub(crate) enum Sink {
    File(Box<FileSink>),
    /// The verified content so far, and the rest of the space reserved for the whole
    /// (each chunk is read into the front of `rest`, split off, and joined to
    /// `assembled` once verified, without copying).
    Memory {
        assembled: BytesMut,
        rest: BytesMut,
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
            Sink::Memory { rest, .. } => std::mem::take(rest),
        }
    }

    /// Takes back the buffer from [`Sink::read_buffer`] once a frame was read into it;
    /// returns the frame's body.
    pub(crate) fn after_read(&mut self, mut buf: BytesMut) -> BytesMut {
        match self {
            Sink::File(_) => buf,
            Sink::Memory { rest, .. } => {
                let body = buf.split();
                *rest = buf;
                body
            }
        }
    }

    /// Keeps a verified chunk (a file's was written already: its buffer is reused).
    pub(crate) fn keep(&mut self, mut data: BytesMut) {
        match self {
            Sink::File(f) => {
                data.clear();
                f.spare.push(data);
            }
            Sink::Memory { assembled, .. } => assembled.unsplit(data),
        }
    }

    /// Takes the open file out, to write chunks on a blocking thread.
    pub(crate) fn take_out(&mut self) -> Option<FileOut> {
        match self {
            Sink::File(f) => f.out.take(),
            Sink::Memory { .. } => None,
        }
    }

    /// Puts the open file back.
    pub(crate) fn put_out(&mut self, out: Option<FileOut>) {
        if let Sink::File(f) = self {
            f.out = out;
        }
    }
}

/// Where a transfer of `offer` goes, opened: the file `dest` (a partial file keeps the
/// chunks verified by an earlier attempt at the same content, fed to `verifier`), or
/// memory when `None`.
pub(crate) async fn open_sink(
    dest: Option<PathBuf>,
    offer: &TransferOffer,
    verifier: &mut Verifier,
) -> Result<Sink> {
    match dest {
        Some(path) => {
            let offer = offer.clone();
            let mut v = verifier.clone();
            let (sink, v) = tokio::task::spawn_blocking(move || {
                open_file(path, &offer, &mut v).map(|s| (s, v))
            })
            .await
            .map_err(|e| Error::internal(format!("opening task failed: {e}")))??;
            *verifier = v;
            Ok(sink)
        }
        None => {
            let size = usize::try_from(offer.size).ok();
            // Probe that the whole fits before reserving it (reserving cannot fail softly).
            let fits = size.is_some_and(|size| Vec::<u8>::new().try_reserve_exact(size).is_ok());
            match (size, fits) {
                (Some(size), true) => Ok(Sink::Memory {
                    assembled: BytesMut::new(),
                    rest: BytesMut::with_capacity(size),
                }),
                _ => Err(Error::new(
                    ErrorKind::QuotaExceeded,
                    format!("cannot allocate {} bytes to receive into", offer.size),
                )),
            }
        }
    }
}

/// Opens `<dest>.memmesh-partial`, keeping the longest prefix of chunks verified by an
/// earlier attempt at the same content that still verifies on disk (read one chunk at a
/// time), and feeds them to `verifier`.
fn open_file(dest: PathBuf, offer: &TransferOffer, verifier: &mut Verifier) -> Result<Sink> {
    let partial = with_suffix(&dest, PARTIAL_SUFFIX);
    let chunks = with_suffix(&dest, CHUNKS_SUFFIX);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let kept: Vec<[u8; 32]> = match std::fs::read(&chunks) {
        Ok(bytes) if bytes.len() >= 32 && bytes[..32] == offer.id => bytes[32..]
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect(),
        _ => Vec::new(),
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(kept.is_empty())
        .open(&partial)
        .map_err(|e| Error::from(e).context(format!("opening {}", partial.display())))?;
    let mut buf = Vec::new();
    for (index, hash) in kept.iter().enumerate() {
        let len = chunk_len(offer.size, offer.chunk_size, index as u64);
        buf.clear();
        let read = (&mut file).take(u64::from(len)).read_to_end(&mut buf);
        let header = ChunkHeader {
            index: index as u64,
            len,
            hash: *hash,
        };
        if read.is_err() || verifier.accept(&header, &buf).is_err() {
            break;
        }
    }
    let keep_bytes = verifier.verified_bytes();
    file.set_len(keep_bytes)?;
    file.seek(std::io::SeekFrom::Start(keep_bytes))?;
    let mut hashes = std::fs::File::create(&chunks)?;
    hashes.write_all(&offer.id)?;
    for h in verifier.chunk_hashes() {
        hashes.write_all(h)?;
    }
    if verifier.next() > 0 {
        debug!(
            chunks = verifier.next(),
            bytes = keep_bytes,
            "resuming a transfer"
        );
    }
    Ok(Sink::File(Box::new(FileSink {
        dest,
        partial: partial.clone(),
        chunks,
        out: Some(FileOut {
            writeback: Writeback::new(&file)?,
            file,
            hashes,
            partial,
        }),
        spare: Vec::new(),
        chunk_size: offer.chunk_size as usize,
    })))
}

/// Makes a verified transfer durable: syncs the partial file and renames it to its final
/// name (only now), or hands the memory over.
pub(crate) async fn complete(sink: Sink) -> Result<(Option<PathBuf>, Option<Bytes>)> {
    match sink {
        Sink::File(f) => {
            let FileSink {
                dest,
                partial,
                chunks,
                out,
                ..
            } = *f;
            let out = out.ok_or_else(|| Error::internal("the partial file was lost by a write"))?;
            tokio::task::spawn_blocking(move || out.sync())
                .await
                .map_err(|e| Error::internal(format!("syncing task failed: {e}")))??;
            tokio::fs::rename(&partial, &dest).await?;
            let _ = tokio::fs::remove_file(&chunks).await;
            Ok((Some(dest), None))
        }
        Sink::Memory { assembled, .. } => Ok((None, Some(assembled.freeze()))),
    }
}
