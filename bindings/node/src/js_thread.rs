//! Work polled once on the JavaScript thread itself, before it goes to the node runtime.
//!
//! A request to a channel of this very node, answered by a JS handler, needs no other
//! thread: the core polls it where it is awaited (`NodeRuntime::here`), and its handler
//! is a JavaScript function. So the binding polls such a request once, inside the
//! native call, with the calling environment marked as current: a JS request handler of
//! that same environment is then called directly instead of through its threadsafe
//! function (see `handler::JsRequestHandler`). A handler that answers at once settles the
//! request in that one poll, with no thread hop and no wake-up of the event loop. Work
//! that is not done after the poll (a handler that returned a promise, a full budget)
//! goes on to the node runtime as any other call does; a future may be polled by
//! different tasks in turn, and the runtime's task polls it again with its own waker.

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

use napi::bindgen_prelude::Env;
use napi::sys;

thread_local! {
    /// The environment whose native call is polling work on this thread, or null.
    static CURRENT: Cell<sys::napi_env> = const { Cell::new(ptr::null_mut()) };
}

/// Restores the previous current environment when a poll ends (or unwinds).
struct Restore(sys::napi_env);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// What one poll on the JavaScript thread gave.
pub(crate) enum Polled<T> {
    /// The work finished in this poll.
    Done(T),
    /// The work is not done: hand it to the node runtime.
    Pending,
    /// The work panicked (a bug): it must not be polled again.
    Panicked,
}

/// Polls `work` once on this thread, the JavaScript thread of `env`, with `env` marked
/// as current for handlers (see [`current`]). Never lets a panic unwind into Node.js.
pub(crate) fn poll_once<F: Future + Unpin>(env: &Env, work: &mut F) -> Polled<F::Output> {
    let previous = CURRENT.with(|c| c.replace(env.raw()));
    let _restore = Restore(previous);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    match catch_unwind(AssertUnwindSafe(|| Pin::new(work).poll(&mut cx))) {
        Ok(Poll::Ready(out)) => Polled::Done(out),
        Ok(Poll::Pending) => Polled::Pending,
        Err(_) => Polled::Panicked,
    }
}

/// `env`, if this thread is polling work for a native call of that very environment
/// (so JavaScript functions of `env` may be called here and now).
pub(crate) fn current(env: sys::napi_env) -> Option<Env> {
    let now = CURRENT.with(Cell::get);
    (!now.is_null() && now == env).then(|| Env::from_raw(now))
}
