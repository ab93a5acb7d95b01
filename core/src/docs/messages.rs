//! The documents service's messages (`Service::Docs`): one request frame and one reply
//! frame, both bulk-encoded with a version byte first. Every field is checked on the
//! serving side.

use serde::{Deserialize, Serialize};

use super::events::Position;

/// The version this build speaks.
pub const VERSION: u8 = 1;
/// Most documents one answer to [`Op::Since`] lists.
pub const MAX_SINCE_PAGE: u32 = 1024;

/// A request to a node's documents service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`VERSION`].
    pub version: u8,
    /// What is asked.
    pub op: Op,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Apply a sync message for one document and answer with the next one.
    Sync(SyncRequest),
    /// What happened in the receiver's event log since `from` (the asker's position in
    /// it): the documents the asker may see that changed since, at most `limit`.
    Since {
        /// The asker's position in the receiver's log.
        from: Position,
        /// Most documents to list (capped at [`MAX_SINCE_PAGE`]).
        limit: u32,
    },
}

/// A sync message for one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The document.
    pub doc: [u8; 16],
    /// Its reach on the sender (a receiver that does not hold the document creates it
    /// with this reach, if the reach allows the sender at all).
    pub reach: u8,
    /// An encoded Automerge sync message.
    #[serde(with = "serde_bytes")]
    pub msg: Vec<u8>,
}

/// A documents service's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The receiver's next sync message for the document, empty if it has none.
    Sync(SyncReply),
    /// One page of what happened since the asked position.
    Since(SinceReply),
}

/// The answer to a sync message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReply {
    /// An encoded Automerge sync message, or empty.
    #[serde(with = "serde_bytes")]
    pub msg: Vec<u8>,
}

/// Most heads listed for one document in a [`SinceReply`] (a document with more is
/// listed without them, and synced).
pub const MAX_LISTED_HEADS: usize = 64;

/// A document changed since the asked position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// The document.
    pub doc: [u8; 16],
    /// Its reach on the answering node.
    pub reach: u8,
    /// Its heads there (empty if more than [`MAX_LISTED_HEADS`]): an asker already at
    /// the same heads has nothing to sync.
    pub heads: Vec<[u8; 32]>,
}

/// One page of what happened in a node's event log since a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinceReply {
    /// The documents changed since (in event order).
    pub docs: Vec<Listed>,
    /// The asker's position once it has synced them.
    pub up_to: Position,
    /// Whether more follows `up_to`.
    pub more: bool,
}

impl Request {
    /// A request for `op` at this build's version.
    pub fn new(op: Op) -> Request {
        Request {
            version: VERSION,
            op,
        }
    }
}
