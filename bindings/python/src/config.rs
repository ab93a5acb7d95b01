//! The keyword arguments of `memmesh.Node(...)` as a [`memmesh::NodeConfig`].

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use memmesh::NodeConfig;

use crate::error::invalid;

/// Node options as given by Python; `None` keeps the core default.
#[derive(Default)]
pub struct Options {
    /// Human-readable name.
    pub name: Option<String>,
    /// Listen address.
    pub listen: Option<String>,
    /// Cluster secret (`str` or `bytes`).
    pub cluster_secret: Option<Py<PyAny>>,
    /// Without a secret, accept non-loopback peers anyway (protected mode otherwise).
    pub open: Option<bool>,
    /// Addresses dialled at start.
    pub bootstrap: Option<Vec<String>>,
    /// mDNS discovery.
    pub mdns: Option<bool>,
    /// Interfaces mDNS may use, by name (`None`: all).
    pub mdns_interfaces: Option<Vec<String>>,
    /// Bytes of RAM lent to the mesh.
    pub memory_quota: Option<i64>,
    /// Directory for the identity and persistent stores.
    pub data_dir: Option<PathBuf>,
    /// Directory where offered transfers land when no offer handler is set.
    pub inbox_dir: Option<PathBuf>,
    /// Worker threads of the node runtime.
    pub threads: Option<i64>,
    /// Largest message, request or response, in bytes.
    pub max_message_size: Option<i64>,
    /// Default request deadline, in seconds.
    pub request_timeout: Option<f64>,
    /// Deadline for a peer to accept a message, in seconds.
    pub send_timeout: Option<f64>,
    /// Deadline for dialling a peer, in seconds.
    pub connect_timeout: Option<f64>,
    /// Capacity of each channel's incoming queue.
    pub channel_queue: Option<i64>,
}

impl Options {
    /// The core configuration; bad values raise `InvalidInputError` (the core validates
    /// ranges when the node starts).
    pub fn into_config(self, py: Python<'_>) -> PyResult<NodeConfig> {
        let mut c = NodeConfig {
            name: self.name,
            data_dir: self.data_dir,
            inbox_dir: self.inbox_dir,
            ..NodeConfig::default()
        };
        if let Some(listen) = self.listen {
            c.listen = listen;
        }
        if let Some(secret) = self.cluster_secret {
            c.cluster_secret = Some(secret_bytes(secret.bind(py))?);
        }
        if let Some(open) = self.open {
            c.open = open;
        }
        if let Some(bootstrap) = self.bootstrap {
            c.bootstrap = bootstrap;
        }
        if let Some(mdns) = self.mdns {
            c.mdns = mdns;
        }
        if self.mdns_interfaces.is_some() {
            c.mdns_interfaces = self.mdns_interfaces;
        }
        if let Some(q) = self.memory_quota {
            c.memory_quota = count(py, "memory_quota", q)?;
        }
        if let Some(n) = self.threads {
            c.threads = count(py, "threads", n)?;
        }
        if let Some(n) = self.max_message_size {
            c.max_message_size = count(py, "max_message_size", n)?;
        }
        if let Some(s) = self.request_timeout {
            c.request_timeout = seconds(py, "request_timeout", s)?;
        }
        if let Some(s) = self.send_timeout {
            c.send_timeout = seconds(py, "send_timeout", s)?;
        }
        if let Some(s) = self.connect_timeout {
            c.connect_timeout = seconds(py, "connect_timeout", s)?;
        }
        if let Some(n) = self.channel_queue {
            c.channel_queue = count(py, "channel_queue", n)?;
        }
        Ok(c)
    }
}

fn secret_bytes(secret: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = secret.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = secret.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    Err(invalid(
        secret.py(),
        format!(
            "cluster_secret must be str or bytes, got {}",
            secret.get_type().name()?
        ),
    ))
}

/// A non-negative integer option (`what` names it in the error).
pub fn count<T: TryFrom<i64>>(py: Python<'_>, what: &str, n: i64) -> PyResult<T> {
    T::try_from(n).map_err(|_| {
        invalid(
            py,
            format!("{what} must be a non-negative integer, got {n}"),
        )
    })
}

/// A duration given in seconds (float), e.g. a timeout.
pub fn seconds(py: Python<'_>, what: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        invalid(
            py,
            format!("{what} must be a non-negative number of seconds, got {s}"),
        )
    })
}
