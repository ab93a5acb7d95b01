//! The receiving side of a transfer: decide where the data goes, resume from what is
//! already verified, verify every chunk, and rename the file only once it is whole.

use std::sync::Arc;

use bytes::BytesMut;
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::transfer::messages::{Answer, Part};
use crate::transfer::progress::Reporter;
use crate::transfer::sink::{complete, open_sink, FileOut, Sink};
use crate::transfer::verify::{ChunkHeader, Verifier};
use crate::transfer::{Destination, Direction, Offer, Received};
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame_into, write_frame};
use crate::wire::messages::TransferOffer;
use crate::wire::Reply;

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

/// Answers an offer with a refusal (best effort: the sender may be gone already).
async fn refuse(send: &mut quinn::SendStream, reason: &str, limits: FrameLimits) {
    let answer = Answer::Reject {
        reason: reason.to_string(),
    };
    let _ = write_frame(send, &answer, &[], limits).await;
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
    let dest = match destination {
        Destination::Reject(reason) => {
            refuse(send, &reason, limits).await;
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("offer rejected: {reason}"),
            ));
        }
        Destination::Memory => None,
        Destination::Path(dest) => Some(dest),
    };
    // From the moment it is accepted the receiver's user can cancel it (while the
    // offer is being decided it is refused by answering `Destination::Reject`).
    let (serial, cancel) = shared.transfers.incoming(offer.id);
    let accepted = async {
        if dest.is_none() && offer.size > shared.config.memory_quota {
            let reason = "larger than this node's memory quota";
            refuse(send, reason, limits).await;
            return Err(Error::new(ErrorKind::QuotaExceeded, reason));
        }
        let mut sink = open_sink(dest, offer, &mut verifier).await?;
        write_frame(
            send,
            &Answer::Accept {
                have: verifier.chunk_hashes().to_vec(),
            },
            &[],
            limits,
        )
        .await?;
        let mut progress =
            Reporter::new(shared, from, &offer.name, offer.size, Direction::Receiving);
        let hash = take_chunks(verifier, &mut sink, recv, limits, &mut progress).await?;
        Ok((hash, sink))
    };
    let cancelled = || {
        Err(Error::new(
            ErrorKind::Closed,
            "the receiver cancelled the transfer",
        ))
    };
    let taken = tokio::select! {
        r = accepted => r,
        _ = cancel.cancelled() => cancelled(),
    };
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
    let (path, data) = complete(sink).await?;
    Ok(Received {
        offer: public,
        hash: format!("blake3:{}", data_encoding::HEXLOWER.encode(&hash)),
        path,
        data,
    })
}

/// A chunk being verified (and, for a file, written) on a blocking thread while the next
/// one is read from the network.
type Checking = tokio::task::JoinHandle<(Checker, BytesMut, Result<()>)>;

/// What verifies and stores chunks; moved to a blocking thread for each chunk and back.
struct Checker {
    verifier: Verifier,
    out: Option<FileOut>,
}

impl Checker {
    /// Verifies `data` as chunk `header` and, for a file, appends it.
    fn check(mut self, header: ChunkHeader, data: BytesMut) -> (Checker, BytesMut, Result<()>) {
        let mut result = self.verifier.accept(&header, &data);
        if let (Ok(()), Some(out)) = (&result, &mut self.out) {
            result = out.write(&data, &header.hash);
        }
        (self, data, result)
    }
}

/// Reads, verifies and stores chunks until the end frame; returns the verified hash of
/// the whole. Each chunk is read straight into its place (memory) or a reused buffer
/// (file) and hashed once, on a blocking thread, while the next one is read; it is kept
/// only once verified.
pub(crate) async fn take_chunks(
    verifier: Verifier,
    sink: &mut Sink,
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
    progress: &mut Reporter<'_>,
) -> Result<[u8; 32]> {
    let resumed_at = verifier.verified_bytes();
    let mut checker = Some(Checker {
        verifier,
        out: sink.take_out(),
    });
    let mut checking: Option<Checking> = None;
    loop {
        let mut buf = sink.read_buffer();
        let (read, checked) =
            tokio::join!(read_frame_into::<Part>(recv, limits, &mut buf), async {
                match checking.take() {
                    Some(task) => Some(task.await),
                    None => None,
                }
            });
        let body = sink.after_read(buf);
        if let Some(joined) = checked {
            let (back, data, result) =
                joined.map_err(|e| Error::internal(format!("verifying task failed: {e}")))?;
            result?;
            sink.keep(data);
            let done = back.verifier.verified_bytes();
            progress.update(done, done - resumed_at);
            checker = Some(back);
        }
        let taken = checker
            .take()
            .ok_or_else(|| Error::internal("the chunk checker was lost"))?;
        match read? {
            Part::Chunk(header) => {
                checking = Some(tokio::task::spawn_blocking(move || {
                    taken.check(header, body)
                }));
            }
            Part::End { .. } if !body.is_empty() => {
                return Err(Error::new(
                    ErrorKind::Corrupted,
                    "the end of the transfer carried data",
                ))
            }
            Part::End { hash } => {
                sink.put_out(taken.out);
                let whole = taken.verifier.finish(&hash)?;
                progress.finish(taken.verifier.verified_bytes() - resumed_at);
                return Ok(whole);
            }
        }
    }
}
