//! Block ids: the content hash of a block, written like an OCI digest (`blake3:<hex>`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Classify, Error, ErrorKind, Result};

/// Why a block id's text is refused (always [`ErrorKind::InvalidInput`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockIdError {
    /// The text does not start with `blake3:`.
    #[error("invalid block id {text:?}: expected \"blake3:\" followed by 64 hex digits")]
    NoPrefix {
        /// The text given.
        text: String,
    },
    /// The digits are not hex.
    #[error("invalid block id {text:?}: bad hex digits")]
    BadHex {
        /// The text given.
        text: String,
        /// The decoder's error.
        source: data_encoding::DecodeError,
    },
    /// Not 64 hex digits.
    #[error("invalid block id {text:?}: expected 64 hex digits")]
    WrongLength {
        /// The text given.
        text: String,
    },
}

impl Classify for BlockIdError {
    fn kind(&self) -> ErrorKind {
        match self {
            BlockIdError::NoPrefix { .. }
            | BlockIdError::BadHex { .. }
            | BlockIdError::WrongLength { .. } => ErrorKind::InvalidInput,
        }
    }
}

/// The id of a block: the BLAKE3 hash of its content. Two puts of the same bytes give the
/// same id, and whoever gets a block can check it against its id.
///
/// Its text form carries the algorithm, like an OCI digest: `blake3:<64 hex digits>`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct BlockId([u8; 32]);

/// The prefix naming the hash algorithm in a block id's text form.
pub const BLAKE3_PREFIX: &str = "blake3:";

impl BlockId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> BlockId {
        BlockId(*blake3::hash(data).as_bytes())
    }

    /// The id with this raw BLAKE3 digest.
    pub fn from_digest(digest: [u8; 32]) -> BlockId {
        BlockId(digest)
    }

    /// The raw 32-byte digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `blake3:<64 hex digits>`.
    pub fn parse(s: &str) -> Result<BlockId> {
        let text = || s.to_string();
        let hex = s
            .strip_prefix(BLAKE3_PREFIX)
            .ok_or_else(|| BlockIdError::NoPrefix { text: text() })?;
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|source| BlockIdError::BadHex {
                text: text(),
                source,
            })?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| BlockIdError::WrongLength { text: text() })?;
        Ok(BlockId(digest))
    }

    /// Whether `data` is the content this id names.
    pub fn verifies(&self, data: &[u8]) -> bool {
        BlockId::of(data) == *self
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{BLAKE3_PREFIX}{}",
            data_encoding::HEXLOWER.encode(&self.0)
        )
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({self})")
    }
}

impl FromStr for BlockId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BlockId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_match_blake3() {
        let id = BlockId::of(b"hello");
        let text = id.to_string();
        assert_eq!(
            text,
            "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
        );
        assert_eq!(BlockId::parse(&text).unwrap(), id);
        assert!(id.verifies(b"hello"));
        assert!(!id.verifies(b"hellO"));
    }

    #[test]
    fn bad_ids_are_invalid_input() {
        for s in ["", "blake3:", "sha1:00", "blake3:zz", "blake3:abcd", "ea8f"] {
            assert_eq!(
                BlockId::parse(s).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{s}"
            );
        }
    }

    #[test]
    fn bad_hex_keeps_the_decoder_error() {
        let e = BlockId::parse("blake3:zz").unwrap_err();
        assert_eq!(
            e.message(),
            "invalid block id \"blake3:zz\": bad hex digits"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(matches!(
            e.downcast_ref::<BlockIdError>(),
            Some(BlockIdError::BadHex { .. })
        ));
    }
}
