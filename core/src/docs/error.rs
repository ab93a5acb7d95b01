//! What goes wrong with documents, and which public kind each failure is.

use crate::error::{Classify, ErrorKind};

/// A documents failure. Converted into the public [`crate::Error`] by `?`, which keeps
/// this value for [`crate::Error::downcast_ref`] and logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocsError {
    /// The node has no data dir, so there is nowhere to keep documents.
    #[error(
        "documents need a data dir: start the node with a data_dir (NodeBuilder::data_dir \
         in Rust, data_dir= in Python, dataDir in JavaScript) to keep documents"
    )]
    NoDataDir,
    /// The store was closed (the node shut down).
    #[error("the documents store is closed")]
    Closed,
    /// A path that does not parse.
    #[error("bad path {path:?}: {why}")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Nothing at a path (or its parent) where something was needed.
    #[error("nothing at {path:?} in document {doc}")]
    NoSuchPath {
        /// The document.
        doc: String,
        /// The path.
        path: String,
    },
    /// The value at a path has another type than the operation needs.
    #[error("wrong type at {path:?}: {what}")]
    WrongType {
        /// The path.
        path: String,
        /// What was expected and found.
        what: String,
    },
    /// No document with this id exists on this node.
    #[error("no document {id} on this node")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// A document with this id already exists here (or is being created right now).
    #[error("document {id} already exists on this node")]
    Exists {
        /// The id.
        id: String,
    },
    /// A bad argument (an unparsable id, an index out of range, ...).
    #[error("{0}")]
    Invalid(String),
    /// Bytes that are not an Automerge document, change or sync message.
    #[error("{what} is not valid Automerge data: {why}")]
    NotAutomerge {
        /// What was being read (a document, a sync message).
        what: &'static str,
        /// The library's reason.
        why: String,
    },
    /// A document or message larger than allowed.
    #[error("{what} of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A document would grow past `docs_max_bytes`.
    #[error("document {id} would grow to about {size} bytes, over docs_max_bytes ({limit} bytes)")]
    DocTooLarge {
        /// The document.
        id: String,
        /// Its size (in the Automerge format) had the change been accepted.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// The peer may not see this document (its reach does not include the peer).
    #[error("document {id} is not shared with this peer")]
    NotShared {
        /// The document.
        id: String,
    },
    /// A budget (documents per peer, concurrent syncs) is used up.
    #[error("busy: {0}")]
    Busy(String),
    /// Stored data failed authentication or does not parse.
    #[error("{what}: stored data is corrupted or was tampered with")]
    Corrupted {
        /// What failed.
        what: String,
    },
    /// The library refused an operation (a bug or an unexpected state).
    #[error("automerge: {0}")]
    Automerge(String),
    /// A disk operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DocsError {
    /// A mapper for `map_err` on a disk operation.
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> DocsError + 'a {
        move |source| DocsError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Classify for DocsError {
    fn kind(&self) -> ErrorKind {
        match self {
            DocsError::NoDataDir => ErrorKind::Unsupported,
            DocsError::Closed => ErrorKind::Closed,
            DocsError::BadPath { .. }
            | DocsError::WrongType { .. }
            | DocsError::Invalid(_)
            | DocsError::Exists { .. }
            | DocsError::NotAutomerge { .. }
            | DocsError::TooLarge { .. } => ErrorKind::InvalidInput,
            DocsError::NoSuchPath { .. } | DocsError::NotFound { .. } => ErrorKind::NotFound,
            DocsError::NotShared { .. } => ErrorKind::Unauthorized,
            DocsError::Busy(_) | DocsError::DocTooLarge { .. } => ErrorKind::QuotaExceeded,
            DocsError::Corrupted { .. } => ErrorKind::Corrupted,
            DocsError::Automerge(_) => ErrorKind::Internal,
            DocsError::Io { source, .. } => crate::error::io_kind(source),
        }
    }
}
