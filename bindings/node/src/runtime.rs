//! How async crosses the boundary: work runs on the node's own tokio runtime and settles
//! a JS promise through a napi deferred (a threadsafe function released once settled).
//!
//! The binding never creates a runtime of its own. A promise is always settled: if the
//! work is dropped before it finishes (the node shut down, its runtime is gone), it is
//! rejected with `Closed`, so no pending promise keeps the Node.js process alive.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use futures::future::{AbortHandle, AbortRegistration, Abortable};
use futures::FutureExt;
use napi_derive::napi;

use napi::bindgen_prelude::{Env, PromiseRaw, ToNapiValue};
use napi::{JsDeferred, JsValue};
use tokio::runtime::Handle;

use crate::error::js_error;

/// The error a promise rejects with when the work behind it panicked: a bug in memmesh,
/// reported as `Internal` instead of unwinding into Node.js or leaving the promise pending.
pub(crate) fn panicked() -> memmesh::Error {
    memmesh::Error::internal("a memmesh operation panicked (a bug: please report it)")
}

/// Builds the resolved value on the JavaScript thread.
type Resolver<D> = Box<dyn FnOnce(Env) -> napi::Result<D> + Send>;

/// A deferred that is settled exactly once: by [`Settle::finish`], or with `Closed` when
/// dropped unsettled.
struct Settle<D: ToNapiValue + 'static> {
    deferred: Option<JsDeferred<D, Resolver<D>>>,
}

impl<D: ToNapiValue + 'static> Settle<D> {
    fn finish<T, C>(mut self, result: memmesh::Result<T>, convert: C)
    where
        T: Send + 'static,
        C: FnOnce(T) -> napi::Result<D> + Send + 'static,
    {
        if let Some(deferred) = self.deferred.take() {
            deferred.resolve(Box::new(move |env| match result {
                // The conversion runs on the JavaScript thread: a panic there must not
                // unwind into Node.js.
                Ok(value) => catch_unwind(AssertUnwindSafe(|| convert(value)))
                    .unwrap_or_else(|_| Err(js_error(&env, &panicked()))),
                Err(e) => Err(js_error(&env, &e)),
            }));
        }
    }
}

impl<D: ToNapiValue + 'static> Drop for Settle<D> {
    fn drop(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            deferred.resolve(Box::new(|env| {
                Err(js_error(&env, &memmesh::Error::closed()))
            }));
        }
    }
}

/// A promise and the settle handle that resolves it from any thread.
fn deferred<'env, D: ToNapiValue + 'static>(
    env: &'env Env,
) -> napi::Result<(Settle<D>, PromiseRaw<'env, D>)> {
    let (deferred, promise) = env.create_deferred::<D, Resolver<D>>()?;
    let promise = PromiseRaw::new(env.raw(), promise.raw());
    Ok((
        Settle {
            deferred: Some(deferred),
        },
        promise,
    ))
}

/// Runs `work` on the node runtime `handle` and returns a promise of its result;
/// `convert` turns the value into its JS form on the JavaScript thread.
pub fn spawn_promise<'env, T, D, F, C>(
    env: &'env Env,
    handle: &Handle,
    work: F,
    convert: C,
) -> napi::Result<PromiseRaw<'env, D>>
where
    T: Send + 'static,
    D: ToNapiValue + 'static,
    F: Future<Output = memmesh::Result<T>> + Send + 'static,
    C: FnOnce(T) -> napi::Result<D> + Send + 'static,
{
    let (settle, promise) = deferred(env)?;
    handle.spawn(async move {
        let result = AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(panicked()));
        settle.finish(result, convert);
    });
    Ok(promise)
}

/// Runs blocking `work` on a new OS thread (for what cannot run on a node runtime:
/// starting a node, which creates that runtime, and shutting one down, which joins it)
/// and returns a promise of its result.
pub fn thread_promise<'env, T, D, W, C>(
    env: &'env Env,
    name: &str,
    work: W,
    convert: C,
) -> napi::Result<PromiseRaw<'env, D>>
where
    T: Send + 'static,
    D: ToNapiValue + 'static,
    W: FnOnce() -> memmesh::Result<T> + Send + 'static,
    C: FnOnce(T) -> napi::Result<D> + Send + 'static,
{
    let (settle, promise) = deferred(env)?;
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err(panicked()));
            settle.finish(result, convert)
        })
        .map_err(|e| js_error(env, &memmesh::Error::from(e).context("spawning a thread")))?;
    Ok(promise)
}

/// Cancels one operation from JavaScript (the native half of an `AbortSignal` passed as
/// `{ signal }`): `cancel()` drops the operation's future, which the core treats as
/// cancellation, and its promise rejects with `Closed`.
#[napi(js_name = "NativeCanceller")]
pub struct Canceller {
    handle: AbortHandle,
    registration: Mutex<Option<AbortRegistration>>,
}

impl Canceller {
    /// The registration tying one operation to this canceller (usable once).
    pub fn registration(&self) -> memmesh::Result<AbortRegistration> {
        self.registration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                memmesh::Error::invalid("a canceller can be used for one operation only")
            })
    }
}

#[napi]
impl Canceller {
    /// A canceller not yet tied to an operation.
    #[napi(constructor, catch_unwind)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let (handle, registration) = AbortHandle::new_pair();
        Self {
            handle,
            registration: Mutex::new(Some(registration)),
        }
    }

    /// Cancels the operation (now, or as soon as it starts). Idempotent.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.handle.abort();
    }
}

/// `work`, stopped (and dropped) when `registration`'s canceller is cancelled; it then
/// fails with `Closed` and `message`.
pub async fn cancellable<T>(
    work: impl Future<Output = memmesh::Result<T>> + Send + 'static,
    registration: Option<AbortRegistration>,
    message: &'static str,
) -> memmesh::Result<T>
where
    T: Send + 'static,
{
    match registration {
        None => work.await,
        Some(r) => Abortable::new(work, r)
            .await
            .unwrap_or_else(|_| Err(memmesh::Error::new(memmesh::ErrorKind::Closed, message))),
    }
}
