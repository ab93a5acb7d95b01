//! Dialling peers, accepting them, and serving the streams of every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::membership::member::MemberId;
use crate::node::shared::Shared;
use crate::service;
use crate::transport::errors::{
    connect_error, connection_error, is_goodbye, CLOSE_PROTOCOL, CLOSE_REPLACED,
};
use crate::transport::handshake::{self, PeerHello};
use crate::transport::tls::server_name_for;
use crate::wire::codec::{decode_versioned, encode_frame, FrameLimits};
use crate::wire::io::read_raw_frame_opt;
use crate::wire::{Reply, StreamHeader, WIRE_VERSION};

/// How long a re-dial of a member that membership considers down may take.
const DOWN_PEER_DIAL: Duration = Duration::from_secs(1);

/// Dials `addr`, authenticates, and adopts the connection. With `expected`, the peer's
/// key must be that NodeId.
pub async fn dial(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    expected: Option<NodeId>,
) -> Result<(NodeId, quinn::Connection)> {
    dial_within(shared, addr, expected, shared.config.connect_timeout).await
}

/// [`dial`] with an explicit deadline.
async fn dial_within(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    expected: Option<NodeId>,
    deadline: Duration,
) -> Result<(NodeId, quinn::Connection)> {
    let endpoint = shared.endpoint()?;
    let connecting = endpoint
        .connect(addr, &server_name_for(expected))
        .map_err(connect_error)?;
    let attempt = async {
        let conn = connecting.await.map_err(|e| connection_error(&e))?;
        let hello = handshake::client(&conn, &shared.hello).await?;
        Ok::<_, Error>((conn, hello))
    };
    let (conn, hello) = tokio::time::timeout(deadline, attempt)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!("connecting to {addr} timed out after {deadline:?}"),
            )
        })??;
    if hello.id == shared.id {
        conn.close(CLOSE_PROTOCOL.into(), b"self-connection");
        return Err(Error::invalid(format!("{addr} is this node itself")));
    }
    let id = hello.id;
    adopt(shared, conn.clone(), hello, Some(addr));
    Ok((id, conn))
}

/// The connection to `id`: the pooled one, or a fresh dial of its known addresses.
pub async fn connection(shared: &Arc<Shared>, id: NodeId) -> Result<quinn::Connection> {
    connection_within(shared, id, shared.config.connect_timeout).await
}

/// [`connection`] with a bound on how long a dial may take (SWIM uses a short one: a
/// probe that waits for a slow dial is useless, and it must not hold the dial lock long).
pub async fn connection_within(
    shared: &Arc<Shared>,
    id: NodeId,
    max_dial: Duration,
) -> Result<quinn::Connection> {
    if let Some(c) = shared.pool.live(&id) {
        return Ok(c);
    }
    if !shared.pool.knows(&id) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("unknown peer {id}: connect to its address first"),
        ));
    }
    let lock = shared.pool.dial_lock(&id);
    let _guard = lock.lock().await;
    if let Some(c) = shared.pool.live(&id) {
        return Ok(c);
    }
    // A member known to be down (it left, or failed) gets one short attempt: if it has
    // restarted it answers at once, and if not the caller hears so quickly.
    let down = shared
        .membership()
        .ok()
        .and_then(|m| m.with_view(|v| v.state(&id)))
        == Some(crate::peer::PeerState::Down);
    let deadline = if down {
        max_dial.min(DOWN_PEER_DIAL)
    } else {
        max_dial
    };
    let mut last = Error::new(
        ErrorKind::PeerUnavailable,
        format!("no known address for peer {}", id.short()),
    );
    for addr in shared.pool.addrs(&id) {
        match dial_within(shared, addr, Some(id), deadline).await {
            Ok((_, conn)) => return Ok(conn),
            Err(e) => {
                debug!(peer = %id.short(), %addr, error = %e, "re-dial failed");
                last = e;
            }
        }
    }
    let kind = match last.kind() {
        ErrorKind::Unauthorized | ErrorKind::Closed => last.kind(),
        _ => ErrorKind::PeerUnavailable,
    };
    Err(Error::new(
        kind,
        format!("peer {} is unreachable: {}", id.short(), last.message()),
    ))
}

/// Registers an authenticated connection and starts serving its streams. A connection it
/// replaces keeps serving for `request_timeout` (so calls in flight on it finish), then
/// is closed.
pub fn adopt(
    shared: &Arc<Shared>,
    conn: quinn::Connection,
    hello: PeerHello,
    dialled: Option<SocketAddr>,
) {
    if let Some(old) = shared.pool.register(&hello, &conn, dialled) {
        let grace = shared.config.request_timeout + Duration::from_secs(1);
        debug!(peer = %hello.id.short(), "a newer connection replaces the pooled one");
        shared.runtime.handle().spawn(async move {
            tokio::time::sleep(grace).await;
            old.close(CLOSE_REPLACED.into(), b"replaced by a newer connection");
        });
    }
    info!(peer = %hello.id.short(), name = %hello.name, addr = %conn.remote_address(), "peer connected");
    if let Ok(m) = shared.membership() {
        m.connected(MemberId {
            id: hello.id,
            generation: 0,
            name: hello.name.clone(),
            addrs: shared.pool.addrs(&hello.id),
        });
    }
    let task_shared = shared.clone();
    shared
        .runtime
        .handle()
        .spawn(serve_connection(task_shared, hello.id, conn));
}

/// Accepts inbound connections until the endpoint closes.
pub async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let attempt = async {
                let conn = incoming.await.map_err(|e| connection_error(&e))?;
                let hello = handshake::server(&conn, &shared.hello).await?;
                Ok::<_, Error>((conn, hello))
            };
            match tokio::time::timeout(shared.config.connect_timeout, attempt).await {
                Ok(Ok((conn, hello))) => {
                    adopt(&shared, conn, hello, None);
                }
                Ok(Err(e)) => debug!(%remote, error = %e, "inbound connection refused"),
                Err(_) => debug!(%remote, "inbound handshake timed out"),
            }
        });
    }
}

/// Serves the streams a peer opens on `conn` until it closes.
async fn serve_connection(shared: Arc<Shared>, peer: NodeId, conn: quinn::Connection) {
    let bad_frames = Arc::new(AtomicU32::new(0));
    let reason = loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break None,
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let shared = shared.clone();
                    let bad_frames = bad_frames.clone();
                    tokio::spawn(serve_stream(shared, peer, send, recv, bad_frames));
                }
                Err(e) => break Some(e),
            },
            accepted = conn.accept_uni() => match accepted {
                // No service uses unidirectional streams yet: refuse them cleanly.
                Ok(mut recv) => { let _ = recv.stop(CLOSE_PROTOCOL.into()); }
                Err(e) => break Some(e),
            },
        }
    };
    if is_goodbye(reason.as_ref()) {
        if let Ok(m) = shared.membership() {
            m.closed(peer, true);
        }
    }
    if shared.pool.lost(&peer, &conn) {
        match reason {
            Some(e) => {
                info!(peer = %peer.short(), reason = %connection_error(&e), "peer disconnected")
            }
            None => debug!(peer = %peer.short(), "connection closed at shutdown"),
        }
    }
}

/// Reads one service frame, dispatches it, and writes the reply.
async fn serve_stream(
    shared: Arc<Shared>,
    peer: NodeId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    bad_frames: Arc<AtomicU32>,
) {
    let limits = shared.limits();
    let parsed = match read_raw_frame_opt(&mut recv, limits).await {
        Ok(None) => return,
        Ok(Some(raw)) => decode_versioned::<StreamHeader>(&raw.header, WIRE_VERSION)
            .map(|h| (h, raw.body))
            .map_err(Error::from),
        Err(e) => Err(e),
    };
    if let Ok((
        StreamHeader {
            service: crate::wire::Service::Transfer(offer),
            ..
        },
        _,
    )) = &parsed
    {
        // A transfer takes the whole stream over.
        crate::transfer::receive::serve(shared, peer, offer.clone(), send, recv).await;
        return;
    }
    if let Ok((
        StreamHeader {
            service: crate::wire::Service::Fetch { id },
            ..
        },
        _,
    )) = &parsed
    {
        crate::transfer::fetch::serve(shared, peer, *id, send, recv).await;
        return;
    }
    let result = match parsed {
        Ok((header, body)) => {
            // If the requester gives up (stops reading), stop working for it.
            let stopped = send.stopped();
            tokio::select! {
                result = service::handle(&shared, peer, header.service, body) => result,
                _ = stopped => {
                    debug!(peer = %peer.short(), "the requester gave up; handler cancelled");
                    return;
                }
            }
        }
        Err(e) => {
            // Log the first bad frame of a connection loudly, the rest quietly.
            if bad_frames.fetch_add(1, Ordering::Relaxed) == 0 {
                warn!(peer = %peer.short(), error = %e, "rejected a bad frame from peer");
            } else {
                debug!(peer = %peer.short(), error = %e, "rejected a bad frame from peer");
            }
            let _ = recv.stop(CLOSE_PROTOCOL.into());
            Err(e)
        }
    };
    let _ = write_reply(&mut send, result, limits).await;
    let _ = send.finish();
    // Read the peer's end of stream (it normally came with the frame): dropping an
    // unfinished stream makes quinn send STOP_SENDING, an extra packet per request.
    finish_reading(&mut recv).await;
}

/// Waits briefly for the end of a stream whose one frame has been read.
pub(crate) async fn finish_reading(recv: &mut quinn::RecvStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), recv.read_to_end(0)).await;
}

async fn write_reply(
    send: &mut quinn::SendStream,
    result: Result<bytes::Bytes>,
    limits: FrameLimits,
) -> Result<()> {
    let frame = match result {
        Ok(body) => encode_frame(&Reply::Ok, &body, limits).or_else(|e| {
            let err = Error::new(
                ErrorKind::InvalidInput,
                format!("the response is too large: {e}"),
            );
            encode_frame(&Reply::from_error(&err), &[], limits)
        }),
        Err(e) => encode_frame(&Reply::from_error(&e), &[], limits),
    }?;
    send.write_all(&frame)
        .await
        .map_err(crate::transport::errors::write_error)
}
