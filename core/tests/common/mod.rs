//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use memmesh::transport::auth::ClusterKey;
use memmesh::transport::handshake::{self, LocalHello};
use memmesh::transport::tls;
use memmesh::{Keypair, Node, NodeBuilder, NodeId};
use quinn::crypto::rustls::QuicClientConfig;

/// A builder for a test node on loopback with mDNS off.
pub fn builder(name: &str) -> NodeBuilder {
    Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1)
}

/// Starts a test node.
pub async fn node(name: &str) -> Node {
    builder(name).start().await.expect("start node")
}

/// Starts an echo handler on `channel` of `node`.
pub fn echo(node: &Node, channel: &str) {
    node.channel(channel)
        .unwrap()
        .on_request(|req: memmesh::Request| async move { Ok(req.data) });
}

/// Polls `cond` until it holds or `deadline` passes (no timing is asserted).
pub async fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A raw authenticated peer: a bare quinn endpoint that completes the memmesh handshake,
/// so tests can write arbitrary bytes on streams.
pub struct RawPeer {
    pub endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
    pub id: NodeId,
}

impl RawPeer {
    pub async fn connect(to: SocketAddr, secret: Option<&[u8]>) -> memmesh::Result<RawPeer> {
        Self::connect_as(to, secret, &Keypair::generate()?).await
    }

    /// Like [`RawPeer::connect`], authenticated with `key` (e.g. a real node's identity).
    pub async fn connect_as(
        to: SocketAddr,
        secret: Option<&[u8]>,
        key: &Keypair,
    ) -> memmesh::Result<RawPeer> {
        let id = key.node_id();
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
            name: "raw".into(),
            addrs: vec![],
            trust: Default::default(),
            boot: handshake::draw_boot()?,
        };
        handshake::client(&conn, &local).await?;
        Ok(RawPeer { endpoint, conn, id })
    }

    /// Connects as an outsider with `key` (no cluster secret: the peer at `to` must list
    /// `key`'s node id in its `trusted_peers`, or serve commons); `server` is that peer.
    pub async fn connect_outsider(
        to: SocketAddr,
        key: &Keypair,
        server: NodeId,
    ) -> memmesh::Result<RawPeer> {
        let id = key.node_id();
        let client = QuicClientConfig::try_from(tls::client_config(key)?).unwrap();
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(client)));
        let conn = endpoint
            .connect(to, &tls::server_name_for(Some(server)))
            .unwrap()
            .await
            .map_err(|e| memmesh::transport::errors::connection_error(&e))?;
        let local = LocalHello {
            key: ClusterKey::new(None),
            name: "raw-outsider".into(),
            addrs: vec![],
            trust: memmesh::transport::trust::TrustPolicy {
                trusted_peers: [server].into(),
                ..Default::default()
            },
            boot: handshake::draw_boot()?,
        };
        handshake::client(&conn, &local).await?;
        Ok(RawPeer { endpoint, conn, id })
    }

    /// Writes `bytes` on a new bidirectional stream and returns whatever comes back
    /// (nothing if the connection is gone).
    pub async fn exchange(&self, bytes: &[u8]) -> Vec<u8> {
        let Ok((mut send, mut recv)) = self.conn.open_bi().await else {
            return Vec::new();
        };
        let _ = send.write_all(bytes).await;
        let _ = send.finish();
        recv.read_to_end(1 << 20).await.unwrap_or_default()
    }
}

/// Counts this process's threads and open file descriptors (Linux).
pub fn threads_and_fds() -> (usize, usize) {
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/task"), count("/proc/self/fd"))
}
