//! The typed errors of the blocks API (`put`, `get`, `free` and placements). Each variant
//! says which public [`ErrorKind`] it is ([`Classify`]), so `?` turns it into an [`Error`]
//! that keeps it (and its cause) while users see the same kinds and messages as before.
//! What a node refuses to a peer is [`crate::blocks::serve::ServeError`], what its store
//! refuses is [`crate::blocks::store::StoreError`], a bad id is
//! [`crate::blocks::id::BlockIdError`].

use crate::blocks::id::BlockId;
use crate::error::{Classify, Error, ErrorKind};

/// What went wrong putting, getting or freeing a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlocksError {
    /// A block larger than this node's `max_message_size`.
    #[error(
        "a block of {len} bytes is larger than max_message_size ({max} bytes); send large \
         data with transfer instead"
    )]
    TooLarge {
        /// Its bytes.
        len: usize,
        /// The node's `max_message_size`.
        max: usize,
    },
    /// A placement text that is not `"local"`, `"auto"` or a node id (the id's parse error
    /// is the source).
    #[error(
        "placement must be \"local\", \"auto\" or a node id, got {text:?} ({})",
        .source.message()
    )]
    Placement {
        /// The text given.
        text: String,
        /// Why it is no node id.
        source: Error,
    },
    /// The peer a block was put on answered with the id of other content.
    #[error("peer {peer} stored the block under another id")]
    WrongId {
        /// The peer's short id.
        peer: String,
    },
    /// A peer sent data that is not the block asked for.
    #[error("peer {peer} returned data that does not hash to {id}")]
    BadData {
        /// The block asked for.
        id: BlockId,
        /// The peer's short id.
        peer: String,
    },
    /// The peer this node put the block on could not be reached (its failure is the
    /// source).
    #[error(
        "block {id} is held by peer {holder}, which is unavailable: {}",
        .source.message()
    )]
    HolderUnavailable {
        /// The block.
        id: BlockId,
        /// The holder's short id.
        holder: String,
        /// Why it could not be reached.
        source: Error,
    },
    /// No reachable peer holds the block, and some peers could not be asked (the last of
    /// their failures is the source).
    #[error(
        "block {id} is not on this node nor on any reachable peer; {unreachable} peer(s) \
         could not be asked"
    )]
    Unreachable {
        /// The block.
        id: BlockId,
        /// Peers that could not be asked.
        unreachable: usize,
        /// The last failure to ask a peer.
        source: Option<Error>,
    },
    /// Neither this node nor any of its live peers holds the block.
    #[error("block {id} is not held by this node or any of its {peers} live peers")]
    NotFound {
        /// The block.
        id: BlockId,
        /// Live peers asked.
        peers: usize,
    },
    /// A free found no reference to drop on the reachable peers, and some could not be
    /// asked (the last failure is the source).
    #[error(
        "block {id} was not found on the reachable peers; some could not be asked: {}",
        .source.message()
    )]
    FreeUnreachable {
        /// The block.
        id: BlockId,
        /// The last failure to ask a peer.
        source: Error,
    },
    /// A free found the block nowhere.
    #[error("block {id} is not held by this node or any live peer")]
    NotHeld {
        /// The block.
        id: BlockId,
    },
}

impl Classify for BlocksError {
    fn kind(&self) -> ErrorKind {
        use BlocksError::*;
        match self {
            TooLarge { .. } | Placement { .. } => ErrorKind::InvalidInput,
            WrongId { .. } | BadData { .. } => ErrorKind::Corrupted,
            HolderUnavailable { .. } | Unreachable { .. } | FreeUnreachable { .. } => {
                ErrorKind::PeerUnavailable
            }
            NotFound { .. } | NotHeld { .. } => ErrorKind::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_and_messages_are_the_ones_users_saw() {
        let id = BlockId::of(b"x");
        let e: Error = BlocksError::TooLarge { len: 9, max: 8 }.into();
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::InvalidInput,
                "a block of 9 bytes is larger than max_message_size (8 bytes); send large data \
                 with transfer instead"
            )
        );
        let e: Error = BlocksError::NotFound { id, peers: 3 }.into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.message(),
            format!("block {id} is not held by this node or any of its 3 live peers")
        );
        let e: Error = BlocksError::Unreachable {
            id,
            unreachable: 2,
            source: None,
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::PeerUnavailable);
        assert!(e.source().is_none());
        assert!(e.downcast_ref::<BlocksError>().is_some());
    }

    #[test]
    fn an_unavailable_holder_keeps_its_failure_as_the_source() {
        let id = BlockId::of(b"x");
        let why: Error = BlocksError::WrongId {
            peer: "abcd".into(),
        }
        .into();
        let e: Error = BlocksError::HolderUnavailable {
            id,
            holder: "abcd".into(),
            source: why.clone(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::PeerUnavailable);
        assert_eq!(
            e.message(),
            format!(
                "block {id} is held by peer abcd, which is unavailable: peer abcd stored the \
                 block under another id"
            )
        );
        assert_eq!(e.source().map(|c| c.to_string()), Some(why.to_string()));
    }
}
