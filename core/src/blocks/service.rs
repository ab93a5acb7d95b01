//! The blocks service on a node: the runtime it runs on, the blocks it holds and where
//! the blocks it placed on peers live.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::blocks::id::BlockId;
use crate::blocks::serve;
use crate::blocks::store::BlockStore;
use crate::error::Result;
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::service::{BoxFuture, Content, FrameHandler, ServiceError};
use crate::transport::trust::Trust;
use crate::wire::Service;

/// The blocks service: the node's runtime plus the blocks held in its RAM. Derefs to the
/// runtime ([`Shared`]).
#[derive(Debug)]
pub struct BlocksService {
    /// The runtime every service runs on.
    pub(crate) node: Arc<Shared>,
    blocks: Mutex<BlockStore>,
    placed: Mutex<HashMap<BlockId, NodeId>>,
}

impl BlocksService {
    /// The blocks service of the node `node` (its blocks are charged to the node's quota).
    pub(crate) fn new(node: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self {
            blocks: Mutex::new(BlockStore::new(node.budget.clone())),
            placed: Mutex::new(HashMap::new()),
            node,
        })
    }

    /// The blocks held in this node's RAM.
    pub fn blocks(&self) -> MutexGuard<'_, BlockStore> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the blocks this node put on peers (or found on them) live.
    pub fn placed_blocks(&self) -> MutexGuard<'_, HashMap<BlockId, NodeId>> {
        self.placed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Deref for BlocksService {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.node
    }
}

impl FrameHandler for BlocksService {
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        _trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>> {
        Box::pin(async move {
            match service {
                Service::Blocks { op } => serve::handle(&self, from, op, body).await,
                _ => Err(ServiceError::NotMine("blocks").into()),
            }
        })
    }
}

impl Content for BlocksService {
    fn by_digest(&self, digest: &[u8; 32]) -> Option<Bytes> {
        self.blocks().get(&BlockId::from_digest(*digest))
    }
}
