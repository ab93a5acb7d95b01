//! How calls cross between Python and the node's tokio runtime.
//!
//! * Blocking calls ([`wait`]) poll the core future on the calling thread with the GIL
//!   released, and come back to Python every [`SIGNAL_CHECK`] so that Ctrl-C works;
//!   an interrupt drops the future, which cancels the work in the node.
//! * asyncio calls ([`spawn_for_asyncio`]) run the core future as a task on the node
//!   runtime and resolve an `asyncio.Future` on its loop (through
//!   `loop.call_soon_threadsafe`, batched: see `event_loop.rs`). The returned
//!   [`Pending`] aborts that task when the awaiting coroutine is cancelled.
//!
//! No second runtime is ever created: the node's runtime does all the work.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::error::{to_py_err, IntoPyResult};
use crate::event_loop;

/// How often a blocking call returns to Python to run signal handlers.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Wakes the thread that is blocked in [`wait`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` to completion on this thread with the GIL released.
///
/// Every [`SIGNAL_CHECK`] it re-attaches to run Python's signal handlers; if one raises
/// (`KeyboardInterrupt`), `fut` is dropped, cancelling the work, and the exception
/// propagates.
pub fn wait<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = memmesh::Result<T>> + Send,
    T: Send,
{
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    loop {
        let outcome = py.detach(|| {
            let mut cx = Context::from_waker(&waker);
            let deadline = Instant::now() + SIGNAL_CHECK;
            loop {
                if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                    return Some(out);
                }
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                std::thread::park_timeout(deadline - now);
            }
        });
        match outcome {
            Some(out) => return out.into_py(py),
            None => py.check_signals()?,
        }
    }
}

/// A call running on the node runtime for an asyncio caller.
#[pyclass(frozen, module = "memmesh._native")]
pub struct Pending {
    task: AbortHandle,
}

#[pymethods]
impl Pending {
    /// Aborts the work (called when the awaiting coroutine is cancelled).
    fn cancel(&self) {
        self.task.abort();
    }

    /// Whether the work has finished (or was aborted).
    fn done(&self) -> bool {
        self.task.is_finished()
    }
}

/// Converts a successful result into a Python object, with the GIL held.
pub type Convert<T> = fn(Python<'_>, T) -> PyResult<Py<PyAny>>;

/// A [`Convert`] for any value with a Python form (`bytes` for `Bytes`, `None` for
/// `Option::None`, a list for a `Vec`, ...).
pub fn to_py<T>(py: Python<'_>, value: T) -> PyResult<Py<PyAny>>
where
    T: for<'py> IntoPyObject<'py>,
{
    value.into_py_any(py)
}

/// A [`Convert`] for calls that return nothing: `None`.
pub fn to_none(py: Python<'_>, (): ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

/// Runs `work` on the node runtime and resolves `future` (an `asyncio.Future` of
/// `event_loop`) with its converted result or its exception.
///
/// If the task never completes (aborted, or the runtime shut down), `future` is
/// resolved with `ClosedError`, unless it is already done (cancelled).
pub fn spawn_for_asyncio<T, F>(
    runtime: &Handle,
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    work: F,
    convert: Convert<T>,
) -> Pending
where
    F: Future<Output = memmesh::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut delivery = Delivery {
        target: Some((Arc::new(event_loop), future)),
    };
    let task = runtime.spawn(async move {
        let out = work.await;
        delivery.resolve(move |py| out.into_py(py).and_then(|v| convert(py, v)));
    });
    Pending {
        task: task.abort_handle(),
    }
}

/// Where the outcome of one asyncio call goes; resolves with `ClosedError` if dropped
/// before an outcome arrives.
struct Delivery {
    target: Option<(event_loop::EventLoop, Py<PyAny>)>,
}

impl Delivery {
    fn resolve(
        &mut self,
        outcome: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send + 'static,
    ) {
        if let Some((event_loop, future)) = self.target.take() {
            event_loop::post(
                event_loop,
                Box::new(move |py, _| {
                    if let Err(e) = resolve(future.bind(py), outcome(py)) {
                        e.write_unraisable(py, Some(future.bind(py)));
                    }
                }),
            );
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if self.target.is_some() {
            self.resolve(|py| Err(to_py_err(py, memmesh::Error::closed())));
        }
    }
}

/// Sets the result or exception of `future`, unless it is already done (cancelled).
fn resolve(future: &Bound<'_, PyAny>, outcome: PyResult<Py<PyAny>>) -> PyResult<()> {
    let py = future.py();
    if future
        .call_method0(pyo3::intern!(py, "done"))?
        .is_truthy()?
    {
        return Ok(());
    }
    match outcome {
        Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,))?,
        Err(err) => {
            future.call_method1(pyo3::intern!(py, "set_exception"), (err.into_value(py),))?
        }
    };
    Ok(())
}

/// Runs `fut` as a task on the node runtime (`runtime`) and awaits it from any thread:
/// the task is aborted if the returned future is dropped (an interrupted blocking call),
/// and ends with `ClosedError` when the node shuts down (its runtime drops every task).
/// For waits that only the node's shutdown would otherwise end (event subscriptions).
pub fn on_runtime<T, F>(
    runtime: &Handle,
    fut: F,
) -> impl Future<Output = memmesh::Result<T>> + Send + 'static
where
    F: Future<Output = memmesh::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    struct AbortOnDrop<T>(tokio::task::JoinHandle<memmesh::Result<T>>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(runtime.spawn(fut));
    async move {
        match (&mut task.0).await {
            Ok(out) => out,
            Err(e) if e.is_cancelled() => Err(memmesh::Error::closed()),
            Err(e) => Err(memmesh::Error::internal(format!(
                "a memmesh task panicked: {e}"
            ))),
        }
    }
}
