//! The sending side: offer, skip what the receiver already verified, stream the chunks
//! with their hashes, and wait for the receiver's verdict. What is sent (prepared sources,
//! their chunks) is in [`crate::transfer::source`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::connect::connection;
use crate::transfer::error::TransferError;
use crate::transfer::fetch::within;
use crate::transfer::messages::{Answer, Part, Resume};
use crate::transfer::progress::Reporter;
use crate::transfer::service::TransferService;
use crate::transfer::stack::{check_resume_point, TreeStack};
use crate::transfer::tree::chunk_count;
use crate::transfer::verify::{ChunkHeader, DEFAULT_CHUNK_SIZE};
use crate::transfer::{Direction, TransferResult};
use crate::transport::errors::connection_error;
use crate::wire::codec::{decode_header, FrameLimits};
use crate::wire::io::{read_frame, read_raw_frame_opt, write_frame, write_frame_bytes};
use crate::wire::messages::TransferOffer;
use crate::wire::{Reply, Service, StreamHeader};

// `send::Prepared` / `send::Reader` are how the transfer API names the sources it sends.
pub(crate) use crate::transfer::source::{Prepared, Reader};

/// Attempts per peer when the receiver reports a corrupted chunk.
const ATTEMPTS: u32 = 3;

/// Sends `source` to `peer` and returns the outcome. A chunk the receiver finds corrupted
/// is sent again (the next attempt resumes after the verified chunks).
pub(crate) async fn send_to(
    shared: &Arc<TransferService>,
    source: &Prepared,
    peer: NodeId,
) -> TransferResult {
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
    shared: &Arc<TransferService>,
    source: &Prepared,
    peer: NodeId,
    sent: &mut u64,
) -> Result<(u64, String)> {
    let idle = shared.transfers.idle();
    let (reader, name, size) = Reader::open(source).await?;
    let chunk_size = DEFAULT_CHUNK_SIZE;
    let offer_name = name.clone();
    let offer = TransferOffer {
        id: reader.id(&shared.id, &name),
        name,
        size,
        chunk_size,
    };
    let limits = FrameLimits::with_body(chunk_size as usize);
    let conn = connection(&shared.node, peer).await?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let header = StreamHeader::new(Service::Transfer(offer));
    within(idle, write_frame(&mut send, &header, &[], limits)).await?;
    // The receiver may ask its offer handler first (up to its request timeout).
    let answer_within = shared.config.request_timeout.saturating_add(idle);
    let answer = tokio::time::timeout(answer_within, read_answer(&mut recv, limits))
        .await
        .map_err(|_| TransferError::OfferTimeout(peer.short()))??;
    let resume = match answer {
        Answer::Accept { resume } => resume,
        Answer::Reject { reason } => {
            // The error reply that follows a refusal says why in kind (a budget, a
            // bad chunk size, a handler's refusal); a peer that sends none refused.
            let reply = within(idle, read_frame::<Reply>(&mut recv, limits)).await;
            let kind = match reply.map(|frame| frame.header.into_result()) {
                Ok(Err(e)) => e.kind(),
                _ => ErrorKind::Unauthorized,
            };
            return Err(TransferError::Refused {
                peer: peer.short(),
                reason,
                kind,
            }
            .into());
        }
    };
    let streamed = stream(
        shared,
        reader,
        Streaming {
            peer,
            name: &offer_name,
            size,
            chunk_size,
            resume,
            idle,
        },
        &mut send,
        sent,
    )
    .await;
    let hash = match streamed {
        Ok(hash) => hash,
        // The receiver's reply usually says why the stream broke.
        Err(e) if !matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Timeout) => {
            let why = within(idle, verdict(&mut recv, limits)).await;
            return Err(why.err().unwrap_or(e));
        }
        Err(e) => return Err(e),
    };
    let _ = send.finish();
    let confirmed = within(idle, verdict(&mut recv, limits)).await?;
    let ours = format!("blake3:{}", data_encoding::HEXLOWER.encode(&hash));
    if confirmed != ours {
        return Err(TransferError::Confirmed { confirmed, ours }.into());
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
    /// Where the receiver resumes (the chunks it holds already).
    pub resume: Resume,
    /// How long a chunk may wait for the receiver to take it.
    pub idle: Duration,
}

/// Streams every chunk of `reader` the receiver does not hold yet, then the end frame
/// with the whole-content hash, which it returns. The chunks the receiver holds are read
/// and hashed here all the same (the whole hash needs them) and checked against its
/// digest: a source that changed is caught, never completed with the receiver's old
/// part. Progress events go out on the way.
pub(crate) async fn stream(
    shared: &Arc<TransferService>,
    reader: Reader,
    what: Streaming<'_>,
    send: &mut quinn::SendStream,
    sent: &mut u64,
) -> Result<[u8; 32]> {
    let Streaming {
        peer,
        name,
        size,
        chunk_size,
        resume,
        idle,
    } = what;
    let count = chunk_count(size, chunk_size);
    check_resume_point(resume.chunks, count)?;
    let differs = || {
        Error::from(TransferError::DifferentVersion {
            peer: peer.short(),
            name: name.to_string(),
        })
    };
    if resume.chunks == 0 && resume.digest != TreeStack::new().digest() {
        return Err(differs());
    }
    let limits = FrameLimits::with_body(chunk_size as usize);
    let mut chunks = reader.chunks(chunk_size);
    let mut tree = TreeStack::new();
    let mut progress = Reporter::new(shared, peer, name, size, Direction::Sending);
    while let Some(next) = chunks.next().await {
        let (data, hash) = next?;
        let index = tree.count();
        tree.push(hash);
        // Chunks the receiver verified before are not sent again.
        if index < resume.chunks {
            if index + 1 == resume.chunks && tree.digest() != resume.digest {
                return Err(differs());
            }
            continue;
        }
        let header = ChunkHeader {
            index,
            len: data.len() as u32,
            hash,
        };
        #[cfg(any(test, feature = "test-hooks"))]
        let data = crate::transfer::hooks::damaged(shared, index, data);
        let len = data.len() as u64;
        within(
            idle,
            write_frame_bytes(send, &Part::Chunk(header), data, limits),
        )
        .await?;
        *sent += len;
        #[cfg(any(test, feature = "test-hooks"))]
        crate::transfer::hooks::streamed(shared, &peer, len);
        progress.update(
            index
                .saturating_mul(u64::from(chunk_size))
                .saturating_add(len),
            *sent,
        );
    }
    if tree.count() != count {
        return Err(TransferError::Bug("the source ended early").into());
    }
    let hash = tree.root();
    within(
        idle,
        write_frame_bytes(send, &Part::End { hash }, Bytes::new(), limits),
    )
    .await?;
    progress.finish(*sent);
    Ok(hash)
}

/// The receiver's answer to an offer. A receiver that replies with an error where the
/// answer belongs (older builds did, for a failure before accepting) gives that error,
/// not `Corrupted` (which would make the sender try again).
async fn read_answer(recv: &mut quinn::RecvStream, limits: FrameLimits) -> Result<Answer> {
    let raw = read_raw_frame_opt(recv, limits)
        .await?
        .ok_or(TransferError::NoAnswer)?;
    match decode_header::<Answer>(&raw.header) {
        Ok(answer) => Ok(answer),
        Err(e) => {
            if let Ok(reply) = decode_header::<Reply>(&raw.header) {
                reply.into_result()?;
            }
            Err(e.into())
        }
    }
}

/// The receiver's final reply: the hash it verified, or its error.
async fn verdict(recv: &mut quinn::RecvStream, limits: FrameLimits) -> Result<String> {
    let frame = read_frame::<Reply>(recv, limits).await?;
    frame.header.into_result()?;
    String::from_utf8(frame.body.to_vec()).map_err(|_| TransferError::BadVerdict.into())
}
