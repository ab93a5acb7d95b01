//! The Node.js binding of memmesh (napi-rs 3).
//!
//! This crate only converts types and errors and chooses how async crosses the
//! boundary; the `memmesh` npm package (`js/`) wraps it in the idiomatic API.
//!
//! - Async methods return promises settled from the node's own tokio runtime (the
//!   binding never creates a runtime); see [`runtime`].
//! - JS handlers are called through threadsafe functions; see [`handler`]. A request
//!   to the node itself is polled once on the JavaScript thread first, where a handler
//!   of that thread is called directly (`js_thread`).
//! - Errors are JS `Error`s whose `.code` is the core `ErrorKind` name; see [`error`].

pub mod blocks;
pub mod bytes;
pub mod cache;
pub mod channel;
pub mod config;
pub mod docs;
pub mod docs_changes;
pub mod docs_status;
pub mod error;
pub mod files;
pub mod floor;
pub mod handler;
mod js_thread;
pub mod membership;
pub mod node;
pub mod peer;
pub mod runtime;
pub mod transfer;

use napi_derive::napi;

/// The `.code` of every error memmesh raises (`"NotFound"`, `"Timeout"`, ...).
#[napi(catch_unwind)]
pub fn error_codes() -> Vec<String> {
    error::error_codes()
}

/// Panics inside a binding call. Not part of the API: the test proving that a panic in
/// Rust becomes a thrown `Error` in JavaScript (every exported function is built with
/// `catch_unwind`) instead of aborting the Node.js process calls it.
#[napi(js_name = "__panicForTesting", catch_unwind)]
pub fn panic_for_testing(message: String) {
    panic!("{message}");
}
