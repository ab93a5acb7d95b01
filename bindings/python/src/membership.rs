//! Membership events (`PeerUp`, `PeerSuspect`, `PeerDown`, `LeaderChanged`, `Lagged`)
//! as Python objects, and the stream that yields them.

use std::sync::Arc;

use pyo3::prelude::*;

use memmesh::{Event, Node};

use crate::bridge::Pending;

/// One membership event. `kind` says which; the other fields are set when they apply.
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "Event")]
#[derive(Clone, PartialEq)]
pub struct PyEvent {
    /// `"PeerUp"`, `"PeerSuspect"`, `"PeerDown"`, `"LeaderChanged"` or `"Lagged"`.
    kind: &'static str,
    /// The member concerned (peer events).
    id: Option<String>,
    /// Its name (`PeerUp`).
    name: Option<String>,
    /// Its addresses, `"ip:port"` (`PeerUp`; empty otherwise).
    addrs: Vec<String>,
    /// The new leader (`LeaderChanged`).
    leader: Option<String>,
    /// How many events were missed (`Lagged`: read `peers()` to resynchronise).
    missed: Option<u64>,
}

impl From<Event> for PyEvent {
    fn from(e: Event) -> Self {
        let mut out = PyEvent {
            kind: "",
            id: None,
            name: None,
            addrs: Vec::new(),
            leader: None,
            missed: None,
        };
        match e {
            Event::PeerUp { id, name, addrs } => {
                out.kind = "PeerUp";
                out.id = Some(id.to_string());
                out.name = Some(name);
                out.addrs = addrs.iter().map(ToString::to_string).collect();
            }
            Event::PeerSuspect { id } => {
                out.kind = "PeerSuspect";
                out.id = Some(id.to_string());
            }
            Event::PeerDown { id } => {
                out.kind = "PeerDown";
                out.id = Some(id.to_string());
            }
            Event::LeaderChanged { leader } => {
                out.kind = "LeaderChanged";
                out.leader = Some(leader.to_string());
            }
            Event::Lagged { missed } => {
                out.kind = "Lagged";
                out.missed = Some(missed);
            }
        }
        out
    }
}

#[pymethods]
impl PyEvent {
    fn __repr__(&self) -> String {
        let mut fields = vec![format!("kind={:?}", self.kind)];
        if let Some(id) = &self.id {
            fields.push(format!("id={id:?}"));
        }
        if let Some(name) = &self.name {
            fields.push(format!("name={name:?}, addrs={:?}", self.addrs));
        }
        if let Some(leader) = &self.leader {
            fields.push(format!("leader={leader:?}"));
        }
        if let Some(missed) = self.missed {
            fields.push(format!("missed={missed}"));
        }
        format!("Event({})", fields.join(", "))
    }
}

/// Membership events from the moment `node.events()` was called (keeps the node alive).
#[pyclass(frozen, module = "memmesh._native", name = "Events")]
pub struct PyEvents {
    events: Arc<tokio::sync::Mutex<memmesh::Events>>,
    node: Node,
}

impl PyEvents {
    /// Wraps the core's event stream of `node`.
    pub fn new(events: memmesh::Events, node: Node) -> Self {
        Self {
            events: Arc::new(tokio::sync::Mutex::new(events)),
            node,
        }
    }

    fn next_event(
        &self,
    ) -> impl std::future::Future<Output = memmesh::Result<Event>> + Send + 'static {
        let events = self.events.clone();
        async move { events.lock().await.next().await }
    }
}

fn to_event(py: Python<'_>, e: Event) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, PyEvent::from(e))?.into_any())
}

#[pymethods]
impl PyEvents {
    /// The next event (a call to wait on or await); `ClosedError` once the node shuts
    /// down.
    fn next(&self) -> Pending {
        Pending::new(&self.node.runtime_handle(), self.next_event(), to_event)
    }
}
