//! Streams of transfer events (received transfers, progress) that end at shutdown.

pub use crate::service::Subscription;
