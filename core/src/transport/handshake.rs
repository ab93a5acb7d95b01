//! The memmesh handshake that follows the TLS handshake on every connection.
//!
//! The client opens the first bidirectional stream and sends a [`Hello`] carrying its
//! cluster proof, name and listen addresses; the server checks the proof and answers with
//! its own [`Hello`]; the client checks that one. A side whose check fails closes the
//! connection with [`CLOSE_UNAUTHORIZED`] before any service stream is accepted.

use std::net::SocketAddr;

use tracing::{debug, warn};

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::transport::auth::{exporter, ClusterKey, Role};
use crate::transport::errors::{connection_error, CLOSE_PROTOCOL, CLOSE_UNAUTHORIZED};
use crate::transport::tls::peer_node_id;
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame, write_frame};
use crate::wire::{Hello, WIRE_VERSION};

/// Hello frames are small: refuse anything larger.
const HELLO_LIMITS: FrameLimits = FrameLimits {
    max_header: 16 * 1024,
    max_body: 0,
};

/// What this node tells peers about itself.
#[derive(Debug, Clone)]
pub struct LocalHello {
    /// The cluster key.
    pub key: ClusterKey,
    /// Our name.
    pub name: String,
    /// Our listen addresses.
    pub addrs: Vec<SocketAddr>,
}

/// What a peer told us about itself, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// The peer's NodeId (from its TLS certificate).
    pub id: NodeId,
    /// The peer's name.
    pub name: String,
    /// The peer's listen addresses.
    pub addrs: Vec<SocketAddr>,
}

fn hello(local: &LocalHello, role: Role, exp: &[u8; 32]) -> Hello {
    Hello {
        version: WIRE_VERSION,
        proof: local.key.proof(role, exp),
        name: local.name.clone(),
        addrs: local.addrs.clone(),
    }
}

fn refuse(conn: &quinn::Connection, code: u32, reason: &str) -> Error {
    conn.close(code.into(), reason.as_bytes());
    let kind = if code == CLOSE_UNAUTHORIZED {
        ErrorKind::Unauthorized
    } else {
        ErrorKind::Unsupported
    };
    Error::new(kind, reason.to_string())
}

fn check_peer(
    conn: &quinn::Connection,
    local: &LocalHello,
    peer_role: Role,
    exp: &[u8; 32],
    msg: Hello,
) -> Result<PeerHello> {
    let id = peer_node_id(conn).ok_or_else(|| {
        refuse(
            conn,
            CLOSE_UNAUTHORIZED,
            "peer presented no usable certificate",
        )
    })?;
    if msg.version != WIRE_VERSION {
        warn!(peer = %id.short(), version = msg.version, "peer speaks an unsupported wire version");
        return Err(refuse(conn, CLOSE_PROTOCOL, "unsupported wire version"));
    }
    if !local.key.verify(peer_role, exp, &msg.proof) {
        warn!(peer = %id.short(), addr = %conn.remote_address(), "peer failed cluster authentication");
        return Err(refuse(conn, CLOSE_UNAUTHORIZED, "cluster secret mismatch"));
    }
    Ok(PeerHello {
        id,
        name: msg.name,
        addrs: msg.addrs,
    })
}

/// Runs the dialling side of the handshake.
pub async fn client(conn: &quinn::Connection, local: &LocalHello) -> Result<PeerHello> {
    let exp = exporter(conn)?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    write_frame(
        &mut send,
        &hello(local, Role::Client, &exp),
        &[],
        HELLO_LIMITS,
    )
    .await?;
    let _ = send.finish();
    let reply = read_frame::<Hello>(&mut recv, HELLO_LIMITS).await?;
    let peer = check_peer(conn, local, Role::Server, &exp, reply.header)?;
    debug!(peer = %peer.id.short(), name = %peer.name, "handshake complete (client)");
    Ok(peer)
}

/// Runs the accepting side of the handshake.
pub async fn server(conn: &quinn::Connection, local: &LocalHello) -> Result<PeerHello> {
    let exp = exporter(conn)?;
    let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| connection_error(&e))?;
    let frame = match read_frame::<Hello>(&mut recv, HELLO_LIMITS).await {
        Ok(f) => f,
        Err(e) => {
            return Err(refuse(
                conn,
                CLOSE_PROTOCOL,
                &format!("bad hello: {}", e.message()),
            ));
        }
    };
    let peer = check_peer(conn, local, Role::Client, &exp, frame.header)?;
    write_frame(
        &mut send,
        &hello(local, Role::Server, &exp),
        &[],
        HELLO_LIMITS,
    )
    .await?;
    let _ = send.finish();
    debug!(peer = %peer.id.short(), name = %peer.name, "handshake complete (server)");
    Ok(peer)
}
