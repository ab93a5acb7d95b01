//! The public error type: one coarse [`ErrorKind`], a human message and the cause.
//!
//! Internal modules keep typed errors of their own (`thiserror` enums such as
//! [`crate::wire::WireError`]) and say which public kind each variant is by implementing
//! [`Classify`] once. The one conversion below ([`From`] for any [`Classify`] error) keeps
//! the typed error inside the public [`Error`]: its message is the typed error's, its
//! [`std::error::Error::source`] chain is the typed error's, so a log of the chain shows
//! the cause (an `io::Error`, a quinn error, ...) and [`Error::downcast_ref`] gets the
//! typed error back. Every binding maps [`ErrorKind`] to its idiomatic error: a Python
//! exception class per kind, a JS `Error` with `.code`, a Swift error enum.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The coarse category of a memmesh error. Stable across versions and languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for (peer, channel handler, key, block) does not exist.
    NotFound,
    /// A memory quota or size limit would be exceeded.
    QuotaExceeded,
    /// The operation did not complete within its deadline.
    Timeout,
    /// Authentication failed: wrong cluster secret or an unexpected peer identity.
    Unauthorized,
    /// The peer could not be reached or went away during the operation.
    PeerUnavailable,
    /// Data failed verification (hash mismatch, malformed frame from a peer).
    Corrupted,
    /// The caller passed something invalid (bad address, oversized message, bad id).
    InvalidInput,
    /// The node (or the object used) has been shut down.
    Closed,
    /// An operating-system I/O error.
    Io,
    /// The remote side does not speak this protocol version or feature.
    Unsupported,
    /// A user-supplied handler failed on the remote (or local) side.
    HandlerFailed,
    /// A bug or an unexpected condition inside memmesh.
    Internal,
}

impl ErrorKind {
    /// All kinds, in declaration order (used by bindings to build their error tables).
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NotFound,
        ErrorKind::QuotaExceeded,
        ErrorKind::Timeout,
        ErrorKind::Unauthorized,
        ErrorKind::PeerUnavailable,
        ErrorKind::Corrupted,
        ErrorKind::InvalidInput,
        ErrorKind::Closed,
        ErrorKind::Io,
        ErrorKind::Unsupported,
        ErrorKind::HandlerFailed,
        ErrorKind::Internal,
    ];

    /// The stable name of this kind, e.g. `"NotFound"` (used as JS `.code`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::QuotaExceeded => "QuotaExceeded",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::PeerUnavailable => "PeerUnavailable",
            ErrorKind::Corrupted => "Corrupted",
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::Closed => "Closed",
            ErrorKind::Io => "Io",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::HandlerFailed => "HandlerFailed",
            ErrorKind::Internal => "Internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An internal, typed error that knows which public [`ErrorKind`] it is.
///
/// Implement it once per module error enum; `?` then turns the typed error into an
/// [`Error`] that keeps it (and its source chain).
pub trait Classify: StdError + Send + Sync + 'static {
    /// The public kind of this error.
    fn kind(&self) -> ErrorKind;
}

/// A memmesh error: a [`ErrorKind`], a message that says what happened and, when one
/// is known, the typed error or cause behind it.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// The typed error this one was made from (its `Display` is `message`), or a
    /// [`Caused`] wrapper holding an external cause.
    inner: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// Holds a message and the external error that caused it (see [`Error::with_source`]).
#[derive(Debug)]
struct Caused {
    message: String,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl fmt::Display for Caused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Caused {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(cause) = StdError::source(self) {
            d.field("source", &cause.to_string());
        }
        d.finish()
    }
}

/// Two errors are equal when their kind and message are (the cause is not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for Error {}

impl<E: Classify> From<E> for Error {
    fn from(e: E) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
            inner: Some(Arc::new(e)),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            inner: None,
        }
    }

    /// Builds an error of `kind` with `message`, caused by `source` (kept for the
    /// [`std::error::Error::source`] chain, so logs show why).
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        let message = message.into();
        Self {
            kind,
            message: message.clone(),
            inner: Some(Arc::new(Caused {
                message,
                source: Box::new(source),
            })),
        }
    }

    /// The typed internal error this one was made from, if it is a `T`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        let inner: &(dyn StdError + 'static) = self.inner.as_deref()?;
        inner.downcast_ref::<T>()
    }

    /// This error and its causes, outermost first, as one line: `a: b: c`. A cause whose
    /// text the line already ends with (a message that quoted its cause) is not repeated.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = StdError::source(self);
        while let Some(cause) = next {
            let text = cause.to_string();
            // A memmesh error as the cause prints `kind: message`; a line that already
            // quotes its message does not repeat it.
            let quoted = match cause.downcast_ref::<Error>() {
                Some(e) => e.message().to_string(),
                None => text.clone(),
            };
            if !text.is_empty() && !out.ends_with(&quoted) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = cause.source();
        }
        out
    }

    /// The coarse category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (without the kind).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::Closed`] used when the node has shut down.
    pub fn closed() -> Self {
        Self::new(ErrorKind::Closed, "the node has been shut down")
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Returns a copy with `context: ` prepended to the message (the cause is kept).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The source is the cause of the typed error inside (the typed error itself carries the
/// same text as [`Error::message`], so it is not repeated in the chain).
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.as_deref().and_then(|inner| inner.source())
    }
}

/// Which public kind an I/O error is.
pub(crate) fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            ErrorKind::InvalidInput
        }
        _ => ErrorKind::Io,
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::with_source(io_kind(&e), e.to_string(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_kind_and_message() {
        let e = Error::new(ErrorKind::NotFound, "no such channel").context("peer abc");
        assert_eq!(e.to_string(), "NotFound: peer abc: no such channel");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn kind_names_are_unique() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[derive(Debug, thiserror::Error)]
    enum Typed {
        #[error("reading the index failed")]
        Read(#[source] std::io::Error),
        #[error("no entry {0}")]
        Missing(u32),
    }

    impl Classify for Typed {
        fn kind(&self) -> ErrorKind {
            match self {
                Typed::Read(_) => ErrorKind::Io,
                Typed::Missing(_) => ErrorKind::NotFound,
            }
        }
    }

    #[test]
    fn a_typed_error_keeps_its_kind_message_and_cause() {
        let e: Error = Typed::Read(std::io::Error::other("disk on fire")).into();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.message(), "reading the index failed");
        assert_eq!(
            StdError::source(&e).map(|c| c.to_string()).as_deref(),
            Some("disk on fire")
        );
        assert_eq!(e.chain(), "Io: reading the index failed: disk on fire");
        assert!(matches!(e.downcast_ref::<Typed>(), Some(Typed::Read(_))));
        let e = e.context("peer abc");
        assert_eq!(e.message(), "peer abc: reading the index failed");
        assert!(StdError::source(&e).is_some(), "context keeps the cause");
        let e: Error = Typed::Missing(7).into();
        assert_eq!((e.kind(), e.message()), (ErrorKind::NotFound, "no entry 7"));
        assert!(StdError::source(&e).is_none());
    }

    #[test]
    fn with_source_keeps_an_external_cause() {
        let cause = std::io::Error::other("connection reset");
        let e = Error::with_source(ErrorKind::PeerUnavailable, "peer went away", cause);
        assert_eq!(e.to_string(), "PeerUnavailable: peer went away");
        assert_eq!(
            e.chain(),
            "PeerUnavailable: peer went away: connection reset"
        );
        assert_eq!(e, Error::new(ErrorKind::PeerUnavailable, "peer went away"));
    }

    #[test]
    fn a_cause_already_quoted_by_the_message_is_not_repeated() {
        let cause = std::io::Error::other("timed out");
        let e = Error::with_source(
            ErrorKind::PeerUnavailable,
            "connection lost: timed out",
            cause,
        );
        assert_eq!(e.chain(), "PeerUnavailable: connection lost: timed out");
        let e: Error = std::io::Error::other("gone").into();
        assert_eq!(e.chain(), "Io: gone");
        // A memmesh error as the cause: its message (without its kind) is what is quoted.
        let inner = Error::new(ErrorKind::Timeout, "no answer in 5s");
        let e = Error::with_source(
            ErrorKind::PeerUnavailable,
            "peer abc could not be asked: no answer in 5s",
            inner.clone(),
        );
        assert_eq!(
            e.chain(),
            "PeerUnavailable: peer abc could not be asked: no answer in 5s"
        );
        let e = Error::with_source(ErrorKind::PeerUnavailable, "peer abc is gone", inner);
        assert_eq!(
            e.chain(),
            "PeerUnavailable: peer abc is gone: Timeout: no answer in 5s"
        );
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let e: Error = std::io::Error::new(std::io::ErrorKind::NotFound, "x").into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e: Error = std::io::Error::other("x").into();
        assert_eq!(e.kind(), ErrorKind::Io);
    }
}
