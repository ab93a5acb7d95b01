//! Pure frame codec.
//!
//! A frame is `header_len: u32 BE | body_len: u32 BE | header | body`. The header is a
//! bincode-2 encoded message; the body is raw bytes (a payload that is never copied into
//! or out of the serializer). Both lengths are checked against limits before anything is
//! allocated, and bincode decoding runs with a byte limit, so a hostile length prefix can
//! neither exhaust memory nor panic.

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Classify, ErrorKind};

/// Size of the fixed frame prefix (two u32 lengths).
pub const PREFIX_LEN: usize = 8;
/// Hard ceiling on a header's encoded size.
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Hard ceiling on a body, whatever the configuration says.
pub const MAX_BODY_CEILING: usize = 1 << 30;

type Config = bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_HEADER_LEN>,
>;

fn config() -> Config {
    bincode::config::standard()
        .with_big_endian()
        .with_limit::<MAX_HEADER_LEN>()
}

/// Limits applied to frames read from or written to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Maximum header size in bytes (at most [`MAX_HEADER_LEN`]).
    pub max_header: usize,
    /// Maximum body size in bytes (at most [`MAX_BODY_CEILING`]).
    pub max_body: usize,
}

impl FrameLimits {
    /// Limits for a body of at most `max_body` bytes.
    pub fn with_body(max_body: usize) -> Self {
        Self {
            max_header: MAX_HEADER_LEN,
            max_body: max_body.min(MAX_BODY_CEILING),
        }
    }
}

/// A decoding or framing failure; these come from peers, so they are never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The header length exceeds the limit.
    #[error("frame header of {len} bytes exceeds the limit of {max}")]
    HeaderTooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The body length exceeds the limit.
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    BodyTooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The header bytes are not a valid message.
    #[error("malformed frame header: {0}")]
    Malformed(String),
    /// The header's version is not one this node speaks.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u16),
    /// The stream ended before a whole frame arrived.
    #[error("stream ended in the middle of a frame")]
    Truncated,
}

impl Classify for WireError {
    fn kind(&self) -> ErrorKind {
        match self {
            WireError::HeaderTooLarge { .. } | WireError::BodyTooLarge { .. } => {
                ErrorKind::InvalidInput
            }
            WireError::UnsupportedVersion(_) => ErrorKind::Unsupported,
            WireError::Malformed(_) | WireError::Truncated => ErrorKind::Corrupted,
        }
    }
}

/// A decoded frame: a typed header and a raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<H> {
    /// The typed header.
    pub header: H,
    /// The raw payload.
    pub body: Bytes,
}

/// Encodes a header to bytes.
pub fn encode_header<H: Serialize>(header: &H) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(header, config()).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Decodes a header, requiring that it uses every byte.
pub fn decode_header<H: DeserializeOwned>(bytes: &[u8]) -> Result<H, WireError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes after header",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Decodes one header from the front of `bytes`, returning it and how many bytes it used
/// (for formats that pack several items back to back).
pub fn decode_prefix_of<H: DeserializeOwned>(bytes: &[u8]) -> Result<(H, usize), WireError> {
    bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Malformed(e.to_string()))
}

type BulkConfig = bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 16 * 1024 * 1024 }>,
>;

fn bulk_config() -> BulkConfig {
    bincode::config::standard()
        .with_big_endian()
        .with_limit::<{ 16 * 1024 * 1024 }>()
}

/// Encodes a structured frame body (e.g. a member list), up to 16 MiB.
pub fn encode_bulk<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, bulk_config())
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// [`encode_bulk`] into a buffer of `capacity` bytes to start with (at most the 16 MiB a
/// body may take): a caller that knows about how large the body will be spares the
/// buffer's regrowth, each a copy of everything written so far.
pub fn encode_bulk_sized<T: Serialize>(value: &T, capacity: usize) -> Result<Vec<u8>, WireError> {
    let mut out = VecOut(Vec::with_capacity(capacity.min(16 * 1024 * 1024)));
    bincode::serde::encode_into_writer(value, &mut out, bulk_config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok(out.0)
}

/// A bincode writer appending to a vector.
struct VecOut(Vec<u8>);

impl bincode::enc::write::Writer for VecOut {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a structured frame body, requiring that it uses every byte.
pub fn decode_bulk<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bulk_config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Malformed("trailing bytes after body".into()));
    }
    Ok(value)
}

/// [`decode_bulk`] of a type that borrows from `bytes`: its strings and byte slices point
/// into them instead of being copied out.
pub fn decode_bulk_borrowed<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
) -> Result<T, WireError> {
    let (value, used) = bincode::serde::borrow_decode_from_slice(bytes, bulk_config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Malformed("trailing bytes after body".into()));
    }
    Ok(value)
}

/// Reads only the leading version number of a header (every versioned header starts
/// with one), so a peer can reject an unknown version cleanly before full decoding.
pub fn peek_version(bytes: &[u8]) -> Result<u16, WireError> {
    bincode::serde::decode_from_slice::<u16, _>(bytes, config())
        .map(|(v, _)| v)
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// Decodes a header whose first field is a version: an unknown version is reported as
/// [`WireError::UnsupportedVersion`] rather than as malformed bytes.
pub fn decode_versioned<H: DeserializeOwned>(bytes: &[u8], supported: u16) -> Result<H, WireError> {
    let version = peek_version(bytes)?;
    if version != supported {
        return Err(WireError::UnsupportedVersion(version));
    }
    decode_header(bytes)
}

/// Parses the 8-byte prefix and checks both lengths against `limits`.
pub fn parse_prefix(
    prefix: [u8; PREFIX_LEN],
    limits: FrameLimits,
) -> Result<(usize, usize), WireError> {
    let header_len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let body_len = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]) as usize;
    let max_header = limits.max_header.min(MAX_HEADER_LEN);
    if header_len > max_header {
        return Err(WireError::HeaderTooLarge {
            len: header_len,
            max: max_header,
        });
    }
    let max_body = limits.max_body.min(MAX_BODY_CEILING);
    if body_len > max_body {
        return Err(WireError::BodyTooLarge {
            len: body_len,
            max: max_body,
        });
    }
    Ok((header_len, body_len))
}

/// Encodes a frame's prefix and header for a body of `body_len` bytes that is written
/// after it separately (so a large body is never copied into the frame).
pub fn encode_frame_head<H: Serialize>(
    header: &H,
    body_len: usize,
    limits: FrameLimits,
) -> Result<BytesMut, WireError> {
    frame_head(header, body_len, limits, 0)
}

/// The prefix and header of a frame whose body of `body_len` bytes follows, in a buffer
/// with room for `room` more bytes. The header is encoded in place (no buffer of its own).
fn frame_head<H: Serialize>(
    header: &H,
    body_len: usize,
    limits: FrameLimits,
    room: usize,
) -> Result<BytesMut, WireError> {
    check_body(body_len, limits)?;
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + HEAD_GUESS + room);
    buf.put_bytes(0, PREFIX_LEN);
    bincode::serde::encode_into_writer(header, InBuf(&mut buf), config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    let head_len = buf.len() - PREFIX_LEN;
    check_head(head_len, limits)?;
    buf[..4].copy_from_slice(&(head_len as u32).to_be_bytes());
    buf[4..PREFIX_LEN].copy_from_slice(&(body_len as u32).to_be_bytes());
    Ok(buf)
}

/// Room reserved for a header encoded in place (most are a few dozen bytes).
const HEAD_GUESS: usize = 64;

/// bincode's output appended to a buffer.
struct InBuf<'a>(&'a mut BytesMut);

impl bincode::enc::write::Writer for InBuf<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

fn check_head(len: usize, limits: FrameLimits) -> Result<(), WireError> {
    let max = limits.max_header.min(MAX_HEADER_LEN);
    if len > max {
        return Err(WireError::HeaderTooLarge { len, max });
    }
    Ok(())
}

fn check_body(len: usize, limits: FrameLimits) -> Result<(), WireError> {
    let max = limits.max_body.min(MAX_BODY_CEILING);
    if len > max {
        return Err(WireError::BodyTooLarge { len, max });
    }
    Ok(())
}

/// A header encoded once and sent at the head of many frames (a channel's requests, for
/// example: the same service and name every time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedHeader(Bytes);

impl EncodedHeader {
    /// Encodes `header`.
    pub fn new<H: Serialize>(header: &H) -> Result<Self, WireError> {
        Ok(Self(Bytes::from(encode_header(header)?)))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The prefix and this header of a frame whose body of `body_len` bytes is written
    /// after it separately; the same checks as [`encode_frame_head`].
    pub fn frame_head(&self, body_len: usize, limits: FrameLimits) -> Result<BytesMut, WireError> {
        check_head(self.0.len(), limits)?;
        check_body(body_len, limits)?;
        let mut buf = BytesMut::with_capacity(PREFIX_LEN + self.0.len());
        buf.put_u32(self.0.len() as u32);
        buf.put_u32(body_len as u32);
        buf.put_slice(&self.0);
        Ok(buf)
    }
}

/// Encodes a whole frame (prefix, header, body) into one buffer.
pub fn encode_frame<H: Serialize>(
    header: &H,
    body: &[u8],
    limits: FrameLimits,
) -> Result<Bytes, WireError> {
    let mut buf = frame_head(header, body.len(), limits, body.len())?;
    buf.put_slice(body);
    Ok(buf.freeze())
}

/// Decodes a whole frame from a contiguous buffer (the inverse of [`encode_frame`]).
pub fn decode_frame<H: DeserializeOwned>(
    bytes: &[u8],
    limits: FrameLimits,
) -> Result<Frame<H>, WireError> {
    let prefix: [u8; PREFIX_LEN] = bytes
        .get(..PREFIX_LEN)
        .and_then(|p| p.try_into().ok())
        .ok_or(WireError::Truncated)?;
    let (hl, bl) = parse_prefix(prefix, limits)?;
    let rest = &bytes[PREFIX_LEN..];
    if rest.len() < hl + bl {
        return Err(WireError::Truncated);
    }
    if rest.len() > hl + bl {
        return Err(WireError::Malformed("trailing bytes after frame".into()));
    }
    let header = decode_header(&rest[..hl])?;
    Ok(Frame {
        header,
        body: Bytes::copy_from_slice(&rest[hl..hl + bl]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::messages::{Hello, Reply, Service, StreamHeader};
    use proptest::prelude::*;

    fn limits() -> FrameLimits {
        FrameLimits::with_body(1 << 20)
    }

    #[test]
    fn a_sized_body_is_the_body_whatever_the_capacity() {
        let value = (
            "key".to_string(),
            vec![7u64; 300],
            Some(serde_bytes::ByteBuf::from(vec![1u8; 5000])),
        );
        let plain = encode_bulk(&value).unwrap();
        for capacity in [0, 1, plain.len() - 1, plain.len(), 1 << 20, usize::MAX] {
            let sized = encode_bulk_sized(&value, capacity).unwrap();
            assert_eq!(sized, plain, "capacity {capacity}");
            assert!(sized.capacity() <= plain.len().max(capacity.min(16 * 1024 * 1024)) * 2);
        }
    }

    #[test]
    fn frames_round_trip() {
        let header = StreamHeader::new(Service::Channel {
            name: "chat".into(),
            op: crate::wire::messages::ChannelOp::Request,
        });
        let bytes = encode_frame(&header, b"hello", limits()).unwrap();
        let frame: Frame<StreamHeader> = decode_frame(&bytes, limits()).unwrap();
        assert_eq!(frame.header, header);
        assert_eq!(&frame.body[..], b"hello");
        assert_eq!(
            peek_version(&encode_header(&header).unwrap()).unwrap(),
            header.version
        );
    }

    #[test]
    fn a_head_encoded_in_place_or_once_is_the_frame_s_own_head() {
        let long = "n".repeat(300); // longer than the room guessed for a header
        for name in ["chat", long.as_str()] {
            let header = StreamHeader::new(Service::Channel {
                name: name.into(),
                op: crate::wire::messages::ChannelOp::Request,
            });
            let whole = encode_frame(&header, b"body", limits()).unwrap();
            let head = encode_frame_head(&header, 4, limits()).unwrap();
            assert_eq!(&whole[..whole.len() - 4], &head[..]);
            let once = EncodedHeader::new(&header).unwrap();
            assert_eq!(once.as_bytes(), &encode_header(&header).unwrap()[..]);
            assert_eq!(once.frame_head(4, limits()).unwrap(), head);
            let small = FrameLimits {
                max_header: 4, // shorter than any channel header
                max_body: 3,
            };
            assert!(matches!(
                once.frame_head(0, small),
                Err(WireError::HeaderTooLarge { .. })
            ));
            assert!(matches!(
                encode_frame_head(&header, 0, small),
                Err(WireError::HeaderTooLarge { .. })
            ));
            assert!(matches!(
                once.frame_head(4, limits()).and(once.frame_head(
                    4,
                    FrameLimits {
                        max_header: 1 << 16,
                        max_body: 3
                    }
                )),
                Err(WireError::BodyTooLarge { len: 4, max: 3 })
            ));
        }
    }

    #[test]
    fn unknown_versions_are_reported_as_such() {
        let mut header = StreamHeader::new(Service::Channel {
            name: "x".into(),
            op: crate::wire::messages::ChannelOp::Send,
        });
        header.version = 9;
        let bytes = encode_header(&header).unwrap();
        assert_eq!(
            decode_versioned::<StreamHeader>(&bytes, 1).unwrap_err(),
            WireError::UnsupportedVersion(9)
        );
    }

    #[test]
    fn oversized_lengths_are_rejected_before_allocation() {
        let mut prefix = [0u8; 8];
        prefix[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_prefix(prefix, limits()),
            Err(WireError::HeaderTooLarge { .. })
        ));
        let mut prefix = [0u8; 8];
        prefix[4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_prefix(prefix, limits()),
            Err(WireError::BodyTooLarge { .. })
        ));
        let err = encode_frame(&Reply::Ok, &vec![0u8; (1 << 20) + 1], limits()).unwrap_err();
        assert!(matches!(err, WireError::BodyTooLarge { .. }));
    }

    #[test]
    fn hostile_inner_length_does_not_allocate() {
        // A header claiming a string of ~2^60 bytes must fail by the bincode limit.
        let mut bytes = vec![1u8, 0u8]; // version 1, Service variant 0
        bytes.push(253); // varint u64 marker
        bytes.extend_from_slice(&(1u64 << 60).to_be_bytes());
        assert!(decode_header::<StreamHeader>(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode_frame::<StreamHeader>(&bytes, limits());
            let _ = decode_frame::<Reply>(&bytes, limits());
            let _ = decode_frame::<Hello>(&bytes, limits());
            let _ = decode_header::<StreamHeader>(&bytes);
            let _ = decode_header::<Reply>(&bytes);
            let _ = decode_header::<Hello>(&bytes);
            let _ = peek_version(&bytes);
            let _ = decode_versioned::<StreamHeader>(&bytes, 1);
            let _ = decode_bulk::<Vec<foca::Member<crate::membership::member::MemberId>>>(&bytes);
        }

        #[test]
        fn bodies_round_trip(body in proptest::collection::vec(any::<u8>(), 0..8192), msg in ".{0,64}") {
            let reply = Reply::Err { kind: "NotFound".into(), message: msg };
            let bytes = encode_frame(&reply, &body, limits()).unwrap();
            let frame: Frame<Reply> = decode_frame(&bytes, limits()).unwrap();
            prop_assert_eq!(frame.header, reply);
            prop_assert_eq!(&frame.body[..], &body[..]);
        }

        #[test]
        fn truncated_frames_are_rejected(cut in 0usize..64) {
            let bytes = encode_frame(&Reply::Ok, b"0123456789", limits()).unwrap();
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(decode_frame::<Reply>(&bytes[..cut], limits()).is_err());
        }
    }
}
