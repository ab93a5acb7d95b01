//! A file's id: the BLAKE3 hash of its plaintext, written `blake3:<64 hex digits>` like
//! block ids and transfer ids (the same string for the same bytes).

use std::fmt;
use std::str::FromStr;

use super::error::FilesError;

/// The prefix naming the hash algorithm (the same as block and transfer ids).
pub const BLAKE3_PREFIX: &str = "blake3:";

/// A stored file's id: the BLAKE3 hash of its plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId([u8; 32]);

impl FileId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> FileId {
        FileId(*blake3::hash(data).as_bytes())
    }

    /// The id with this raw BLAKE3 digest.
    pub fn from_digest(digest: [u8; 32]) -> FileId {
        FileId(digest)
    }

    /// The raw 32-byte digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `blake3:<64 hex digits>`; anything else is `InvalidInput`.
    pub fn parse(s: &str) -> crate::Result<FileId> {
        let bad = || {
            FilesError::Invalid(format!(
                "invalid file id {s:?}: expected blake3:<64 hex digits>"
            ))
        };
        let hex = s.strip_prefix(BLAKE3_PREFIX).ok_or_else(bad)?;
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| bad())?;
        let digest: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(FileId(digest))
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{BLAKE3_PREFIX}{}",
            data_encoding::HEXLOWER.encode(&self.0)
        )
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({self})")
    }
}

impl FromStr for FileId {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<FileId> {
        FileId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_bad_text_is_invalid_input() {
        let id = FileId::of(b"hello");
        let text = id.to_string();
        assert!(text.starts_with("blake3:"));
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text.parse::<FileId>().unwrap(), id);
        for bad in [
            "",
            "blake3:",
            "sha256:00",
            "blake3:zz",
            &text[..text.len() - 2],
        ] {
            let e = FileId::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad}");
        }
    }
}
