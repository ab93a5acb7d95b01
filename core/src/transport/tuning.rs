//! QUIC transport settings, shared by memmesh and by the bare-quinn baselines in `bench/`
//! so that both are measured with the same settings.
//!
//! Defaults follow the measurements recorded in DESIGN.md: GSO on, an MTU discovery bound
//! of 6500 bytes (10 x 6500 stays under the 65507-byte GSO batch limit), a matching
//! `max_udp_payload_size`, 4 MiB socket buffers and Cubic congestion control.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::congestion::{BbrConfig, CubicConfig, NewRenoConfig};
use quinn::{EndpointConfig, IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};

use crate::error::{Error, Result};

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
    /// Maximum concurrent bidirectional streams a peer may open.
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
            max_bidi_streams: 1024,
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
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_uni_streams))
            .keep_alive_interval(Some(self.keep_alive))
            .max_idle_timeout(Some(IdleTimeout::try_from(self.idle_timeout).map_err(
                |_| Error::invalid(format!("idle timeout {:?} is too large", self.idle_timeout)),
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

    /// Builds the quinn endpoint configuration (UDP payload bound matching the MTU bound).
    pub fn endpoint_config(&self) -> Result<EndpointConfig> {
        let mut e = EndpointConfig::default();
        e.max_udp_payload_size(self.mtu_upper_bound.max(1200))
            .map_err(|err| Error::invalid(format!("max_udp_payload_size: {err}")))?;
        Ok(e)
    }

    /// Binds a UDP socket with the configured buffer sizes.
    pub fn bind_socket(&self, addr: SocketAddr) -> Result<std::net::UdpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let ctx = |e: std::io::Error| Error::from(e).context(format!("binding UDP {addr}"));
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
