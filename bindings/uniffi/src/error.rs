//! The error every fallible call throws: one variant per core `ErrorKind`, each carrying
//! the human-readable message (Swift: `MemmeshError.notFound(message:)`).

use std::fmt;

use memmesh::{Error, ErrorKind};

/// A memmesh error: the variant is the stable kind, `message` says what happened.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum MemmeshError {
    /// The thing asked for (peer, channel handler, key, block) does not exist.
    NotFound {
        /// What happened.
        message: String,
    },
    /// A memory quota or size limit would be exceeded.
    QuotaExceeded {
        /// What happened.
        message: String,
    },
    /// The operation did not complete within its deadline.
    Timeout {
        /// What happened.
        message: String,
    },
    /// Authentication failed: wrong cluster secret or an unexpected peer identity.
    Unauthorized {
        /// What happened.
        message: String,
    },
    /// The peer could not be reached or went away during the operation.
    PeerUnavailable {
        /// What happened.
        message: String,
    },
    /// Data failed verification (hash mismatch, malformed frame from a peer).
    Corrupted {
        /// What happened.
        message: String,
    },
    /// The caller passed something invalid (bad address, oversized message, bad id).
    InvalidInput {
        /// What happened.
        message: String,
    },
    /// The node (or the object used) has been shut down.
    Closed {
        /// What happened.
        message: String,
    },
    /// An operating-system I/O error.
    Io {
        /// What happened.
        message: String,
    },
    /// The remote side does not speak this protocol version or feature.
    Unsupported {
        /// What happened.
        message: String,
    },
    /// A user-supplied handler failed on the remote (or local) side.
    HandlerFailed {
        /// What happened.
        message: String,
    },
    /// A bug or an unexpected condition inside memmesh.
    Internal {
        /// What happened.
        message: String,
    },
}

impl MemmeshError {
    /// The core kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MemmeshError::NotFound { .. } => ErrorKind::NotFound,
            MemmeshError::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            MemmeshError::Timeout { .. } => ErrorKind::Timeout,
            MemmeshError::Unauthorized { .. } => ErrorKind::Unauthorized,
            MemmeshError::PeerUnavailable { .. } => ErrorKind::PeerUnavailable,
            MemmeshError::Corrupted { .. } => ErrorKind::Corrupted,
            MemmeshError::InvalidInput { .. } => ErrorKind::InvalidInput,
            MemmeshError::Closed { .. } => ErrorKind::Closed,
            MemmeshError::Io { .. } => ErrorKind::Io,
            MemmeshError::Unsupported { .. } => ErrorKind::Unsupported,
            MemmeshError::HandlerFailed { .. } => ErrorKind::HandlerFailed,
            MemmeshError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// The human-readable message (without the kind).
    pub fn message(&self) -> &str {
        match self {
            MemmeshError::NotFound { message }
            | MemmeshError::QuotaExceeded { message }
            | MemmeshError::Timeout { message }
            | MemmeshError::Unauthorized { message }
            | MemmeshError::PeerUnavailable { message }
            | MemmeshError::Corrupted { message }
            | MemmeshError::InvalidInput { message }
            | MemmeshError::Closed { message }
            | MemmeshError::Io { message }
            | MemmeshError::Unsupported { message }
            | MemmeshError::HandlerFailed { message }
            | MemmeshError::Internal { message } => message,
        }
    }
}

impl fmt::Display for MemmeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for MemmeshError {}

impl From<Error> for MemmeshError {
    fn from(e: Error) -> Self {
        let message = e.message().to_string();
        match e.kind() {
            ErrorKind::NotFound => MemmeshError::NotFound { message },
            ErrorKind::QuotaExceeded => MemmeshError::QuotaExceeded { message },
            ErrorKind::Timeout => MemmeshError::Timeout { message },
            ErrorKind::Unauthorized => MemmeshError::Unauthorized { message },
            ErrorKind::PeerUnavailable => MemmeshError::PeerUnavailable { message },
            ErrorKind::Corrupted => MemmeshError::Corrupted { message },
            ErrorKind::InvalidInput => MemmeshError::InvalidInput { message },
            ErrorKind::Closed => MemmeshError::Closed { message },
            ErrorKind::Io => MemmeshError::Io { message },
            ErrorKind::Unsupported => MemmeshError::Unsupported { message },
            ErrorKind::HandlerFailed => MemmeshError::HandlerFailed { message },
            // `ErrorKind` is non-exhaustive: a kind added later surfaces as Internal
            // (with its name) until this binding learns it.
            ErrorKind::Internal => MemmeshError::Internal { message },
            other => MemmeshError::Internal {
                message: format!("{other}: {message}"),
            },
        }
    }
}

impl From<MemmeshError> for Error {
    fn from(e: MemmeshError) -> Self {
        Error::new(e.kind(), e.message())
    }
}

/// A foreign handler that throws something other than a `MemmeshError` (any Swift
/// `Error`, any Python exception) fails with `HandlerFailed` and the error's text.
impl From<uniffi::UnexpectedUniFFICallbackError> for MemmeshError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        MemmeshError::HandlerFailed { message: e.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_with_its_message() {
        for kind in ErrorKind::ALL {
            let core = Error::new(kind, format!("about {kind}"));
            let ffi = MemmeshError::from(core.clone());
            assert_eq!(ffi.kind(), kind);
            assert_eq!(ffi.message(), format!("about {kind}"));
            assert_eq!(ffi.to_string(), core.to_string());
            assert_eq!(Error::from(ffi), core);
        }
    }

    #[test]
    fn unexpected_foreign_errors_become_handler_failed() {
        let e = MemmeshError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert_eq!(
            e,
            MemmeshError::HandlerFailed {
                message: "boom".into()
            }
        );
    }
}
