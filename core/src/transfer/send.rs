//! The sending side: offer, skip what the receiver already verified, stream the chunks
//! with their hashes, and wait for the receiver's verdict.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::connect::connection;
use crate::node::shared::Shared;
use crate::transfer::messages::{Answer, Part};
use crate::transfer::verify::{chunk_count, chunk_len, ChunkHeader, DEFAULT_CHUNK_SIZE};
use crate::transfer::{Progress, Source, TransferResult};
use crate::transport::errors::connection_error;
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame, write_frame};
use crate::wire::messages::TransferOffer;
use crate::wire::{Reply, Service, StreamHeader};

/// Where the bytes come from, opened.
pub(crate) enum Reader {
    File {
        path: PathBuf,
        file: tokio::fs::File,
        len: u64,
        modified: Option<SystemTime>,
    },
    Bytes(Bytes),
}

impl Reader {
    pub(crate) async fn open(source: &Source) -> Result<(Reader, String, u64)> {
        match source {
            Source::Bytes(b) => {
                // Named after the content, so two byte sends never share a file name.
                let hex = data_encoding::HEXLOWER.encode(&blake3::hash(b).as_bytes()[..6]);
                Ok((
                    Reader::Bytes(b.clone()),
                    format!("data-{hex}"),
                    b.len() as u64,
                ))
            }
            Source::Path(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::from(e).context(format!("opening {}", path.display())))?;
                let meta = file.metadata().await?;
                if !meta.is_file() {
                    return Err(Error::invalid(format!("{} is not a file", path.display())));
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "data".to_string());
                Ok((
                    Reader::File {
                        path: path.clone(),
                        file,
                        len: meta.len(),
                        modified: meta.modified().ok(),
                    },
                    name,
                    meta.len(),
                ))
            }
        }
    }

    /// The id naming this content across attempts.
    fn id(&self, sender: &NodeId, name: &str) -> [u8; 32] {
        match self {
            Reader::Bytes(b) => *blake3::hash(b).as_bytes(),
            Reader::File { len, modified, .. } => {
                let mut h = blake3::Hasher::new();
                h.update(sender.as_bytes());
                h.update(name.as_bytes());
                h.update(&len.to_le_bytes());
                let nanos = modified
                    .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                h.update(&nanos.to_le_bytes());
                *h.finalize().as_bytes()
            }
        }
    }

    /// Reads chunk `index` (`len` bytes), failing clearly if the file changed.
    pub(crate) async fn chunk(&mut self, index: u64, chunk_size: u32, len: u32) -> Result<Bytes> {
        match self {
            Reader::Bytes(b) => {
                let start = (index * u64::from(chunk_size)) as usize;
                Ok(b.slice(start..start + len as usize))
            }
            Reader::File {
                path,
                file,
                len: expected_len,
                modified,
            } => {
                let meta = file.metadata().await?;
                if meta.len() != *expected_len || meta.modified().ok() != *modified {
                    return Err(Error::invalid(format!(
                        "{} changed while it was being sent",
                        path.display()
                    )));
                }
                let mut buf = vec![0u8; len as usize];
                file.seek(std::io::SeekFrom::Start(index * u64::from(chunk_size)))
                    .await?;
                file.read_exact(&mut buf).await?;
                Ok(Bytes::from(buf))
            }
        }
    }
}

/// Attempts per peer when the receiver reports a corrupted chunk.
const ATTEMPTS: u32 = 3;
/// Least interval between two progress events of one transfer.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Sends `source` to `peer` and returns the outcome. A chunk the receiver finds corrupted
/// is sent again (the next attempt resumes after the verified chunks).
pub(crate) async fn send_to(shared: &Arc<Shared>, source: &Source, peer: NodeId) -> TransferResult {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut sent = 0u64;
        let outcome = attempt(shared, source, peer, &mut sent).await;
        match outcome {
            Err(e) if e.kind() == ErrorKind::Corrupted && attempts < ATTEMPTS => {
                debug!(peer = %peer.short(), error = %e, "sending again after corruption");
                continue;
            }
            outcome => {
                let (bytes, hash, error) = match outcome {
                    Ok((bytes, hash)) => (bytes, Some(hash), None),
                    Err(e) => (0, None, Some(e)),
                };
                return TransferResult {
                    peer,
                    bytes,
                    hash,
                    sent,
                    attempts,
                    duration: started.elapsed(),
                    error,
                };
            }
        }
    }
}

async fn attempt(
    shared: &Arc<Shared>,
    source: &Source,
    peer: NodeId,
    sent: &mut u64,
) -> Result<(u64, String)> {
    let (mut reader, name, size) = Reader::open(source).await?;
    let chunk_size = DEFAULT_CHUNK_SIZE;
    let offer_name = name.clone();
    let offer = TransferOffer {
        id: reader.id(&shared.id, &name),
        name,
        size,
        chunk_size,
    };
    let limits = FrameLimits::with_body(chunk_size as usize);
    let conn = connection(shared, peer).await?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    write_frame(
        &mut send,
        &StreamHeader::new(Service::Transfer(offer)),
        &[],
        limits,
    )
    .await?;
    let answer = read_frame::<Answer>(&mut recv, limits).await?;
    let have = match answer.header {
        Answer::Accept { have } => have,
        Answer::Reject { reason } => {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("peer {} refused the transfer: {reason}", peer.short()),
            ))
        }
    };
    let streamed = stream(
        shared,
        &mut reader,
        Streaming {
            peer,
            name: &offer_name,
            size,
            chunk_size,
            have: &have,
        },
        &mut send,
        sent,
    )
    .await;
    let hash = match streamed {
        Ok(hash) => hash,
        // The receiver's reply usually says why the stream broke.
        Err(e) if e.kind() != ErrorKind::InvalidInput => {
            return Err(verdict(&mut recv, limits).await.err().unwrap_or(e))
        }
        Err(e) => return Err(e),
    };
    let _ = send.finish();
    let confirmed = verdict(&mut recv, limits).await?;
    let ours = format!("blake3:{}", data_encoding::HEXLOWER.encode(&hash));
    if confirmed != ours {
        return Err(Error::new(
            ErrorKind::Corrupted,
            format!("the receiver confirmed {confirmed}, expected {ours}"),
        ));
    }
    Ok((size, ours))
}

/// What [`stream`] sends.
pub(crate) struct Streaming<'a> {
    /// The receiving peer (for progress events).
    pub peer: NodeId,
    /// The name offered (for progress events).
    pub name: &'a str,
    /// Total bytes.
    pub size: u64,
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// Hashes of the leading chunks the receiver holds already.
    pub have: &'a [[u8; 32]],
}

/// Streams every chunk of `reader` the receiver does not hold yet, then the end frame
/// with the whole-content hash, which it returns. Progress events go out on the way.
pub(crate) async fn stream(
    shared: &Arc<Shared>,
    reader: &mut Reader,
    what: Streaming<'_>,
    send: &mut quinn::SendStream,
    sent: &mut u64,
) -> Result<[u8; 32]> {
    let Streaming {
        peer,
        name,
        size,
        chunk_size,
        have,
    } = what;
    let limits = FrameLimits::with_body(chunk_size as usize);
    let chunks = chunk_count(size, chunk_size);
    let mut whole = blake3::Hasher::new();
    let mut skipping = true;
    let began = Instant::now();
    let mut reported = began;
    let report = |done: u64, sent: u64| {
        let secs = began.elapsed().as_secs_f64().max(1e-6);
        let _ = shared.transfers.progress.send(Progress {
            peer,
            name: name.to_string(),
            done,
            total: size,
            rate: sent as f64 / secs,
        });
    };
    for index in 0..chunks {
        let len = chunk_len(size, chunk_size, index);
        let data = reader.chunk(index, chunk_size, len).await?;
        whole.update(&data);
        let header = ChunkHeader::of(index, &data);
        // Chunks the receiver verified before are not sent again.
        if skipping && have.get(index as usize) == Some(&header.hash) {
            continue;
        }
        skipping = false;
        let data = damaged_for_tests(shared, index, data);
        write_frame(send, &Part::Chunk(header), &data, limits).await?;
        *sent += data.len() as u64;
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            report(index * u64::from(chunk_size) + data.len() as u64, *sent);
        }
    }
    if chunks > 0 {
        // A last check that the file did not change during the final chunk.
        reader.chunk(0, chunk_size, 0).await?;
    }
    let hash = *whole.finalize().as_bytes();
    write_frame(send, &Part::End { hash }, &[], limits).await?;
    report(size, *sent);
    Ok(hash)
}

/// The test hook of `Transfer::corrupt_chunk_once_for_tests`.
fn damaged_for_tests(shared: &Shared, index: u64, data: Bytes) -> Bytes {
    use std::sync::atomic::Ordering;
    let hook = &shared.transfers.corrupt_chunk;
    if data.is_empty()
        || hook
            .compare_exchange(index, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return data;
    }
    let mut damaged = data.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x5a;
    Bytes::from(damaged)
}

/// The receiver's final reply: the hash it verified, or its error.
async fn verdict(recv: &mut quinn::RecvStream, limits: FrameLimits) -> Result<String> {
    let frame = read_frame::<Reply>(recv, limits).await?;
    frame.header.into_result()?;
    String::from_utf8(frame.body.to_vec()).map_err(|_| Error::internal("bad hash in reply"))
}
