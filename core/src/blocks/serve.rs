//! The blocks service: what a node does when a peer asks it to store, return or free a
//! block, or to report its memory use. The peer that puts a block becomes one of its
//! owners; only an owner can free its reference.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info};

use crate::blocks::id::BlockId;
use crate::blocks::service::BlocksService;
use crate::blocks::store::{Freed, SWEEP_INTERVAL};
use crate::blocks::NodeUsage;
use crate::error::{Classify, Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::wire::codec::encode_bulk;
use crate::wire::messages::BlockOp;

/// Stores `data` in this node's RAM, owned by this node.
pub(crate) fn put_local(shared: &BlocksService, data: Bytes) -> Result<BlockId> {
    shared.blocks().put(data, shared.id)
}

/// Whether `owner` may still come back for its blocks: connected, or a member (alive,
/// suspect or down but not yet forgotten, see `MembershipConfig::forget_after`).
fn present(shared: &BlocksService, owner: &NodeId) -> bool {
    shared.pool.live(owner).is_some() || shared.members.state(owner).is_some()
}

/// Releases the references of owners gone for good (see `BlockStore::sweep`).
pub(crate) fn sweep(shared: &BlocksService) {
    let owners = shared.blocks().foreign_owners(&shared.id);
    let here: HashSet<NodeId> = owners.into_iter().filter(|o| present(shared, o)).collect();
    let released = shared
        .blocks()
        .sweep(Instant::now(), &shared.id, |o| here.contains(o));
    for (owner, n) in released {
        info!(owner = %owner.short(), blocks = n, "released the blocks of an owner that left the cluster");
    }
}

/// Starts the task that sweeps for departed owners, unless one runs; it ends when no
/// block has an owner other than this node.
fn ensure_sweeper(shared: &Arc<BlocksService>) {
    if !shared.blocks().start_sweeper() {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
            sweep(&shared);
            if shared.blocks().stop_sweeper_if_idle(&shared.id) {
                return;
            }
        }
    });
}

/// This node's memory use.
pub(crate) fn usage(shared: &BlocksService) -> NodeUsage {
    let (blocks, block_bytes) = {
        let store = shared.blocks();
        (store.len() as u64, store.bytes())
    };
    NodeUsage {
        id: shared.id,
        name: shared.hello.name.clone(),
        quota: shared.budget.limit(),
        used: shared.budget.used(),
        free: shared.budget.free(),
        blocks,
        block_bytes,
    }
}

/// Serves a blocks frame from peer `from`.
pub(crate) async fn handle(
    shared: &Arc<BlocksService>,
    from: NodeId,
    op: BlockOp,
    body: Bytes,
) -> Result<Bytes> {
    match op {
        BlockOp::Put => {
            if body.len() > shared.config.max_message_size {
                return Err(ServeError::TooLarge.into());
            }
            let id = shared.blocks().put(body, from)?;
            if from != shared.id {
                ensure_sweeper(shared);
            }
            debug!(peer = %from.short(), %id, "stored a block for a peer");
            Ok(Bytes::copy_from_slice(id.digest()))
        }
        BlockOp::Get { id } => {
            let id = BlockId::from_digest(id);
            shared.blocks().get(&id).ok_or_else(|| not_here(&id))
        }
        BlockOp::Free { id } => {
            let id = BlockId::from_digest(id);
            let freed = shared.blocks().free(&id, &from);
            match freed {
                Freed::Released { .. } => Ok(Bytes::new()),
                Freed::NotOwner => Err(not_yours(&id, &from)),
                Freed::NotHere => Err(not_here(&id)),
            }
        }
        BlockOp::Stats => Ok(Bytes::from(encode_bulk(&usage(shared))?)),
    }
}

/// Why this node refuses a peer's block request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The block put is larger than `max_message_size`.
    #[error("block larger than max_message_size")]
    TooLarge,
    /// The block is not held here.
    #[error("block {id} is not held here")]
    NotHere {
        /// The block.
        id: BlockId,
    },
    /// The node freeing the block holds no reference to it.
    #[error(
        "block {id} is not node {who}'s to free: only a node that put a block can free its \
         reference"
    )]
    NotYours {
        /// The block.
        id: BlockId,
        /// The node's short id.
        who: String,
    },
}

impl Classify for ServeError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServeError::TooLarge => ErrorKind::InvalidInput,
            ServeError::NotHere { .. } => ErrorKind::NotFound,
            ServeError::NotYours { .. } => ErrorKind::Unauthorized,
        }
    }
}

fn not_here(id: &BlockId) -> Error {
    ServeError::NotHere { id: *id }.into()
}

/// The error for a free by a node that holds no reference to the block.
pub(crate) fn not_yours(id: &BlockId, who: &NodeId) -> Error {
    ServeError::NotYours {
        id: *id,
        who: who.short(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn refusals_keep_their_kind_and_message() {
        let id = BlockId::of(b"x");
        let who = Keypair::generate().unwrap().node_id();
        let e = not_yours(&id, &who);
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(
            e.message(),
            format!(
                "block {id} is not node {}'s to free: only a node that put a block can free \
                 its reference",
                who.short()
            )
        );
        assert!(matches!(
            e.downcast_ref::<ServeError>(),
            Some(ServeError::NotYours { .. })
        ));
        let e = not_here(&id);
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::NotFound,
                format!("block {id} is not held here").as_str()
            )
        );
    }
}
