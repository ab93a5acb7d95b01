//! Named channels, as the Python class `memmesh._native.Channel`.
//!
//! Each operation returns a [`Pending`] call that the blocking API waits on (GIL
//! released) and the asyncio API awaits (see `bridge.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use tokio::runtime::Handle;

use memmesh::{Channel, Target};

use crate::bridge::Pending;
use crate::config::seconds;
use crate::error::{invalid, IntoPyResult};
use crate::handler::{Callable, PyMessage, PyMessageHandler, PyRequestHandler};
use crate::node::parse_id;

/// A named channel on a node (the native half of `memmesh.Channel`).
#[pyclass(frozen, module = "memmesh._native", name = "Channel")]
pub struct PyChannel {
    channel: Channel,
    runtime: Handle,
}

impl PyChannel {
    /// Wraps a core channel; `runtime` is its node's runtime.
    pub fn new(channel: Channel, runtime: Handle) -> Self {
        Self { channel, runtime }
    }

    fn what(&self, kind: &str) -> String {
        format!("the {kind} handler of channel {:?}", self.channel.name())
    }
}

/// `to` of `send`: `None` (every connected peer), a node id, or a list of node ids.
fn target(py: Python<'_>, to: Option<&Bound<'_, PyAny>>) -> PyResult<Target> {
    let ids = to
        .filter(|t| !t.is_none())
        .map(|to| {
            node_ids(to).ok_or_else(|| {
                invalid(
                    py,
                    "`to` must be None (all peers), a node id, or a list of node ids",
                )
            })
        })
        .transpose()?;
    Target::parse(ids).into_py(py)
}

/// A `str` (one id) or a sequence of `str` as a list of texts; `None` for anything else.
pub fn node_ids(to: &Bound<'_, PyAny>) -> Option<Vec<String>> {
    if let Ok(id) = to.cast::<PyString>() {
        return Some(vec![id.to_cow().ok()?.into_owned()]);
    }
    to.extract().ok()
}

fn timeout(py: Python<'_>, t: Option<f64>) -> PyResult<Option<Duration>> {
    t.map(|s| seconds(py, "timeout", s)).transpose()
}

fn to_bytes(py: Python<'_>, data: Bytes) -> PyResult<Py<PyAny>> {
    Ok(PyBytes::new(py, &data).into_any().unbind())
}

fn to_int(py: Python<'_>, n: usize) -> PyResult<Py<PyAny>> {
    Ok(n.into_pyobject(py)?.into_any().unbind())
}

fn to_message(py: Python<'_>, m: memmesh::Message) -> PyResult<Py<PyAny>> {
    Ok(PyMessage::create(py, m.from, &m.data)?.into_any())
}

#[pymethods]
impl PyChannel {
    /// The channel name.
    #[getter]
    fn name(&self) -> &str {
        self.channel.name()
    }

    /// Sends `data` to `to`; the call returns how many peers queued it.
    #[pyo3(signature = (data, to=None))]
    fn send(
        &self,
        py: Python<'_>,
        data: Bytes,
        to: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let target = target(py, to)?;
        let channel = self.channel.clone();
        let work = async move { channel.send(data, target).await };
        Ok(Pending::new(&self.runtime, work, to_int))
    }

    /// Sends a request to `peer` (`timeout` in seconds); the call returns the response.
    #[pyo3(signature = (peer, data, timeout=None))]
    fn request(
        &self,
        py: Python<'_>,
        peer: &str,
        data: Bytes,
        timeout: Option<f64>,
    ) -> PyResult<Pending> {
        let (peer, timeout) = (parse_id(py, peer)?, self::timeout(py, timeout)?);
        let channel = self.channel.clone();
        let work = async move { channel.request(peer, data, timeout).await };
        Ok(Pending::new(&self.runtime, work, to_bytes))
    }

    /// The next message (a call to wait on or await).
    fn recv(&self) -> Pending {
        let channel = self.channel.clone();
        let work = async move { channel.recv().await };
        Pending::new(&self.runtime, work, to_message)
    }

    /// Feeds every incoming message to `func`: on a blocking thread if `event_loop` is
    /// `None`, else as a coroutine (`func` must return an awaitable) on `event_loop`.
    #[pyo3(signature = (func, event_loop=None))]
    fn on_message(
        &self,
        py: Python<'_>,
        func: Py<PyAny>,
        event_loop: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let callable = Callable::new(func, event_loop, self.what("message"));
        self.channel
            .set_message_handler(Arc::new(PyMessageHandler(callable)))
            .into_py(py)
    }

    /// Answers requests with `func` (same placement rules as `on_message`); its return
    /// value (bytes) is the response, an exception fails the request with
    /// `HandlerFailedError`.
    #[pyo3(signature = (func, event_loop=None))]
    fn on_request(
        &self,
        py: Python<'_>,
        func: Py<PyAny>,
        event_loop: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let callable = Callable::new(func, event_loop, self.what("request"));
        self.channel
            .set_request_handler(Arc::new(PyRequestHandler(callable)))
            .into_py(py)
    }

    /// Stops feeding messages to the handler (they queue up for `recv`).
    fn clear_message_handler(&self) {
        self.channel.clear_message_handler();
    }

    /// Removes the request handler (requests then fail with `NotFoundError`).
    fn clear_request_handler(&self) {
        self.channel.clear_request_handler();
    }

    fn __repr__(&self) -> String {
        format!("Channel({:?})", self.channel.name())
    }
}
