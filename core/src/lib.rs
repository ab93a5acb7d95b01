//! memmesh: an in-process peer-to-peer data mesh.
//!
//! Every process that embeds memmesh becomes a [`Node`]: it authenticates peers over QUIC
//! (TLS 1.3 bound to an Ed25519 key; the public key is the [`NodeId`]), gates membership
//! with an optional cluster secret, and exchanges messages and requests on named
//! [`Channel`]s. Later services (membership, blocks, cache, transfer) plug into the same
//! connection per peer.
//!
//! ```no_run
//! # async fn demo() -> memmesh::Result<()> {
//! let a = memmesh::Node::builder().name("a").listen("127.0.0.1:0").start().await?;
//! let b = memmesh::Node::builder().name("b").listen("127.0.0.1:0").start().await?;
//! b.channel("echo")?.on_request(|req: memmesh::Request| async move { Ok(req.data) });
//! let b_id = a.connect(&b.addr().to_string()).await?;
//! let reply = a.channel("echo")?.request(b_id, "hi", None).await?;
//! assert_eq!(&reply[..], b"hi");
//! a.shutdown().await?;
//! b.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod blocks;
pub mod cache;
pub mod channel;
pub mod datadir;
pub mod discovery;
pub mod docs;
pub mod durable;
pub mod error;
pub mod files;
pub mod hashtree;
pub mod http;
pub mod identity;
pub mod membership;
pub mod memory;
pub mod node;
pub mod peer;
pub mod resp;
pub(crate) mod service;
pub(crate) mod slots;
#[cfg(test)]
mod testkit;
pub mod transfer;
pub mod transport;
pub mod wire;

pub use blocks::{BlockId, Blocks, NodeUsage, Placement};
pub use bytes::Bytes;
pub use cache::{Cache, CacheOptions, CacheStats};
pub use channel::{Channel, Message, MessageHandler, Request, RequestHandler, Target};
pub use docs::{Doc, DocId, DocInfo, Docs, DocsError, Reach, Value};
pub use error::{Classify, Error, ErrorKind, Result};
pub use files::{FileId, FileInfo, Files, FilesStats, PutOptions};
pub use identity::{Keypair, NodeId};
pub use membership::{Event, Events};
pub use node::{DrainStatus, Node, NodeBuilder, NodeConfig};
pub use peer::{PeerInfo, PeerState, Role};
pub use transport::{CongestionControl, TransportTuning};
