//! Benchmarks of memmesh that print its figures beside an anchor measured in the same run.
//!
//! The request/response benchmark (`rpc-bench`) compares `Channel::request` between two
//! nodes with a bare quinn echo built with the same transport settings, and measures the
//! in-process local call. The pieces are library modules so that the tests in `tests/`
//! can run every measured path against real nodes.
//!
//! The cache benchmark (`cache-bench`) measures remote GET/SET between two nodes, local-hit
//! reads and resident bytes per entry, and prints them beside Redis (`bench/run-cache.sh`).
//!
//! The call benchmark (`call-bench`, module [`call_report`]) measures the cost of a call
//! from Rust beside Python, Node.js and UniFFI (`bench/run-bindings.sh`).
//!
//! The transfer benchmark (`transfer-bench`, module [`transfer`]) sends 1 GiB between two
//! nodes, memory to memory and file to file, beside bare quinn and iperf3
//! (`bench/run-transfer.sh`).
//!
//! The files benchmark (`files-bench`) uses [`files_netns`] and [`files_replicas`] for its
//! part (c), replicas across network namespaces (`bench/run-files.sh`).
//!
//! The documents benchmark (`docs-bench`, module [`docs`]) syncs a large document between
//! nodes beside Automerge's own sync in memory, times the convergence of documents edited
//! on three nodes, and measures edits per second (`bench/run-docs.sh`).

pub mod cache_mesh;
pub mod cache_report;
pub mod call_report;
pub mod docs;
pub mod files_netns;
pub mod files_replicas;
pub mod load;
pub mod machine;
pub mod mesh;
pub mod mesh_floor;
pub mod quinn_echo;
pub mod report;
pub mod resident;
pub mod stats;
pub mod transfer;
pub mod usage;

/// Largest reply either echo accepts (memmesh's default `max_message_size`).
pub const MAX_REPLY: usize = 8 * 1024 * 1024;

/// A payload of `len` bytes with a non-trivial pattern (so a truncated or shifted echo
/// cannot pass the comparison by accident).
pub fn payload(len: usize) -> bytes::Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect::<Vec<u8>>()
        .into()
}
