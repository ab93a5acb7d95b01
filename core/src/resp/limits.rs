//! Bounds on what one RESP connection may send and hold.
//!
//! [`RespLimits`] is defined beside [`NodeConfig`](crate::NodeConfig) (its
//! `redis_limits`), which the layering keeps below this module; it is re-exported here.

pub use crate::node::config::RespLimits;
