//! The Redis-protocol (RESP2/RESP3) front: unmodified Redis clients and tools use the
//! replicated cache through any node that sets `redis_listen` (issue 16, ADR 0021).
//!
//! - [`parse`]: the bounded, resumable parser of frames and commands (inline too);
//! - [`write`]: the writer, downgrading RESP3 types for RESP2 clients;
//! - [`command`]: the command table; [`exec`]: commands mapped onto the cache;
//! - [`pubsub`]: Redis pub/sub over the memmesh channel `memmesh.redis.pubsub`;
//! - [`session`], [`front`], [`conn`], [`listener`]: one client's state, what clients
//!   share, one connection's loop, and the listener on the node's runtime.
//!
//! Redis database `n` is the memmesh bucket `db{n}`; see ADR 0021 for what is atomic and
//! what is last-writer-wins across nodes.

pub mod command;
pub(crate) mod conn;
pub mod error;
pub mod exec;
pub mod front;
pub mod limits;
pub(crate) mod listener;
pub mod parse;
pub mod pubsub;
pub mod session;
pub mod value;
pub mod write;

pub use error::RespError;
pub use limits::RespLimits;
pub use parse::{parse, parse_command};
pub use value::Value;
pub use write::{write, Protocol};
