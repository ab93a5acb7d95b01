//! Moving frames over QUIC streams, with the limits checked before allocation.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::transport::errors::{read_error, write_error};
use crate::wire::codec::{self, Frame, FrameLimits, WireError, PREFIX_LEN};

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
    let mut head = vec![0u8; hl];
    read_exact(recv, &mut head).await?;
    let mut body = vec![0u8; bl];
    read_exact(recv, &mut body).await?;
    Ok(Some(Frame {
        header: head,
        body: Bytes::from(body),
    }))
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

/// Reads one frame; a stream that ends first is an error.
pub async fn read_frame<H: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limits: FrameLimits,
) -> Result<Frame<H>, Error> {
    read_frame_opt(recv, limits).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::PeerUnavailable,
            "the peer closed the stream without answering",
        )
    })
}

async fn read_exact(recv: &mut quinn::RecvStream, buf: &mut [u8]) -> Result<(), Error> {
    recv.read_exact(buf).await.map_err(|e| match e {
        quinn::ReadExactError::FinishedEarly(_) => WireError::Truncated.into(),
        quinn::ReadExactError::ReadError(e) => read_error(e),
    })
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
