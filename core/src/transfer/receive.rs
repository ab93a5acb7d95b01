//! The receiving side of a transfer: decide where the data goes, resume from what is
//! already verified, verify every chunk, and rename the file only once it is whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::transfer::messages::{Answer, Part};
use crate::transfer::progress::Reporter;
use crate::transfer::verify::{chunk_len, Verifier};
use crate::transfer::{Destination, Direction, Offer, Received};
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame_into, write_frame};
use crate::wire::messages::TransferOffer;
use crate::wire::Reply;

/// Suffix of a file being received.
pub const PARTIAL_SUFFIX: &str = ".memmesh-partial";
/// Suffix of the list of verified chunk hashes kept beside it.
pub const CHUNKS_SUFFIX: &str = ".memmesh-chunks";

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A file being received: `<dest>.memmesh-partial` and the hashes of its verified chunks
/// in `<dest>.memmesh-chunks`. Chunks are written by blocking threads (the handles travel
/// with the write; `None` after a write that did not come back).
pub(crate) struct FileSink {
    dest: PathBuf,
    partial: PathBuf,
    chunks: PathBuf,
    file: Option<std::fs::File>,
    hashes: Option<std::fs::File>,
    /// Where the next chunk is read to, reused.
    scratch: Vec<u8>,
}

impl FileSink {
    /// Appends the verified chunk in `scratch` and its hash.
    async fn write_chunk(&mut self, hash: [u8; 32]) -> Result<()> {
        use std::io::Write;
        let (Some(mut file), Some(mut hashes)) = (self.file.take(), self.hashes.take()) else {
            return Err(Error::internal(
                "the partial file was lost by an earlier write",
            ));
        };
        let buf = std::mem::take(&mut self.scratch);
        let (file, hashes, buf, written) = tokio::task::spawn_blocking(move || {
            let written = file.write_all(&buf).and_then(|()| hashes.write_all(&hash));
            (file, hashes, buf, written)
        })
        .await
        .map_err(|e| Error::internal(format!("writing task failed: {e}")))?;
        self.file = Some(file);
        self.hashes = Some(hashes);
        self.scratch = buf;
        written.map_err(|e| Error::from(e).context(format!("writing {}", self.partial.display())))
    }
}

/// Where received chunks go.
pub(crate) enum Sink {
    File(Box<FileSink>),
    /// The content so far, its whole size reserved up front.
    Memory(Vec<u8>),
}

impl Sink {
    /// The buffer the next chunk is appended to, emptied first for a file.
    fn buffer(&mut self) -> &mut Vec<u8> {
        match self {
            Sink::File(f) => {
                f.scratch.clear();
                &mut f.scratch
            }
            Sink::Memory(v) => v,
        }
    }
}

/// Serves a transfer stream opened by `from`.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    from: NodeId,
    offer: TransferOffer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let limits = FrameLimits::with_body(offer.chunk_size as usize);
    let result = receive(&shared, from, &offer, &mut send, &mut recv, limits).await;
    let (reply, body) = match &result {
        Ok(r) => (Reply::Ok, r.hash.as_bytes().to_vec()),
        Err(e) => (Reply::from_error(e), Vec::new()),
    };
    if let Err(e) = &result {
        debug!(peer = %from.short(), error = %e, "transfer not received");
    }
    let _ = write_frame(&mut send, &reply, &body, limits).await;
    let _ = send.finish();
    if let Ok(r) = result {
        shared.transfers.deliver(r);
    }
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || name.contains(['/', '\\', '\0'])
        || name == "."
        || name == ".."
    {
        return Err(Error::invalid(format!("bad transfer name {name:?}")));
    }
    Ok(())
}

async fn receive(
    shared: &Arc<Shared>,
    from: NodeId,
    offer: &TransferOffer,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
) -> Result<Received> {
    let public = Offer {
        from,
        id: data_encoding::HEXLOWER.encode(&offer.id),
        name: offer.name.clone(),
        size: offer.size,
    };
    let mut verifier = Verifier::new(offer.size, offer.chunk_size)?;
    let destination = match check_name(&offer.name) {
        Ok(()) => {
            shared
                .transfers
                .decide(&public, shared.config.request_timeout)
                .await
        }
        Err(e) => Destination::Reject(e.message().to_string()),
    };
    let mut sink = match destination {
        Destination::Reject(reason) => {
            let _ = write_frame(
                send,
                &Answer::Reject {
                    reason: reason.clone(),
                },
                &[],
                limits,
            )
            .await;
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("offer rejected: {reason}"),
            ));
        }
        Destination::Memory => {
            if offer.size > shared.config.memory_quota {
                let reason = "larger than this node's memory quota".to_string();
                let _ = write_frame(
                    send,
                    &Answer::Reject {
                        reason: reason.clone(),
                    },
                    &[],
                    limits,
                )
                .await;
                return Err(Error::new(ErrorKind::QuotaExceeded, reason));
            }
            open_sink(None, offer, &mut verifier).await?
        }
        Destination::Path(dest) => open_sink(Some(dest), offer, &mut verifier).await?,
    };
    write_frame(
        send,
        &Answer::Accept {
            have: verifier.chunk_hashes().to_vec(),
        },
        &[],
        limits,
    )
    .await?;
    // From here on the receiver's user can cancel it.
    let cancel = shared.transfers.incoming(offer.id);
    let mut progress = Reporter::new(shared, from, &offer.name, offer.size, Direction::Receiving);
    let taken = tokio::select! {
        r = take_chunks(&mut verifier, &mut sink, recv, limits, &mut progress) => r,
        _ = cancel.cancelled() => Err(Error::new(
            ErrorKind::Closed,
            "the receiver cancelled the transfer",
        )),
    };
    shared.transfers.done_incoming(&offer.id);
    let hash = taken?;
    let (path, data) = complete(sink).await?;
    Ok(Received {
        offer: public,
        hash: format!("blake3:{}", data_encoding::HEXLOWER.encode(&hash)),
        path,
        data,
    })
}

/// Where a transfer of `offer` goes, opened (a partial file keeps its verified chunks).
pub(crate) async fn open_sink(
    dest: Option<PathBuf>,
    offer: &TransferOffer,
    verifier: &mut Verifier,
) -> Result<Sink> {
    match dest {
        Some(path) => open_file(path, offer, verifier).await,
        None => {
            let mut buf = Vec::new();
            usize::try_from(offer.size)
                .ok()
                .and_then(|size| buf.try_reserve_exact(size).ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::QuotaExceeded,
                        format!("cannot allocate {} bytes to receive into", offer.size),
                    )
                })?;
            Ok(Sink::Memory(buf))
        }
    }
}

/// Reads, verifies and stores chunks until the end frame; returns the verified hash of
/// the whole. Each chunk is read straight into its place (memory) or a reused buffer
/// (file), hashed once, and dropped from the sink again if it does not verify.
pub(crate) async fn take_chunks(
    verifier: &mut Verifier,
    sink: &mut Sink,
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
    progress: &mut Reporter<'_>,
) -> Result<[u8; 32]> {
    let resumed_at = verifier.verified_bytes();
    loop {
        let buf = sink.buffer();
        let start = buf.len();
        let part = read_frame_into::<Part>(recv, limits, buf).await;
        let header = match part {
            Ok(Part::Chunk(h)) => h,
            Ok(Part::End { hash }) if buf.len() == start => {
                let whole = verifier.finish(&hash)?;
                progress.finish(verifier.verified_bytes() - resumed_at);
                return Ok(whole);
            }
            Ok(Part::End { .. }) => {
                buf.truncate(start);
                return Err(Error::new(
                    ErrorKind::Corrupted,
                    "the end of the transfer carried data",
                ));
            }
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        };
        if let Err(e) = verifier.accept(&header, &buf[start..]) {
            buf.truncate(start);
            return Err(e);
        }
        if let Sink::File(f) = sink {
            f.write_chunk(header.hash).await?;
        }
        let done = verifier.verified_bytes();
        progress.update(done, done - resumed_at);
    }
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
                file,
                hashes,
                ..
            } = *f;
            drop(hashes);
            let file =
                file.ok_or_else(|| Error::internal("the partial file was lost by a write"))?;
            tokio::task::spawn_blocking(move || file.sync_all())
                .await
                .map_err(|e| Error::internal(format!("syncing task failed: {e}")))??;
            tokio::fs::rename(&partial, &dest).await?;
            let _ = tokio::fs::remove_file(&chunks).await;
            Ok((Some(dest), None))
        }
        Sink::Memory(buf) => Ok((None, Some(Bytes::from(buf)))),
    }
}

/// Opens `<dest>.memmesh-partial`, keeping the chunks verified by an earlier attempt at the
/// same content, and feeds them to `verifier`.
async fn open_file(dest: PathBuf, offer: &TransferOffer, verifier: &mut Verifier) -> Result<Sink> {
    let partial = with_suffix(&dest, PARTIAL_SUFFIX);
    let chunks = with_suffix(&dest, CHUNKS_SUFFIX);
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let kept: Vec<[u8; 32]> = match tokio::fs::read(&chunks).await {
        Ok(bytes) if bytes.len() >= 32 && bytes[..32] == offer.id => bytes[32..]
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect(),
        _ => Vec::new(),
    };
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(kept.is_empty())
        .open(&partial)
        .await?;
    // Re-verify what is on disk; keep the longest verified prefix.
    let mut on_disk = Vec::new();
    for (i, _) in kept.iter().enumerate() {
        let len = chunk_len(offer.size, offer.chunk_size, i as u64) as usize;
        let mut buf = vec![0u8; len];
        if file.read_exact(&mut buf).await.is_err() {
            break;
        }
        on_disk.push(buf);
    }
    let next = verifier.resume(&kept, on_disk.iter().map(|c| c.as_slice()));
    let keep_bytes = verifier.verified_bytes();
    file.set_len(keep_bytes).await?;
    file.seek(std::io::SeekFrom::Start(keep_bytes)).await?;
    let mut hashes = tokio::fs::File::create(&chunks).await?;
    hashes.write_all(&offer.id).await?;
    for h in verifier.chunk_hashes() {
        hashes.write_all(h).await?;
    }
    if next > 0 {
        debug!(chunks = next, bytes = keep_bytes, "resuming a transfer");
    }
    Ok(Sink::File(Box::new(FileSink {
        dest,
        partial,
        chunks,
        file: Some(file.into_std().await),
        hashes: Some(hashes.into_std().await),
        scratch: Vec::with_capacity(offer.chunk_size as usize),
    })))
}
