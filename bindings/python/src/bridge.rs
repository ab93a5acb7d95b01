//! How calls cross between Python and the node's tokio runtime.
//!
//! Every native method that does I/O returns a [`Pending`] call, not started; the Python
//! side chooses how to run it:
//!
//! * blocking (`pending.wait()`, see [`wait`]): the core future is polled on the calling
//!   thread with the GIL released, coming back to Python every [`SIGNAL_CHECK`] so that
//!   Ctrl-C works; an interrupt drops the future, which cancels the work in the node.
//! * asyncio (`pending.start(loop, future)`): the core future runs as a task on the node
//!   runtime and resolves an `asyncio.Future` on its loop (through
//!   `loop.call_soon_threadsafe`, batched: see `event_loop.rs`); `pending.cancel()`
//!   aborts that task when the awaiting coroutine is cancelled.
//!
//! No second runtime is ever created: the node's runtime does all the work.

use std::future::Future;
use std::pin::pin;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

/// A converted outcome waiting for the GIL: builds the Python result.
type Outcome = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// The work of a [`Pending`] call before it starts.
type Work = Pin<Box<dyn Future<Output = memmesh::Result<Outcome>> + Send>>;

/// Where a [`Pending`] call is.
enum State {
    /// Not started: the work, and whether a blocking wait must run it as a task on the
    /// node runtime (work that needs the runtime's context).
    Ready(Work, bool),
    /// Started for asyncio: aborting the task cancels the work.
    Running(AbortHandle),
    /// Waited on, or its result taken.
    Taken,
}

/// One call into the node, not started yet: every native method that does I/O returns
/// one. The blocking API calls [`Pending::wait`] (the GIL released while waiting); the
/// asyncio API calls [`Pending::start`] with a future of its loop and awaits the future,
/// calling [`Pending::cancel`] if the awaiting coroutine is cancelled.
#[pyclass(frozen, generic, module = "memmesh._native")]
pub struct Pending {
    state: Mutex<State>,
    runtime: Handle,
}

impl Pending {
    /// A call doing `work` on the node of `runtime`, its result converted by `convert`.
    pub fn new<T, F>(runtime: &Handle, work: F, convert: Convert<T>) -> Self
    where
        F: Future<Output = memmesh::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        Self::with(runtime, work, convert, false)
    }

    /// [`Pending::new`] for work that needs the node runtime's context even when waited
    /// on from a Python thread (it then runs as a task there: see [`on_runtime`]).
    pub fn on_runtime<T, F>(runtime: &Handle, work: F, convert: Convert<T>) -> Self
    where
        F: Future<Output = memmesh::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        Self::with(runtime, work, convert, true)
    }

    fn with<T, F>(runtime: &Handle, work: F, convert: Convert<T>, on_runtime: bool) -> Self
    where
        F: Future<Output = memmesh::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let work: Work = Box::pin(async move {
            let value = work.await?;
            Ok(Box::new(move |py: Python<'_>| convert(py, value)) as Outcome)
        });
        Self {
            state: Mutex::new(State::Ready(work, on_runtime)),
            runtime: runtime.clone(),
        }
    }

    /// Takes the state out, leaving [`State::Taken`].
    fn take(&self) -> State {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *state, State::Taken)
    }
}

/// The error of a call started or waited on twice.
fn used_twice(py: Python<'_>) -> PyErr {
    to_py_err(
        py,
        memmesh::Error::invalid("this call was already started or waited on"),
    )
}

#[pymethods]
impl Pending {
    /// Runs the call on this thread with the GIL released and returns its result (see
    /// [`wait`]; Ctrl-C cancels it).
    #[pyo3(name = "wait")]
    fn wait_py(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.take() {
            State::Ready(work, false) => wait(py, work)?(py),
            State::Ready(work, true) => wait(py, on_runtime(&self.runtime, work))?(py),
            State::Running(_) | State::Taken => Err(used_twice(py)),
        }
    }

    /// Starts the call as a task on the node runtime, resolving `future` (an
    /// `asyncio.Future` of `event_loop`) with its result or its exception. If the task
    /// never completes (cancelled, or the runtime shut down), `future` is resolved with
    /// `ClosedError`, unless it is already done.
    fn start(&self, py: Python<'_>, event_loop: Py<PyAny>, future: Py<PyAny>) -> PyResult<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Ready(work, _) => {
                let mut delivery = Delivery {
                    target: Some((Arc::new(event_loop), future)),
                };
                let task = self.runtime.spawn(async move {
                    let out = work.await;
                    delivery.resolve(move |py| out.into_py(py).and_then(|outcome| outcome(py)));
                });
                *state = State::Running(task.abort_handle());
                Ok(())
            }
            State::Running(task) => {
                *state = State::Running(task);
                Err(used_twice(py))
            }
            State::Taken => Err(used_twice(py)),
        }
    }

    /// Aborts the work of a started call (called when the awaiting coroutine is
    /// cancelled); nothing otherwise.
    fn cancel(&self) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Running(task) = &*state {
            task.abort();
        }
    }

    /// Whether the work has finished (or was aborted); `False` before it starts.
    fn done(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            State::Running(task) => task.is_finished(),
            State::Taken => true,
            State::Ready(..) => false,
        }
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
