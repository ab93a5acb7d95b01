//! Shutting a node down: the steps every path takes ([`begin_shutdown`], [`clear_tables`])
//! and the [`Guard`] that shuts the node down when the last user-held handle goes away.

use std::sync::Arc;

use tracing::debug;

use crate::node::shared::Shared;
use crate::transport::errors::CLOSE_NORMAL;

/// Shuts the node down when the last user-held handle goes away. Tasks hold only
/// `Arc<Shared>` (or their service), never the guard, so they cannot keep a node alive by
/// themselves.
pub struct Guard {
    shared: Arc<Shared>,
}

impl Guard {
    /// The guard of the node `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.shared.runtime.is_shut_down() {
            debug!(node = %self.shared.id.short(), "last handle dropped: shutting down");
            begin_shutdown(&self.shared);
            self.shared.runtime.shutdown_background();
            self.shared.pool.clear();
            self.shared.services.release();
            self.shared.services.clear();
            self.shared.release_data_dir();
        }
    }
}

/// Says goodbye on every connection, closes the endpoint, cancels the node's tasks and
/// stops the services' background work (e.g. mDNS).
pub fn begin_shutdown(shared: &Shared) {
    // The goodbye first, on each connection at once (the endpoint's close only queues it):
    // once tasks are cancelled they drop their connection handles, and quinn closes a
    // dropped connection with code 0, which peers do not take as a goodbye.
    for id in shared.pool.connected() {
        if let Some(conn) = shared.pool.live(&id) {
            conn.close(CLOSE_NORMAL.into(), b"node shutting down");
        }
    }
    if let Some(endpoint) = shared.take_endpoint() {
        endpoint.close(CLOSE_NORMAL.into(), b"node shutting down");
    }
    shared.cancel.cancel();
    shared.services.stop();
}

/// Drops what the application registered (channel and offer handlers) and the pooled
/// connections, in the order `Node::shutdown` always did.
pub fn clear_tables(shared: &Shared) {
    shared.services.release();
    shared.pool.clear();
    shared.services.clear();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// The services hold the runtime and the runtime's registry holds the services: the
    /// shutdown must break that cycle so a stopped node's state (blocks, cache entries) is
    /// freed.
    #[tokio::test]
    async fn a_shut_down_node_frees_its_state() {
        let node = crate::Node::builder()
            .listen("127.0.0.1:0")
            .mdns(false)
            .threads(1)
            .start()
            .await
            .unwrap();
        node.blocks()
            .unwrap()
            .put(vec![7u8; 1024], crate::Placement::Local)
            .await
            .unwrap();
        let _cache = node.cache("c", None).await.unwrap();
        let shared = Arc::downgrade(&node.shared);
        let blocks = Arc::downgrade(&node.parts.blocks);
        node.shutdown().await.unwrap();
        drop(_cache);
        drop(node);
        assert!(
            blocks.upgrade().is_none(),
            "the blocks service outlived the node"
        );
        assert!(
            shared.upgrade().is_none(),
            "the node's state outlived the node"
        );
    }
}
