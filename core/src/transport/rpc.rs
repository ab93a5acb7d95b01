//! The client side of a one-frame-each-way exchange on a fresh bidirectional stream.

use bytes::Bytes;

use crate::error::Result;
use crate::transport::errors::connection_error;
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame, write_frame};
use crate::wire::{Reply, StreamHeader};

/// Sends `header` + `body` on a new stream of `conn` and returns the reply body, or the
/// error the peer reported.
pub async fn call(
    conn: &quinn::Connection,
    header: &StreamHeader,
    body: &[u8],
    limits: FrameLimits,
) -> Result<Bytes> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let written = write_frame(&mut send, header, body, limits).await;
    let _ = send.finish();
    // Even if our write failed (the peer may have stopped the stream after rejecting it),
    // the peer's reply says why, so prefer it.
    let reply = read_frame::<Reply>(&mut recv, limits).await;
    if reply.is_ok() {
        crate::node::connect::finish_reading(&mut recv).await;
    }
    match (written, reply) {
        (_, Ok(frame)) => {
            frame.header.into_result()?;
            Ok(frame.body)
        }
        (Err(write_err), Err(_)) => Err(write_err),
        (Ok(()), Err(read_err)) => Err(read_err),
    }
}
