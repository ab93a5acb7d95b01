//! Creating the node's quinn endpoint (server and client in one socket), and the budgets
//! that bound what peers can make it hold: handshakes in progress ([`HandshakeGate`]),
//! streams served and request bytes held, per peer and in total ([`ServeBudget`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Result;
use crate::identity::{Keypair, NodeId};
use crate::transport::errors::TransportError;
use crate::transport::tls;
use crate::transport::tuning::{ServeLimits, TransportTuning};

/// The configurations of connections with peers at loopback addresses (see
/// [`TransportTuning::loopback_transport_config`]): the endpoint's own, starting at the MTU
/// bound.
#[derive(Debug, Clone)]
pub struct Loopback {
    /// For dialling a loopback address.
    pub client: quinn::ClientConfig,
    /// For accepting a connection from one.
    pub server: Arc<quinn::ServerConfig>,
}

/// Whether `ip` is a loopback address (an IPv4-mapped one included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Builds the endpoint bound to `addr`, and the configurations for loopback peers. Must
/// run inside the node's tokio runtime.
pub fn make_endpoint(
    key: &Keypair,
    addr: SocketAddr,
    tuning: &TransportTuning,
) -> Result<(quinn::Endpoint, Loopback)> {
    let transport = Arc::new(tuning.transport_config()?);
    let loopback = Arc::new(tuning.loopback_transport_config()?);

    let server_tls = Arc::new(
        QuicServerConfig::try_from(tls::server_config(key)?).map_err(|source| {
            TransportError::QuicTls {
                side: "server",
                source,
            }
        })?,
    );
    let mut server = quinn::ServerConfig::with_crypto(server_tls.clone());
    server.transport_config(transport.clone());
    let mut loopback_server = quinn::ServerConfig::with_crypto(server_tls);
    loopback_server.transport_config(loopback.clone());

    let client_tls = Arc::new(
        QuicClientConfig::try_from(tls::client_config(key)?).map_err(|source| {
            TransportError::QuicTls {
                side: "client",
                source,
            }
        })?,
    );
    let mut client = quinn::ClientConfig::new(client_tls.clone());
    client.transport_config(transport);
    let mut loopback_client = quinn::ClientConfig::new(client_tls);
    loopback_client.transport_config(loopback);

    let socket = tuning.bind_socket(addr)?;
    let mut endpoint = quinn::Endpoint::new(
        tuning.endpoint_config()?,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| TransportError::Endpoint { addr, source })?;
    endpoint.set_default_client_config(client);
    Ok((
        endpoint,
        Loopback {
            client: loopback_client,
            server: Arc::new(loopback_server),
        },
    ))
}

/// Who is behind an inbound connection, for per-source budgets: the IPv4 address, or the
/// /64 prefix of an IPv6 one (a host usually owns a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl Source {
    /// The source an address counts against.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug, Default)]
struct GateState {
    total: usize,
    per_source: HashMap<Source, usize>,
}

/// Bounds the inbound handshakes in progress: in total and per source. A connection that
/// cannot enter is refused before any TLS work is done for it.
#[derive(Debug)]
pub struct HandshakeGate {
    max_total: usize,
    max_per_source: usize,
    state: Mutex<GateState>,
}

/// A place in the [`HandshakeGate`], given back when dropped.
#[derive(Debug)]
pub struct HandshakeTicket {
    gate: Arc<HandshakeGate>,
    source: Source,
}

impl HandshakeGate {
    /// A gate admitting `max_total` handshakes at once, at most `max_per_source` of them
    /// from one source.
    pub fn new(max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_source,
            state: Mutex::new(GateState::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a handshake from `ip`, or `None` when the total or that source's
    /// budget is used up.
    pub fn try_enter(self: &Arc<Self>, ip: IpAddr) -> Option<HandshakeTicket> {
        let source = Source::of(ip);
        let mut state = self.lock();
        let mine = state.per_source.get(&source).copied().unwrap_or(0);
        if state.total >= self.max_total || mine >= self.max_per_source {
            return None;
        }
        state.total += 1;
        state.per_source.insert(source, mine + 1);
        Some(HandshakeTicket {
            gate: self.clone(),
            source,
        })
    }

    /// Handshakes in progress (total, and from `ip`'s source).
    pub fn in_progress(&self, ip: IpAddr) -> (usize, usize) {
        let state = self.lock();
        let mine = state.per_source.get(&Source::of(ip)).copied().unwrap_or(0);
        (state.total, mine)
    }
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.per_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_source.remove(&self.source);
            }
        }
    }
}

/// One peer's share of the serving budget: its concurrent streams and the request bytes
/// held for it. Shared by every connection of that peer.
#[derive(Debug)]
pub struct PeerBudget {
    streams: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

impl PeerBudget {
    /// Waits for a free stream slot of this peer (backpressure on this peer only).
    pub async fn stream_slot(&self) -> OwnedSemaphorePermit {
        loop {
            // The semaphore is never closed; a failed acquire cannot happen.
            if let Ok(p) = self.streams.clone().acquire_owned().await {
                return p;
            }
        }
    }

    /// Streams this peer may still open before it has to wait.
    pub fn free_streams(&self) -> usize {
        self.streams.available_permits()
    }
}

/// What serving one stream holds: a slot of its peer and one of the node.
#[derive(Debug)]
pub struct StreamPermit {
    _peer: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
}

/// The request bytes one frame holds, of its peer's budget and of the node's.
#[derive(Debug)]
pub struct FramePermit {
    _peer: Option<OwnedSemaphorePermit>,
    _node: Option<OwnedSemaphorePermit>,
}

/// The node-wide serving budget ([`ServeLimits`]): concurrent streams and request bytes,
/// per peer and in total.
#[derive(Debug)]
pub struct ServeBudget {
    limits: ServeLimits,
    streams: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    peers: Mutex<HashMap<NodeId, Weak<PeerBudget>>>,
}

impl ServeBudget {
    /// A budget with these (effective) limits.
    pub fn new(limits: ServeLimits) -> Self {
        let cap = |n: usize| n.min(Semaphore::MAX_PERMITS);
        Self {
            streams: Arc::new(Semaphore::new(cap(limits.streams_per_node))),
            bytes: Arc::new(Semaphore::new(cap(limits.request_bytes_per_node))),
            peers: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ServeLimits {
        &self.limits
    }

    /// The budget of `peer`, shared by all its connections while any is served.
    pub fn peer(&self, peer: NodeId) -> Arc<PeerBudget> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = peers.get(&peer).and_then(Weak::upgrade) {
            return b;
        }
        peers.retain(|_, w| w.strong_count() > 0);
        let cap = |n: usize| n.min(Semaphore::MAX_PERMITS);
        let b = Arc::new(PeerBudget {
            streams: Arc::new(Semaphore::new(cap(self.limits.streams_per_peer))),
            bytes: Arc::new(Semaphore::new(cap(self.limits.request_bytes_per_peer))),
        });
        peers.insert(peer, Arc::downgrade(&b));
        b
    }

    /// A node-wide stream slot for a stream that holds `peer_slot`, or `None` (refuse
    /// the stream) when the node serves `streams_per_node` streams already.
    pub fn try_stream(&self, peer_slot: OwnedSemaphorePermit) -> Option<StreamPermit> {
        let node = self.streams.clone().try_acquire_owned().ok()?;
        Some(StreamPermit {
            _peer: peer_slot,
            _node: node,
        })
    }

    /// Streams the node may still serve before it refuses.
    pub fn free_streams(&self) -> usize {
        self.streams.available_permits()
    }

    /// Request bytes the node may still hold before it refuses.
    pub fn free_bytes(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Reserves `len` request bytes for `peer` before its frame body is read, or fails
    /// at once with `QuotaExceeded` when the peer, or all peers together, hold their
    /// whole budget. It does not wait: a stream that waited without reading would leave
    /// the peer's data in the connection's flow-control window and could stall the very
    /// streams whose end would free the budget.
    pub fn frame_bytes(&self, peer: &PeerBudget, len: usize) -> Result<FramePermit> {
        if len == 0 {
            return Ok(FramePermit {
                _peer: None,
                _node: None,
            });
        }
        let over = |whose: &'static str, limit: usize| TransportError::FrameOverBudget {
            len,
            whose,
            limit,
        };
        let per_peer = self.limits.request_bytes_per_peer;
        let n = u32::try_from(len).map_err(|_| over("per peer", per_peer))?;
        let mine = peer
            .bytes
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| over("for this peer", per_peer))?;
        let node = self
            .bytes
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| over("for all peers", self.limits.request_bytes_per_node))?;
        Ok(FramePermit {
            _peer: Some(mine),
            _node: Some(node),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::identity::Keypair;

    /// The MTU of a fresh connection from `client` to `server`, dialled with `dial` and
    /// accepted with `accept` (real QUIC on 127.0.0.1).
    async fn first_mtu(
        dial: Option<quinn::ClientConfig>,
        accept: Option<Arc<quinn::ServerConfig>>,
    ) -> (u16, u16) {
        let tuning = TransportTuning::default();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (server, _) = make_endpoint(&Keypair::generate().unwrap(), local, &tuning).unwrap();
        let (client, _) = make_endpoint(&Keypair::generate().unwrap(), local, &tuning).unwrap();
        let addr = server.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let incoming = server.accept().await.unwrap();
            let connecting = match accept {
                Some(config) => incoming.accept_with(config),
                None => incoming.accept(),
            };
            let conn = connecting.unwrap().await.unwrap();
            let mtu = conn.stats().path.current_mtu;
            (conn, server, mtu)
        });
        let name = crate::transport::tls::server_name_for(None);
        let connecting = match dial {
            Some(config) => client.connect_with(config, addr, &name),
            None => client.connect(addr, &name),
        };
        let conn = connecting.unwrap().await.unwrap();
        let dialled = conn.stats().path.current_mtu;
        let (_their_conn, _server, accepted) = accepting.await.unwrap();
        (dialled, accepted)
    }

    #[tokio::test]
    async fn a_loopback_connection_starts_at_the_mtu_bound_and_others_discover_it() {
        let key = Keypair::generate().unwrap();
        let (_, loopback) = make_endpoint(
            &key,
            "127.0.0.1:0".parse().unwrap(),
            &TransportTuning::default(),
        )
        .unwrap();
        let bound = TransportTuning::default().mtu_upper_bound;
        let (dialled, accepted) =
            first_mtu(Some(loopback.client.clone()), Some(loopback.server.clone())).await;
        assert_eq!((dialled, accepted), (bound, bound));
        // The general configuration starts at QUIC's minimum and probes its way up.
        let (dialled, accepted) = first_mtu(None, None).await;
        assert!(dialled < bound && accepted < bound, "{dialled} {accepted}");
    }

    #[test]
    fn loopback_addresses_are_recognised_mapped_ones_included() {
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "0.0.0.0"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_gate_bounds_handshakes_per_source_and_in_total() {
        let gate = HandshakeGate::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t1 = gate.try_enter(a).unwrap();
        let _t2 = gate.try_enter(a).unwrap();
        assert!(gate.try_enter(a).is_none(), "per-source cap");
        let _t3 = gate.try_enter(b).unwrap();
        assert!(gate.try_enter(b).is_none(), "total cap");
        assert_eq!(gate.in_progress(a), (3, 2));
        drop(t1);
        assert_eq!(gate.in_progress(a), (2, 1));
        let _t4 = gate.try_enter(b).unwrap();
        assert_eq!(gate.in_progress(b), (3, 2));
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64_bit_prefix() {
        let gate = HandshakeGate::new(10, 1);
        let _t = gate.try_enter("2001:db8::1".parse().unwrap()).unwrap();
        assert!(gate.try_enter("2001:db8::2".parse().unwrap()).is_none());
        assert!(gate.try_enter("2001:db8:0:1::1".parse().unwrap()).is_some());
        let _m = gate.try_enter("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        assert!(gate.try_enter("10.0.0.1".parse().unwrap()).is_none());
    }

    #[tokio::test]
    async fn streams_wait_per_peer_and_are_refused_per_node() {
        let budget = ServeBudget::new(ServeLimits {
            streams_per_peer: 2,
            streams_per_node: 2,
            ..ServeLimits::default()
        });
        let a = budget.peer(Keypair::generate().unwrap().node_id());
        let b = budget.peer(Keypair::generate().unwrap().node_id());
        let s1 = budget.try_stream(a.stream_slot().await).unwrap();
        let _s2 = budget.try_stream(a.stream_slot().await).unwrap();
        assert_eq!(a.free_streams(), 0);
        // A third stream of `a` waits until one of its own ends.
        let waiting = a.stream_slot();
        tokio::pin!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(s1);
        let slot = waiting.await;
        let _s3 = budget.try_stream(slot).unwrap();
        // The node is full: `b`'s stream is refused, not queued.
        let slot = b.stream_slot().await;
        assert!(budget.try_stream(slot).is_none());
        assert_eq!(b.free_streams(), 2, "a refused stream gives its slot back");
    }

    #[test]
    fn request_bytes_are_refused_per_peer_and_per_node() {
        let budget = ServeBudget::new(ServeLimits {
            request_bytes_per_peer: 100,
            request_bytes_per_node: 150,
            ..ServeLimits::default()
        });
        let id = Keypair::generate().unwrap().node_id();
        let a = budget.peer(id);
        assert!(Arc::ptr_eq(&a, &budget.peer(id)), "one budget per peer");
        let b = budget.peer(Keypair::generate().unwrap().node_id());
        let c = budget.peer(Keypair::generate().unwrap().node_id());
        let f1 = budget.frame_bytes(&a, 80).unwrap();
        let err = budget.frame_bytes(&a, 30).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::QuotaExceeded,
            "a's own budget is full"
        );
        let fb = budget.frame_bytes(&b, 60).unwrap();
        // 80 + 60 held: c may not take 20 more of the node's 150.
        let err = budget.frame_bytes(&c, 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert!(err.message().contains("all peers"), "{err}");
        drop(f1);
        let f2 = budget.frame_bytes(&a, 30).unwrap();
        assert_eq!(budget.free_bytes(), 60);
        assert!(budget.frame_bytes(&c, 101).is_err());
        assert!(budget.frame_bytes(&c, usize::MAX).is_err());
        drop((f2, fb));
        assert_eq!(budget.free_bytes(), 150);
        assert!(budget.frame_bytes(&b, 0).is_ok());
    }
}
