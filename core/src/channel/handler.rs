//! What a channel delivers, and the handler traits that receive it.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::error::Result;
use crate::identity::NodeId;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A fire-and-forget message received on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The payload.
    pub data: Bytes,
}

/// A request received on a channel; the handler's result is sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The requester.
    pub from: NodeId,
    /// The payload.
    pub data: Bytes,
}

/// Answers requests on a channel. Implemented for every
/// `Fn(Request) -> impl Future<Output = Result<Bytes>>`.
pub trait RequestHandler: Send + Sync + 'static {
    /// Produces the response (or an error that is sent back to the requester).
    fn handle(&self, request: Request) -> BoxFuture<Result<Bytes>>;
}

impl<F, Fut> RequestHandler for F
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes>> + Send + 'static,
{
    fn handle(&self, request: Request) -> BoxFuture<Result<Bytes>> {
        Box::pin(self(request))
    }
}

/// Consumes messages on a channel, one at a time, in arrival order. Implemented for
/// every `Fn(Message) -> impl Future<Output = ()>`.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles one message.
    fn handle(&self, message: Message) -> BoxFuture<()>;
}

impl<F, Fut> MessageHandler for F
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn handle(&self, message: Message) -> BoxFuture<()> {
        Box::pin(self(message))
    }
}
