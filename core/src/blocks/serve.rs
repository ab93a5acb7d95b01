//! The blocks service: what a node does when a peer asks it to store, return or free a
//! block, or to report its memory use.

use std::sync::Arc;

use bytes::Bytes;

use crate::blocks::id::BlockId;
use crate::blocks::NodeUsage;
use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::wire::codec::encode_bulk;
use crate::wire::messages::BlockOp;

/// Stores `data` in this node's RAM.
pub(crate) fn put_local(shared: &Shared, data: Bytes) -> Result<BlockId> {
    shared.blocks().put(data)
}

/// This node's memory use.
pub(crate) fn usage(shared: &Shared) -> NodeUsage {
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
    shared: &Arc<Shared>,
    from: NodeId,
    op: BlockOp,
    body: Bytes,
) -> Result<Bytes> {
    match op {
        BlockOp::Put => {
            if body.len() > shared.config.max_message_size {
                return Err(Error::invalid("block larger than max_message_size"));
            }
            let id = put_local(shared, body)?;
            tracing::debug!(peer = %from.short(), %id, "stored a block for a peer");
            Ok(Bytes::copy_from_slice(id.digest()))
        }
        BlockOp::Get { id } => {
            let id = BlockId::from_digest(id);
            shared.blocks().get(&id).ok_or_else(|| not_here(&id))
        }
        BlockOp::Free { id } => {
            let id = BlockId::from_digest(id);
            if shared.blocks().free(&id) {
                Ok(Bytes::new())
            } else {
                Err(not_here(&id))
            }
        }
        BlockOp::Stats => Ok(Bytes::from(encode_bulk(&usage(shared))?)),
    }
}

fn not_here(id: &BlockId) -> Error {
    Error::new(ErrorKind::NotFound, format!("block {id} is not held here"))
}
