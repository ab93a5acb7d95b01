//! The verbs, one module per capability.

pub mod blocks;
pub mod cache;
pub mod channels;
pub mod cluster;
pub mod docs;
pub mod drain;
pub mod files;
pub mod transfer;
