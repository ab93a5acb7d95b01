//! Named messaging channels: fire-and-forget messages with backpressure, and
//! request/response, between nodes.
//!
//! `send` resolves once every target peer has *queued* the message in its channel (a
//! queue bounded by count and by bytes: when it is full the receiver waits a bounded time
//! for room, then refuses with `QuotaExceeded`), so a message is never dropped silently:
//! it is delivered, or the sender gets an error.

pub mod error;
pub mod handler;
pub mod queue;
pub mod registry;
pub mod serve;
pub(crate) mod service;
pub mod target;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::Either;
use tracing::debug;

use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::node::connect::connection;
use crate::node::connect::deadline_after;
use crate::node::guard::Guard;
use crate::transport::rpc::{call_encoded, within};
use crate::wire::codec::EncodedHeader;
use crate::wire::messages::ChannelOp;
use crate::wire::{Service, StreamHeader};

pub use error::ChannelError;
pub use handler::{BoxFuture, Message, MessageHandler, Request, RequestHandler};
use registry::{drain_into, ChannelState};
use service::ChannelService;
pub use target::{parse_ids, Target};

/// A named channel on a node. Cheap to clone; keeps the node alive.
#[derive(Clone)]
pub struct Channel {
    shared: Arc<ChannelService>,
    state: Arc<ChannelState>,
    out: Arc<Outgoing>,
    _guard: Arc<Guard>,
}

/// What every frame this channel sends starts with, encoded once: the name and header of
/// its requests and of its messages.
#[derive(Debug)]
struct Outgoing {
    name: Arc<str>,
    request: EncodedHeader,
    send: EncodedHeader,
}

impl Outgoing {
    fn new(name: &str) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            request: EncodedHeader::new(&header(name, ChannelOp::Request))?,
            send: EncodedHeader::new(&header(name, ChannelOp::Send))?,
        })
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Channel({:?} on {})",
            self.state.name(),
            self.shared.id.short()
        )
    }
}

impl Channel {
    pub(crate) fn new(
        shared: Arc<ChannelService>,
        state: Arc<ChannelState>,
        guard: Arc<Guard>,
    ) -> Result<Self> {
        let out = Arc::new(Outgoing::new(state.name())?);
        Ok(Self {
            shared,
            state,
            out,
            _guard: guard,
        })
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        self.state.name()
    }

    fn check_size(&self, len: usize) -> Result<()> {
        let max = self.shared.config.max_message_size;
        if len > max {
            return Err(ChannelError::TooLarge { len, max }.into());
        }
        Ok(())
    }

    /// Sends `data` to `to` (a peer, several, or [`Target::All`]) and resolves when every
    /// target has queued it. Returns how many peers received it; if any failed, the
    /// error names each failure (the others still received the message).
    pub async fn send(&self, data: impl Into<Bytes>, to: impl Into<Target>) -> Result<usize> {
        let data = data.into();
        self.check_size(data.len())?;
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let target = to.into();
        let shared = self.shared.clone();
        let out = self.out.clone();
        self.shared
            .run(async move {
                let peers = match target {
                    Target::All => shared.pool.connected(),
                    Target::Peers(p) => p,
                };
                let attempts = peers.iter().map(|&peer| {
                    let shared = shared.clone();
                    let data = data.clone();
                    let out = out.clone();
                    async move { (peer, send_via(&shared, peer, &out, data).await) }
                });
                summarize(futures::future::join_all(attempts).await)
            })
            .await
    }

    /// Sends `data` to every connected peer (`send(data, Target::All)`).
    pub async fn broadcast(&self, data: impl Into<Bytes>) -> Result<usize> {
        self.send(data, Target::All).await
    }

    /// Sends a request to `peer` and waits for its response, up to `timeout` (the node's
    /// `request_timeout` when `None`).
    pub async fn request(
        &self,
        peer: NodeId,
        data: impl Into<Bytes>,
        timeout: Option<Duration>,
    ) -> Result<Bytes> {
        let data = data.into();
        self.check_size(data.len())?;
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let timeout = timeout.unwrap_or(self.shared.config.request_timeout);
        // One await of one of two futures, each built in the call that takes it: this
        // future then holds the state of one branch (not both side by side, nor a
        // moved-from copy of the work beside the running one).
        let exchange = if peer != self.shared.id {
            Either::Left(self.shared.run(remote_request(
                self.shared.clone(),
                self.out.clone(),
                peer,
                data,
                timeout,
            )))
        } else {
            // A request to this node: its handler runs where the caller awaits, in the
            // node runtime's context, without a task hop (a caller on a plain thread, as
            // every binding's blocking call, would otherwise wait for two thread
            // wake-ups). Shutdown ends it with `Closed`, as it ends the node's tasks.
            Either::Right(self.shared.runtime.here(UntilClosed {
                closed: self.shared.cancel.clone().cancelled_owned(),
                work: local_request(self.shared.clone(), self.out.clone(), data, timeout),
            }))
        };
        exchange.await
    }

    /// Waits for the next message (use this or [`Channel::on_message`], not both).
    /// Fails with `Closed` when the node shuts down. Cancel-safe.
    pub async fn recv(&self) -> Result<Message> {
        self.state.next(&self.shared.cancel).await
    }

    /// Feeds every incoming message to `handler`, in order, on the node's runtime.
    /// Replaces any previous message handler. After shutdown the handler is not kept
    /// (see [`Channel::set_message_handler`], which reports that as `Closed`).
    pub fn on_message(&self, handler: impl MessageHandler) {
        if let Err(e) = self.set_message_handler(Arc::new(handler)) {
            debug!(channel = self.state.name(), "message handler not set: {e}");
        }
    }

    /// [`Channel::on_message`] with a shared handler object (for bindings). Fails with
    /// `Closed` once the node is shut down, and then keeps no handler (one set while
    /// the node shuts down is dropped again), so a handler cannot outlive its node.
    pub fn set_message_handler(&self, handler: Arc<dyn MessageHandler>) -> Result<()> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let task = self.shared.runtime.handle().spawn(drain_into(
            self.state.clone(),
            handler,
            self.shared.cancel.clone(),
        ));
        self.state.set_message_task(Some(task.abort_handle()));
        if self.shared.is_closed() {
            self.clear_message_handler();
            return Err(Error::closed());
        }
        Ok(())
    }

    /// Stops feeding messages to the handler; they queue up for [`Channel::recv`].
    pub fn clear_message_handler(&self) {
        self.state.set_message_task(None);
    }

    /// Answers requests on this channel with `handler`. Replaces any previous one.
    /// After shutdown the handler is not kept (see [`Channel::set_request_handler`],
    /// which reports that as `Closed`).
    pub fn on_request(&self, handler: impl RequestHandler) {
        if let Err(e) = self.set_request_handler(Arc::new(handler)) {
            debug!(channel = self.state.name(), "request handler not set: {e}");
        }
    }

    /// [`Channel::on_request`] with a shared handler object (for bindings). Fails with
    /// `Closed` once the node is shut down, and then keeps no handler (one set while
    /// the node shuts down is dropped again), so a handler cannot outlive its node.
    pub fn set_request_handler(&self, handler: Arc<dyn RequestHandler>) -> Result<()> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        self.state.set_request_handler(Some(handler));
        if self.shared.is_closed() {
            self.clear_request_handler();
            return Err(Error::closed());
        }
        Ok(())
    }

    /// Removes the request handler: requests then fail with `NotFound`.
    pub fn clear_request_handler(&self) {
        self.state.set_request_handler(None);
    }
}

fn header(name: &str, op: ChannelOp) -> StreamHeader {
    StreamHeader::new(Service::Channel {
        name: name.to_string(),
        op,
    })
}

/// Sends one message on channel `name` to `peer` (for senders without a [`Channel`]).
pub(crate) async fn send_one(
    shared: &Arc<ChannelService>,
    peer: NodeId,
    name: &str,
    data: Bytes,
) -> Result<()> {
    send_via(shared, peer, &Outgoing::new(name)?, data).await
}

async fn send_via(
    shared: &Arc<ChannelService>,
    peer: NodeId,
    out: &Outgoing,
    data: Bytes,
) -> Result<()> {
    let timeout = shared.config.send_timeout;
    let attempt = async {
        if peer == shared.id {
            serve::handle(shared, peer, &out.name, ChannelOp::Send, data).await?;
            return Ok(());
        }
        let conn = connection(&shared.node, peer).await?;
        call_encoded(&conn, &out.send, data, shared.limits()).await?;
        Ok(())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ChannelError::SendTimeout {
            peer: peer.short(),
            timeout,
        })?
}

/// A request to `peer` (another node) over its connection, within `timeout`.
async fn remote_request(
    shared: Arc<ChannelService>,
    out: Arc<Outgoing>,
    peer: NodeId,
    data: Bytes,
    timeout: Duration,
) -> Result<Bytes> {
    let exchange = async {
        let conn = connection(&shared.node, peer).await?;
        call_encoded(&conn, &out.request, data, shared.limits()).await
    };
    within(deadline_after(timeout), exchange)
        .await
        .ok_or_else(|| timed_out(peer, &out, timeout))?
}

/// A request to this node's own handler, within `timeout`. No timer for what is done at
/// once (a handler that answers at once).
async fn local_request(
    shared: Arc<ChannelService>,
    out: Arc<Outgoing>,
    data: Bytes,
    timeout: Duration,
) -> Result<Bytes> {
    let me = shared.id;
    let exchange = serve::handle(&shared, me, &out.name, ChannelOp::Request, data);
    within(deadline_after(timeout), exchange)
        .await
        .ok_or_else(|| timed_out(me, &out, timeout))?
}

pin_project_lite::pin_project! {
    /// `work`, ended with `Closed` when the node shuts down (looked at first on every
    /// poll). A plain combinator, so `work` is held once (an `async` block with `select!`
    /// would hold it twice: captured, and in the select's own state).
    struct UntilClosed<F> {
        #[pin]
        closed: tokio_util::sync::WaitForCancellationFutureOwned,
        #[pin]
        work: F,
    }
}

impl<F: Future<Output = Result<Bytes>>> Future for UntilClosed<F> {
    type Output = Result<Bytes>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Bytes>> {
        let this = self.project();
        if this.closed.poll(cx).is_ready() {
            return Poll::Ready(Err(Error::closed()));
        }
        this.work.poll(cx)
    }
}

fn timed_out(peer: NodeId, out: &Outgoing, timeout: Duration) -> Error {
    ChannelError::RequestTimeout {
        peer: peer.short(),
        name: out.name.to_string(),
        timeout,
    }
    .into()
}

/// Folds per-peer outcomes into a count, or an error naming every failure.
fn summarize(outcomes: Vec<(NodeId, Result<()>)>) -> Result<usize> {
    let total = outcomes.len();
    let failures: Vec<(NodeId, Error)> = outcomes
        .into_iter()
        .filter_map(|(p, r)| r.err().map(|e| (p, e)))
        .collect();
    let Some((_, first)) = failures.first() else {
        return Ok(total);
    };
    let detail: Vec<String> = failures
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.short()))
        .collect();
    Err(ChannelError::Undelivered {
        delivered: total - failures.len(),
        total,
        failures: detail.join("; "),
        first: first.clone(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::identity::Keypair;

    #[test]
    fn summary_counts_and_names_failures() {
        let a = Keypair::generate().unwrap().node_id();
        let b = Keypair::generate().unwrap().node_id();
        assert_eq!(summarize(vec![(a, Ok(())), (b, Ok(()))]).unwrap(), 2);
        assert_eq!(summarize(vec![]).unwrap(), 0);
        let err = summarize(vec![
            (a, Ok(())),
            (b, Err(Error::new(ErrorKind::Timeout, "slow"))),
        ])
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().contains("delivered to 1 of 2"));
        assert!(err.message().contains(&b.short()));
    }

    #[tokio::test]
    async fn handlers_set_after_shutdown_are_refused_and_not_kept() {
        let node = crate::Node::builder()
            .listen("127.0.0.1:0")
            .mdns(false)
            .threads(1)
            .start()
            .await
            .unwrap();
        let ch = node.channel("late").unwrap();
        let echo: Arc<dyn RequestHandler> = Arc::new(|r: Request| async move { Ok(r.data) });
        ch.set_request_handler(echo.clone()).unwrap();
        node.shutdown().await.unwrap();
        let err = ch.set_request_handler(echo).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert!(ch.state.request_handler().is_none());
        let sink: Arc<dyn MessageHandler> = Arc::new(|_m: Message| async move {});
        let err = ch.set_message_handler(sink).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        // The convenience forms keep their signature and drop the handler too.
        ch.on_request(|r: Request| async move { Ok(r.data) });
        assert!(ch.state.request_handler().is_none());
    }
}
