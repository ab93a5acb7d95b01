//! Both sides of a one-frame-each-way exchange on a bidirectional stream: the client's
//! [`call`], and the server's [`read_request`] and [`write_reply`], which hold a peer's
//! request only within the node's budgets and deadlines.

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::transport::endpoint::{FramePermit, PeerBudget, ServeBudget};
use crate::transport::errors::{connection_error, read_error, write_error, TransportError};
use crate::wire::codec::{self, encode_frame_head, FrameLimits, WireError, PREFIX_LEN};
use crate::wire::io::{read_frame, read_parts, write_frame_bytes};
use crate::wire::messages::RemoteError;
use crate::wire::{Reply, StreamHeader};

/// Longest error message sent to or taken from a peer, in bytes; longer ones are cut (a
/// handler's huge error must not make the reply frame too large to send, and a peer's
/// must not flood our logs and callers).
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// Sends `header` + `body` on a new stream of `conn` and returns the reply body, or the
/// error the peer reported.
pub async fn call(
    conn: &quinn::Connection,
    header: &StreamHeader,
    body: &[u8],
    limits: FrameLimits,
) -> Result<Bytes> {
    call_bytes(conn, header, Bytes::copy_from_slice(body), limits).await
}

/// [`call`] with a body QUIC takes as it is (no copy).
pub async fn call_bytes(
    conn: &quinn::Connection,
    header: &StreamHeader,
    body: Bytes,
    limits: FrameLimits,
) -> Result<Bytes> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let written = write_frame_bytes(&mut send, header, body, limits).await;
    let _ = send.finish();
    // Even if our write failed (the peer may have stopped the stream after rejecting it),
    // the peer's reply says why, so prefer it.
    let reply = read_frame::<Reply>(&mut recv, limits).await;
    if reply.is_ok() {
        finish_reading(&mut recv).await;
    }
    match (written, reply) {
        (_, Ok(frame)) => {
            frame.header.into_result().map_err(|e| RemoteError {
                kind: e.kind(),
                message: truncate(e.message()),
            })?;
            Ok(frame.body)
        }
        (Err(write_err), Err(_)) => Err(write_err),
        (Ok(()), Err(read_err)) => Err(read_err),
    }
}

/// Waits briefly for the end of a stream whose one frame has been read.
pub async fn finish_reading(recv: &mut quinn::RecvStream) {
    // The end normally came with the frame: one read sees it, with no timer.
    let first = {
        let end = recv.read_chunk(usize::MAX, true);
        tokio::pin!(end);
        futures::poll!(&mut end)
    };
    if let std::task::Poll::Ready(Ok(None) | Err(_)) = first {
        return;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), recv.read_to_end(0)).await;
}

/// `message`, cut to at most [`MAX_ERROR_MESSAGE`] bytes on a character boundary.
pub fn truncate(message: &str) -> String {
    if message.len() <= MAX_ERROR_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_ERROR_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// A request frame read by the serving side, with the budget it holds until dropped.
#[derive(Debug)]
pub struct RequestFrame {
    /// The encoded header.
    pub header: Vec<u8>,
    /// The body.
    pub body: Bytes,
    /// The request bytes this frame holds of its peer's and the node's budget.
    pub permit: FramePermit,
}

/// Reads the one request frame of a stream a peer opened, by `deadline`: `Ok(None)` if
/// the stream ended before its first byte. Its bytes are reserved from `budget` before
/// its body is read (refused with `QuotaExceeded` if over); a peer that has not sent the
/// whole frame by `deadline` gets `Timeout`.
pub async fn read_request(
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
    budget: &ServeBudget,
    peer: &PeerBudget,
    deadline: Instant,
) -> Result<Option<RequestFrame>> {
    let read = async {
        let mut prefix = [0u8; PREFIX_LEN];
        match recv.read_exact(&mut prefix).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(WireError::Truncated.into()),
            Err(quinn::ReadExactError::ReadError(e)) => return Err(read_error(e)),
        }
        let (hl, bl) = codec::parse_prefix(prefix, limits)?;
        let permit = budget.frame_bytes(peer, hl.saturating_add(bl))?;
        let (header, body) = read_parts(recv, hl, bl).await?;
        Ok(Some(RequestFrame {
            header,
            body: Bytes::from(body),
            permit,
        }))
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| TransportError::RequestTimeout)?
}

/// Writes the reply to a request: the body, or the error (its message cut to
/// [`MAX_ERROR_MESSAGE`]); a body too large for `limits` becomes an `InvalidInput`
/// error. A peer that has not taken the whole reply by `deadline` gets nothing more.
pub async fn write_reply(
    send: &mut quinn::SendStream,
    result: Result<Bytes>,
    limits: FrameLimits,
    deadline: Instant,
) -> Result<()> {
    let error_frame = |e: &Error| {
        encode_frame_head(&Reply::from_error(&cut(e)), 0, limits)
            .map(|head| [head.freeze(), Bytes::new()])
            .map_err(Error::from)
    };
    // The body goes to QUIC as it is (no copy into a frame buffer).
    let mut frame = match result {
        Ok(body) => encode_frame_head(&Reply::Ok, body.len(), limits)
            .map(|head| [head.freeze(), body])
            .or_else(|e| error_frame(&TransportError::ResponseTooLarge(e).into())),
        Err(e) => error_frame(&e),
    }?;
    match tokio::time::timeout_at(deadline, send.write_all_chunks(&mut frame)).await {
        Ok(written) => written.map_err(write_error),
        Err(_) => Err(TransportError::ReplyTimeout.into()),
    }
}

fn cut(e: &Error) -> Error {
    Error::new(e.kind(), truncate(e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(MAX_ERROR_MESSAGE);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_ERROR_MESSAGE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        // An error with a huge message still fits in a reply header.
        let e = Error::new(ErrorKind::HandlerFailed, "x".repeat(1 << 20));
        let limits = FrameLimits::with_body(1024);
        assert!(
            crate::wire::codec::encode_frame(&Reply::from_error(&super::cut(&e)), &[], limits)
                .is_ok()
        );
    }
}
