//! The channel service on a node: the runtime it runs on and the channels it owns.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;

use crate::channel::registry::ChannelRegistry;
use crate::channel::serve;
use crate::error::Result;
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::service::{BoxFuture, FrameHandler, ServiceError, Shutdown};
use crate::transport::trust::Trust;
use crate::wire::Service;

/// The channel service: the node's runtime plus its channels by name. Derefs to the
/// runtime ([`Shared`]).
#[derive(Debug)]
pub struct ChannelService {
    /// The runtime every service runs on.
    pub(crate) node: Arc<Shared>,
    /// Channels by name.
    pub(crate) channels: ChannelRegistry,
}

impl ChannelService {
    /// The channel service of the node `node`.
    pub(crate) fn new(node: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self {
            node,
            channels: ChannelRegistry::default(),
        })
    }
}

impl Deref for ChannelService {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.node
    }
}

impl FrameHandler for ChannelService {
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        _trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>> {
        Box::pin(async move {
            match service {
                Service::Channel { name, op } => serve::handle(&self, from, &name, op, body).await,
                _ => Err(ServiceError::NotMine("channel").into()),
            }
        })
    }
}

impl Shutdown for ChannelService {
    fn release(&self) {
        self.channels.clear();
    }
}
