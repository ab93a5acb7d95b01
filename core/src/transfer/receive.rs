//! The receiving side of a transfer: decide where the data goes, resume from what is
//! already verified, verify every chunk, and rename the file only once it is whole.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::transfer::error::TransferError;
use crate::transfer::limits::{check_receive_chunk_size, MAX_RECEIVE_CHUNK_SIZE};
use crate::transfer::messages::{Answer, Part, Resume};
use crate::transfer::partials::partial_key;
use crate::transfer::prefault::prefault;
use crate::transfer::progress::Reporter;
use crate::transfer::service::TransferService;
use crate::transfer::sink::{complete, open_sink, Out, Sink};
use crate::transfer::verify::{ChunkHeader, Verifier};
use crate::transfer::{Destination, Direction, Offer, Received};
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame_into, write_frame};
use crate::wire::messages::TransferOffer;
use crate::wire::Reply;

/// Serves a transfer stream opened by `from`.
pub(crate) async fn serve(
    shared: Arc<TransferService>,
    from: NodeId,
    offer: TransferOffer,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let limits = FrameLimits::with_body(offer.chunk_size.min(MAX_RECEIVE_CHUNK_SIZE) as usize);
    let idle = shared.transfers.idle();
    let result = receive(&shared, from, &offer, &mut send, &mut recv, limits).await;
    let (reply, body) = match &result {
        Ok(r) => (Reply::Ok, r.hash.as_bytes().to_vec()),
        Err(e) => (Reply::from_error(e), Vec::new()),
    };
    if let Err(e) = &result {
        debug!(peer = %from.short(), error = %e, "transfer not received");
    }
    let _ = tokio::time::timeout(idle, write_frame(&mut send, &reply, &body, limits)).await;
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
        return Err(TransferError::BadName(name.to_string()).into());
    }
    Ok(())
}

/// Answers an offer with a refusal (best effort: the sender may be gone already). The
/// error reply that follows it (see `serve`) tells the sender the kind.
async fn refuse(send: &mut quinn::SendStream, reason: &str, limits: FrameLimits, idle: Duration) {
    let answer = Answer::Reject {
        reason: reason.to_string(),
    };
    let _ = tokio::time::timeout(idle, write_frame(send, &answer, &[], limits)).await;
}

/// What a receiver answers to go ahead: where it resumes.
pub(crate) fn accept(verifier: &Verifier) -> Answer {
    Answer::Accept {
        resume: Resume {
            chunks: verifier.next(),
            digest: verifier.tree().digest(),
        },
    }
}

async fn receive(
    shared: &Arc<TransferService>,
    from: NodeId,
    offer: &TransferOffer,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
) -> Result<Received> {
    let idle = shared.transfers.idle();
    let public = Offer {
        from,
        id: data_encoding::HEXLOWER.encode(&offer.id),
        name: offer.name.clone(),
        size: offer.size,
    };
    // Budgets and bounds first, before anyone is asked or anything is held.
    let checked = shared
        .transfers
        .incoming_slots
        .take(&from)
        .map_err(Error::from)
        .and_then(|slot| {
            check_name(&offer.name)?;
            check_receive_chunk_size(offer.chunk_size)?;
            Ok((slot, Verifier::new(offer.size, offer.chunk_size)?))
        });
    let (_slot, mut verifier) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            refuse(send, e.message(), limits, idle).await;
            return Err(e);
        }
    };
    let destination = shared
        .transfers
        .decide(&public, shared.config.request_timeout)
        .await;
    let dest = match destination {
        Destination::Reject(reason) => {
            refuse(send, &reason, limits, idle).await;
            return Err(TransferError::Rejected(reason).into());
        }
        Destination::Memory => None,
        Destination::Path(dest) => Some(dest),
    };
    // From the moment it is accepted the receiver's user can cancel it (while the
    // offer is being decided it is refused by answering `Destination::Reject`); a newer
    // attempt of the same sender at the same content supersedes it (`stop`).
    let (serial, cancel) = shared.transfers.incoming(offer.id);
    let stop = CancellationToken::new();
    let key = partial_key(from.as_bytes(), &offer.id);
    // Until the accept is written, any failure (a cancel included) goes out as a refusal
    // first: the sender reads an answer, then the error reply (were it to read the reply
    // as an answer, it would take it for corruption and try again).
    let answered = std::sync::atomic::AtomicBool::new(false);
    let accepted = async {
        let opened = async {
            let target = match dest {
                Some(path) => {
                    let claims = &shared.transfers.claims;
                    let target = claims
                        .open(&path, key, offer.size, offer.chunk_size, &stop, idle)
                        .await?;
                    Some((path, target))
                }
                None => None,
            };
            let size = offer.size;
            open_sink(
                target,
                key,
                size,
                offer.chunk_size,
                &mut verifier,
                &shared.budget,
            )
        };
        let mut sink = opened.await?;
        answered.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::time::timeout(idle, write_frame(send, &accept(&verifier), &[], limits))
            .await
            .map_err(|_| TransferError::SenderStalled)??;
        let mut progress =
            Reporter::new(shared, from, &offer.name, offer.size, Direction::Receiving);
        let hash = take_chunks(verifier, &mut sink, recv, limits, &mut progress, idle).await?;
        Ok((hash, sink))
    };
    let cancelled = || Err(Error::from(TransferError::Cancelled));
    let taken = tokio::select! {
        r = accepted => r,
        _ = cancel.cancelled() => cancelled(),
        _ = stop.cancelled() => Err(Error::from(TransferError::Superseded {
            by: "a newer attempt at the same transfer",
        })),
    };
    if let (Err(e), false) = (&taken, answered.load(std::sync::atomic::Ordering::Relaxed)) {
        refuse(send, e.message(), limits, idle).await;
    }
    shared.transfers.done_incoming(&offer.id, serial);
    // A cancel that won the race with the last chunk still counts: `cancel` said true, so
    // the content is not delivered (its verified part stays for a resume). After
    // `done_incoming` no cancel can come (it cancels under the same lock).
    let taken = if cancel.is_cancelled() {
        cancelled()
    } else {
        taken
    };
    let (hash, sink) = taken?;
    let (path, data) = complete(sink, &shared.transfers.claims).await?;
    Ok(Received {
        offer: public,
        hash: format!("blake3:{}", data_encoding::HEXLOWER.encode(&hash)),
        path,
        data,
    })
}

/// A chunk being verified (and, for a file, written) on a blocking thread while the next
/// one is read from the network.
type Checking = tokio::task::JoinHandle<(Checker, BytesMut, Option<BytesMut>, Result<()>)>;

/// What verifies and stores chunks; moved to a blocking thread for each chunk and back.
struct Checker {
    verifier: Verifier,
    out: Option<Out>,
}

impl Checker {
    /// Verifies `data` as chunk `header` and, for a file, appends it; then prefaults
    /// `ahead`, space of a memory destination the reader has not reached yet.
    fn check(
        mut self,
        header: ChunkHeader,
        data: BytesMut,
        mut ahead: Option<BytesMut>,
    ) -> (Checker, BytesMut, Option<BytesMut>, Result<()>) {
        let mut result = self.verifier.accept(&header, &data);
        if let (Ok(()), Some(out)) = (&result, &mut self.out) {
            result = out.write(&data, self.verifier.tree());
        }
        if let (Ok(()), Some(batch)) = (&result, &mut ahead) {
            prefault(batch);
        }
        (self, data, ahead, result)
    }
}

/// Reads, verifies and stores chunks until the end frame; returns the verified hash of
/// the whole. Each chunk is read straight into its place (memory) or a reused buffer
/// (file) and hashed once, on a blocking thread, while the next one is read; it is kept
/// only once verified. For memory, that thread also prefaults the space ahead of the
/// reader in batches (see `prefault.rs`). A stream on which nothing arrives for `idle`
/// fails with `Timeout`. A whole that does not match the announced hash discards the
/// partial file.
pub(crate) async fn take_chunks(
    verifier: Verifier,
    sink: &mut Sink,
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
    progress: &mut Reporter<'_>,
    idle: Duration,
) -> Result<[u8; 32]> {
    let resumed_at = verifier.verified_bytes();
    let mut checker = Some(Checker {
        verifier,
        out: sink.take_out(),
    });
    let mut checking: Option<Checking> = None;
    loop {
        let mut buf = sink.read_buffer();
        let (read, checked) = tokio::join!(
            read_frame_into::<Part>(recv, limits, &mut buf, idle),
            async {
                match checking.take() {
                    Some(task) => Some(task.await),
                    None => None,
                }
            }
        );
        let body = sink.after_read(buf);
        if let Some(joined) = checked {
            let (back, data, ahead, result) =
                joined.map_err(|e| TransferError::task("verifying", e))?;
            if let Some(batch) = ahead {
                sink.prefaulted(batch);
            }
            result?;
            sink.keep(data);
            let done = back.verifier.verified_bytes();
            progress.update(done, done.saturating_sub(resumed_at));
            checker = Some(back);
        }
        let taken = checker
            .take()
            .ok_or(TransferError::Bug("the chunk checker was lost"))?;
        match read? {
            Part::Chunk(header) => {
                let ahead = sink.prefault_job();
                checking = Some(tokio::task::spawn_blocking(move || {
                    taken.check(header, body, ahead)
                }));
            }
            Part::End { .. } if !body.is_empty() => return Err(TransferError::EndWithData.into()),
            Part::End { hash } => {
                sink.put_out(taken.out);
                let whole = taken.verifier.finish(&hash).inspect_err(|e| {
                    if e.kind() == ErrorKind::Corrupted {
                        sink.discard();
                    }
                })?;
                progress.finish(taken.verifier.verified_bytes().saturating_sub(resumed_at));
                return Ok(whole);
            }
        }
    }
}
