//! The UniFFI binding of memmesh: the layer Swift (and UniFFI's Python bindings, used to
//! test it) call into.
//!
//! It only converts types and errors; every behaviour lives in the `memmesh` core crate.
//! Async methods return Rust futures that the foreign executor (Swift concurrency,
//! Python asyncio) polls: the core runs the work on the node's own tokio runtime, so this
//! crate creates no runtime of its own. Names are snake_case here; UniFFI turns them into
//! camelCase for Swift.
//!
//! The UniFFI namespace is `memmesh`: Swift imports the module `Memmesh`, Python the
//! module `memmesh`.

pub mod blocks;
pub mod cache;
pub mod channel;
pub mod config;
pub mod docs;
pub mod docs_changes;
pub mod docs_status;
pub mod error;
pub mod events;
pub mod files;
pub mod handler;
pub mod node;
pub mod peer;
pub mod transfer;

pub use blocks::{Blocks, NodeUsage, Placement};
pub use cache::{
    default_cache_options, Cache, CacheEntry, CacheInfo, CacheOptions, CacheStats, LocalRead,
};
pub use channel::Channel;
pub use config::{
    default_node_config, CongestionControl, MembershipOptions, NodeConfig, TuningOptions,
};
pub use docs::{Doc, DocInfo, DocValue, Docs, Reach};
pub use docs_changes::{DocChangeEvent, DocChanges};
pub use docs_status::{DocSync, PeerSync};
pub use error::MemmeshError;
pub use events::{Event, Events};
pub use files::{FileInfo, Files, FilesPage, FilesStats, PutOptions};
pub use handler::{Message, MessageHandler, Request, RequestHandler};
pub use node::Node;
pub use peer::{PeerInfo, PeerState};
pub use transfer::{
    Destination, Offer, OfferHandler, Progress, ProgressEvents, Received, ReceivedEvents, Source,
    Transfer, TransferDirection, TransferResult,
};

uniffi::setup_scaffolding!("memmesh");

/// Parses a node id given as text (52 base32 characters) into the core type.
pub(crate) fn parse_node_id(id: &str) -> Result<memmesh::NodeId, MemmeshError> {
    id.parse::<memmesh::NodeId>().map_err(MemmeshError::from)
}
