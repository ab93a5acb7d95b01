//! Both sides of a one-frame-each-way exchange on a bidirectional stream: the client's
//! [`call`], and the server's [`read_request`] and [`write_reply`], which hold a peer's
//! request only within the node's budgets and deadlines.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::transport::endpoint::{FramePermit, PeerBudget, ServeBudget};
use crate::transport::errors::{connection_error, read_error, write_error, TransportError};
use crate::wire::codec::{
    self, encode_frame_head, EncodedHeader, FrameLimits, WireError, PREFIX_LEN,
};
use crate::wire::io::{read_frame, read_parts};
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

/// [`call`] of a body QUIC takes as it is (no copy).
pub async fn call_bytes(
    conn: &quinn::Connection,
    header: &StreamHeader,
    body: Bytes,
    limits: FrameLimits,
) -> Result<Bytes> {
    let head = encode_frame_head(header, body.len(), limits)?;
    exchange(conn, head.freeze(), body, limits).await
}

/// [`call`] with a header encoded once beforehand (a channel's, used for every request
/// it sends) and a body QUIC takes as it is (no copy).
pub async fn call_encoded(
    conn: &quinn::Connection,
    header: &EncodedHeader,
    body: Bytes,
    limits: FrameLimits,
) -> Result<Bytes> {
    let head = header.frame_head(body.len(), limits)?;
    exchange(conn, head.freeze(), body, limits).await
}

/// Sends one frame (its encoded `head`, then `body`) on a new stream and reads the reply.
async fn exchange(
    conn: &quinn::Connection,
    head: Bytes,
    body: Bytes,
    limits: FrameLimits,
) -> Result<Bytes> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let written = send
        .write_all_chunks(&mut [head, body])
        .await
        .map_err(write_error);
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
    if let Poll::Ready(Ok(None) | Err(_)) = first {
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
    within(deadline, read)
        .await
        .ok_or(TransportError::RequestTimeout)?
}

/// `work`'s output if it is done by `deadline`, `None` if not. No timer exists until
/// the work has been polled once and is not done: what is ready at once (a small frame
/// already received, a small reply QUIC takes at once, a local handler's answer) never
/// creates one, and so never takes the runtime's timer lock to register and drop it. As
/// with tokio's `timeout_at`, work that is ready counts as done even if the deadline has
/// passed. A plain combinator (not an `async fn`), so the work is not copied into a
/// second, larger state.
pub fn within<F: Future>(deadline: Instant, work: F) -> Within<F> {
    Within {
        work,
        deadline,
        timer: None,
    }
}

pin_project_lite::pin_project! {
    /// See [`within`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Within<F> {
        #[pin]
        work: F,
        deadline: Instant,
        #[pin]
        timer: Option<tokio::time::Sleep>,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.work.poll(cx) {
            return Poll::Ready(Some(out));
        }
        if this.timer.is_none() {
            this.timer
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        match this.timer.as_pin_mut().map(|t| t.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
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
    match within(deadline, send.write_all_chunks(&mut frame)).await {
        Some(written) => written.map_err(write_error),
        None => Err(TransportError::ReplyTimeout.into()),
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
