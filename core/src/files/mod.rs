//! Persistent, encrypted files (issue 14): see ADR 0016.
// Used by the store in the next commits.
#![allow(dead_code)]

pub mod crypt;
pub mod error;
pub mod key;

pub use error::FilesError;
