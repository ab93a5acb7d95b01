//! The documents benchmark (`docs-bench`, issue 15 item 7): sync of a large document
//! between real nodes beside Automerge's own sync protocol in memory, convergence of many
//! documents edited on three nodes, and edits per second through the path API.
//!
//! - [`anchor`]: two `automerge` documents syncing in memory (the library's own limit);
//! - [`nodes`]: real nodes on 127.0.0.1 and the documents they edit;
//! - [`report`]: the tables (pure, unit-tested).

pub mod anchor;
pub mod nodes;
pub mod report;
