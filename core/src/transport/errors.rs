//! Mapping quinn's errors to the public [`ErrorKind`]s.

use crate::error::{Error, ErrorKind};

/// Application close code: orderly shutdown (a goodbye). Not 0: quinn closes a connection
/// whose handle was dropped (a dial abandoned by a timeout) with code 0, and that must not
/// read as the peer leaving the cluster.
pub const CLOSE_NORMAL: u32 = 0x6d6d_0000;
/// Application close code: the peer failed cluster authentication.
pub const CLOSE_UNAUTHORIZED: u32 = 1;
/// Application close code: the peer broke the protocol.
pub const CLOSE_PROTOCOL: u32 = 2;
/// Application close code: a newer connection to the same peer replaced this one.
pub const CLOSE_REPLACED: u32 = 3;

/// Stream error code (RESET_STREAM / STOP_SENDING): the node serves as many streams as
/// it allows for all peers together and refused this one; try again later.
pub const STREAM_BUSY: u32 = 0x6d6d_0001;

fn busy() -> Error {
    Error::new(
        ErrorKind::QuotaExceeded,
        "the peer is serving as many requests as it allows; try again later",
    )
}

/// Whether a connection ended with the peer's goodbye (its node shut down in order), as
/// opposed to a loss, a refusal, or a handle dropped without a word.
pub fn is_goodbye(reason: Option<&quinn::ConnectionError>) -> bool {
    matches!(reason, Some(quinn::ConnectionError::ApplicationClosed(c))
        if c.error_code.into_inner() == u64::from(CLOSE_NORMAL))
}

/// Maps a connection-level failure.
pub fn connection_error(e: &quinn::ConnectionError) -> Error {
    use quinn::ConnectionError as C;
    match e {
        C::ApplicationClosed(close)
            if close.error_code.into_inner() == CLOSE_UNAUTHORIZED as u64 =>
        {
            Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "the peer refused us: {}",
                    String::from_utf8_lossy(&close.reason)
                ),
            )
        }
        C::ApplicationClosed(close) => Error::new(
            ErrorKind::PeerUnavailable,
            format!(
                "the peer closed the connection: {}",
                String::from_utf8_lossy(&close.reason)
            ),
        ),
        C::TransportError(t)
            if t.code.to_string().contains("crypto") || t.code.to_string().contains("TLS") =>
        {
            Error::new(
                ErrorKind::Unauthorized,
                format!("TLS authentication failed: {t}"),
            )
        }
        C::ConnectionClosed(c) if c.error_code.to_string().contains("crypto") => Error::new(
            ErrorKind::Unauthorized,
            format!("the peer rejected our TLS identity: {c}"),
        ),
        C::LocallyClosed => Error::new(ErrorKind::Closed, "the connection was closed locally"),
        C::TimedOut => Error::new(
            ErrorKind::PeerUnavailable,
            "the peer stopped responding (idle timeout)",
        ),
        C::Reset => Error::new(ErrorKind::PeerUnavailable, "the peer reset the connection"),
        other => Error::new(
            ErrorKind::PeerUnavailable,
            format!("connection lost: {other}"),
        ),
    }
}

/// Maps a failure to start a connection.
pub fn connect_error(e: quinn::ConnectError) -> Error {
    use quinn::ConnectError as C;
    match e {
        C::EndpointStopping => Error::closed(),
        C::InvalidRemoteAddress(a) => Error::invalid(format!("cannot dial address {a}")),
        C::InvalidServerName(n) => Error::invalid(format!("invalid server name {n}")),
        other => Error::new(
            ErrorKind::PeerUnavailable,
            format!("cannot connect: {other}"),
        ),
    }
}

/// Maps a stream read failure.
pub fn read_error(e: quinn::ReadError) -> Error {
    match e {
        quinn::ReadError::ConnectionLost(c) => connection_error(&c),
        quinn::ReadError::Reset(code) if code.into_inner() == u64::from(STREAM_BUSY) => busy(),
        quinn::ReadError::Reset(code) => Error::new(
            ErrorKind::PeerUnavailable,
            format!("the peer reset the stream (code {code})"),
        ),
        other => Error::new(
            ErrorKind::PeerUnavailable,
            format!("stream read failed: {other}"),
        ),
    }
}

/// Maps a stream write failure.
pub fn write_error(e: quinn::WriteError) -> Error {
    match e {
        quinn::WriteError::ConnectionLost(c) => connection_error(&c),
        quinn::WriteError::Stopped(code) if code.into_inner() == u64::from(STREAM_BUSY) => busy(),
        quinn::WriteError::Stopped(code) => Error::new(
            ErrorKind::PeerUnavailable,
            format!("the peer stopped the stream (code {code})"),
        ),
        other => Error::new(
            ErrorKind::PeerUnavailable,
            format!("stream write failed: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u32) -> quinn::ConnectionError {
        quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: code.into(),
            reason: bytes::Bytes::new(),
        })
    }

    #[test]
    fn only_our_own_close_code_is_a_goodbye() {
        assert!(is_goodbye(Some(&closed(CLOSE_NORMAL))));
        // quinn closes a dropped handle (an abandoned dial) with 0: not a goodbye.
        assert!(!is_goodbye(Some(&closed(0))));
        assert!(!is_goodbye(Some(&closed(CLOSE_REPLACED))));
        assert!(!is_goodbye(Some(&quinn::ConnectionError::TimedOut)));
        assert!(!is_goodbye(None));
    }

    #[test]
    fn a_busy_stream_reads_as_quota_exceeded() {
        let code = quinn::VarInt::from_u32(STREAM_BUSY);
        assert_eq!(
            read_error(quinn::ReadError::Reset(code)).kind(),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(
            write_error(quinn::WriteError::Stopped(code)).kind(),
            ErrorKind::QuotaExceeded
        );
        assert_eq!(
            read_error(quinn::ReadError::Reset(quinn::VarInt::from_u32(2))).kind(),
            ErrorKind::PeerUnavailable
        );
    }
}
