//! The Node.js binding of memmesh (napi-rs 3).
//!
//! This crate only converts types and errors and chooses how async crosses the
//! boundary; the `memmesh` npm package (`js/`) wraps it in the idiomatic API.
//!
//! - Async methods return promises settled from the node's own tokio runtime (the
//!   binding never creates a runtime); see [`runtime`].
//! - JS handlers are called through threadsafe functions; see [`handler`].
//! - Errors are JS `Error`s whose `.code` is the core `ErrorKind` name; see [`error`].

pub mod blocks;
pub mod bytes;
pub mod cache;
pub mod channel;
pub mod config;
pub mod error;
pub mod handler;
pub mod membership;
pub mod node;
pub mod peer;
pub mod runtime;
pub mod transfer;

use napi_derive::napi;

/// The `.code` of every error memmesh raises (`"NotFound"`, `"Timeout"`, ...).
#[napi]
pub fn error_codes() -> Vec<String> {
    error::error_codes()
}
