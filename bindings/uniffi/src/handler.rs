//! What a channel delivers, and the handler interfaces foreign code implements
//! (Swift: `class Echo: RequestHandler { func handle(request:) async throws -> Data }`).
//!
//! Handlers are invoked on the node's runtime threads; their async methods return
//! foreign futures (a Swift task, a Python coroutine on the registered event loop) that
//! the runtime awaits.

use std::sync::Arc;

use memmesh::channel::BoxFuture;
use memmesh::Bytes;
use tracing::warn;

use crate::error::MemmeshError;

/// A fire-and-forget message received on a channel.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Message {
    /// The sender's node id.
    pub from: String,
    /// The payload.
    pub data: Vec<u8>,
}

impl From<memmesh::Message> for Message {
    fn from(m: memmesh::Message) -> Self {
        Self {
            from: m.from.to_string(),
            data: m.data.to_vec(),
        }
    }
}

/// A request received on a channel; the handler's result is sent back.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Request {
    /// The requester's node id.
    pub from: String,
    /// The payload.
    pub data: Vec<u8>,
}

impl From<memmesh::Request> for Request {
    fn from(r: memmesh::Request) -> Self {
        Self {
            from: r.from.to_string(),
            data: r.data.to_vec(),
        }
    }
}

/// Answers requests on a channel (see `Channel.on_request`).
///
/// Throwing a `MemmeshError` sends that kind and message back to the requester; throwing
/// anything else sends `HandlerFailed` with the error's text.
#[uniffi::export(callback_interface)]
#[async_trait::async_trait]
pub trait RequestHandler: Send + Sync {
    /// Produces the response to `request`.
    async fn handle(&self, request: Request) -> Result<Vec<u8>, MemmeshError>;
}

/// Consumes the messages of a channel, one at a time, in arrival order (see
/// `Channel.on_message`). An error thrown by the handler is logged and the next message
/// is delivered.
#[uniffi::export(callback_interface)]
#[async_trait::async_trait]
pub trait MessageHandler: Send + Sync {
    /// Handles one message.
    async fn handle(&self, message: Message) -> Result<(), MemmeshError>;
}

/// Adapts a foreign [`RequestHandler`] to the core trait.
pub(crate) struct RequestAdapter(pub(crate) Arc<dyn RequestHandler>);

impl memmesh::RequestHandler for RequestAdapter {
    fn handle(&self, request: memmesh::Request) -> BoxFuture<memmesh::Result<Bytes>> {
        let handler = self.0.clone();
        Box::pin(async move {
            handler
                .handle(request.into())
                .await
                .map(Bytes::from)
                .map_err(memmesh::Error::from)
        })
    }
}

/// Adapts a foreign [`MessageHandler`] to the core trait.
pub(crate) struct MessageAdapter {
    pub(crate) handler: Arc<dyn MessageHandler>,
    pub(crate) channel: String,
}

impl memmesh::MessageHandler for MessageAdapter {
    fn handle(&self, message: memmesh::Message) -> BoxFuture<()> {
        let handler = self.handler.clone();
        let channel = self.channel.clone();
        Box::pin(async move {
            if let Err(e) = handler.handle(message.into()).await {
                warn!(%channel, error = %e, "the message handler failed");
            }
        })
    }
}
