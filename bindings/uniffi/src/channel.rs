//! A named channel: messages with backpressure, and request/response, between nodes.

use std::sync::Arc;
use std::time::Duration;

use memmesh::Target;

use crate::error::MemmeshError;
use crate::handler::{Message, MessageAdapter, MessageHandler, RequestAdapter, RequestHandler};
use crate::parse_node_id;

/// A named channel on a node (from `Node.channel(name)`). Keeps its node alive.
#[derive(Debug, uniffi::Object)]
pub struct Channel {
    inner: memmesh::Channel,
}

impl Channel {
    pub(crate) fn new(inner: memmesh::Channel) -> Self {
        Self { inner }
    }
}

#[uniffi::export]
impl Channel {
    /// The channel name.
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Sends `data` to the peers `to` (node ids; `None` = every connected peer) and
    /// returns when each target has queued it, with the number of peers reached. If any
    /// target failed, throws an error naming each failure (the others still got it).
    #[uniffi::method(default(to = None))]
    pub async fn send(&self, data: Vec<u8>, to: Option<Vec<String>>) -> Result<u64, MemmeshError> {
        let target = Target::parse(to)?;
        Ok(self.inner.send(data, target).await? as u64)
    }

    /// Sends `data` to every connected peer; returns the number of peers reached.
    pub async fn broadcast(&self, data: Vec<u8>) -> Result<u64, MemmeshError> {
        Ok(self.inner.broadcast(data).await? as u64)
    }

    /// Sends a request to `peer` (a node id) and returns its response. `timeout_ms`
    /// defaults to the node's `request_timeout_ms`.
    #[uniffi::method(default(timeout_ms = None))]
    pub async fn request(
        &self,
        peer: String,
        data: Vec<u8>,
        timeout_ms: Option<u64>,
    ) -> Result<Vec<u8>, MemmeshError> {
        let peer = parse_node_id(&peer)?;
        let timeout = timeout_ms.map(Duration::from_millis);
        Ok(self.inner.request(peer, data, timeout).await?.to_vec())
    }

    /// Waits for the next message (use this or `on_message`, not both). Throws `Closed`
    /// when the node shuts down. Cancelling the call loses no message.
    pub async fn recv(&self) -> Result<Message, MemmeshError> {
        Ok(self.inner.recv().await?.into())
    }

    /// Feeds every incoming message to `handler`, in order. Replaces any previous one.
    /// After shutdown the handler is not kept.
    pub fn on_message(&self, handler: Box<dyn MessageHandler>) {
        self.inner.on_message(MessageAdapter {
            handler: Arc::from(handler),
            channel: self.inner.name().to_string(),
        });
    }

    /// Stops feeding messages to the handler; they queue up for `recv`.
    pub fn clear_message_handler(&self) {
        self.inner.clear_message_handler();
    }

    /// Answers requests on this channel with `handler`. Replaces any previous one.
    /// After shutdown the handler is not kept.
    pub fn on_request(&self, handler: Box<dyn RequestHandler>) {
        self.inner.on_request(RequestAdapter(Arc::from(handler)));
    }

    /// Removes the request handler: requests then fail with `NotFound`.
    pub fn clear_request_handler(&self) {
        self.inner.clear_request_handler();
    }
}
