//! What channels deliver to Python (`Message`, `Request`), and Python callables as the
//! core's [`MessageHandler`] / [`RequestHandler`] (and, through `transfer.rs`, as its
//! `OfferHandler`).
//!
//! A handler runs either on a blocking thread of the node runtime (plain functions of
//! the blocking API), or on an asyncio loop (`async def` handlers of the blocking API run
//! on a background loop; every handler of the asyncio API runs on the loop that
//! registered it): posted to the loop (`event_loop.rs`), called there, and if it returns
//! an awaitable, run as a task of that loop. The node awaits the outcome without
//! holding a runtime thread or the GIL.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::channel::oneshot;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict};

use memmesh::channel::BoxFuture;
use memmesh::{Error, ErrorKind, MessageHandler, RequestHandler};

use crate::error::handler_failed;
use crate::event_loop::{self, EventLoop};
use crate::handler_threads;

macro_rules! payload_class {
    ($(#[$doc:meta])* $rust:ident, $py:literal) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "memmesh", name = $py)]
        pub struct $rust {
            /// The id of the node that sent it.
            #[pyo3(get)]
            sender: String,
            /// The payload.
            #[pyo3(get)]
            data: Py<PyBytes>,
        }

        impl $rust {
            /// Builds the Python object from what the core delivered.
            pub fn create(py: Python<'_>, sender: memmesh::NodeId, data: &[u8]) -> PyResult<Py<Self>> {
                Py::new(
                    py,
                    Self {
                        sender: sender.to_string(),
                        data: PyBytes::new(py, data).unbind(),
                    },
                )
            }
        }

        #[pymethods]
        impl $rust {
            #[new]
            fn new(sender: String, data: Py<PyBytes>) -> Self {
                Self { sender, data }
            }

            fn __repr__(&self, py: Python<'_>) -> String {
                format!(
                    "{}(sender={:?}, data={})",
                    $py,
                    self.sender,
                    self.data.bind(py).repr().map(|r| r.to_string()).unwrap_or_default()
                )
            }

            fn __eq__(&self, py: Python<'_>, other: PyRef<'_, Self>) -> bool {
                self.sender == other.sender
                    && self.data.bind(py).as_bytes() == other.data.bind(py).as_bytes()
            }
        }
    };
}

payload_class!(
    /// A message received on a channel: `sender` (node id) and `data` (bytes).
    PyMessage,
    "Message"
);

payload_class!(
    /// A request received on a channel: `sender` (node id) and `data` (bytes). The
    /// handler's return value (bytes) is the response.
    PyRequest,
    "Request"
);

/// Turns what a handler returned (or raised) into the core's result, with the GIL held.
pub type Finish<T> = fn(Python<'_>, &Callable, PyResult<Bound<'_, PyAny>>) -> memmesh::Result<T>;

/// Delivers a handler task's outcome (what it returned or raised) to the node.
type Deliver = Box<dyn for<'py> FnOnce(Python<'py>, PyResult<Bound<'py, PyAny>>) + Send>;

/// A Python callable and where it runs.
pub struct Callable {
    func: Py<PyAny>,
    event_loop: Option<EventLoop>,
    /// Names the handler in error messages, e.g. `the request handler of channel "x"`.
    pub what: String,
}

impl Callable {
    /// `func` runs on a blocking thread of the node runtime if `event_loop` is `None`,
    /// else on `event_loop` (as a task if it returns an awaitable).
    pub fn new(func: Py<PyAny>, event_loop: Option<Py<PyAny>>, what: String) -> Arc<Self> {
        Arc::new(Self {
            func,
            event_loop: event_loop.map(Arc::new),
            what,
        })
    }

    /// Calls the handler with the argument built by `arg`, and converts the outcome
    /// with `finish`.
    pub async fn invoke<T: Send + 'static>(
        self: Arc<Self>,
        arg: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send + 'static,
        finish: Finish<T>,
    ) -> memmesh::Result<T> {
        let Some(event_loop) = self.event_loop.clone() else {
            let (tx, rx) = oneshot::channel();
            let job: handler_threads::Job = Box::new(move |py| {
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let out = arg(py).and_then(|a| self.func.bind(py).call1((a,)));
                    finish(py, &self, out)
                }))
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::HandlerFailed,
                        "the handler thread failed: a panic in memmesh",
                    ))
                });
                // The node stopped waiting (shutdown): nothing to deliver to.
                let _ = tx.send(out);
            });
            // On a handler thread (attached once for its life), or, when none can be had,
            // on a blocking thread of the runtime that attaches for this call.
            if let Err(job) = handler_threads::submit(job) {
                let run = tokio::task::spawn_blocking(move || {
                    // `None` while the interpreter exits: the job is dropped (Closed).
                    let _ = Python::try_attach(job);
                });
                drop(run);
            }
            // The job was dropped unrun: the interpreter is exiting.
            return rx.await.unwrap_or_else(|_| Err(Error::closed()));
        };
        let (tx, rx) = oneshot::channel();
        event_loop::post(
            event_loop,
            Box::new(move |py, event_loop| self.start(py, event_loop, arg, finish, tx)),
        );
        rx.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::HandlerFailed,
                "the event loop of the handler stopped before the handler finished",
            ))
        })
    }

    /// On the loop's thread: calls the handler; an awaitable result runs as a task of the
    /// loop. The outcome goes to `tx`.
    fn start<T: Send + 'static>(
        self: Arc<Self>,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        arg: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
        finish: Finish<T>,
        tx: oneshot::Sender<memmesh::Result<T>>,
    ) {
        let out = arg(py).and_then(|a| self.func.bind(py).call1((a,)));
        let out = match out {
            Ok(value) if is_awaitable(&value) => {
                let task = ensure_future(&value, event_loop);
                match task {
                    Ok(task) => {
                        let deliver: Deliver = Box::new(move |py, out| {
                            // The node stopped waiting (shutdown): nothing to deliver to.
                            let _ = tx.send(finish(py, &self, out));
                        });
                        let done = Completion {
                            deliver: Mutex::new(Some(deliver)),
                        };
                        if let Err(e) = task.call_method1("add_done_callback", (done,)) {
                            e.write_unraisable(py, Some(&task));
                        }
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        // The node stopped waiting (shutdown): nothing to deliver to.
        let _ = tx.send(finish(py, &self, out));
    }
}

fn is_awaitable(value: &Bound<'_, PyAny>) -> bool {
    !value.is_instance_of::<PyBytes>()
        && value
            .hasattr(pyo3::intern!(value.py(), "__await__"))
            .unwrap_or(false)
}

/// `asyncio.ensure_future(awaitable, loop=event_loop)`.
fn ensure_future<'py>(
    awaitable: &Bound<'py, PyAny>,
    event_loop: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    static ENSURE_FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = awaitable.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item(pyo3::intern!(py, "loop"), event_loop)?;
    ENSURE_FUTURE
        .import(py, "asyncio", "ensure_future")?
        .call((awaitable,), Some(&kwargs))
}

/// The done-callback of a handler task: forwards its outcome to the node.
#[pyclass(frozen, module = "memmesh._native")]
struct Completion {
    deliver: Mutex<Option<Deliver>>,
}

#[pymethods]
impl Completion {
    fn __call__(&self, py: Python<'_>, finished: &Bound<'_, PyAny>) {
        let deliver = self
            .deliver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(deliver) = deliver {
            deliver(py, finished.call_method0("result"));
        }
    }
}

/// A request handler's return value as the response; an exception as `HandlerFailed`.
fn reply(
    py: Python<'_>,
    callable: &Callable,
    out: PyResult<Bound<'_, PyAny>>,
) -> memmesh::Result<Bytes> {
    let _ = py;
    match out {
        Ok(value) => value.extract::<Bytes>().map_err(|_| {
            let type_name = value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            Error::new(
                ErrorKind::HandlerFailed,
                format!("{} returned {type_name}, expected bytes", callable.what),
            )
        }),
        Err(err) => Err(handler_failed(&callable.what, &err)),
    }
}

/// A message handler's exception is reported through `sys.unraisablehook` (nobody
/// waits for its result).
fn consume(
    py: Python<'_>,
    callable: &Callable,
    out: PyResult<Bound<'_, PyAny>>,
) -> memmesh::Result<Bytes> {
    if let Err(err) = out {
        err.write_unraisable(py, Some(callable.func.bind(py)));
    }
    Ok(Bytes::new())
}

/// A Python callable answering requests.
pub struct PyRequestHandler(pub Arc<Callable>);

impl RequestHandler for PyRequestHandler {
    fn handle(&self, request: memmesh::Request) -> BoxFuture<memmesh::Result<Bytes>> {
        let arg = move |py: Python<'_>| {
            PyRequest::create(py, request.from, &request.data).map(Py::into_any)
        };
        Box::pin(self.0.clone().invoke(arg, reply))
    }
}

/// A Python callable consuming messages.
pub struct PyMessageHandler(pub Arc<Callable>);

impl MessageHandler for PyMessageHandler {
    fn handle(&self, message: memmesh::Message) -> BoxFuture<()> {
        let arg = move |py: Python<'_>| {
            PyMessage::create(py, message.from, &message.data).map(Py::into_any)
        };
        let call = self.0.clone().invoke(arg, consume);
        Box::pin(async move {
            let _ = call.await;
        })
    }
}
