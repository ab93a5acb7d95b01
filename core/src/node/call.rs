//! One request to one peer by id: find or dial its connection, send one frame, await the
//! reply, all within the node's request timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;
use crate::identity::NodeId;
use crate::node::connect::{connection, PeerError};
use crate::node::shared::Shared;
use crate::transport::rpc::call_bytes;
use crate::wire::{Service, StreamHeader};

/// Sends `body` to `service` on peer `id` and returns the reply body, within the node's
/// `request_timeout`.
pub async fn call_peer(
    shared: &Arc<Shared>,
    id: NodeId,
    service: Service,
    body: &[u8],
) -> Result<Bytes> {
    call_peer_within(shared, id, service, body, shared.config.request_timeout).await
}

/// [`call_peer`] with an explicit deadline.
pub async fn call_peer_within(
    shared: &Arc<Shared>,
    id: NodeId,
    service: Service,
    body: &[u8],
    deadline: Duration,
) -> Result<Bytes> {
    call_peer_bytes_within(shared, id, service, Bytes::copy_from_slice(body), deadline).await
}

/// [`call_peer_within`] of a body QUIC takes as it is (no copy).
pub async fn call_peer_bytes_within(
    shared: &Arc<Shared>,
    id: NodeId,
    service: Service,
    body: Bytes,
    deadline: Duration,
) -> Result<Bytes> {
    let header = StreamHeader::new(service);
    let attempt = async {
        let conn = connection(shared, id).await?;
        call_bytes(&conn, &header, body, shared.limits()).await
    };
    tokio::time::timeout(deadline, attempt)
        .await
        .map_err(|_| PeerError::NoAnswer {
            peer: id.short(),
            deadline,
        })?
}
