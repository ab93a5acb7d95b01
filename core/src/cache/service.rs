//! The cache service on a node: the runtime it runs on and the buckets and routing it
//! owns.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::outbox::Outbox;
use crate::cache::readbox::Readbox;
use crate::cache::serve;
use crate::cache::state::CacheState;
use crate::error::Result;
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::service::{BoxFuture, FrameHandler, ServiceError};
use crate::transport::trust::Trust;
use crate::wire::Service;

/// The cache service: the node's runtime plus the cache's buckets and routing. Derefs to
/// the runtime ([`Shared`]).
#[derive(Debug)]
pub struct CacheService {
    /// The runtime every service runs on.
    pub(crate) node: Arc<Shared>,
    /// The replicated cache's buckets and routing.
    pub cache: CacheState,
    /// Writes on their way to peers, coalesced per peer (`outbox.rs`).
    pub(crate) outbox: Outbox,
    /// Single-key reads on their way to peers, coalesced per peer and bucket
    /// (`readbox.rs`).
    pub(crate) readbox: Readbox,
}

impl CacheService {
    /// The cache service of the node `node`.
    pub(crate) fn new(node: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self {
            cache: CacheState::starting(node.id, node.config.role.holds_data()),
            outbox: Outbox::default(),
            readbox: Readbox::default(),
            node,
        })
    }
}

impl Deref for CacheService {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.node
    }
}

impl FrameHandler for CacheService {
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        _trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>> {
        Box::pin(async move {
            match service {
                Service::Cache => serve::handle(&self, from, body).await,
                _ => Err(ServiceError::NotMine("cache").into()),
            }
        })
    }
}
