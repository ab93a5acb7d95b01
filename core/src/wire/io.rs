//! Moving frames over QUIC streams, with the limits checked before allocation.

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Classify, Error, ErrorKind};
use crate::transport::errors::{read_error, write_error};
use crate::wire::codec::{self, Frame, FrameLimits, WireError, PREFIX_LEN};

/// What goes wrong reading a frame from a stream, besides the frame itself ([`WireError`])
/// and the transport ([`crate::transport::errors::TransportError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream ended before the first byte of the awaited frame.
    #[error("the peer closed the stream without answering")]
    NoAnswer,
    /// Nothing arrived on the stream for this long.
    #[error("nothing arrived on the stream for {secs} s")]
    Idle {
        /// The idle bound, in seconds.
        secs: u64,
    },
}

impl Classify for StreamError {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::NoAnswer => ErrorKind::PeerUnavailable,
            StreamError::Idle { .. } => ErrorKind::Timeout,
        }
    }
}

/// Reads one frame without decoding its header: `Ok(None)` if the stream ended cleanly
/// before its first byte.
pub async fn read_raw_frame_opt(
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
) -> Result<Option<Frame<Vec<u8>>>, Error> {
    let mut prefix = [0u8; PREFIX_LEN];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(WireError::Truncated.into()),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(read_error(e)),
    }
    let (hl, bl) = codec::parse_prefix(prefix, limits)?;
    let (header, body) = read_parts(recv, hl, bl).await?;
    Ok(Some(Frame {
        header,
        body: Bytes::from(body),
    }))
}

/// Reads exactly a header of `hl` bytes and the body of `bl` bytes after it, each piece
/// as QUIC hands it over (a small frame's header and body usually come in one piece: one
/// read of the stream, not one per part), never past the frame.
pub async fn read_parts(
    recv: &mut quinn::RecvStream,
    hl: usize,
    bl: usize,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let mut header = Vec::with_capacity(hl);
    let mut body = Vec::with_capacity(bl);
    let mut left = hl + bl;
    while left > 0 {
        let chunk = recv
            .read_chunk(left, true)
            .await
            .map_err(read_error)?
            .ok_or(WireError::Truncated)?;
        let piece = &chunk.bytes[..];
        let to_header = (hl - header.len()).min(piece.len());
        header.extend_from_slice(&piece[..to_header]);
        body.extend_from_slice(&piece[to_header..]);
        left -= piece.len();
    }
    Ok((header, body))
}

/// Reads one frame; `Ok(None)` if the stream ended cleanly before its first byte.
pub async fn read_frame_opt<H: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
) -> Result<Option<Frame<H>>, Error> {
    match read_raw_frame_opt(recv, limits).await? {
        None => Ok(None),
        Some(raw) => Ok(Some(Frame {
            header: codec::decode_header(&raw.header)?,
            body: raw.body,
        })),
    }
}

/// Reads one frame whose body is appended to `body` (no zero-filling, no intermediate
/// buffer: a large body lands where it is used); a stream that ends first is an error,
/// and so is one on which nothing arrives for `idle` (`Timeout`; a slow stream that keeps
/// moving is fine), and an error [`crate::wire::Reply`] in place of the frame is that
/// error. On error `body` may hold part of the frame's body after its original content.
pub async fn read_frame_into<H: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
    body: &mut BytesMut,
    idle: std::time::Duration,
) -> Result<H, Error> {
    let mut prefix = [0u8; PREFIX_LEN];
    let first = tokio::time::timeout(idle, recv.read_exact(&mut prefix))
        .await
        .map_err(|_| idle_error(idle))?;
    match first {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(StreamError::NoAnswer.into()),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(WireError::Truncated.into()),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(read_error(e)),
    }
    let (hl, bl) = codec::parse_prefix(prefix, limits)?;
    let mut head = vec![0u8; hl];
    tokio::time::timeout(idle, read_exact(recv, &mut head))
        .await
        .map_err(|_| idle_error(idle))??;
    let header = match codec::decode_header(&head) {
        Ok(header) => header,
        Err(e) => {
            // A peer that gives up mid-stream says why with an error reply: report that
            // error, not a malformed frame.
            if let Ok(reply) = codec::decode_header::<crate::wire::Reply>(&head) {
                reply.into_result()?;
            }
            return Err(e.into());
        }
    };
    body.reserve(bl);
    read_body_into(recv, bl, body, Some(idle)).await?;
    Ok(header)
}

fn idle_error(idle: std::time::Duration) -> Error {
    StreamError::Idle {
        secs: idle.as_secs(),
    }
    .into()
}

/// Appends exactly `len` bytes of the stream to `out`, copying each received piece once;
/// `Timeout` if nothing arrives for `idle`.
async fn read_body_into(
    recv: &mut quinn::RecvStream,
    len: usize,
    out: &mut impl BufMut,
    idle: Option<std::time::Duration>,
) -> Result<(), Error> {
    let mut left = len;
    while left > 0 {
        let piece = match idle {
            Some(idle) => tokio::time::timeout(idle, recv.read_chunk(left, true))
                .await
                .map_err(|_| idle_error(idle))?,
            None => recv.read_chunk(left, true).await,
        };
        match piece.map_err(read_error)? {
            Some(chunk) => {
                left -= chunk.bytes.len();
                out.put_slice(&chunk.bytes);
            }
            None => return Err(WireError::Truncated.into()),
        }
    }
    Ok(())
}

/// Reads one frame; a stream that ends first is an error.
pub async fn read_frame<H: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
) -> Result<Frame<H>, Error> {
    read_frame_opt(recv, limits)
        .await?
        .ok_or_else(|| StreamError::NoAnswer.into())
}

async fn read_exact(recv: &mut quinn::RecvStream, buf: &mut [u8]) -> Result<(), Error> {
    recv.read_exact(buf).await.map_err(|e| match e {
        quinn::ReadExactError::FinishedEarly(_) => WireError::Truncated.into(),
        quinn::ReadExactError::ReadError(e) => read_error(e),
    })
}

/// Writes one frame whose body is handed to QUIC as it is (no copy).
pub async fn write_frame_bytes<H: Serialize>(
    send: &mut quinn::SendStream,
    header: &H,
    body: Bytes,
    limits: FrameLimits,
) -> Result<(), Error> {
    let head = codec::encode_frame_head(header, body.len(), limits)?.freeze();
    send.write_all_chunks(&mut [head, body])
        .await
        .map_err(write_error)
}

/// Encodes and writes one frame.
pub async fn write_frame<H: Serialize>(
    send: &mut quinn::SendStream,
    header: &H,
    body: &[u8],
    limits: FrameLimits,
) -> Result<(), Error> {
    let bytes = codec::encode_frame(header, body, limits)?;
    send.write_all(&bytes).await.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_errors_keep_their_kind_and_message() {
        let e = idle_error(std::time::Duration::from_secs(30));
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Timeout, "nothing arrived on the stream for 30 s")
        );
        assert_eq!(
            e.downcast_ref::<StreamError>(),
            Some(&StreamError::Idle { secs: 30 })
        );
        let e: Error = StreamError::NoAnswer.into();
        assert_eq!(e.kind(), ErrorKind::PeerUnavailable);
        assert_eq!(e.message(), "the peer closed the stream without answering");
    }
}
