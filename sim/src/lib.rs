//! A deterministic simulator of memmesh membership and cache placement.
//!
//! Many nodes run memmesh's own membership engine (`memmesh::membership::engine`: foca's
//! SWIM with memmesh's identity, codec, admission, view and rejoin logic, the struct a
//! node's membership actor drives: see [`node`]) on virtual time, over an in-memory
//! network with per-link loss, delay and splits ([`net`]), with joins, leaves, crashes and
//! restarts injected by the caller ([`sim`]). No socket, no thread, no wall clock: one
//! seed drives every random choice, so a seed replays a run exactly
//! ([`Sim::trace_digest`]). The cache's routing tables are computed from each node's view
//! with the real [`memmesh::cache::routing::Table`]; [`placement`] measures what they
//! move and keep. [`scenarios`] holds the runs CI checks; `MEMMESH_SIM_SEED` replays one
//! ([`seed`]).
//!
//! The design follows quinn-proto's simulated pairs: sans-I/O state machines driven by a
//! virtual clock and an in-memory network.

pub mod net;
pub mod node;
pub mod placement;
pub mod queue;
pub mod scenarios;
pub mod seed;
pub mod sim;

pub use net::{Link, Network};
pub use node::SimNode;
pub use sim::{Sim, SimConfig, Stats};
