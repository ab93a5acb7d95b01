//! The goodbye: a node shutting down in order tells each connected peer so on a stream,
//! and only then closes its connections.
//!
//! The close code alone ([`CLOSE_NORMAL`]) is not enough. quinn-proto (0.11.19, the latest
//! 0.11 release) does not send a CONNECTION_CLOSE while the connection's congestion window
//! is full, and a closed connection no longer processes the ACKs that would open it, so
//! the close is dropped in silence and the peer only finds out at its idle timeout (quinn
//! issue #2785, fixed upstream after that release). A young connection is often in that
//! state: its path-MTU probes fill the initial window. The goodbye frame is
//! congestion-controlled too, but it is exchanged while both connections are open, so
//! ACKs flow and it gets through; the close that follows is then only cleanup.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::debug;

use crate::error::Result;
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::transport::errors::CLOSE_NORMAL;
use crate::transport::rpc::call;
use crate::wire::{Service, StreamHeader};

/// How long the receiver of a goodbye leaves the connection open for its reply to go
/// out, before closing its side itself (in case the leaving node's close never arrives).
const REPLY_GRACE: Duration = Duration::from_millis(100);

/// Says goodbye on every live connection at once and waits (up to `wait`) for the
/// replies. Never dials.
pub(crate) async fn say(shared: &Arc<Shared>, wait: Duration) {
    let conns: Vec<(NodeId, quinn::Connection)> = shared
        .pool
        .connected()
        .into_iter()
        .filter_map(|id| shared.pool.live(&id).map(|c| (id, c)))
        .collect();
    if conns.is_empty() {
        return;
    }
    let header = StreamHeader::new(Service::Goodbye);
    let limits = shared.limits();
    let all = futures::future::join_all(conns.iter().map(|(id, conn)| {
        let header = &header;
        async move {
            if let Err(e) = call(conn, header, &[], limits).await {
                debug!(peer = %id.short(), error = %e.chain(), "goodbye not acknowledged");
            }
        }
    }));
    if tokio::time::timeout(wait, all).await.is_err() {
        debug!("some peers did not acknowledge the goodbye in time");
    }
}

/// Serves a peer's goodbye: from now on `from` counts as gone (as if its goodbye close
/// code had arrived), and its connection is closed on this side shortly after the reply.
/// A member can only say goodbye for itself: `from` is the authenticated sender.
pub(crate) fn receive(shared: &Arc<Shared>, from: NodeId) -> Result<Bytes> {
    debug!(peer = %from.short(), "peer said goodbye");
    shared.members.closed(from, true);
    if let Some(conn) = shared.pool.live(&from) {
        tokio::spawn(async move {
            tokio::time::sleep(REPLY_GRACE).await;
            conn.close(CLOSE_NORMAL.into(), b"peer said goodbye");
        });
    }
    Ok(Bytes::new())
}
