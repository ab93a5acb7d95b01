//! What goes wrong in the files store, and which public kind each failure is.

use std::path::PathBuf;

use crate::error::{io_kind, Classify, ErrorKind};

/// A files-store failure. Converted into the public [`crate::Error`] by `?`, which keeps
/// this value (and its cause) for [`crate::Error::downcast_ref`] and logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    /// The node has no data dir, so there is nowhere to keep files.
    #[error(
        "files need a data dir: start the node with a data_dir (NodeBuilder::data_dir in \
         Rust, data_dir= in Python, dataDir in JavaScript) to store files"
    )]
    NoDataDir,
    /// More than one replica was asked for (replication comes in a later version).
    #[error("replicas > 1 arrives with replication; this node stores files locally")]
    ReplicasUnsupported,
    /// A bad argument (zero replicas, an unparsable id, a destination that exists, ...).
    #[error("{0}")]
    Invalid(String),
    /// No file with this id is stored here.
    #[error("no file {id} is stored on this node")]
    NotFound {
        /// The id asked for (`blake3:<hex>`).
        id: String,
    },
    /// The put would take the store over its disk quota.
    #[error(
        "storing {needed} more bytes would exceed the disk quota of {quota} bytes \
         ({used} used, {reserved} reserved by puts in progress)"
    )]
    QuotaExceeded {
        /// Bytes this put needs on disk (ciphertext).
        needed: u64,
        /// The configured quota.
        quota: u64,
        /// Bytes already stored.
        used: u64,
        /// Bytes reserved by other puts in progress.
        reserved: u64,
    },
    /// Stored data failed authentication or verification.
    #[error("{what}: stored data is corrupted or was tampered with")]
    Corrupted {
        /// What failed (a file id and the part of it, or the storage key file).
        what: String,
    },
    /// The storage key is protected by a passphrase and none was given.
    #[error(
        "the storage key in {} is protected by a passphrase: set storage_passphrase to \
         open this data dir",
        .path.display()
    )]
    PassphraseRequired {
        /// The key file.
        path: PathBuf,
    },
    /// A passphrase was given for a data dir whose key is not protected by one.
    #[error(
        "the data dir's storage key ({}) was created without a passphrase: start without \
         storage_passphrase",
        .path.display()
    )]
    PassphraseUnexpected {
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase does not open the storage key.
    #[error("wrong storage passphrase for {}", .path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The metadata database is missing its storage key: nothing in it can be decrypted.
    #[error(
        "{} exists but the storage key {} is missing: the stored files cannot be decrypted",
        .db.display(),
        .key.display()
    )]
    KeyMissing {
        /// The database file.
        db: PathBuf,
        /// The missing key file.
        key: PathBuf,
    },
    /// The metadata was written by a newer memmesh.
    #[error(
        "{} has schema version {found}, newer than this memmesh reads ({supported}): \
         upgrade memmesh to open this data dir",
        .path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version found.
        found: u64,
        /// The newest schema this build reads.
        supported: u64,
    },
    /// A file-system operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done ("writing", "reading", ...).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error("files metadata: {0}")]
    Db(#[from] redb::Error),
    /// A metadata commit failed (the cause was logged by the committer, which serves many
    /// puts at once).
    #[error("committing files metadata failed: {0}")]
    Commit(String),
    /// A files request of a version this node does not speak.
    #[error("files request version {found} (this node speaks {speaks})")]
    Version {
        /// The version received.
        found: u8,
        /// The version this node speaks.
        speaks: u8,
    },
    /// The file was deleted: a tombstone is kept, it never comes back.
    #[error("file {id} was deleted")]
    Tombstoned {
        /// The file.
        id: String,
    },
    /// A put asked for more replicas than there are nodes to hold them.
    #[error(
        "replicas {replicas} asked, but only {available} node(s) (this one included) are live \
         members that can hold files"
    )]
    TooFewMembers {
        /// The replicas asked.
        replicas: u32,
        /// The nodes that could hold the file.
        available: usize,
    },
    /// A put could not reach its replica count; the copies made are kept.
    #[error("{id} stored on {held} of {replicas} nodes: {why}")]
    Replicated {
        /// The file.
        id: String,
        /// Nodes holding it now.
        held: usize,
        /// The replicas asked.
        replicas: u32,
        /// The last refusal or failure.
        why: String,
    },
    /// A peer that is not a live member asked this node to hold a file.
    #[error("node {peer} is not a live member: it cannot ask this node to hold files")]
    NotMember {
        /// The peer.
        peer: String,
    },
    /// This node is a client: it holds no files for others (ADR 0024).
    #[error("this node is a client: it holds no files for other nodes")]
    ClientHoldsNothing,
    /// No live member holds the file.
    #[error("no file {id} here, and none of the {asked} live member(s) asked holds it")]
    NoHolder {
        /// The file.
        id: String,
        /// Members asked.
        asked: usize,
    },
    /// The store has been closed (the node shut down).
    #[error("the files store is closed (the node shut down)")]
    Closed,
    /// A cryptographic primitive failed unexpectedly (not an authentication failure).
    #[error("files crypto: {0}")]
    Crypto(&'static str),
    /// A bug or an unexpected condition in the store.
    #[error("files store: {0}")]
    Internal(&'static str),
}

impl Classify for FilesError {
    fn kind(&self) -> ErrorKind {
        match self {
            FilesError::NoDataDir | FilesError::ReplicasUnsupported => ErrorKind::Unsupported,
            FilesError::SchemaTooNew { .. } | FilesError::Version { .. } => ErrorKind::Unsupported,
            FilesError::Invalid(_) | FilesError::PassphraseUnexpected { .. } => {
                ErrorKind::InvalidInput
            }
            FilesError::NotFound { .. }
            | FilesError::Tombstoned { .. }
            | FilesError::NoHolder { .. } => ErrorKind::NotFound,
            FilesError::TooFewMembers { .. } | FilesError::Replicated { .. } => {
                ErrorKind::PeerUnavailable
            }
            FilesError::NotMember { .. } => ErrorKind::Unauthorized,
            FilesError::ClientHoldsNothing => ErrorKind::Unauthorized,
            FilesError::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            FilesError::Corrupted { .. } | FilesError::KeyMissing { .. } => ErrorKind::Corrupted,
            FilesError::PassphraseRequired { .. } | FilesError::WrongPassphrase { .. } => {
                ErrorKind::Unauthorized
            }
            FilesError::Io { source, .. } => io_kind(source),
            FilesError::Db(_) | FilesError::Commit(_) => ErrorKind::Io,
            FilesError::Closed => ErrorKind::Closed,
            FilesError::Crypto(_) | FilesError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl FilesError {
    /// An I/O failure doing `what` on `path`.
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| FilesError::Io { what, path, source }
    }

    /// Corruption of `what`.
    pub(crate) fn corrupted(what: impl Into<String>) -> Self {
        FilesError::Corrupted { what: what.into() }
    }
}

/// Any redb error type becomes [`FilesError::Db`].
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for FilesError {
            fn from(e: $t) -> Self {
                FilesError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
