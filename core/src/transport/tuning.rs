//! QUIC transport settings, shared by memmesh and by the bare-quinn baselines in `bench/`
//! so that both are measured with the same settings.
//!
//! Defaults follow the measurements recorded in DESIGN.md: GSO on, an MTU discovery bound
//! of 6500 bytes (10 x 6500 stays under the 65507-byte GSO batch limit), a matching
//! `max_udp_payload_size`, 4 MiB socket buffers and Cubic congestion control.
//!
//! [`ServeLimits`] holds the budgets that bound what peers can make a node hold while it
//! serves them (streams, request bytes, pending handshakes, and how long each may take).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::congestion::{BbrConfig, CubicConfig, NewRenoConfig};
use quinn::{EndpointConfig, IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};

use crate::error::Result;
use crate::transport::errors::TransportError;

/// The congestion controller a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// CUBIC (quinn's default and ours).
    #[default]
    Cubic,
    /// NewReno.
    NewReno,
    /// BBR (experimental in quinn).
    Bbr,
}

/// Transport tuning knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportTuning {
    /// Upper bound for path MTU discovery (bytes of UDP payload).
    pub mtu_upper_bound: u16,
    /// Keep segmentation offload (GSO) enabled.
    pub segmentation_offload: bool,
    /// Per-stream receive window in bytes.
    pub stream_receive_window: u32,
    /// Per-connection receive window in bytes.
    pub receive_window: u32,
    /// Per-connection send window in bytes.
    pub send_window: u64,
    /// UDP socket send and receive buffer size in bytes.
    pub socket_buffer: usize,
    /// Maximum concurrent bidirectional streams a peer may open on one connection
    /// (default and upper bound [`MAX_STREAMS_PER_PEER`]: a stream QUIC let in that the
    /// node could not serve yet would hold the connection's flow-control window).
    pub max_bidi_streams: u32,
    /// Maximum concurrent unidirectional streams a peer may open.
    pub max_uni_streams: u32,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Idle time after which a silent peer's connection is considered lost.
    pub idle_timeout: Duration,
    /// Congestion controller.
    pub congestion: CongestionControl,
}

impl Default for TransportTuning {
    fn default() -> Self {
        Self {
            mtu_upper_bound: 6500,
            segmentation_offload: true,
            stream_receive_window: 8 * 1024 * 1024,
            receive_window: 32 * 1024 * 1024,
            send_window: 32 * 1024 * 1024,
            socket_buffer: 4 * 1024 * 1024,
            max_bidi_streams: MAX_STREAMS_PER_PEER as u32,
            max_uni_streams: 256,
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            congestion: CongestionControl::Cubic,
        }
    }
}

impl TransportTuning {
    /// Builds the quinn transport configuration.
    pub fn transport_config(&self) -> Result<TransportConfig> {
        let mut t = TransportConfig::default();
        let mut mtu = MtuDiscoveryConfig::default();
        mtu.upper_bound(self.mtu_upper_bound);
        t.mtu_discovery_config(Some(mtu))
            .enable_segmentation_offload(self.segmentation_offload)
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .send_window(self.send_window)
            .max_concurrent_bidi_streams(VarInt::from_u32(
                self.max_bidi_streams.min(MAX_STREAMS_PER_PEER as u32),
            ))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_uni_streams))
            .keep_alive_interval(Some(self.keep_alive))
            .max_idle_timeout(Some(IdleTimeout::try_from(self.idle_timeout).map_err(
                |source| TransportError::IdleTimeoutTooLarge {
                    timeout: self.idle_timeout,
                    source,
                },
            )?));
        match self.congestion {
            CongestionControl::Cubic => {
                t.congestion_controller_factory(Arc::new(CubicConfig::default()))
            }
            CongestionControl::NewReno => {
                t.congestion_controller_factory(Arc::new(NewRenoConfig::default()))
            }
            CongestionControl::Bbr => {
                t.congestion_controller_factory(Arc::new(BbrConfig::default()))
            }
        };
        Ok(t)
    }

    /// The transport configuration for a peer at a loopback address: the same, starting
    /// at the MTU bound. Loopback carries any datagram up to the bound, so there is
    /// nothing to discover, and on loopback every discovery probe succeeds: ~9 probes of up
    /// to the bound per direction per connection, padding that quinn parses byte by byte
    /// (half the CPU of a forming cluster of in-process nodes; `bench/README.md`,
    /// membership-bench). Discovery stays configured, so black-hole detection still falls
    /// back to 1200 bytes if the bound does not pass (a loopback with a lowered MTU).
    pub fn loopback_transport_config(&self) -> Result<TransportConfig> {
        let mut t = self.transport_config()?;
        t.initial_mtu(self.mtu_upper_bound.max(1200));
        Ok(t)
    }

    /// Builds the quinn endpoint configuration (UDP payload bound matching the MTU bound).
    pub fn endpoint_config(&self) -> Result<EndpointConfig> {
        let mut e = EndpointConfig::default();
        e.max_udp_payload_size(self.mtu_upper_bound.max(1200))
            .map_err(TransportError::UdpPayload)?;
        Ok(e)
    }

    /// Binds a UDP socket with the configured buffer sizes.
    pub fn bind_socket(&self, addr: SocketAddr) -> Result<std::net::UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let ctx = |source| TransportError::Bind { addr, source };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(ctx)?;
        if addr.is_ipv6() {
            // Dual-stack when bound to [::].
            let _ = socket.set_only_v6(false);
        }
        // Buffers are a hint: the kernel may clamp them; failure is not fatal.
        let _ = socket.set_recv_buffer_size(self.socket_buffer);
        let _ = socket.set_send_buffer_size(self.socket_buffer);
        socket.bind(&addr.into()).map_err(ctx)?;
        Ok(socket.into())
    }
}

/// Default most service streams the node serves at once for one peer (across all of its
/// connections). Further streams wait, unaccepted, until one ends.
pub const MAX_STREAMS_PER_PEER: usize = 256;
/// Default most service streams the node serves at once for all peers together. A stream
/// opened beyond it is refused at once with [`crate::ErrorKind::QuotaExceeded`].
pub const MAX_STREAMS_PER_NODE: usize = 4096;
/// Default most bytes of request frames the node holds for one peer at once (frames being
/// read or waiting for their handler). A frame beyond it is refused at once with
/// [`crate::ErrorKind::QuotaExceeded`], its body unread.
pub const REQUEST_BYTES_PER_PEER: usize = 64 * 1024 * 1024;
/// Default most bytes of request frames the node holds for all peers together. A frame
/// beyond it is refused at once with [`crate::ErrorKind::QuotaExceeded`].
pub const REQUEST_BYTES_PER_NODE: usize = 512 * 1024 * 1024;
/// Longest a peer may take to deliver a whole request frame on a stream it opened, and
/// to read the reply (the node's `request_timeout` when that is shorter). A stream that
/// sends nothing is answered `Timeout` and closed after it.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most inbound connections in their TLS + memmesh handshake at once.
pub const MAX_PENDING_HANDSHAKES: usize = 256;
/// Default most inbound connections in their handshake at once from one source (an IPv4
/// address, or an IPv6 /64).
pub const MAX_PENDING_HANDSHAKES_PER_SOURCE: usize = 32;
/// Default most inbound connections a node keeps open at once (authenticated ones; each
/// holds QUIC state and a serving task). Membership admits at most 1024 members; the rest
/// is room for clients and reconnections.
pub const MAX_INBOUND_CONNECTIONS: usize = 2048;
/// Default most inbound connections open at once from one source (an IPv4 address, or an
/// IPv6 /64): a peer minting identities cannot take the whole node's room.
pub const MAX_INBOUND_CONNECTIONS_PER_SOURCE: usize = 256;
/// Longest an inbound connection may take to finish the TLS and memmesh handshakes (the
/// node's `connect_timeout` when that is shorter); it is dropped after it.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a node lets peers make it hold while serving them, per peer and in total.
/// Defaults are the constants of this module. A stream over its peer's stream budget
/// waits unaccepted (backpressure on that peer only); a stream over the node's, and a
/// request frame over either byte budget, is refused with `QuotaExceeded`; an incoming
/// connection over either handshake budget, or over either budget of open inbound
/// connections, is refused before TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// Service streams served at once for one peer.
    pub streams_per_peer: usize,
    /// Service streams served at once for all peers.
    pub streams_per_node: usize,
    /// Request-frame bytes held at once for one peer.
    pub request_bytes_per_peer: usize,
    /// Request-frame bytes held at once for all peers.
    pub request_bytes_per_node: usize,
    /// Deadline for a peer's request frame, and for it to take our reply.
    pub stream_timeout: Duration,
    /// Inbound handshakes in progress at once.
    pub pending_handshakes: usize,
    /// Inbound handshakes in progress at once from one source.
    pub pending_handshakes_per_source: usize,
    /// Deadline for an inbound handshake.
    pub handshake_timeout: Duration,
    /// Inbound connections open at once (from the first packet until closed).
    pub inbound_connections: usize,
    /// Inbound connections open at once from one source.
    pub inbound_connections_per_source: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            streams_per_peer: MAX_STREAMS_PER_PEER,
            streams_per_node: MAX_STREAMS_PER_NODE,
            request_bytes_per_peer: REQUEST_BYTES_PER_PEER,
            request_bytes_per_node: REQUEST_BYTES_PER_NODE,
            stream_timeout: STREAM_TIMEOUT,
            pending_handshakes: MAX_PENDING_HANDSHAKES,
            pending_handshakes_per_source: MAX_PENDING_HANDSHAKES_PER_SOURCE,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            inbound_connections: MAX_INBOUND_CONNECTIONS,
            inbound_connections_per_source: MAX_INBOUND_CONNECTIONS_PER_SOURCE,
        }
    }
}

impl ServeLimits {
    /// The limits in force for a node with this configuration: the per-peer stream cap
    /// never exceeds QUIC's own stream limit, each byte budget admits at least one
    /// frame of `max_message_size` (plus its header), a node-wide budget is never below
    /// its per-peer one, and the deadlines are never longer than the node's own
    /// `request_timeout` / `connect_timeout`.
    pub fn effective(
        &self,
        tuning: &TransportTuning,
        max_message_size: usize,
        request_timeout: Duration,
        connect_timeout: Duration,
    ) -> ServeLimits {
        let frame = max_message_size.saturating_add(crate::wire::codec::MAX_HEADER_LEN);
        let streams_per_peer = self
            .streams_per_peer
            .min(tuning.max_bidi_streams as usize)
            .max(1);
        let request_bytes_per_peer = self.request_bytes_per_peer.max(frame);
        ServeLimits {
            streams_per_peer,
            streams_per_node: self.streams_per_node.max(streams_per_peer),
            request_bytes_per_peer,
            request_bytes_per_node: self.request_bytes_per_node.max(request_bytes_per_peer),
            stream_timeout: self.stream_timeout.min(request_timeout),
            pending_handshakes: self.pending_handshakes.max(1),
            pending_handshakes_per_source: self
                .pending_handshakes_per_source
                .clamp(1, self.pending_handshakes.max(1)),
            handshake_timeout: self.handshake_timeout.min(connect_timeout),
            inbound_connections: self.inbound_connections.max(1),
            inbound_connections_per_source: self
                .inbound_connections_per_source
                .clamp(1, self.inbound_connections.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_limits_stay_usable_whatever_the_configuration() {
        let tuning = TransportTuning::default();
        let l = ServeLimits::default().effective(
            &tuning,
            8 << 20,
            Duration::MAX,
            Duration::from_secs(5),
        );
        assert_eq!(l.streams_per_peer, MAX_STREAMS_PER_PEER);
        assert_eq!(l.stream_timeout, STREAM_TIMEOUT);
        assert_eq!(l.handshake_timeout, Duration::from_secs(5));
        // A frame larger than the byte budgets still fits once.
        let big = ServeLimits::default().effective(
            &TransportTuning {
                max_bidi_streams: 8,
                ..tuning.clone()
            },
            1 << 30,
            Duration::from_secs(2),
            Duration::MAX,
        );
        assert_eq!(big.streams_per_peer, 8);
        assert!(big.request_bytes_per_peer > 1 << 30);
        assert!(big.request_bytes_per_node >= big.request_bytes_per_peer);
        assert_eq!(big.stream_timeout, Duration::from_secs(2));
        assert_eq!(big.handshake_timeout, HANDSHAKE_TIMEOUT);
        let zero = ServeLimits {
            streams_per_peer: 0,
            pending_handshakes: 0,
            ..ServeLimits::default()
        }
        .effective(&tuning, 1, Duration::MAX, Duration::MAX);
        assert_eq!(zero.streams_per_peer, 1);
        assert_eq!(zero.pending_handshakes, 1);
        assert_eq!(zero.pending_handshakes_per_source, 1);
        let zero = ServeLimits {
            inbound_connections: 0,
            ..ServeLimits::default()
        }
        .effective(&tuning, 1, Duration::MAX, Duration::MAX);
        assert_eq!(
            (
                zero.inbound_connections,
                zero.inbound_connections_per_source
            ),
            (1, 1)
        );
    }
}
