//! The wire format: versioned messages (serde + bincode 2) in length-prefixed frames.
//!
//! Everything that touches the byte format lives here, so the format can change in one
//! place. [`codec`] is pure (bytes in, values out); [`io`] moves frames over QUIC streams.

pub mod codec;
pub mod io;
pub mod messages;

pub use codec::{Frame, FrameLimits, WireError};
pub use io::StreamError;
pub use messages::{Hello, RemoteError, Reply, Service, StreamHeader, WIRE_VERSION};
