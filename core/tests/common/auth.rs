//! Raw peers for the authentication tests: a bare QUIC server that records what a
//! dialling node sends it, and a raw member that completes the handshake with a chosen
//! identity, name and address list.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use memmesh::transport::auth::{exporter, ClusterKey, Role};
use memmesh::transport::handshake::{self, LocalHello};
use memmesh::transport::tls;
use memmesh::wire::codec::{decode_header, encode_frame, FrameLimits};
use memmesh::wire::{Hello, WIRE_VERSION};
use memmesh::Keypair;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

fn hello_limits() -> FrameLimits {
    FrameLimits {
        max_header: 16 * 1024,
        max_body: 0,
    }
}

/// Everything a raw server received from a dialling node on the handshake stream.
#[derive(Debug)]
pub struct Captured {
    /// The connection's TLS exporter value (both ends know it).
    pub exporter: [u8; 32],
    /// The first frame's header, decoded.
    pub first: Hello,
    /// The first frame as it came on the wire.
    pub first_bytes: Vec<u8>,
    /// Every byte that came after the first frame, until the stream or connection ended.
    pub rest: Vec<u8>,
}

/// A bare quinn server with an identity of its own, on 127.0.0.1.
pub struct RawServer {
    pub endpoint: quinn::Endpoint,
    pub addr: SocketAddr,
}

impl RawServer {
    pub fn bind() -> RawServer {
        let key = Keypair::generate().unwrap();
        let crypto = QuicServerConfig::try_from(tls::server_config(&key).unwrap()).unwrap();
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        RawServer { endpoint, addr }
    }

    /// Accepts one connection, reads the dialler's first frame, answers it the way a
    /// server holding `secret` would (a PAKE message and a key confirmation), then
    /// records whatever else comes until the stream or the connection ends.
    pub async fn accept_once(&self, secret: &[u8]) -> Captured {
        let conn = self.endpoint.accept().await.unwrap().await.unwrap();
        let exp = exporter(&conn).unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let mut prefix = [0u8; 8];
        recv.read_exact(&mut prefix).await.unwrap();
        let head_len = u32::from_be_bytes(prefix[..4].try_into().unwrap()) as usize;
        let body_len = u32::from_be_bytes(prefix[4..].try_into().unwrap()) as usize;
        let mut rest_of_frame = vec![0u8; head_len + body_len];
        recv.read_exact(&mut rest_of_frame).await.unwrap();
        let first: Hello = decode_header(&rest_of_frame[..head_len]).unwrap();
        let mut first_bytes = prefix.to_vec();
        first_bytes.extend_from_slice(&rest_of_frame);

        let pake = ClusterKey::new(Some(secret)).start(Role::Server, &exp);
        let ours = pake.message();
        let confirmation = pake
            .finish(&first.proof)
            .map(|s| s.confirmation(Role::Server))
            .unwrap_or([0u8; 32]);
        for proof in [ours, confirmation] {
            let frame = Hello {
                version: WIRE_VERSION,
                proof,
                name: String::new(),
                addrs: Vec::new(),
                boot: 0,
            };
            let _ = send
                .write_all(&encode_frame(&frame, &[], hello_limits()).unwrap())
                .await;
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
                rest.extend_from_slice(&chunk.bytes);
            }
        })
        .await;
        Captured {
            exporter: exp,
            first,
            first_bytes,
            rest,
        }
    }
}

/// A raw member with identity `key` that completes the handshake with `secret`,
/// announcing `name` and `addrs`; returns the connection (kept open by the caller).
pub async fn raw_member(
    to: SocketAddr,
    key: &Keypair,
    secret: Option<&[u8]>,
    name: &str,
    addrs: Vec<SocketAddr>,
) -> memmesh::Result<(quinn::Endpoint, quinn::Connection)> {
    let client = QuicClientConfig::try_from(tls::client_config(key)?).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(client)));
    let conn = endpoint
        .connect(to, &tls::server_name_for(None))
        .unwrap()
        .await
        .map_err(|e| memmesh::transport::errors::connection_error(&e))?;
    let local = LocalHello {
        key: ClusterKey::new(secret),
        name: name.into(),
        addrs,
        trust: Default::default(),
        boot: handshake::draw_boot()?,
    };
    handshake::client(&conn, &local).await?;
    Ok((endpoint, conn))
}
