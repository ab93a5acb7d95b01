//! JavaScript functions as channel handlers.
//!
//! A handler is a `ThreadsafeFunction`: the node runtime queues a call, the JavaScript
//! thread runs the function, and its result (a value, or a promise of one) is carried back
//! to the waiting Rust future through a oneshot channel. The threadsafe function is
//! referenced, like a listening server: a node with a handler keeps the process alive
//! until the handler is removed or the node shuts down (which drops every handler).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use memmesh::channel::BoxFuture;
use memmesh::{Bytes, ErrorKind, Message, MessageHandler, NodeId, Request, RequestHandler};
use napi::bindgen_prelude::{CallbackContext, Env, Function, PromiseRaw, Unknown};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{JsValue, Status};

use crate::bytes::{from_unknown, to_buffer};
use crate::channel::IncomingMessage;

/// A JS function called with one `{ from, data }` argument, whose return value is read
/// on the JavaScript thread.
type Tsfn = ThreadsafeFunction<(NodeId, Bytes), Unknown<'static>, IncomingMessage, Status, false>;

/// What a JS function produced: its value (read as bytes when asked), or the message of
/// what it threw or rejected with.
type Outcome = Result<Option<Bytes>, String>;

/// Where the outcome goes; shared by the `then` and `catch` callbacks of one promise.
type Reply = Rc<Cell<Option<oneshot::Sender<Outcome>>>>;

fn build(function: &Function<'_, IncomingMessage, Unknown<'static>>) -> napi::Result<Tsfn> {
    function
        .build_threadsafe_function::<(NodeId, Bytes)>()
        .callee_handled::<false>()
        .build_callback(|ctx: ThreadsafeCallContext<(NodeId, Bytes)>| {
            let (from, data) = ctx.value;
            Ok(IncomingMessage {
                from: from.to_string(),
                data: to_buffer(&data),
            })
        })
}

/// The text of what a handler threw or rejected with (read without running any
/// JavaScript: an `Error`'s `message`, a string as is).
fn reason(error: &napi::Error) -> String {
    if error.reason.is_empty() {
        "the handler threw a value that is neither an Error nor a string".to_string()
    } else {
        error.reason.clone()
    }
}

fn send(reply: &Reply, outcome: Outcome) {
    if let Some(tx) = reply.take() {
        let _ = tx.send(outcome);
    }
}

/// Runs on the JavaScript thread with what the function returned (or threw). Settles
/// `reply` now for a plain value, or when the returned promise settles.
///
/// With `rethrow`, a failure is also handed back to JavaScript: a throw becomes an
/// uncaught exception and a rejection an unhandled rejection, as for an event listener.
fn on_return(
    returned: napi::Result<Unknown<'static>>,
    reply: Reply,
    want_bytes: bool,
    rethrow: bool,
) -> napi::Result<()> {
    let read = move |value: Unknown<'_>| -> Outcome {
        if want_bytes {
            from_unknown(value).map(Some)
        } else {
            Ok(None)
        }
    };
    let value = match returned {
        Ok(value) => value,
        Err(error) => {
            // `error` holds the thrown value itself; its message is the reason napi read.
            send(&reply, Err(reason(&error)));
            return if rethrow { Err(error) } else { Ok(()) };
        }
    };
    if !value.is_promise().unwrap_or(false) {
        send(&reply, read(value));
        return Ok(());
    }
    let promise: PromiseRaw<'_, Unknown<'_>> = PromiseRaw::new(value.value().env, value.raw());
    let on_ok = reply.clone();
    promise
        .then(move |ctx: CallbackContext<Unknown<'_>>| {
            send(&on_ok, read(ctx.value));
            Ok(())
        })?
        .catch(move |ctx: CallbackContext<Unknown<'_>>| {
            let error = napi::Error::from_unknown_without_coercion(ctx.value);
            send(&reply, Err(reason(&error)));
            if rethrow {
                Err(error)
            } else {
                Ok(())
            }
        })?;
    Ok(())
}

/// Calls `tsfn` with `(from, data)` and resolves with its outcome.
fn call(
    tsfn: &Tsfn,
    from: NodeId,
    data: Bytes,
    want_bytes: bool,
    rethrow: bool,
) -> oneshot::Receiver<Outcome> {
    let (tx, rx) = oneshot::channel();
    let reply: Reply = Rc::new(Cell::new(None));
    // The sender crosses to the JavaScript thread inside the callback; `Rc` is only
    // created there.
    let status = tsfn.call_with_return_value(
        (from, data),
        ThreadsafeFunctionCallMode::NonBlocking,
        move |returned, _env: Env| {
            reply.set(Some(tx));
            on_return(returned, reply, want_bytes, rethrow)
        },
    );
    if status != Status::Ok {
        tracing::warn!(?status, "could not queue a call to a JavaScript handler");
    }
    rx
}

/// A JS request handler: `(req: { from, data }) => Buffer | Uint8Array | string` or a
/// promise of one. A throw or rejection answers the requester with `HandlerFailed`.
pub struct JsRequestHandler {
    tsfn: Tsfn,
}

impl JsRequestHandler {
    /// Wraps `function` (call on the JavaScript thread).
    pub fn new(
        function: &Function<'_, IncomingMessage, Unknown<'static>>,
    ) -> napi::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            tsfn: build(function)?,
        }))
    }
}

impl RequestHandler for JsRequestHandler {
    fn handle(&self, request: Request) -> BoxFuture<memmesh::Result<Bytes>> {
        let rx = call(&self.tsfn, request.from, request.data, true, false);
        Box::pin(async move {
            match rx.await {
                Ok(Ok(data)) => Ok(data.unwrap_or_default()),
                Ok(Err(message)) => Err(memmesh::Error::new(ErrorKind::HandlerFailed, message)),
                Err(_) => Err(memmesh::Error::new(
                    ErrorKind::HandlerFailed,
                    "the JavaScript request handler could not run (the JS environment is closing)",
                )),
            }
        })
    }
}

/// A JS message handler: `(msg: { from, data }) => void` or a promise. Messages are
/// handled one at a time, in order: the next call waits for the previous promise.
pub struct JsMessageHandler {
    tsfn: Tsfn,
}

impl JsMessageHandler {
    /// Wraps `function` (call on the JavaScript thread).
    pub fn new(
        function: &Function<'_, IncomingMessage, Unknown<'static>>,
    ) -> napi::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            tsfn: build(function)?,
        }))
    }
}

impl MessageHandler for JsMessageHandler {
    fn handle(&self, message: Message) -> BoxFuture<()> {
        let rx = call(&self.tsfn, message.from, message.data, false, true);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
