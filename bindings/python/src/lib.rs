//! The Python binding of memmesh: the `memmesh._native` extension module.
//!
//! This crate only converts types and errors and chooses how calls cross the boundary;
//! every feature lives in the `memmesh` core crate. Its files mirror the core's modules
//! (`node.rs`, `config.rs`, `channel.rs`, `handler.rs` for `channel/handler.rs`,
//! `membership.rs`, `peer.rs`, `blocks.rs`, `cache.rs`, `transfer.rs`, `files.rs`,
//! `docs.rs` with `docs_changes.rs` and `docs_status.rs` for `docs/changes.rs` and
//! `docs/status.rs`, `error.rs`), plus
//! `bridge.rs`, `event_loop.rs` and `handler_threads.rs`, which
//! move work between Python threads, asyncio loops and the node's own tokio runtime.
//! The typed public API is the pure-Python package `memmesh` (`memmesh.Node` blocking,
//! `memmesh.aio.Node` asyncio) built on these classes.

use pyo3::prelude::*;

mod blocks;
mod bridge;
mod cache;
mod channel;
mod config;
mod docs;
mod docs_changes;
mod docs_status;
mod error;
mod event_loop;
mod files;
mod handler;
mod handler_threads;
mod membership;
mod node;
mod peer;
mod transfer;

/// The native module (`memmesh._native`).
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<node::PyNode>()?;
    m.add_class::<channel::PyChannel>()?;
    m.add_class::<handler::PyMessage>()?;
    m.add_class::<handler::PyRequest>()?;
    m.add_class::<peer::PyPeerInfo>()?;
    m.add_class::<membership::PyEvent>()?;
    m.add_class::<membership::PyEvents>()?;
    m.add_class::<blocks::PyBlocks>()?;
    m.add_class::<blocks::PyNodeUsage>()?;
    m.add_class::<cache::PyCache>()?;
    m.add_class::<cache::PyCacheOptions>()?;
    m.add_class::<cache::PyCacheStats>()?;
    m.add_class::<transfer::PyTransfer>()?;
    m.add_class::<transfer::PyOffer>()?;
    m.add_class::<transfer::PyDestination>()?;
    m.add_class::<transfer::PyReceived>()?;
    m.add_class::<transfer::PyTransferResult>()?;
    m.add_class::<transfer::PyProgress>()?;
    m.add_class::<transfer::PyReceivedEvents>()?;
    m.add_class::<transfer::PyProgressEvents>()?;
    m.add_class::<files::PyFiles>()?;
    m.add_class::<files::PyFileInfo>()?;
    m.add_class::<files::PyFilesPage>()?;
    m.add_class::<files::PyFilesStats>()?;
    m.add_class::<docs::PyDocs>()?;
    m.add_class::<docs::PyDoc>()?;
    m.add_class::<docs::PyDocInfo>()?;
    m.add_class::<docs::PyDocsStats>()?;
    m.add_class::<docs::PyText>()?;
    m.add_class::<docs::PyCounter>()?;
    m.add_class::<docs_changes::PyDocChange>()?;
    m.add_class::<docs_changes::PyDocChanges>()?;
    m.add_class::<docs_status::PyDocSync>()?;
    m.add_class::<docs_status::PyPeerSync>()?;
    m.add_class::<bridge::Pending>()?;
    m.add(
        "ERROR_KINDS",
        memmesh::ErrorKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>(),
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(panic_for_testing, m)?)?;
    m.add_function(wrap_pyfunction!(handler_threads::handler_threads, m)?)?;
    handler_threads::register_exit(m.py())?;
    Ok(())
}

/// Panics inside a binding call. Not part of the API: the test proving that a panic in
/// Rust reaches Python as an exception (pyo3's `PanicException`), never as an abort of
/// the interpreter, calls it.
#[pyfunction]
#[pyo3(name = "_panic_for_testing")]
fn panic_for_testing(message: &str) {
    panic!("{message}");
}
