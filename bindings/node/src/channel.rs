//! Named channels: send, broadcast, request, receive, and JS handlers.

use memmesh::{Bytes, NodeId, Target};
use napi::bindgen_prelude::{
    Buffer, BufferSlice, Either, Env, Function, PromiseRaw, Uint8ArraySlice, Unknown,
};
use napi_derive::napi;

use crate::bytes::{buffer_here, from_js, to_buffer};
use crate::config::millis;
use crate::error::{invalid, js_error, to_js};
use crate::handler::{JsMessageHandler, JsRequestHandler};
use crate::js_thread::{self, Polled};
use crate::runtime::{panicked, spawn_promise};

/// A message or request as a handler or `recv` sees it.
#[napi(object)]
pub struct IncomingMessage {
    /// The sender's node id.
    pub from: String,
    /// The payload.
    pub data: Buffer,
}

/// A named channel on a node (the native half of the `Channel` class).
#[napi(js_name = "NativeChannel")]
pub struct Channel {
    inner: memmesh::Channel,
    node: memmesh::Node,
}

fn parse_id(id: &str) -> memmesh::Result<NodeId> {
    id.parse()
}

/// `undefined` means every connected peer; a string one peer; an array those peers.
fn target(to: Option<Either<String, Vec<String>>>) -> memmesh::Result<Target> {
    Target::parse(to.map(|to| match to {
        Either::A(id) => vec![id],
        Either::B(ids) => ids,
    }))
}

fn count(n: usize) -> napi::Result<u32> {
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

impl Channel {
    pub(crate) fn new(inner: memmesh::Channel, node: memmesh::Node) -> Self {
        Self { inner, node }
    }
}

#[napi]
impl Channel {
    /// The channel name.
    #[napi(getter, catch_unwind)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Sends `data` to `to` (`undefined`: every connected peer; an id; an array of ids)
    /// and resolves with how many peers queued it.
    #[napi(ts_return_type = "Promise<number>", catch_unwind)]
    pub fn send<'env>(
        &self,
        env: &'env Env,
        data: Either<Uint8ArraySlice<'_>, String>,
        to: Option<Either<String, Vec<String>>>,
    ) -> napi::Result<PromiseRaw<'env, u32>> {
        let data = from_js(data);
        let to = to_js(env, target(to))?;
        let ch = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { ch.send(data, to).await },
            count,
        )
    }

    /// Sends `data` to every connected peer and resolves with how many queued it.
    #[napi(ts_return_type = "Promise<number>", catch_unwind)]
    pub fn broadcast<'env>(
        &self,
        env: &'env Env,
        data: Either<Uint8ArraySlice<'_>, String>,
    ) -> napi::Result<PromiseRaw<'env, u32>> {
        let data = from_js(data);
        let ch = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { ch.broadcast(data).await },
            count,
        )
    }

    /// Sends a request to `peer` and resolves with its response, within `timeoutMs`
    /// (default: the node's `requestTimeoutMs`). A request to this very node that its
    /// handler answers at once returns the response itself (the wrapper awaits either).
    #[napi(ts_return_type = "Buffer | Promise<Buffer>", catch_unwind)]
    pub fn request<'env>(
        &self,
        env: &'env Env,
        peer: String,
        data: Either<Uint8ArraySlice<'_>, String>,
        timeout_ms: Option<f64>,
    ) -> napi::Result<Either<BufferSlice<'env>, PromiseRaw<'env, Buffer>>> {
        let data = from_js(data);
        let peer = to_js(env, parse_id(&peer))?;
        let timeout = match timeout_ms {
            Some(ms) => {
                let d = to_js(env, millis("timeoutMs", ms))?;
                if d.is_zero() {
                    return Err(js_error(
                        env,
                        &invalid("timeoutMs must be greater than zero"),
                    ));
                }
                Some(d)
            }
            None => None,
        };
        let ch = self.inner.clone();
        let work = async move { ch.request(peer, data, timeout).await };
        let convert = |reply: Bytes| Ok(to_buffer(&reply));
        if peer != self.node.id() {
            let promise = spawn_promise(env, &self.node.runtime_handle(), work, convert)?;
            return Ok(Either::B(promise));
        }
        // A request to this node: polled here first, so a JS handler of this thread that
        // answers at once is called directly and the answer returned as is (see
        // `js_thread`); otherwise it goes on on the node runtime.
        let mut work = Box::pin(work);
        match js_thread::poll_once(env, &mut work) {
            Polled::Done(Ok(reply)) => Ok(Either::A(buffer_here(env, &reply)?)),
            Polled::Done(Err(e)) => Err(js_error(env, &e)),
            Polled::Panicked => Err(js_error(env, &panicked())),
            Polled::Pending => {
                let promise = spawn_promise(env, &self.node.runtime_handle(), work, convert)?;
                Ok(Either::B(promise))
            }
        }
    }

    /// Resolves with the next message; rejects with `Closed` when the node shuts down.
    #[napi(ts_return_type = "Promise<IncomingMessage>", catch_unwind)]
    pub fn recv<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, IncomingMessage>> {
        let ch = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { ch.recv().await },
            |m| {
                Ok(IncomingMessage {
                    from: m.from.to_string(),
                    data: to_buffer(&m.data),
                })
            },
        )
    }

    /// Calls `handler({ from, data })` for every message, in order (awaiting a returned
    /// promise before the next call). `null` removes the handler; messages then queue
    /// for `recv`.
    #[napi(
        ts_args_type = "handler: ((msg: IncomingMessage) => unknown) | null",
        catch_unwind
    )]
    pub fn on_message(
        &self,
        env: &Env,
        handler: Option<Function<'_, IncomingMessage, Unknown<'static>>>,
    ) -> napi::Result<()> {
        match handler {
            Some(f) => to_js(
                env,
                self.inner.set_message_handler(JsMessageHandler::new(&f)?),
            ),
            None => {
                self.inner.clear_message_handler();
                Ok(())
            }
        }
    }

    /// Answers requests with `handler({ from, data })`, which returns (or resolves with)
    /// a Buffer, Uint8Array or string; a throw or rejection reaches the requester as
    /// `HandlerFailed`. `null` removes the handler (requests then fail with `NotFound`).
    #[napi(
        ts_args_type = "handler: ((req: IncomingMessage) => unknown) | null",
        catch_unwind
    )]
    pub fn on_request(
        &self,
        env: &Env,
        handler: Option<Function<'_, IncomingMessage, Unknown<'static>>>,
    ) -> napi::Result<()> {
        match handler {
            Some(f) => to_js(
                env,
                self.inner.set_request_handler(JsRequestHandler::new(&f)?),
            ),
            None => {
                self.inner.clear_request_handler();
                Ok(())
            }
        }
    }
}
