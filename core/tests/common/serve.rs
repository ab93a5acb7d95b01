//! Helpers for hostile-peer tests of connection serving: raw QUIC clients bound to a
//! chosen loopback address, connections that never finish the memmesh handshake, and
//! streams that never send a request.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use memmesh::transport::auth::ClusterKey;
use memmesh::transport::errors::STREAM_BUSY;
use memmesh::transport::handshake::{self, LocalHello};
use memmesh::transport::tls;
use memmesh::wire::codec::{decode_frame, FrameLimits};
use memmesh::wire::Reply;
use memmesh::{Keypair, Node};
use quinn::crypto::rustls::QuicClientConfig;

/// Tasks alive on a node's own runtime (what serving a peer costs it).
pub fn tasks(node: &Node) -> usize {
    node.runtime_handle().metrics().num_alive_tasks()
}

/// A client-only quinn endpoint on `bind` (any port) presenting `key`.
pub fn client(bind: IpAddr, key: &Keypair) -> quinn::Endpoint {
    let crypto = QuicClientConfig::try_from(tls::client_config(key).unwrap()).unwrap();
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(bind, 0)).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

/// Completes TLS with the node at `to` and stops there: no memmesh hello is ever sent.
pub async fn tls_only(
    endpoint: &quinn::Endpoint,
    to: SocketAddr,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    endpoint
        .connect(to, &tls::server_name_for(None))
        .unwrap()
        .await
}

/// Completes TLS and the memmesh handshake with the node at `to` (no cluster secret).
pub async fn authenticated(
    endpoint: &quinn::Endpoint,
    to: SocketAddr,
) -> memmesh::Result<quinn::Connection> {
    let conn = tls_only(endpoint, to)
        .await
        .map_err(|e| memmesh::transport::errors::connection_error(&e))?;
    let local = LocalHello {
        key: ClusterKey::new(None),
        name: "raw".into(),
        addrs: vec![],
        trust: Default::default(),
        boot: handshake::draw_boot()?,
    };
    handshake::client(&conn, &local).await?;
    Ok(conn)
}

/// How a stream that never sent its request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The node answered (normally `Reply::Err { kind: "Timeout", .. }`).
    Reply(Reply),
    /// The node refused the stream because it serves its limit of streams.
    Busy,
    /// Anything else (the text says what).
    Other(String),
}

impl Ending {
    /// The error kind of a reply, if the node replied with one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Ending::Reply(Reply::Err { kind, .. }) => Some(kind),
            _ => None,
        }
    }
}

/// Opens a stream on `conn`, writes one byte of a frame prefix and nothing more, and
/// waits (up to `patience`) for the node to end it.
pub async fn silent_stream(conn: quinn::Connection, patience: Duration) -> Ending {
    let (mut send, mut recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return Ending::Other(format!("open: {e}")),
    };
    let busy = |code: quinn::VarInt| code.into_inner() == u64::from(STREAM_BUSY);
    match send.write_all(&[0]).await {
        Ok(()) => {}
        // Refused before the byte was taken: the node stopped the stream as busy.
        Err(quinn::WriteError::Stopped(code)) if busy(code) => return Ending::Busy,
        Err(e) => return Ending::Other(format!("write: {e}")),
    }
    match tokio::time::timeout(patience, recv.read_to_end(1 << 20)).await {
        Err(_) => Ending::Other("no answer".into()),
        Ok(Ok(bytes)) => match decode_frame::<Reply>(&bytes, FrameLimits::with_body(1 << 20)) {
            Ok(f) => Ending::Reply(f.header),
            Err(e) => Ending::Other(format!("bad reply: {e}")),
        },
        Ok(Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))) if busy(code) => {
            Ending::Busy
        }
        Ok(Err(e)) => Ending::Other(format!("read: {e}")),
    }
}
