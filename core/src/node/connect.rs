//! Dialling peers, accepting them, and serving the streams of every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::error::{Classify, Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::service;
use crate::transport::endpoint::{
    is_loopback, HandshakeGate, HandshakeTicket, PeerBudget, ServeBudget, StreamPermit,
};
use crate::transport::errors::{
    connect_error, connection_error, is_goodbye, CLOSE_PROTOCOL, CLOSE_REPLACED, STREAM_BUSY,
};
use crate::transport::handshake::{self, PeerHello};
use crate::transport::rpc::{finish_reading, read_request, write_reply};
use crate::transport::tls::server_name_for;
use crate::transport::trust::{may_use, Trust};
use crate::transport::tuning::ServeLimits;
use crate::wire::codec::decode_versioned;
use crate::wire::{StreamHeader, WIRE_VERSION};

/// What goes wrong reaching a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Dialling an address (TLS and memmesh handshakes included) took too long.
    #[error("connecting to {addr} timed out after {deadline:?}")]
    DialTimeout {
        /// The address dialled.
        addr: SocketAddr,
        /// The deadline.
        deadline: Duration,
    },
    /// The address dialled is this node.
    #[error("{addr} is this node itself")]
    SelfDial {
        /// The address dialled.
        addr: SocketAddr,
    },
    /// No address of this peer was ever learnt.
    #[error("unknown peer {id}: connect to its address first")]
    UnknownPeer {
        /// The peer.
        id: NodeId,
    },
    /// The peer is known but none of its addresses is.
    #[error("no known address for peer {peer}")]
    NoAddress {
        /// The peer's short id.
        peer: String,
    },
    /// Every known address of the peer failed; the last failure is the source.
    #[error("peer {peer} is unreachable: {}", .source.message())]
    Unreachable {
        /// The peer's short id.
        peer: String,
        /// The last dial's error.
        source: Error,
    },
    /// The peer did not answer a call in time.
    #[error("peer {peer} did not answer within {deadline:?}")]
    NoAnswer {
        /// The peer's short id.
        peer: String,
        /// The deadline.
        deadline: Duration,
    },
}

impl Classify for PeerError {
    fn kind(&self) -> ErrorKind {
        match self {
            PeerError::DialTimeout { .. } | PeerError::NoAnswer { .. } => ErrorKind::Timeout,
            PeerError::SelfDial { .. } => ErrorKind::InvalidInput,
            PeerError::UnknownPeer { .. } => ErrorKind::NotFound,
            PeerError::NoAddress { .. } => ErrorKind::PeerUnavailable,
            // A refusal or a shutdown says more than "unreachable".
            PeerError::Unreachable { source, .. } => match source.kind() {
                ErrorKind::Unauthorized | ErrorKind::Closed => source.kind(),
                _ => ErrorKind::PeerUnavailable,
            },
        }
    }
}

/// How long a re-dial of a member that membership considers down may take.
const DOWN_PEER_DIAL: Duration = Duration::from_secs(1);

/// `now + after`, saturating at a date far enough away to mean "never" (a deadline from
/// a user's or a peer's duration must not overflow the clock).
pub(crate) fn deadline_after(after: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The serving limits in force on this node (see [`ServeLimits::effective`]).
fn serve_limits(shared: &Shared) -> ServeLimits {
    let c = &shared.config;
    ServeLimits::default().effective(
        &c.tuning,
        c.max_message_size,
        c.request_timeout,
        c.connect_timeout,
    )
}

/// The node's serving budget, shared by every connection it serves (inbound or dialled),
/// made on first use from the node's configuration.
fn serve_budget(shared: &Arc<Shared>) -> Arc<ServeBudget> {
    shared
        .serve
        .get_or_init(|| Arc::new(ServeBudget::new(serve_limits(shared))))
        .clone()
}

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
    let name = server_name_for(expected);
    let connecting = if is_loopback(addr.ip()) {
        endpoint.connect_with(shared.loopback.client.clone(), addr, &name)
    } else {
        endpoint.connect(addr, &name)
    }
    .map_err(connect_error)?;
    let attempt = async {
        let conn = connecting.await.map_err(|e| connection_error(&e))?;
        let hello = handshake::client(&conn, &shared.hello).await?;
        Ok::<_, Error>((conn, hello))
    };
    let (conn, hello) = tokio::time::timeout(deadline, attempt)
        .await
        .map_err(|_| PeerError::DialTimeout { addr, deadline })??;
    if hello.id == shared.id {
        conn.close(CLOSE_PROTOCOL.into(), b"self-connection");
        return Err(PeerError::SelfDial { addr }.into());
    }
    let id = hello.id;
    Ok((id, adopt(shared, conn, hello, Some(addr), None)))
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
    // The dial's state (handshakes, hello, PAKE) is kilobytes: boxed, it is not carried
    // (and moved) in the future of every call that finds its connection pooled.
    Box::pin(redial(shared, id, max_dial)).await
}

/// Dials `id` (under its dial lock) unless a connection appeared meanwhile.
async fn redial(shared: &Arc<Shared>, id: NodeId, max_dial: Duration) -> Result<quinn::Connection> {
    if !shared.pool.knows(&id) {
        return Err(PeerError::UnknownPeer { id }.into());
    }
    let lock = shared.pool.dial_lock(&id);
    let _guard = lock.lock().await;
    if let Some(c) = shared.pool.live(&id) {
        return Ok(c);
    }
    // A member known to be down (it left, or failed) gets one short attempt: if it has
    // restarted it answers at once, and if not the caller hears so quickly.
    let down = shared.members.state(&id) == Some(crate::peer::PeerState::Down);
    let deadline = if down {
        max_dial.min(DOWN_PEER_DIAL)
    } else {
        max_dial
    };
    let mut last: Error = PeerError::NoAddress { peer: id.short() }.into();
    for addr in shared.pool.addrs(&id) {
        match dial_within(shared, addr, Some(id), deadline).await {
            Ok((_, conn)) => return Ok(conn),
            Err(e) => {
                debug!(peer = %id.short(), %addr, error = %e.chain(), "re-dial failed");
                last = e;
            }
        }
    }
    Err(PeerError::Unreachable {
        peer: id.short(),
        source: last,
    }
    .into())
}

/// Registers an authenticated connection and starts serving its streams; returns the
/// connection pooled for the peer (this one, unless it duplicates the pooled one from a
/// simultaneous dial and lost the tie-break: `transport::duplicate`). The connection
/// retired keeps serving for `request_timeout` + 1 s (so calls in flight on it finish),
/// then is closed.
pub fn adopt(
    shared: &Arc<Shared>,
    conn: quinn::Connection,
    hello: PeerHello,
    dialled: Option<SocketAddr>,
    place: Option<HandshakeTicket>,
) -> quinn::Connection {
    // How far apart the two handshakes of a simultaneous dial can complete: an inbound
    // handshake's bound (10 s, or `connect_timeout` if shorter), which a user's long
    // `connect_timeout` does not stretch (a connection seen dead by its peer for longer
    // than that must not keep winning the tie-break).
    let window = serve_limits(shared).handshake_timeout;
    let mut kept = conn.clone();
    if let Some(retired) = shared.pool.register(&hello, &conn, dialled, window) {
        let grace = shared
            .config
            .request_timeout
            .saturating_add(Duration::from_secs(1));
        if retired.stable_id() == conn.stable_id() {
            debug!(peer = %hello.id.short(), "a duplicate connection from a simultaneous dial: keeping the pooled one");
            kept = shared.pool.live(&hello.id).unwrap_or(kept);
        } else {
            debug!(peer = %hello.id.short(), "a newer connection replaces the pooled one");
        }
        shared.runtime.handle().spawn(async move {
            tokio::time::sleep(grace).await;
            retired.close(
                CLOSE_REPLACED.into(),
                b"replaced by another connection to the same peer",
            );
        });
    }
    info!(peer = %hello.id.short(), name = %hello.name, addr = %conn.remote_address(), trust = %hello.trust, "peer connected");
    // Outsiders never join membership (no gossip, no member list).
    if hello.trust.is_member() {
        shared
            .members
            .connected(hello.id, hello.name.clone(), shared.pool.addrs(&hello.id));
    }
    let task_shared = shared.clone();
    shared.runtime.handle().spawn(serve_connection(
        task_shared,
        hello.id,
        hello.trust,
        conn,
        place,
    ));
    kept
}

/// Accepts inbound connections until the endpoint closes. At most `pending_handshakes`
/// connections (`pending_handshakes_per_source` from one address) may be in their TLS +
/// memmesh handshake at once, each for at most `handshake_timeout`, and at most
/// `inbound_connections` (`inbound_connections_per_source`) may be open at once; a
/// connection beyond either is refused before any TLS work is done for it.
pub async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    let limits = serve_budget(&shared).limits().clone();
    let gate = HandshakeGate::new(
        limits.pending_handshakes,
        limits.pending_handshakes_per_source,
    );
    // The same counting, for connections open from their first packet until closed.
    let open = HandshakeGate::new(
        limits.inbound_connections,
        limits.inbound_connections_per_source,
    );
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        let Some(place) = open.try_enter(remote.ip()) else {
            debug!(%remote, "too many inbound connections open: inbound connection refused");
            incoming.refuse();
            continue;
        };
        let Some(ticket) = gate.try_enter(remote.ip()) else {
            debug!(%remote, "too many handshakes in progress: inbound connection refused");
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        let deadline = deadline_after(limits.handshake_timeout);
        tokio::spawn(async move {
            let connecting = if is_loopback(remote.ip()) {
                incoming.accept_with(shared.loopback.server.clone())
            } else {
                incoming.accept()
            };
            let connecting = match connecting {
                Ok(connecting) => connecting,
                Err(e) => {
                    debug!(%remote, error = %connection_error(&e).chain(), "inbound connection failed");
                    return;
                }
            };
            let conn = match tokio::time::timeout_at(deadline, connecting).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    debug!(%remote, error = %connection_error(&e).chain(), "inbound connection failed");
                    return;
                }
                Err(_) => {
                    debug!(%remote, "inbound TLS handshake timed out");
                    return;
                }
            };
            match tokio::time::timeout_at(deadline, handshake::server(&conn, &shared.hello)).await {
                Ok(Ok(hello)) => {
                    drop(ticket);
                    // Serving it keeps its place among the open connections until it ends.
                    adopt(&shared, conn, hello, None, Some(place));
                }
                Ok(Err(e)) => debug!(%remote, error = %e.chain(), "inbound connection refused"),
                Err(_) => {
                    debug!(%remote, "inbound memmesh handshake timed out");
                    conn.close(CLOSE_PROTOCOL.into(), b"handshake timed out");
                }
            }
        });
    }
}

/// Serves the streams a peer opens on `conn` until it closes: at most `streams_per_peer`
/// of this peer's streams at once (across its connections; further ones wait in QUIC),
/// and a stream that would take the node past `streams_per_node` is refused at once.
async fn serve_connection(
    shared: Arc<Shared>,
    peer: NodeId,
    trust: Trust,
    conn: quinn::Connection,
    place: Option<HandshakeTicket>,
) {
    let _place = place;
    let budget = serve_budget(&shared);
    let mine = budget.peer(peer);
    let bad_frames = Arc::new(AtomicU32::new(0));
    // Made once, not per stream (each stream used to build and drop them twice).
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    let closed = conn.closed();
    tokio::pin!(closed);
    tokio::spawn(refuse_uni(conn.clone(), shared.cancel.clone()));
    let reason = loop {
        let slot = tokio::select! {
            _ = &mut cancelled => break None,
            e = &mut closed => break Some(e),
            slot = mine.stream_slot() => slot,
        };
        tokio::select! {
            _ = &mut cancelled => break None,
            accepted = conn.accept_bi() => match accepted {
                Ok((mut send, mut recv)) => match budget.try_stream(slot) {
                    Some(permit) => {
                        let stream = Stream {
                            shared: shared.clone(),
                            peer,
                            trust,
                            budget: budget.clone(),
                            mine: mine.clone(),
                            bad_frames: bad_frames.clone(),
                            _permit: permit,
                        };
                        // Polled here once first: a request whose frame came with the
                        // stream and whose handler answers at once (a cache request) is
                        // served without a task of its own, a wake-up and a thread
                        // hand-off; one that waits goes on as its own task.
                        let mut serving = Box::pin(stream.serve(send, recv));
                        if futures::poll!(&mut serving).is_pending() {
                            tokio::spawn(serving);
                        }
                    }
                    None => {
                        debug!(peer = %peer.short(), "the node serves its limit of streams: stream refused");
                        let _ = send.reset(STREAM_BUSY.into());
                        let _ = recv.stop(STREAM_BUSY.into());
                    }
                },
                Err(e) => break Some(e),
            },
        }
    };
    if is_goodbye(reason.as_ref()) && trust.is_member() {
        shared.members.closed(peer, true);
    }
    if shared.pool.lost(&peer, &conn) {
        match reason {
            Some(e) => {
                info!(peer = %peer.short(), reason = %connection_error(&e).chain(), "peer disconnected")
            }
            None => debug!(peer = %peer.short(), "connection closed at shutdown"),
        }
    }
}

/// Refuses, cleanly, every unidirectional stream a peer opens on `conn` (no service uses
/// them yet) until the connection closes or the node shuts down.
async fn refuse_uni(conn: quinn::Connection, cancel: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = conn.accept_uni() => match accepted {
                Ok(mut recv) => {
                    let _ = recv.stop(CLOSE_PROTOCOL.into());
                }
                Err(_) => return,
            },
        }
    }
}

/// One service stream being served, with the budget it holds until it ends.
struct Stream {
    shared: Arc<Shared>,
    peer: NodeId,
    /// The trust level of the connection the stream came on.
    trust: Trust,
    budget: Arc<ServeBudget>,
    mine: Arc<PeerBudget>,
    bad_frames: Arc<AtomicU32>,
    _permit: StreamPermit,
}

impl Stream {
    /// Reads the stream's request frame (within the stream deadline and the request-byte
    /// budget), dispatches it, and writes the reply (within a fresh deadline).
    async fn serve(self, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
        let Stream {
            shared,
            peer,
            trust,
            budget,
            mine,
            bad_frames,
            _permit,
        } = self;
        let limits = shared.limits();
        let timeout = budget.limits().stream_timeout;
        let read = read_request(&mut recv, limits, &budget, &mine, deadline_after(timeout)).await;
        let parsed = match read {
            Ok(None) => return,
            Ok(Some(frame)) => decode_versioned::<StreamHeader>(&frame.header, WIRE_VERSION)
                .map(|h| (h, frame.body, frame.permit))
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        // Every service refuses what the connection's trust level does not allow.
        let parsed = parsed.and_then(|(h, body, permit)| {
            if may_use(trust, &h.service) {
                Ok((h, body, permit))
            } else {
                Err(service::ServiceError::NotAllowed { trust }.into())
            }
        });
        if let Ok((header, _, _)) = &parsed {
            // A transfer takes the whole stream over.
            if let Some(handler) = shared.services.stream_handler(&header.service) {
                handler
                    .serve(peer, header.service.clone(), send, recv)
                    .await;
                return;
            }
        }
        let result = match parsed {
            Ok((header, body, _held)) => {
                // If the requester gives up (stops reading), stop working for it.
                let stopped = send.stopped();
                tokio::select! {
                    // The handler first: one that answers at once never polls `stopped`
                    // (which locks the connection).
                    biased;
                    result = service::handle(&shared, peer, trust, header.service, body) => result,
                    _ = stopped => {
                        debug!(peer = %peer.short(), "the requester gave up; handler cancelled");
                        return;
                    }
                }
            }
            Err(e) => {
                refused(&peer, &e, &bad_frames);
                let code = if e.kind() == ErrorKind::QuotaExceeded {
                    STREAM_BUSY
                } else {
                    CLOSE_PROTOCOL
                };
                let _ = recv.stop(code.into());
                Err(e)
            }
        };
        let _ = write_reply(&mut send, result, limits, deadline_after(timeout)).await;
        let _ = send.finish();
        // Read the peer's end of stream (it normally came with the frame): dropping an
        // unfinished stream makes quinn send STOP_SENDING, an extra packet per request.
        finish_reading(&mut recv).await;
    }
}

/// Logs a request frame that was refused: the first bad frame of a connection loudly,
/// the rest (and frames refused by a budget or a deadline) quietly.
fn refused(peer: &NodeId, e: &Error, bad_frames: &AtomicU32) {
    match e.kind() {
        ErrorKind::QuotaExceeded | ErrorKind::Timeout | ErrorKind::PeerUnavailable => {
            debug!(peer = %peer.short(), error = %e.chain(), "request not served");
        }
        _ if bad_frames.fetch_add(1, Ordering::Relaxed) == 0 => {
            warn!(peer = %peer.short(), error = %e.chain(), "rejected a bad frame from peer");
        }
        _ => debug!(peer = %peer.short(), error = %e.chain(), "rejected a bad frame from peer"),
    }
}
