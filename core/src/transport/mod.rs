//! The QUIC transport: TLS bound to node keys, cluster authentication, the endpoint and
//! the per-peer connection pool, trust levels.

pub mod auth;
pub mod der;
pub mod duplicate;
pub mod endpoint;
pub mod errors;
pub mod handshake;
pub mod pool;
pub mod rpc;
pub mod tls;
pub mod trust;
pub mod tuning;

pub use tuning::{CongestionControl, TransportTuning};
