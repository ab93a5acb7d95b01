//! The sync state of documents with peers (`docs.sync_status()`) as plain records:
//! `memmesh.DocSync` and `memmesh.PeerSync` (core `docs/status.rs`).

use pyo3::prelude::*;

/// The sync state of one document with one peer (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "PeerSync")]
#[derive(Clone, PartialEq)]
pub struct PyPeerSync {
    /// The peer's node id.
    peer: String,
    /// Whether the peer's last known heads are this node's (nothing left to exchange).
    in_sync: bool,
    /// Whether an exchange with the peer is under way.
    in_flight: bool,
    /// How many changes held here the peer's last known heads lack.
    behind: u64,
    /// When (unix ms) an exchange last left both sides at the same heads (`None`: never).
    last_synced: Option<u64>,
}

#[pymethods]
impl PyPeerSync {
    fn __repr__(&self) -> String {
        let b = |v: bool| if v { "True" } else { "False" };
        let last = self
            .last_synced
            .map_or_else(|| "None".to_string(), |t| t.to_string());
        format!(
            "PeerSync(peer={:?}, in_sync={}, in_flight={}, behind={}, last_synced={})",
            self.peer,
            b(self.in_sync),
            b(self.in_flight),
            self.behind,
            last
        )
    }
}

/// The sync state of one document on this node (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "DocSync")]
#[derive(Clone, PartialEq)]
pub struct PyDocSync {
    /// The document's id.
    id: String,
    /// Its reach.
    reach: String,
    /// Its heads (hex change hashes, sorted).
    heads: Vec<String>,
    /// The peers it was exchanged with since this node started, by id.
    peers: Vec<PyPeerSync>,
}

impl From<memmesh::docs::DocSync> for PyDocSync {
    fn from(d: memmesh::docs::DocSync) -> Self {
        Self {
            id: d.id.to_string(),
            reach: d.reach.as_str().to_string(),
            heads: d.heads,
            peers: d
                .peers
                .into_iter()
                .map(|p| PyPeerSync {
                    peer: p.peer.to_string(),
                    in_sync: p.in_sync,
                    in_flight: p.in_flight,
                    behind: p.behind,
                    last_synced: p.last_synced,
                })
                .collect(),
        }
    }
}

#[pymethods]
impl PyDocSync {
    fn __repr__(&self) -> String {
        let peers: Vec<String> = self.peers.iter().map(PyPeerSync::__repr__).collect();
        format!(
            "DocSync(id={:?}, reach={:?}, heads={:?}, peers=[{}])",
            self.id,
            self.reach,
            self.heads,
            peers.join(", ")
        )
    }
}
