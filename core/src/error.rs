//! The public error type: one coarse [`ErrorKind`] plus a human message.
//!
//! Internal modules keep rich errors of their own (`thiserror`) and convert at the
//! boundary. Every binding maps [`ErrorKind`] to its idiomatic error: a Python exception
//! class per kind, a JS `Error` with `.code`, a Swift error enum.

use std::fmt;

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

/// A memmesh error: a [`ErrorKind`] and a message that says what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
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

    /// Returns a copy with `context: ` prepended to the message.
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

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Io,
        };
        Error::new(kind, e.to_string())
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

    #[test]
    fn io_errors_map_to_kinds() {
        let e: Error = std::io::Error::new(std::io::ErrorKind::NotFound, "x").into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e: Error = std::io::Error::other("x").into();
        assert_eq!(e.kind(), ErrorKind::Io);
    }
}
