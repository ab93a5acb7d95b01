//! Typed errors of the RESP front.

use crate::error::{Classify, ErrorKind};

/// A malformed or oversized RESP frame, or a listener that cannot start. Protocol errors
/// are answered with `-ERR Protocol error: <message>` and the connection is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespError {
    /// A byte that starts no RESP type where a frame begins.
    #[error("invalid frame type byte {0:#04x}")]
    BadType(u8),
    /// A length or integer that is not a decimal number in range.
    #[error("invalid {0}")]
    BadNumber(&'static str),
    /// A line not ended by CRLF, or a bulk payload not followed by CRLF.
    #[error("expected CRLF")]
    NoCrlf,
    /// A bulk string longer than the limit.
    #[error("invalid bulk length ({len} > {max})")]
    BulkTooLong {
        /// The length announced.
        len: u64,
        /// The most accepted.
        max: usize,
    },
    /// An aggregate with more elements than the limit.
    #[error("invalid multibulk length ({len} > {max})")]
    ArrayTooLong {
        /// The length announced.
        len: u64,
        /// The most accepted.
        max: usize,
    },
    /// An inline command (or any simple line) longer than the limit.
    #[error("too big inline request (more than {0} bytes)")]
    InlineTooLong(usize),
    /// Aggregates nested deeper than the limit.
    #[error("frames nested deeper than {0}")]
    TooDeep(usize),
    /// More unparsed bytes pending on a connection than the limit.
    #[error("more than {0} bytes of unanswered input")]
    PendingTooLarge(usize),
    /// An inline command with an unbalanced quote.
    #[error("unbalanced quotes in request")]
    Quotes,
    /// A command frame that is not an array of strings.
    #[error("expected an array of bulk strings")]
    NotACommand,
    /// A double that does not parse.
    #[error("invalid double")]
    BadDouble,
    /// A boolean other than `#t` or `#f`.
    #[error("invalid boolean")]
    BadBoolean,
}

impl Classify for RespError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}
