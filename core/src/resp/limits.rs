//! Bounds on what one RESP connection may send and hold.

use std::time::Duration;

/// The bounds of the RESP front. Every frame is checked against them before any of it is
/// buffered beyond them, so a client cannot make the node hold unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Longest bulk string (a key or a value) accepted.
    pub max_bulk: usize,
    /// Most elements of one array (the arguments of one command).
    pub max_array: usize,
    /// Longest inline command, or any line of a frame (type, length, simple string).
    pub max_inline: usize,
    /// Deepest nesting of aggregates (commands are one level deep).
    pub max_depth: usize,
    /// Most bytes received and not yet answered on one connection.
    pub max_pending: usize,
    /// Most connections the node serves at once.
    pub max_clients: usize,
    /// Most connections from one source address at once.
    pub max_clients_per_ip: usize,
    /// How long a client may take to finish a frame it started before it is dropped.
    pub frame_timeout: Duration,
}

impl Default for RespLimits {
    fn default() -> Self {
        Self {
            max_bulk: 16 * 1024 * 1024,
            max_array: 1024 * 1024,
            max_inline: 64 * 1024,
            max_depth: 8,
            max_pending: 64 * 1024 * 1024,
            max_clients: 1024,
            max_clients_per_ip: 256,
            frame_timeout: Duration::from_secs(30),
        }
    }
}
