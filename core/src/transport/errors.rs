//! The transport's typed error, and the mapping of quinn's errors to it (and so to the
//! public [`ErrorKind`]s), keeping quinn's error as the source.

use crate::error::{io_kind, Classify, Error, ErrorKind};
use crate::wire::WireError;

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

/// What goes wrong in the transport: quinn's connection, connect and stream errors
/// (kept as the source), TLS and QUIC configuration, and the serving budgets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer closed the connection because we failed its cluster authentication.
    #[error("the peer refused us: {reason}")]
    Refused {
        /// The reason the peer gave.
        reason: String,
        /// quinn's error.
        source: quinn::ConnectionError,
    },
    /// The peer closed the connection (for a reason other than authentication).
    #[error("the peer closed the connection: {reason}")]
    PeerClosed {
        /// The reason the peer gave.
        reason: String,
        /// quinn's error.
        source: quinn::ConnectionError,
    },
    /// The TLS handshake failed here (e.g. the peer's certificate is not the pinned one).
    #[error("TLS authentication failed: {0}")]
    TlsFailed(#[source] quinn::ConnectionError),
    /// The peer's TLS stack rejected our certificate.
    #[error("the peer rejected our TLS identity: {frame}")]
    TlsRejected {
        /// The peer's close frame, as text.
        frame: String,
        /// quinn's error.
        source: quinn::ConnectionError,
    },
    /// This side closed the connection.
    #[error("the connection was closed locally")]
    LocallyClosed(#[source] quinn::ConnectionError),
    /// Nothing came from the peer for the idle timeout.
    #[error("the peer stopped responding (idle timeout)")]
    IdleTimeout(#[source] quinn::ConnectionError),
    /// The peer reset the connection.
    #[error("the peer reset the connection")]
    ConnectionReset(#[source] quinn::ConnectionError),
    /// Any other loss of the connection.
    #[error("connection lost: {0}")]
    ConnectionLost(#[source] quinn::ConnectionError),
    /// The endpoint is stopping: the node has shut down.
    #[error("the node has been shut down")]
    EndpointStopping(#[source] quinn::ConnectError),
    /// The address cannot be dialled.
    #[error("cannot dial address {addr}")]
    BadAddress {
        /// The address.
        addr: std::net::SocketAddr,
        /// quinn's error.
        source: quinn::ConnectError,
    },
    /// The TLS server name is not valid.
    #[error("invalid server name {name}")]
    BadServerName {
        /// The name.
        name: String,
        /// quinn's error.
        source: quinn::ConnectError,
    },
    /// Any other failure to start a connection.
    #[error("cannot connect: {0}")]
    CannotConnect(#[source] quinn::ConnectError),
    /// The peer refused a stream we read from: it serves as many as it allows.
    #[error("{BUSY}")]
    ReadBusy(#[source] quinn::ReadError),
    /// The peer refused a stream we write to: it serves as many as it allows.
    #[error("{BUSY}")]
    WriteBusy(#[source] quinn::WriteError),
    /// The peer reset a stream we read from.
    #[error("the peer reset the stream (code {code})")]
    StreamReset {
        /// The peer's error code.
        code: quinn::VarInt,
        /// quinn's error.
        source: quinn::ReadError,
    },
    /// Any other stream read failure.
    #[error("stream read failed: {0}")]
    ReadFailed(#[source] quinn::ReadError),
    /// The peer stopped a stream we write to.
    #[error("the peer stopped the stream (code {code})")]
    StreamStopped {
        /// The peer's error code.
        code: quinn::VarInt,
        /// quinn's error.
        source: quinn::WriteError,
    },
    /// Any other stream write failure.
    #[error("stream write failed: {0}")]
    WriteFailed(#[source] quinn::WriteError),
    /// The configured idle timeout does not fit QUIC's.
    #[error("idle timeout {timeout:?} is too large")]
    IdleTimeoutTooLarge {
        /// The configured timeout.
        timeout: std::time::Duration,
        /// quinn's error.
        source: quinn::VarIntBoundsExceeded,
    },
    /// The UDP payload bound is out of range.
    #[error("max_udp_payload_size: {0}")]
    UdpPayload(#[source] quinn::ConfigError),
    /// The rustls configuration does not suit QUIC.
    #[error("quic {side} tls: {source}")]
    QuicTls {
        /// `"server"` or `"client"`.
        side: &'static str,
        /// quinn's error.
        source: quinn::crypto::rustls::NoInitialCipherSuite,
    },
    /// Making the node's certificate failed.
    #[error("{step}: {source}")]
    Certificate {
        /// What was being done.
        step: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// Building the TLS configuration failed.
    #[error("{step}: {source}")]
    Tls {
        /// What was being done.
        step: &'static str,
        /// rustls's error.
        source: rustls::Error,
    },
    /// The UDP socket could not be made or bound.
    #[error("binding UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// quinn could not start the endpoint on the socket.
    #[error("starting QUIC endpoint on {addr}: {source}")]
    Endpoint {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A request frame does not fit the request bytes this node holds for peers.
    #[error(
        "a request frame of {len} bytes is refused: this node holds its limit of request \
         bytes {whose} ({limit} bytes); try again later"
    )]
    FrameOverBudget {
        /// The frame's length.
        len: usize,
        /// Whose limit: `"for this peer"`, `"for all peers"`, `"per peer"`.
        whose: &'static str,
        /// That limit.
        limit: usize,
    },
    /// A peer did not send its whole request frame by the deadline.
    #[error("the request frame did not arrive in time; the stream is closed")]
    RequestTimeout,
    /// A peer did not take our whole reply by the deadline.
    #[error("the peer did not take the reply in time")]
    ReplyTimeout,
    /// A handler's response does not fit a frame.
    #[error("the response is too large: {0}")]
    ResponseTooLarge(#[source] WireError),
}

const BUSY: &str = "the peer is serving as many requests as it allows; try again later";

impl Classify for TransportError {
    fn kind(&self) -> ErrorKind {
        use TransportError as T;
        match self {
            T::Refused { .. } | T::TlsFailed(_) | T::TlsRejected { .. } => ErrorKind::Unauthorized,
            T::PeerClosed { .. }
            | T::IdleTimeout(_)
            | T::ConnectionReset(_)
            | T::ConnectionLost(_)
            | T::CannotConnect(_)
            | T::StreamReset { .. }
            | T::ReadFailed(_)
            | T::StreamStopped { .. }
            | T::WriteFailed(_) => ErrorKind::PeerUnavailable,
            T::LocallyClosed(_) | T::EndpointStopping(_) => ErrorKind::Closed,
            T::BadAddress { .. }
            | T::BadServerName { .. }
            | T::IdleTimeoutTooLarge { .. }
            | T::UdpPayload(_)
            | T::ResponseTooLarge(_) => ErrorKind::InvalidInput,
            T::ReadBusy(_) | T::WriteBusy(_) | T::FrameOverBudget { .. } => {
                ErrorKind::QuotaExceeded
            }
            T::QuicTls { .. } | T::Certificate { .. } | T::Tls { .. } => ErrorKind::Internal,
            T::RequestTimeout | T::ReplyTimeout => ErrorKind::Timeout,
            T::Bind { source, .. } | T::Endpoint { source, .. } => io_kind(source),
        }
    }
}

/// Whether a connection ended with the peer's goodbye (its node shut down in order), as
/// opposed to a loss, a refusal, or a handle dropped without a word.
pub fn is_goodbye(reason: Option<&quinn::ConnectionError>) -> bool {
    matches!(reason, Some(quinn::ConnectionError::ApplicationClosed(c))
        if c.error_code.into_inner() == u64::from(CLOSE_NORMAL))
}

/// Maps a connection-level failure (quinn's error is kept as the source).
pub fn connection_error(e: &quinn::ConnectionError) -> Error {
    connection_failure(e.clone()).into()
}

fn connection_failure(e: quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as C;
    use TransportError as T;
    match &e {
        C::ApplicationClosed(close)
            if close.error_code.into_inner() == CLOSE_UNAUTHORIZED as u64 =>
        {
            T::Refused {
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
                source: e,
            }
        }
        C::ApplicationClosed(close) => T::PeerClosed {
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
            source: e,
        },
        C::TransportError(t)
            if t.code.to_string().contains("crypto") || t.code.to_string().contains("TLS") =>
        {
            T::TlsFailed(e)
        }
        C::ConnectionClosed(c) if c.error_code.to_string().contains("crypto") => T::TlsRejected {
            frame: c.to_string(),
            source: e,
        },
        C::LocallyClosed => T::LocallyClosed(e),
        C::TimedOut => T::IdleTimeout(e),
        C::Reset => T::ConnectionReset(e),
        _ => T::ConnectionLost(e),
    }
}

/// Maps a failure to start a connection (quinn's error is kept as the source).
pub fn connect_error(e: quinn::ConnectError) -> Error {
    use quinn::ConnectError as C;
    use TransportError as T;
    match &e {
        C::EndpointStopping => T::EndpointStopping(e),
        C::InvalidRemoteAddress(a) => T::BadAddress {
            addr: *a,
            source: e,
        },
        C::InvalidServerName(n) => T::BadServerName {
            name: n.clone(),
            source: e,
        },
        _ => T::CannotConnect(e),
    }
    .into()
}

/// Maps a stream read failure (quinn's error is kept as the source).
pub fn read_error(e: quinn::ReadError) -> Error {
    use TransportError as T;
    match e {
        quinn::ReadError::ConnectionLost(c) => connection_failure(c),
        quinn::ReadError::Reset(code) if code.into_inner() == u64::from(STREAM_BUSY) => {
            T::ReadBusy(e)
        }
        quinn::ReadError::Reset(code) => T::StreamReset { code, source: e },
        other => T::ReadFailed(other),
    }
    .into()
}

/// Maps a stream write failure (quinn's error is kept as the source).
pub fn write_error(e: quinn::WriteError) -> Error {
    use TransportError as T;
    match e {
        quinn::WriteError::ConnectionLost(c) => connection_failure(c),
        quinn::WriteError::Stopped(code) if code.into_inner() == u64::from(STREAM_BUSY) => {
            T::WriteBusy(e)
        }
        quinn::WriteError::Stopped(code) => T::StreamStopped { code, source: e },
        other => T::WriteFailed(other),
    }
    .into()
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

    #[test]
    fn quinn_errors_keep_their_kind_message_and_source() {
        let e = connection_error(&quinn::ConnectionError::TimedOut);
        assert_eq!(e.kind(), ErrorKind::PeerUnavailable);
        assert_eq!(e.message(), "the peer stopped responding (idle timeout)");
        assert_eq!(
            e.chain(),
            "PeerUnavailable: the peer stopped responding (idle timeout): timed out"
        );
        assert!(matches!(
            e.downcast_ref::<TransportError>(),
            Some(TransportError::IdleTimeout(_))
        ));

        let e = connection_error(&closed(CLOSE_UNAUTHORIZED));
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.message(), "the peer refused us: ");
        assert!(std::error::Error::source(&e).is_some());

        let e = write_error(quinn::WriteError::Stopped(quinn::VarInt::from_u32(7)));
        assert_eq!(e.message(), "the peer stopped the stream (code 7)");
        assert!(
            e.chain().ends_with(": sending stopped by peer: error 7"),
            "{}",
            e.chain()
        );

        let e = read_error(quinn::ReadError::ConnectionLost(
            quinn::ConnectionError::LocallyClosed,
        ));
        assert_eq!(e.kind(), ErrorKind::Closed);
        assert_eq!(
            e.chain(),
            "Closed: the connection was closed locally: closed"
        );

        let e = connect_error(quinn::ConnectError::EndpointStopping);
        assert_eq!(e, Error::closed());
        assert!(std::error::Error::source(&e).is_some());
    }
}
