//! Helpers for the cache tests that play a hostile member: speak the cache service's
//! wire messages from a [`RawPeer`].
#![allow(dead_code)]

use memmesh::cache::messages::{Request, Response, Spec, WireEntry};
use memmesh::cache::CacheOptions;
use memmesh::wire::codec::{decode_bulk, decode_frame, encode_bulk, encode_frame, FrameLimits};
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::ErrorKind;

use super::RawPeer;

/// Frame limits for what a raw peer writes and reads (larger than any test sends).
fn limits() -> FrameLimits {
    FrameLimits::with_body(64 << 20)
}

/// What a node answered a raw cache request with.
#[derive(Debug)]
pub enum Answer {
    /// The request was served.
    Ok(Response),
    /// The request was refused: the error kind and message sent back.
    Err(ErrorKind, String),
}

impl Answer {
    /// The error kind, panicking (with the answer) if the request was served.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Answer::Err(kind, _) => *kind,
            Answer::Ok(r) => panic!("expected a refusal, the node served it: {r:?}"),
        }
    }

    /// The response, panicking (with the error) if the request was refused.
    pub fn response(self) -> Response {
        match self {
            Answer::Ok(r) => r,
            Answer::Err(kind, message) => panic!("refused: {kind:?}: {message}"),
        }
    }
}

/// Sends one cache request from `raw` and decodes the answer.
pub async fn cache_call(raw: &RawPeer, req: &Request) -> Answer {
    let body = encode_bulk(req).expect("encode the request");
    let frame = encode_frame(&StreamHeader::new(Service::Cache), &body, limits())
        .expect("encode the frame");
    let (mut send, mut recv) = raw.conn.open_bi().await.expect("open a stream");
    send.write_all(&frame).await.expect("write the frame");
    let _ = send.finish();
    let bytes = recv
        .read_to_end(64 << 20)
        .await
        .expect("read the answer (the node must answer, not drop the stream)");
    let reply = decode_frame::<Reply>(&bytes, limits()).expect("a well-formed reply frame");
    match reply.header {
        Reply::Ok => Answer::Ok(decode_bulk(&reply.body).expect("a cache response")),
        Reply::Err { kind, message } => {
            let kind = ErrorKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .unwrap_or_else(|| panic!("unknown error kind {kind}: {message}"));
            Answer::Err(kind, message)
        }
    }
}

/// The spec of bucket `name` with `options`.
pub fn spec(name: &str, options: CacheOptions) -> Spec {
    Spec {
        name: name.to_string(),
        options,
    }
}

/// A write of `key` = `value` at `version`, never expiring.
pub fn entry(key: &str, value: &[u8], version: u64) -> WireEntry {
    WireEntry {
        key: key.to_string(),
        value: Some(bytes::Bytes::copy_from_slice(value)),
        version,
        expires: 0,
    }
}

/// An HLC stamp for the wall clock now (what an honest node would send).
pub fn stamp_now() -> u64 {
    memmesh::cache::hlc::wall_ms() << memmesh::cache::hlc::LOGICAL_BITS
}
