//! What channels deliver to Python (`Message`, `Request`), and Python callables as the
//! core's [`MessageHandler`] / [`RequestHandler`].
//!
//! A handler runs either directly, on a blocking thread of the node runtime (plain
//! functions of the blocking API), or as a coroutine on an asyncio loop (coroutine
//! functions, and every handler of the asyncio API, which the Python layer wraps in a
//! coroutine), scheduled with `asyncio.run_coroutine_threadsafe`. The node awaits
//! the outcome without holding a runtime thread.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::channel::oneshot;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

use memmesh::channel::BoxFuture;
use memmesh::{Error, ErrorKind, MessageHandler, RequestHandler};

use crate::error::handler_failed;

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
type Finish = fn(Python<'_>, &Callable, PyResult<Bound<'_, PyAny>>) -> memmesh::Result<Bytes>;

/// A Python callable and where it runs.
pub struct Callable {
    func: Py<PyAny>,
    event_loop: Option<Py<PyAny>>,
    /// Names the handler in error messages, e.g. `the request handler of channel "x"`.
    what: String,
}

impl Callable {
    /// `func` runs on a blocking thread if `event_loop` is `None`, else it must return an
    /// awaitable, which runs on `event_loop`.
    pub fn new(func: Py<PyAny>, event_loop: Option<Py<PyAny>>, what: String) -> Arc<Self> {
        Arc::new(Self {
            func,
            event_loop,
            what,
        })
    }

    /// Calls the handler with the argument built by `arg`, and converts the outcome
    /// with `finish`.
    async fn invoke(
        self: Arc<Self>,
        arg: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send + 'static,
        finish: Finish,
    ) -> memmesh::Result<Bytes> {
        if self.event_loop.is_none() {
            let run = tokio::task::spawn_blocking(move || {
                Python::try_attach(|py| {
                    let out = arg(py).and_then(|a| self.func.bind(py).call1((a,)));
                    finish(py, &self, out)
                })
                .unwrap_or_else(|| Err(Error::closed()))
            });
            return run.await.unwrap_or_else(|e| {
                Err(Error::new(
                    ErrorKind::HandlerFailed,
                    format!("the handler thread failed: {e}"),
                ))
            });
        }
        let (tx, rx) = oneshot::channel();
        let scheduled = Python::try_attach(|py| {
            let outcome = self.schedule(py, arg, tx, finish);
            outcome.map_err(|e| finish(py, &self, Err(e)))
        });
        match scheduled {
            None => return Err(Error::closed()),
            Some(Err(finished)) => return finished,
            Some(Ok(())) => {}
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::HandlerFailed,
                "the event loop running the handler stopped before it finished",
            ))
        })
    }

    /// Starts the coroutine on the loop; its completion sends the outcome to `tx`.
    fn schedule(
        self: &Arc<Self>,
        py: Python<'_>,
        arg: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
        tx: oneshot::Sender<memmesh::Result<Bytes>>,
        finish: Finish,
    ) -> PyResult<()> {
        static RUN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let Some(event_loop) = &self.event_loop else {
            return Ok(());
        };
        let coro = self.func.bind(py).call1((arg(py)?,))?;
        let run = RUN.import(py, "asyncio", "run_coroutine_threadsafe")?;
        let scheduled = match run.call1((&coro, event_loop.bind(py))) {
            Ok(f) => f,
            Err(e) => {
                // The loop is closed: close the coroutine so it is not reported as leaked.
                let _ = coro.call_method0("close");
                return Err(e);
            }
        };
        let done = Completion {
            tx: Mutex::new(Some(tx)),
            callable: self.clone(),
            finish,
        };
        scheduled.call_method1("add_done_callback", (done,))?;
        Ok(())
    }
}

/// The done-callback of a handler coroutine: forwards its outcome to the node.
#[pyclass(frozen, module = "memmesh._native")]
struct Completion {
    tx: Mutex<Option<oneshot::Sender<memmesh::Result<Bytes>>>>,
    callable: Arc<Callable>,
    finish: Finish,
}

#[pymethods]
impl Completion {
    fn __call__(&self, py: Python<'_>, finished: &Bound<'_, PyAny>) {
        let outcome = (self.finish)(py, &self.callable, finished.call_method0("result"));
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            // The node stopped waiting (shutdown): nothing to deliver to.
            let _ = tx.send(outcome);
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
