//! Routing a service frame to the service it names. Every service shares the one
//! connection per peer; the [`Service`] tag in the stream header picks the handler.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::wire::Service;

/// Handles one frame for `service` from `from` and returns the reply body.
pub async fn handle(
    shared: &Arc<Shared>,
    from: NodeId,
    service: Service,
    body: Bytes,
) -> Result<Bytes> {
    match service {
        Service::Channel { name, op } => {
            crate::channel::serve::handle(shared, from, &name, op, body).await
        }
        Service::Membership { op } => {
            crate::membership::service::serve(shared, from, op, body).await
        }
        Service::Blocks { op } => crate::blocks::serve::handle(shared, from, op, body).await,
        Service::Cache => crate::cache::serve::handle(shared, from, body).await,
        Service::Goodbye => crate::node::goodbye::receive(shared, from),
        // Transfers never reach here: `serve_stream` hands their stream over whole.
        Service::Transfer(_) | Service::Fetch { .. } => Err(crate::error::Error::invalid(
            "a transfer offer must open its own stream",
        )),
    }
}
