//! JavaScript functions as channel and offer handlers.
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
use memmesh::transfer::{Destination, Offer, OfferHandler};
use memmesh::{Bytes, ErrorKind, Message, MessageHandler, NodeId, Request, RequestHandler};
use napi::bindgen_prelude::{
    CallbackContext, Env, FromNapiValue, Function, FunctionRef, JsObjectValue,
    JsValuesTupleIntoVec, Object, PromiseRaw, Unknown,
};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{JsValue, Status, ValueType};

use crate::bytes::{buffer_here, describe, from_unknown, to_buffer};
use crate::channel::IncomingMessage;
use crate::js_thread;
use crate::transfer::{JsOffer, OfferAnswer};

/// A JS function called with one `{ from, data }` argument, whose return value is read
/// on the JavaScript thread.
type Tsfn = ThreadsafeFunction<(NodeId, Bytes), Unknown<'static>, IncomingMessage, Status, false>;

/// What a JS function produced: its value (as read by the handler's reader), or the
/// message of what it threw or rejected with.
pub(crate) type Outcome<T> = Result<T, String>;

/// Reads the value a JS function returned (or its promise resolved with), on the
/// JavaScript thread.
pub(crate) type Read<T> = fn(Unknown<'_>) -> Outcome<T>;

/// Where the outcome goes; shared by the `then` and `catch` callbacks of one promise.
type Reply<T> = Rc<Cell<Option<oneshot::Sender<Outcome<T>>>>>;

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

fn send<T>(reply: &Reply<T>, outcome: Outcome<T>) {
    if let Some(tx) = reply.take() {
        let _ = tx.send(outcome);
    }
}

/// Runs on the JavaScript thread with what the function returned (or threw). Settles
/// `reply` now for a plain value, or when the returned promise settles; `read` turns
/// the value into the outcome.
///
/// With `rethrow`, a failure is also handed back to JavaScript: a throw becomes an
/// uncaught exception and a rejection an unhandled rejection, as for an event listener.
fn on_return<T: 'static>(
    returned: napi::Result<Unknown<'static>>,
    reply: Reply<T>,
    read: Read<T>,
    rethrow: bool,
) -> napi::Result<()> {
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

/// Calls `tsfn` with `arg` and resolves with its outcome, read by `read`.
pub(crate) fn call<A: 'static, C: JsValuesTupleIntoVec + 'static, T: 'static>(
    tsfn: &ThreadsafeFunction<A, Unknown<'static>, C, Status, false>,
    arg: A,
    read: Read<T>,
    rethrow: bool,
) -> oneshot::Receiver<Outcome<T>> {
    let (tx, rx) = oneshot::channel();
    let status = tsfn.call_with_return_value(
        arg,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |returned, _env: Env| {
            // The sender crosses to the JavaScript thread inside this callback; the `Rc`
            // is only created here.
            let reply: Reply<T> = Rc::new(Cell::new(Some(tx)));
            on_return(returned, reply, read, rethrow)
        },
    );
    if status != Status::Ok {
        tracing::warn!(?status, "could not queue a call to a JavaScript handler");
    }
    rx
}

/// Reads a request handler's answer as bytes.
fn read_bytes(value: Unknown<'_>) -> Outcome<Option<Bytes>> {
    from_unknown(value).map(Some)
}

/// Ignores a message handler's return value.
fn read_nothing(_: Unknown<'_>) -> Outcome<Option<Bytes>> {
    Ok(None)
}

/// A handler's `{ from, data }` argument, built on the JavaScript thread of `env`, its
/// bytes copied into an engine-owned Buffer.
pub(crate) fn request_arg<'env>(
    env: &'env Env,
    from: NodeId,
    data: &[u8],
) -> napi::Result<Unknown<'env>> {
    let mut arg = Object::new(env)?;
    arg.set_named_property("from", from.to_string())?;
    arg.set_named_property("data", buffer_here(env, data)?)?;
    Ok(arg.to_unknown())
}

/// Calls `function` here and now, on the JavaScript thread of `env`, and resolves with
/// its outcome, read by `read` (the same outcome [`call`] gives through a threadsafe
/// function).
fn call_here<T: 'static>(
    env: &Env,
    function: &FunctionRef<Unknown<'static>, Unknown<'static>>,
    (from, data): (NodeId, Bytes),
    read: Read<T>,
) -> oneshot::Receiver<Outcome<T>> {
    let (tx, rx) = oneshot::channel();
    let reply: Reply<T> = Rc::new(Cell::new(Some(tx)));
    let returned = function
        .borrow_back(env)
        .and_then(|f| f.call(request_arg(env, from, &data)?));
    if let Err(error) = on_return(returned, reply, read, false) {
        // Only attaching `then`/`catch` to a returned promise can fail here; the reply's
        // sender is then dropped and the request fails as a handler that could not run.
        tracing::warn!(%error, "could not follow a JavaScript handler's promise");
    }
    rx
}

/// A JS request handler: `(req: { from, data }) => Buffer | Uint8Array | string` or a
/// promise of one. A throw or rejection answers the requester with `HandlerFailed`.
///
/// It is called through its threadsafe function, except during a request to this very
/// node polled on the JavaScript thread of the handler's own environment (see
/// [`crate::js_thread`]), where it is called directly.
pub struct JsRequestHandler {
    tsfn: Tsfn,
    /// The function itself, for direct calls (napi-rs releases it on its own thread).
    function: FunctionRef<Unknown<'static>, Unknown<'static>>,
    /// The environment the function belongs to.
    env: EnvId,
}

/// A `napi_env`'s address, only ever compared (never dereferenced off its thread).
#[derive(Clone, Copy, PartialEq, Eq)]
struct EnvId(usize);

impl EnvId {
    fn raw(self) -> napi::sys::napi_env {
        self.0 as napi::sys::napi_env
    }
}

impl JsRequestHandler {
    /// Wraps `function` (call on the JavaScript thread).
    pub fn new(
        function: &Function<'_, IncomingMessage, Unknown<'static>>,
    ) -> napi::Result<Arc<Self>> {
        let env = function.value().env;
        // The same function, taking the argument object `call_here` builds.
        let untyped: Function<'_, Unknown<'static>, Unknown<'static>> =
            unsafe { Function::from_napi_value(env, function.raw()) }?;
        Ok(Arc::new(Self {
            tsfn: build(function)?,
            function: untyped.create_ref()?,
            env: EnvId(env as usize),
        }))
    }
}

impl RequestHandler for JsRequestHandler {
    fn handle(&self, request: Request) -> BoxFuture<memmesh::Result<Bytes>> {
        let arg = (request.from, request.data);
        let rx = match js_thread::current(self.env.raw()) {
            Some(env) => call_here(&env, &self.function, arg, read_bytes),
            None => call(&self.tsfn, arg, read_bytes, false),
        };
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
        let rx = call(&self.tsfn, (message.from, message.data), read_nothing, true);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// A JS function called with one offer object, whose answer is read on the JavaScript
/// thread.
type OfferTsfn = ThreadsafeFunction<Offer, Unknown<'static>, JsOffer, Status, false>;

/// Reads an offer handler's answer: `{ path }`, `{ memory: true }` or `{ reject: reason }`.
fn read_destination(value: Unknown<'_>) -> Outcome<Destination> {
    let expected = "return { path }, { memory: true } or { reject: reason }";
    if value.get_type().map_err(|e| e.reason)? != ValueType::Object {
        return Err(format!(
            "the offer handler returned {}; {expected}",
            describe(&value)
        ));
    }
    let answer =
        unsafe { OfferAnswer::from_napi_value(value.value().env, value.raw()) }.map_err(|e| {
            format!(
                "the offer handler returned a bad answer ({}); {expected}",
                e.reason
            )
        })?;
    match (answer.path, answer.memory.unwrap_or(false), answer.reject) {
        (Some(path), false, None) => Ok(Destination::Path(path.into())),
        (None, true, None) => Ok(Destination::Memory),
        (None, false, Some(reason)) => Ok(Destination::Reject(reason)),
        _ => Err(format!(
            "the offer handler returned an object with none or several answers; {expected}"
        )),
    }
}

/// A JS offer handler: `(offer: { from, id, name, size }) => { path } | { memory: true } |
/// { reject: reason }`, or a promise of one. A throw, a rejection or another value
/// refuses the offer with that reason.
pub struct JsOfferHandler {
    tsfn: OfferTsfn,
}

impl JsOfferHandler {
    /// Wraps `function` (call on the JavaScript thread).
    pub fn new(function: &Function<'_, JsOffer, Unknown<'static>>) -> napi::Result<Self> {
        let tsfn = function
            .build_threadsafe_function::<Offer>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<Offer>| Ok(JsOffer::from(ctx.value)))?;
        Ok(Self { tsfn })
    }
}

impl OfferHandler for JsOfferHandler {
    fn decide(&self, offer: Offer) -> BoxFuture<Destination> {
        let rx = call(&self.tsfn, offer, read_destination, false);
        Box::pin(async move {
            match rx.await {
                Ok(Ok(destination)) => destination,
                Ok(Err(message)) => {
                    tracing::warn!(%message, "the JavaScript offer handler failed; offer refused");
                    Destination::Reject(message)
                }
                Err(_) => Destination::Reject(
                    "the JavaScript offer handler could not run (the JS environment is closing)"
                        .into(),
                ),
            }
        })
    }
}
