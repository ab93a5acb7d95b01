//! The versioned message types that travel as frame headers.
//!
//! Every stream starts with a [`StreamHeader`] naming the service it is for, so that all
//! services share one connection per peer (one ALPN, a service tag per stream). Replies
//! carry either success or a [`Reply::Err`] with the error kind by name, so a peer of a
//! newer version with new kinds still produces a readable error here.

use std::net::SocketAddr;

use crate::error::{Classify, Error, ErrorKind};

/// The wire protocol version this build speaks (history in ADR 0003). A peer speaking
/// another version is refused at the handshake with `Unsupported`.
pub const WIRE_VERSION: u16 = 6;

/// The first frame of the authentication stream, sent by each side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// Protocol version (always the first field: see `codec::peek_version`).
    pub version: u16,
    /// HMAC-SHA256 over the TLS exporter value, keyed by the cluster secret.
    pub proof: [u8; 32],
    /// The sender's human-readable name.
    pub name: String,
    /// Addresses the sender listens on.
    pub addrs: Vec<SocketAddr>,
    /// A random number the sender drew when it started: two connections with the same
    /// `boot` come from the same process (ADR 0006's tie-break of simultaneous dials).
    pub boot: u64,
}

/// The operation requested on a channel stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChannelOp {
    /// A fire-and-forget message, acknowledged once queued at the receiver.
    Send,
    /// A request that expects a response body.
    Request,
}

/// The operation requested on a membership stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MembershipOp {
    /// A SWIM packet (body: foca's bytes); acknowledged at once.
    Packet,
    /// Full-state exchange (body: our member list; reply: theirs).
    Sync,
}

/// The operation requested on a blocks stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BlockOp {
    /// Store the body as a block (reply: its 32-byte digest).
    Put,
    /// Return the block with this digest (reply: its bytes).
    Get {
        /// The block's BLAKE3 digest.
        id: [u8; 32],
    },
    /// Remove the block with this digest.
    Free {
        /// The block's BLAKE3 digest.
        id: [u8; 32],
    },
    /// Report this node's memory use (reply: a bulk-encoded `NodeUsage`).
    Stats,
}

/// The service a stream is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Service {
    /// A named messaging channel.
    Channel {
        /// Channel name.
        name: String,
        /// What is asked of it.
        op: ChannelOp,
    },
    /// SWIM membership.
    Membership {
        /// What is asked of it.
        op: MembershipOp,
    },
    /// Blocks held in this node's RAM.
    Blocks {
        /// What is asked of it.
        op: BlockOp,
    },
    /// The replicated cache (body and reply: bulk-encoded cache messages).
    Cache,
    /// A chunked transfer offered by the opener of the stream, which the transfer service
    /// takes over whole (see `transfer::receive`).
    Transfer(TransferOffer),
    /// A pull of published content (or a block) by its BLAKE3 hash; the transfer service
    /// takes the stream over and sends the content back in verified chunks.
    Fetch {
        /// The content hash.
        id: [u8; 32],
    },
    /// The sender is shutting down in order (empty body and reply): the receiver counts it
    /// as gone at once. Sent on every connection before it is closed, because a QUIC close
    /// alone can be lost (see `node::goodbye`).
    Goodbye,
    /// An Automerge sync message for one document (body and reply: bulk-encoded
    /// `docs::sync` messages).
    Docs,
    /// Files held for other nodes (body and reply: bulk-encoded, versioned files
    /// messages, see `files::messages`).
    Files,
}

/// What a sender offers at the start of a transfer stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferOffer {
    /// Identifies the content across attempts, so an interrupted transfer can resume.
    pub id: [u8; 32],
    /// A file name for the receiver (no directories).
    pub name: String,
    /// Total bytes.
    pub size: u64,
    /// Bytes per chunk.
    pub chunk_size: u32,
}

/// The first frame of every service stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamHeader {
    /// Protocol version (always the first field).
    pub version: u16,
    /// Which service handles the stream.
    pub service: Service,
}

impl StreamHeader {
    /// A header for `service` at the current version.
    pub fn new(service: Service) -> Self {
        Self {
            version: WIRE_VERSION,
            service,
        }
    }
}

/// An error a peer reported in its [`Reply`]: its kind and message, as the peer gave
/// them (a kind this node does not know reads as [`ErrorKind::Internal`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// The kind the peer reported.
    pub kind: ErrorKind,
    /// The peer's message.
    pub message: String,
}

impl Classify for RemoteError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The answer to a service frame; the body of the reply frame carries any payload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reply {
    /// Success.
    Ok,
    /// Failure, with the error kind by name and a message.
    Err {
        /// The [`ErrorKind`] name.
        kind: String,
        /// Human-readable message.
        message: String,
    },
}

impl Reply {
    /// The reply that reports `err` to the peer.
    pub fn from_error(err: &Error) -> Self {
        Reply::Err {
            kind: err.kind().as_str().to_string(),
            message: err.message().to_string(),
        }
    }

    /// Converts into a result, mapping an unknown kind name to [`ErrorKind::Internal`].
    pub fn into_result(self) -> Result<(), Error> {
        match self {
            Reply::Ok => Ok(()),
            Reply::Err { kind, message } => {
                let kind = ErrorKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == kind)
                    .unwrap_or(ErrorKind::Internal);
                Err(RemoteError { kind, message }.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_survive_the_round_trip() {
        let e = Error::new(ErrorKind::NotFound, "no handler");
        assert_eq!(Reply::from_error(&e).into_result().unwrap_err(), e);
        let unknown = Reply::Err {
            kind: "FromTheFuture".into(),
            message: "m".into(),
        };
        assert_eq!(
            unknown.into_result().unwrap_err().kind(),
            ErrorKind::Internal
        );
        let remote = Reply::from_error(&e).into_result().unwrap_err();
        assert_eq!(
            remote.downcast_ref::<RemoteError>(),
            Some(&RemoteError {
                kind: ErrorKind::NotFound,
                message: "no handler".into()
            })
        );
    }
}
