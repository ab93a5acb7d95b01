//! The channels' typed errors. Each variant says which public [`ErrorKind`] it is
//! ([`Classify`]), so `?` turns it into an [`Error`] that keeps it (and its cause) while
//! users see the same kinds and messages as before.

use std::time::Duration;

use crate::channel::registry::MAX_CHANNEL_NAME;
use crate::error::{Classify, Error, ErrorKind};

/// What went wrong sending on, receiving on or serving a channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A channel name that is empty or too long.
    #[error("a channel name must be 1..={MAX_CHANNEL_NAME} bytes, got {0}")]
    NameLength(usize),
    /// A message or request larger than this node's `max_message_size`, refused before
    /// sending.
    #[error(
        "a message of {len} bytes exceeds max_message_size ({max} bytes); use a transfer for \
         large data"
    )]
    TooLarge {
        /// Its bytes.
        len: usize,
        /// The node's `max_message_size`.
        max: usize,
    },
    /// A message or request that arrived larger than this node's `max_message_size`.
    #[error("a message of {len} bytes exceeds max_message_size ({max} bytes)")]
    ReceivedTooLarge {
        /// Its bytes.
        len: usize,
        /// The node's `max_message_size`.
        max: usize,
    },
    /// A message or request for a channel the receiving node has not opened.
    #[error("node {node} has no channel {name:?}")]
    NoChannel {
        /// The receiving node's short id.
        node: String,
        /// The channel.
        name: String,
    },
    /// A request on a channel without a request handler.
    #[error("channel {name:?} on node {node} has no request handler")]
    NoRequestHandler {
        /// The channel.
        name: String,
        /// The receiving node's short id.
        node: String,
    },
    /// The request handler panicked.
    #[error("the request handler of channel {name:?} panicked")]
    HandlerPanicked {
        /// The channel.
        name: String,
    },
    /// The channel's queue stayed full for as long as a message may wait.
    #[error(
        "channel {name:?} is full ({why}) and no reader made room within {wait:?}; the \
         message was not delivered"
    )]
    Full {
        /// The channel.
        name: String,
        /// Which bound is reached (count, bytes, or the node's bytes).
        why: String,
        /// How long the message waited.
        wait: Duration,
    },
    /// A request got no response within its timeout.
    #[error("request to {peer} on channel {name:?} timed out after {timeout:?}")]
    RequestTimeout {
        /// The peer's short id.
        peer: String,
        /// The channel.
        name: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A peer did not queue a message within the node's `send_timeout`.
    #[error("peer {peer} did not accept the message within {timeout:?}")]
    SendTimeout {
        /// The peer's short id.
        peer: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A send that some of its targets did not take (of the kind of the first failure,
    /// which is the source; the message names every failure).
    #[error("delivered to {delivered} of {total} peers; failed: {failures}")]
    Undelivered {
        /// Peers that queued the message.
        delivered: usize,
        /// Peers it was sent to.
        total: usize,
        /// Each failure, as `<short id>: <error>`, separated by `; `.
        failures: String,
        /// The first failure.
        #[source]
        first: Error,
    },
}

impl Classify for ChannelError {
    fn kind(&self) -> ErrorKind {
        use ChannelError::*;
        match self {
            NameLength(_) | TooLarge { .. } | ReceivedTooLarge { .. } => ErrorKind::InvalidInput,
            NoChannel { .. } | NoRequestHandler { .. } => ErrorKind::NotFound,
            HandlerPanicked { .. } => ErrorKind::HandlerFailed,
            Full { .. } => ErrorKind::QuotaExceeded,
            RequestTimeout { .. } | SendTimeout { .. } => ErrorKind::Timeout,
            Undelivered { first, .. } => first.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_and_messages_are_the_ones_users_saw() {
        let e: Error = ChannelError::NameLength(0).into();
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::InvalidInput,
                "a channel name must be 1..=255 bytes, got 0"
            )
        );
        let e: Error = ChannelError::NoRequestHandler {
            name: "c".into(),
            node: "abcd".into(),
        }
        .into();
        assert_eq!(
            (e.kind(), e.message()),
            (
                ErrorKind::NotFound,
                "channel \"c\" on node abcd has no request handler"
            )
        );
        let e: Error = ChannelError::Full {
            name: "c".into(),
            why: "2 messages".into(),
            wait: Duration::from_secs(1),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(
            e.message(),
            "channel \"c\" is full (2 messages) and no reader made room within 1s; the \
             message was not delivered"
        );
        assert!(e.downcast_ref::<ChannelError>().is_some());
    }

    #[test]
    fn an_undelivered_send_is_of_the_kind_of_its_first_failure_and_keeps_it() {
        let first: Error = ChannelError::SendTimeout {
            peer: "abcd".into(),
            timeout: Duration::from_secs(2),
        }
        .into();
        let e: Error = ChannelError::Undelivered {
            delivered: 1,
            total: 2,
            failures: format!("abcd: {first}"),
            first: first.clone(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "delivered to 1 of 2 peers; failed: abcd: Timeout: peer abcd did not accept the \
             message within 2s"
        );
        assert_eq!(e.source().map(|c| c.to_string()), Some(first.to_string()));
        assert_eq!(
            e.chain(),
            "Timeout: delivered to 1 of 2 peers; failed: abcd: Timeout: peer abcd did not \
             accept the message within 2s"
        );
    }
}
