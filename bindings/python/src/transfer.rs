//! Verified chunk transfer, as the Python class `memmesh._native.Transfer`, and the
//! core's transfer types as Python objects: `memmesh.Offer`, `memmesh.Destination`,
//! `memmesh.Received`, `memmesh.TransferResult`, `memmesh.Progress`, plus the event
//! streams of `received()` and `progress()`.
//!
//! A source is `bytes`/`bytearray` (the data) or a `str`/`os.PathLike` (a file path);
//! peers and ids cross as text; durations as seconds (float); a per-peer failure is a
//! `MemmeshError` instance in `TransferResult.error`, not a raised exception. Each
//! operation returns a [`Pending`] call that the blocking API waits on (GIL released)
//! and the asyncio API awaits (see `bridge.rs`); offer handlers run like channel handlers (`handler.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use memmesh::transfer::events::Subscription;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use pyo3::IntoPyObjectExt;
use tokio::runtime::Handle;

use memmesh::channel::BoxFuture;
use memmesh::transfer::{
    Destination, Offer, OfferHandler, Progress, Received, Source, Transfer, TransferResult,
};
use memmesh::{Error, ErrorKind, NodeId};

use crate::bridge::{to_py, Pending};
use crate::channel::node_ids;
use crate::error::{handler_failed, invalid, to_py_err, IntoPyResult};
use crate::handler::Callable;
use crate::node::parse_id;

/// An offer of a transfer to this node, as shown to the offer handler.
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "Offer")]
#[derive(Clone, PartialEq)]
pub struct PyOffer {
    /// The id of the node offering it (the core's `from`).
    sender: String,
    /// Identifies the content across attempts (hex); `Transfer.cancel` takes it.
    id: String,
    /// File name proposed by the sender.
    name: String,
    /// Total bytes.
    size: u64,
}

impl From<Offer> for PyOffer {
    fn from(o: Offer) -> Self {
        Self {
            sender: o.from.to_string(),
            id: o.id,
            name: o.name,
            size: o.size,
        }
    }
}

#[pymethods]
impl PyOffer {
    fn __repr__(&self) -> String {
        format!(
            "Offer(sender={:?}, id={:?}, name={:?}, size={})",
            self.sender, self.id, self.name, self.size
        )
    }
}

/// Where an offered transfer goes: what an offer handler returns. Build one with
/// `Destination.path(p)`, `Destination.memory()` or `Destination.reject(reason)`.
#[pyclass(frozen, eq, module = "memmesh", name = "Destination")]
#[derive(Clone, PartialEq)]
pub struct PyDestination(Destination);

#[pymethods]
impl PyDestination {
    /// Into the file `path` (written beside it as `.memmesh-partial` until verified).
    #[staticmethod]
    fn path(path: PathBuf) -> Self {
        Self(Destination::Path(path))
    }

    /// Into memory (`Received.data`).
    #[staticmethod]
    fn memory() -> Self {
        Self(Destination::Memory)
    }

    /// Refused; the sender's result fails with `UnauthorizedError` carrying `reason`.
    #[staticmethod]
    fn reject(reason: String) -> Self {
        Self(Destination::Reject(reason))
    }

    /// `"path"`, `"memory"` or `"reject"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0 {
            Destination::Path(_) => "path",
            Destination::Memory => "memory",
            Destination::Reject(_) => "reject",
        }
    }

    /// The file, for `Destination.path`.
    #[getter]
    fn file_path(&self) -> Option<PathBuf> {
        match &self.0 {
            Destination::Path(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// The reason, for `Destination.reject`.
    #[getter]
    fn reason(&self) -> Option<&str> {
        match &self.0 {
            Destination::Reject(r) => Some(r),
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        match &self.0 {
            Destination::Path(p) => format!("Destination.path({:?})", p.display().to_string()),
            Destination::Memory => "Destination.memory()".into(),
            Destination::Reject(r) => format!("Destination.reject({r:?})"),
        }
    }
}

/// A transfer received completely and verified.
#[pyclass(frozen, get_all, module = "memmesh", name = "Received")]
pub struct PyReceived {
    /// The offer it answered.
    offer: PyOffer,
    /// `"blake3:<hex>"` of the content.
    hash: String,
    /// Where it was written (`pathlib.Path`), for a file destination.
    path: Option<PathBuf>,
    /// The content, for a memory destination.
    data: Option<Py<PyBytes>>,
}

impl PyReceived {
    /// Builds the Python object from what the core delivered.
    pub fn create(py: Python<'_>, r: Received) -> Self {
        Self {
            offer: r.offer.into(),
            hash: r.hash,
            path: r.path,
            data: r.data.map(|d| PyBytes::new(py, &d).unbind()),
        }
    }
}

#[pymethods]
impl PyReceived {
    fn __repr__(&self, py: Python<'_>) -> String {
        let data = match &self.data {
            Some(d) => format!("<{} bytes>", d.bind(py).as_bytes().len()),
            None => "None".into(),
        };
        format!(
            "Received(offer={}, hash={:?}, path={:?}, data={data})",
            self.offer.__repr__(),
            self.hash,
            self.path.as_ref().map(|p| p.display().to_string()),
        )
    }
}

/// The outcome of sending to one peer.
#[pyclass(frozen, get_all, module = "memmesh", name = "TransferResult")]
pub struct PyTransferResult {
    /// The peer's id.
    peer: String,
    /// Bytes of the content (0 on failure).
    bytes: u64,
    /// `"blake3:<hex>"` confirmed by the receiver.
    hash: Option<String>,
    /// Bytes actually streamed in the last attempt (less than `bytes` after a resume).
    sent: u64,
    /// How many attempts it took.
    attempts: u32,
    /// How long it took, in seconds.
    duration: f64,
    /// Why it failed (a `MemmeshError` instance), or `None`.
    error: Option<Py<PyAny>>,
}

impl PyTransferResult {
    /// Builds the Python object (the error as an exception instance).
    pub fn create(py: Python<'_>, r: TransferResult) -> Self {
        Self {
            peer: r.peer.to_string(),
            bytes: r.bytes,
            hash: r.hash,
            sent: r.sent,
            attempts: r.attempts,
            duration: r.duration.as_secs_f64(),
            error: r.error.map(|e| to_py_err(py, e).into_value(py).into_any()),
        }
    }
}

#[pymethods]
impl PyTransferResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        let error = match &self.error {
            Some(e) => e.bind(py).repr().map(|r| r.to_string()).unwrap_or_default(),
            None => "None".into(),
        };
        format!(
            "TransferResult(peer={:?}, bytes={}, hash={:?}, sent={}, attempts={}, duration={:.3}, error={error})",
            self.peer, self.bytes, self.hash, self.sent, self.attempts, self.duration
        )
    }
}

/// Progress of a transfer this node sends or receives.
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "Progress")]
#[derive(Clone, PartialEq)]
pub struct PyProgress {
    /// The other peer's id (the receiver when sending, the sender when receiving).
    peer: String,
    /// The name offered.
    name: String,
    /// `"send"` when this node sends it (a send, or a fetch it serves), `"receive"` when
    /// it receives it (an accepted offer, or its own fetch).
    direction: &'static str,
    /// Bytes done (verified chunks skipped on resume count as done).
    done: u64,
    /// Total bytes.
    total: u64,
    /// Bytes per second that crossed the network in this attempt so far.
    rate: f64,
}

impl From<Progress> for PyProgress {
    fn from(p: Progress) -> Self {
        Self {
            peer: p.peer.to_string(),
            name: p.name,
            direction: p.direction.as_str(),
            done: p.done,
            total: p.total,
            rate: p.rate,
        }
    }
}

#[pymethods]
impl PyProgress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(peer={:?}, name={:?}, direction={:?}, done={}, total={}, rate={:.0})",
            self.peer, self.name, self.direction, self.done, self.total, self.rate
        )
    }
}

/// `bytes`/`bytearray` are the data; anything else must be a path (`str` or
/// `os.PathLike`).
fn source(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Source> {
    bytes_or_path(py, "source", source)
}

/// `bytes`/`bytearray` (the data) or a `str`/`os.PathLike` (the file at that path), as
/// `send`, `publish` and `files.put` take it; `what` names the argument in the error.
pub(crate) fn bytes_or_path(
    py: Python<'_>,
    what: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Source> {
    if value.is_instance_of::<PyBytes>() || value.is_instance_of::<PyByteArray>() {
        return Ok(Source::Bytes(value.extract::<Bytes>()?));
    }
    value.extract::<PathBuf>().map(Source::Path).map_err(|_| {
        let type_name = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        invalid(
            py,
            format!(
                "{what} must be bytes (the data) or a str / os.PathLike (a file path), got {type_name}"
            ),
        )
    })
}

/// `to` of `send`: a node id or a list of node ids.
fn peers(py: Python<'_>, to: &Bound<'_, PyAny>) -> PyResult<Vec<NodeId>> {
    let ids =
        node_ids(to).ok_or_else(|| invalid(py, "`to` must be a node id or a list of node ids"))?;
    memmesh::channel::parse_ids(ids).into_py(py)
}

fn to_results(py: Python<'_>, results: Vec<TransferResult>) -> PyResult<Py<PyAny>> {
    results
        .into_iter()
        .map(|r| PyTransferResult::create(py, r))
        .collect::<Vec<_>>()
        .into_py_any(py)
}

fn to_received(py: Python<'_>, r: Received) -> PyResult<Py<PyAny>> {
    PyReceived::create(py, r).into_py_any(py)
}

fn to_progress(py: Python<'_>, p: Progress) -> PyResult<Py<PyAny>> {
    PyProgress::from(p).into_py_any(py)
}

/// An offer handler's return value as the destination; anything but a `Destination`,
/// or an exception, fails with `HandlerFailed` (and the offer is refused).
fn destination(
    _py: Python<'_>,
    callable: &Callable,
    out: PyResult<Bound<'_, PyAny>>,
) -> memmesh::Result<Destination> {
    match out {
        Ok(value) => match value.cast::<PyDestination>() {
            Ok(d) => Ok(d.get().0.clone()),
            Err(_) => {
                let type_name = value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into());
                Err(Error::new(
                    ErrorKind::HandlerFailed,
                    format!(
                        "{} returned {type_name}, expected memmesh.Destination",
                        callable.what
                    ),
                ))
            }
        },
        Err(err) => Err(handler_failed(&callable.what, &err)),
    }
}

/// A Python callable deciding where offers go. If it fails, the offer is refused with
/// the failure as the reason.
struct PyOfferHandler(Arc<Callable>);

impl OfferHandler for PyOfferHandler {
    fn decide(&self, offer: Offer) -> BoxFuture<Destination> {
        let arg = move |py: Python<'_>| PyOffer::from(offer).into_py_any(py);
        let call = self.0.clone().invoke(arg, destination);
        Box::pin(async move {
            call.await
                .unwrap_or_else(|e| Destination::Reject(e.message().to_string()))
        })
    }
}

/// The transfer API of a node (the native half of `memmesh.Transfer`).
#[pyclass(frozen, module = "memmesh._native", name = "Transfer")]
pub struct PyTransfer {
    transfer: Transfer,
    runtime: Handle,
}

impl PyTransfer {
    /// Wraps a node's transfer API; `runtime` is its node's runtime.
    pub fn new(transfer: Transfer, runtime: Handle) -> Self {
        Self { transfer, runtime }
    }
}

#[pymethods]
impl PyTransfer {
    /// Sends `source` to every peer of `to` in parallel; the call returns one result per
    /// peer, in order.
    fn send(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        to: &Bound<'_, PyAny>,
    ) -> PyResult<Pending> {
        let (source, to) = (self::source(py, source)?, peers(py, to)?);
        let transfer = self.transfer.clone();
        let work = async move { transfer.send(source, &to).await };
        Ok(Pending::new(&self.runtime, work, to_results))
    }

    /// Offers `source` to peers, who fetch it by the id the call returns
    /// (`"blake3:<hex>"`).
    fn publish(&self, py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let source = self::source(py, source)?;
        let transfer = self.transfer.clone();
        let work = async move { transfer.publish(source).await };
        // On the node runtime: the core reads a file with tokio::fs outside `run`.
        Ok(Pending::on_runtime(&self.runtime, work, to_py))
    }

    /// Stops offering `id`; returns whether it was published.
    fn unpublish(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        self.transfer.unpublish(id).into_py(py)
    }

    /// Fetches content `id` (published by `peer`, or a block it holds) into the file
    /// `into`, or into memory when `None`.
    #[pyo3(signature = (id, peer, into=None))]
    fn fetch(
        &self,
        py: Python<'_>,
        id: String,
        peer: &str,
        into: Option<PathBuf>,
    ) -> PyResult<Pending> {
        let peer = parse_id(py, peer)?;
        let transfer = self.transfer.clone();
        let work = async move { transfer.fetch(&id, peer, into).await };
        Ok(Pending::new(&self.runtime, work, to_received))
    }

    /// Cancels the incoming transfer with this offer id; returns whether one was running.
    fn cancel(&self, py: Python<'_>, offer_id: &str) -> PyResult<bool> {
        self.transfer.cancel(offer_id).into_py(py)
    }

    /// Decides where offers go with `func(offer) -> Destination`: on a blocking thread if
    /// `event_loop` is `None`, else on `event_loop` (as a task if it returns an
    /// awaitable).
    #[pyo3(signature = (func, event_loop=None))]
    fn on_offer(&self, func: Py<PyAny>, event_loop: Option<Py<PyAny>>) {
        let callable = Callable::new(func, event_loop, "the offer handler".into());
        self.transfer.on_offer(PyOfferHandler(callable));
    }

    /// Removes the offer handler (offers go to the inbox, or are refused).
    fn clear_offer_handler(&self) {
        self.transfer.clear_offer_handler();
    }

    /// Transfers received from now on.
    fn received(&self) -> PyReceivedEvents {
        PyReceivedEvents::new(self.transfer.received(), self.runtime.clone())
    }

    /// Progress of the transfers this node sends and receives (including fetches and the
    /// fetches it serves), from now on.
    fn progress(&self) -> PyProgressEvents {
        PyProgressEvents::new(self.transfer.progress(), self.runtime.clone())
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.transfer)
    }
}

/// The next value of a subscription; events missed by a reader that fell behind are
/// skipped.
async fn next_of<T: Clone + Send + 'static>(
    rx: Arc<tokio::sync::Mutex<Subscription<T>>>,
) -> memmesh::Result<T> {
    rx.lock().await.next().await
}

macro_rules! event_stream {
    ($(#[$doc:meta])* $rust:ident, $py:literal, $item:ty, $to_py:ident) => {
        $(#[$doc])*
        #[pyclass(frozen, module = "memmesh._native", name = $py)]
        pub struct $rust {
            rx: Arc<tokio::sync::Mutex<Subscription<$item>>>,
            runtime: Handle,
        }

        impl $rust {
            /// Reads `rx` on `runtime`.
            pub(crate) fn new(rx: Subscription<$item>, runtime: Handle) -> Self {
                Self {
                    rx: Arc::new(tokio::sync::Mutex::new(rx)),
                    runtime,
                }
            }
        }

        #[pymethods]
        impl $rust {
            /// The next one (a call to wait on or await); `ClosedError` once the node
            /// shuts down.
            fn next(&self) -> Pending {
                Pending::on_runtime(&self.runtime, next_of(self.rx.clone()), $to_py)
            }
        }
    };
}

event_stream!(
    /// Transfers received by a node from the moment `received()` was called.
    PyReceivedEvents,
    "ReceivedEvents",
    Received,
    to_received
);

event_stream!(
    /// Progress of the transfers a node sends and receives, from the moment `progress()`
    /// was called.
    PyProgressEvents,
    "ProgressEvents",
    Progress,
    to_progress
);
