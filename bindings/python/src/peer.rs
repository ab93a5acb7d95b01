//! What a node knows about its peers, as Python objects.

use pyo3::prelude::*;

/// A peer known to the node (read-only, compares by value).
#[pyclass(frozen, eq, get_all, module = "memmesh", name = "PeerInfo")]
#[derive(Clone, PartialEq)]
pub struct PyPeerInfo {
    /// The peer's node id.
    id: String,
    /// Its human-readable name.
    name: String,
    /// Addresses it can be reached at (`"ip:port"`).
    addrs: Vec<String>,
    /// Membership state: `"alive"`, `"suspect"` or `"down"`.
    state: String,
    /// Whether an authenticated connection to it is open right now.
    connected: bool,
    /// Smoothed round-trip time in seconds, when connected.
    rtt: Option<f64>,
    /// Free bytes of its memory quota, as last advertised through membership.
    quota_free: Option<u64>,
    /// Its role: `"member"` or `"client"`.
    role: String,
}

impl From<memmesh::PeerInfo> for PyPeerInfo {
    fn from(p: memmesh::PeerInfo) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            addrs: p.addrs.iter().map(ToString::to_string).collect(),
            state: p.state.as_str().to_string(),
            connected: p.connected,
            rtt: p.rtt.map(|d| d.as_secs_f64()),
            quota_free: p.quota_free,
            role: p.role.as_str().to_string(),
        }
    }
}

#[pymethods]
impl PyPeerInfo {
    fn __repr__(&self) -> String {
        format!(
            "PeerInfo(id={:?}, name={:?}, addrs={:?}, state={:?}, connected={}, rtt={}, quota_free={}, role={:?})",
            self.id,
            self.name,
            self.addrs,
            self.state,
            if self.connected { "True" } else { "False" },
            self.rtt
                .map_or_else(|| "None".to_string(), |r| format!("{r:.6}")),
            self.quota_free
                .map_or_else(|| "None".to_string(), |q| q.to_string()),
            self.role
        )
    }
}
