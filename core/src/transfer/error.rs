//! The typed errors of transfers ([`TransferError`]), each of one public [`ErrorKind`].
//!
//! They become a public [`crate::Error`] with `?` (which keeps them, and their cause, for
//! logs and [`crate::Error::downcast_ref`]). Their messages are what users see.

use std::path::PathBuf;

use crate::error::{io_kind, Classify, ErrorKind};

/// Why a transfer (a send, a fetch, serving one, receiving one) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A content id that is not `blake3:<64 hex digits>`.
    #[error("invalid content id {0:?}: expected blake3:<64 hex digits>")]
    BadId(String),
    /// The source to send is not a regular file.
    #[error("{} is not a file", .0.display())]
    NotAFile(PathBuf),
    /// The file being sent changed (size, time or content) while it was read.
    #[error("{} changed while it was being sent", .0.display())]
    SourceChanged(PathBuf),
    /// The destination of a received file has no file name.
    #[error("{} is not a file name to receive into", .0.display())]
    NotAFileName(PathBuf),
    /// A peer offered a name that is not a plain file name.
    #[error("bad transfer name {0:?}")]
    BadName(String),
    /// A chunk size that is not a power of two from 1 KiB to 64 MiB.
    #[error("chunk size must be a power of two from 1 KiB to 64 MiB, got {0}")]
    ChunkSize(u32),
    /// A chunk size outside what this node receives.
    #[error(
        "chunk size {size} is outside what this node receives ({min_kib} KiB to {max_mib} MiB)"
    )]
    ReceiveChunkSize {
        /// The size offered.
        size: u32,
        /// The smallest received, in KiB.
        min_kib: u32,
        /// The largest received, in MiB.
        max_mib: u32,
    },
    /// A resume point beyond the end of the content.
    #[error("resume after {chunks} chunks of a transfer of {count}")]
    ResumePoint {
        /// Chunks the receiver claims to hold.
        chunks: u64,
        /// Chunks of the content.
        count: u64,
    },
    /// A chunk arrived out of order.
    #[error("chunk {got} arrived where chunk {expected} was expected")]
    OutOfOrder {
        /// Its index.
        got: u64,
        /// The index expected.
        expected: u64,
    },
    /// A chunk of the wrong length (or one past the end).
    #[error("chunk {index} has {got} bytes (header says {announced}), expected {expected}")]
    ChunkLength {
        /// Its index.
        index: u64,
        /// Bytes that arrived.
        got: usize,
        /// Bytes its header announced.
        announced: u32,
        /// Bytes it must have.
        expected: u32,
    },
    /// A chunk that does not match its hash (ask for it again).
    #[error("chunk {0} does not match its hash")]
    ChunkHash(u64),
    /// The stream ended before the last chunk.
    #[error("the transfer ended after {got} of {count} chunks")]
    EndedEarly {
        /// Chunks received.
        got: u64,
        /// Chunks of the content.
        count: u64,
    },
    /// Every chunk matched its hash but the whole does not match the hash announced.
    #[error("the whole content does not match its announced hash")]
    WholeHash,
    /// The end frame of a transfer carried data.
    #[error("the end of the transfer carried data")]
    EndWithData,
    /// Fetched content whose hash is not the id it was fetched by.
    #[error("the content does not hash to the id it was fetched by")]
    FetchedHash,
    /// The receiver confirmed another hash than the one sent.
    #[error("the receiver confirmed {confirmed}, expected {ours}")]
    Confirmed {
        /// What the receiver confirmed.
        confirmed: String,
        /// What was sent.
        ours: String,
    },
    /// The receiver's verified part is of another version of the content.
    #[error(
        "peer {peer} holds a different version of {name} for this transfer (its verified \
         part does not match the content sent now)"
    )]
    DifferentVersion {
        /// The receiver (short id).
        peer: String,
        /// The name offered.
        name: String,
    },
    /// A partial file is shorter than the part of it that was verified.
    #[error("{} lost part of its verified data", .0.display())]
    LostVerified(PathBuf),
    /// The part of a partial file kept from an earlier attempt no longer matches.
    #[error("the part of {} kept from an earlier attempt changed on disk", .0.display())]
    KeptPartChanged(PathBuf),
    /// A file operation failed (`doing` says which, on what).
    #[error("{doing}: {source}")]
    File {
        /// What was being done, e.g. `opening /path`.
        doing: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A delivered file's name and every numbered name beside it are taken.
    #[error("{} and {max} numbered names beside it are taken", dest.display())]
    NamesTaken {
        /// The name asked for.
        dest: PathBuf,
        /// Numbered names tried.
        max: u32,
    },
    /// Content received into memory does not fit in the memory quota.
    #[error("{bytes} bytes do not fit in this node's memory quota: {why}")]
    MemoryQuota {
        /// Bytes of the content.
        bytes: u64,
        /// What the quota said.
        why: String,
    },
    /// Memory to receive into could not be allocated.
    #[error("cannot allocate {0} bytes to receive into")]
    Allocation(u64),
    /// A fetch into memory that does not fit (the message of the cause, and the remedy).
    #[error("{0}; fetch into a file")]
    FetchIntoFile(String),
    /// The receiver did not answer an offer in time.
    #[error("peer {0} did not answer the offer in time")]
    OfferTimeout(String),
    /// The peer stalled for longer than the idle timeout.
    #[error("the peer did not go on with the transfer for {0} s")]
    Idle(u64),
    /// The sender did not read the accept.
    #[error("the sender does not read its stream")]
    SenderStalled,
    /// An earlier attempt at the same transfer holds the partial file still.
    #[error("an earlier attempt at this transfer is still finishing; try again")]
    Busy,
    /// The receiver closed the stream without answering the offer.
    #[error("the peer closed the stream without answering")]
    NoAnswer,
    /// The receiver refused the offer; `kind` is the kind of its reason.
    #[error("peer {peer} refused the transfer: {reason}")]
    Refused {
        /// The receiver (short id).
        peer: String,
        /// Its reason.
        reason: String,
        /// The kind of its reason (`Unauthorized` when it gave none).
        kind: ErrorKind,
    },
    /// This node's offer handler (or the lack of an inbox) refused an offer.
    #[error("offer rejected: {0}")]
    Rejected(String),
    /// Nothing is published under the id fetched.
    #[error("nothing is published here as blake3:{0}")]
    NotPublished(String),
    /// The receiving user cancelled the transfer.
    #[error("the receiver cancelled the transfer")]
    Cancelled,
    /// A newer attempt at the same transfer took over (`by` says which).
    #[error("superseded by {by}")]
    Superseded {
        /// What superseded it, e.g. `a newer attempt`.
        by: &'static str,
    },
    /// A blocking task of the transfer (hashing, syncing, ...) failed.
    #[error("{task} task failed")]
    Task {
        /// Which task.
        task: &'static str,
        /// The cause (a panic, or the runtime shutting down).
        #[source]
        source: tokio::task::JoinError,
    },
    /// The receiver's final reply does not carry a hash.
    #[error("bad hash in reply")]
    BadVerdict,
    /// A condition that should not happen.
    #[error("{0}")]
    Bug(&'static str),
}

impl TransferError {
    /// A file operation that failed: `doing` (e.g. `opening /path`) and the cause.
    pub(crate) fn file(doing: impl Into<String>, source: std::io::Error) -> Self {
        TransferError::File {
            doing: doing.into(),
            source,
        }
    }

    /// A blocking task that failed.
    pub(crate) fn task(task: &'static str, source: tokio::task::JoinError) -> Self {
        TransferError::Task { task, source }
    }
}

impl Classify for TransferError {
    fn kind(&self) -> ErrorKind {
        use TransferError::*;
        match self {
            BadId(_)
            | NotAFile(_)
            | SourceChanged(_)
            | NotAFileName(_)
            | BadName(_)
            | ChunkSize(_)
            | ReceiveChunkSize { .. }
            | ResumePoint { .. }
            | OutOfOrder { .. }
            | ChunkLength { .. }
            | EndedEarly { .. }
            | DifferentVersion { .. } => ErrorKind::InvalidInput,
            ChunkHash(_)
            | WholeHash
            | EndWithData
            | FetchedHash
            | Confirmed { .. }
            | LostVerified(_)
            | KeptPartChanged(_) => ErrorKind::Corrupted,
            File { source, .. } => io_kind(source),
            NamesTaken { .. } | MemoryQuota { .. } | Allocation(_) | FetchIntoFile(_) => {
                ErrorKind::QuotaExceeded
            }
            OfferTimeout(_) | Idle(_) | SenderStalled | Busy => ErrorKind::Timeout,
            NoAnswer => ErrorKind::PeerUnavailable,
            Refused { kind, .. } => *kind,
            Rejected(_) => ErrorKind::Unauthorized,
            NotPublished(_) => ErrorKind::NotFound,
            Cancelled | Superseded { .. } => ErrorKind::Closed,
            BadVerdict | Task { .. } | Bug(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn kinds_and_messages_reach_the_public_error() {
        let e: Error = TransferError::ChunkHash(3).into();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert_eq!(e.message(), "chunk 3 does not match its hash");
        assert!(matches!(
            e.downcast_ref::<TransferError>(),
            Some(TransferError::ChunkHash(3))
        ));
        let refused = TransferError::Refused {
            peer: "abc".into(),
            reason: "no room".into(),
            kind: ErrorKind::QuotaExceeded,
        };
        let e: Error = refused.into();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(e.message(), "peer abc refused the transfer: no room");
    }

    #[test]
    fn a_file_error_keeps_its_io_cause_and_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e: Error = TransferError::file("opening /x", io).into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.message(), "opening /x: gone");
        assert_eq!(
            e.chain(),
            "NotFound: opening /x: gone",
            "the quoted cause is not repeated"
        );
    }
}
