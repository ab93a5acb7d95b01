//! Node identity: an Ed25519 key pair whose public key is the [`NodeId`].
//!
//! The key is persisted in the data directory when one is configured (`identity.key`,
//! PKCS#8, mode 0600), and is ephemeral otherwise.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::error::{io_kind, Classify, Error, ErrorKind, Result};

/// What goes wrong with node ids and keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Raw node id bytes of the wrong length.
    #[error("a node id is {NODE_ID_LEN} bytes, got {len}")]
    WrongLength {
        /// The length given.
        len: usize,
    },
    /// A node id's text is not base32.
    #[error("invalid node id {text:?}: {source}")]
    BadText {
        /// The text given.
        text: String,
        /// The decoder's error.
        source: data_encoding::DecodeError,
    },
    /// A node id's text decodes to the wrong number of bytes.
    #[error("invalid node id {text:?}: a node id is {NODE_ID_LEN} bytes, got {len}")]
    TextWrongLength {
        /// The text given.
        text: String,
        /// The decoded length.
        len: usize,
    },
    /// The operating system's random generator failed (ring's error carries nothing
    /// more).
    #[error("the system random generator failed")]
    Random(#[source] ring::error::Unspecified),
    /// The bytes are not an Ed25519 PKCS#8 key (ring's reason is the source).
    #[error("not a valid Ed25519 PKCS#8 key: {0}")]
    BadKey(#[source] ring::error::KeyRejected),
    /// The data directory could not be created.
    #[error("creating data dir {}: {source}", .dir.display())]
    CreateDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The identity file could not be read.
    #[error("reading {}: {source}", .path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Classify for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::WrongLength { .. }
            | IdentityError::BadText { .. }
            | IdentityError::TextWrongLength { .. } => ErrorKind::InvalidInput,
            IdentityError::Random(_) => ErrorKind::Internal,
            IdentityError::BadKey(_) => ErrorKind::Corrupted,
            IdentityError::CreateDir { source, .. } | IdentityError::Read { source, .. } => {
                io_kind(source)
            }
        }
    }
}

/// Length in bytes of a [`NodeId`] (an Ed25519 public key).
pub const NODE_ID_LEN: usize = 32;

/// The identity of a node: its Ed25519 public key.
///
/// Its text form is lowercase unpadded base32 (52 characters), which is also a valid DNS
/// label; [`NodeId::short`] gives the first 10 characters for logs and UIs.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId([u8; NODE_ID_LEN]);

impl NodeId {
    /// Wraps raw public-key bytes.
    pub fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> Self {
        NodeId(bytes)
    }

    /// Builds a NodeId from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; NODE_ID_LEN] = bytes
            .try_into()
            .map_err(|_| IdentityError::WrongLength { len: bytes.len() })?;
        Ok(NodeId(arr))
    }

    /// The raw public-key bytes.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// The first 10 characters of the text form, for logs and display.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(10);
        s
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32_NOPAD.encode(&self.0).to_ascii_lowercase())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let upper = s.trim().to_ascii_uppercase();
        let bytes =
            BASE32_NOPAD
                .decode(upper.as_bytes())
                .map_err(|source| IdentityError::BadText {
                    text: s.to_string(),
                    source,
                })?;
        let arr: [u8; NODE_ID_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::TextWrongLength {
                    text: s.to_string(),
                    len: bytes.len(),
                })?;
        Ok(NodeId(arr))
    }
}

/// A node's secret key. Never leaves the process except into `identity.key`.
pub struct Keypair {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.node_id())
    }
}

/// The file name of the persisted key inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";

impl Keypair {
    /// Generates a fresh random key pair.
    pub fn generate() -> Result<Self> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(IdentityError::Random)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Parses a PKCS#8 (v1 or v2) Ed25519 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(IdentityError::BadKey)?;
        Ok(Keypair {
            pkcs8: der.to_vec(),
            pair,
        })
    }

    /// The public identity of this key.
    pub fn node_id(&self) -> NodeId {
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(self.pair.public_key().as_ref());
        NodeId(id)
    }

    /// The PKCS#8 DER encoding of the private key.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Loads `identity.key` from `dir`, creating it (and `dir`) if absent.
    ///
    /// An existing file that cannot be parsed is an error: it is never overwritten, so an
    /// identity is never silently lost.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let path = dir.join(IDENTITY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Self::from_pkcs8(&bytes)
                .map_err(|e| e.context(format!("identity file {}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::durable::create_dir_all(dir).map_err(|source| IdentityError::CreateDir {
                    dir: dir.to_path_buf(),
                    source,
                })?;
                let key = Self::generate()?;
                write_private(&path, key.pkcs8_der())?;
                Ok(key)
            }
            Err(source) => Err(IdentityError::Read { path, source }.into()),
        }
    }
}

/// Writes `bytes` to `path` atomically and durably with owner-only permissions.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::durable::write_atomic(path, bytes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let id = Keypair::generate().unwrap().node_id();
        let text = id.to_string();
        assert_eq!(text.len(), 52);
        assert!(text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<NodeId>().unwrap(), id);
        assert_eq!(id.short(), text[..10]);
    }

    #[test]
    fn bad_text_is_invalid_input() {
        for bad in ["", "abc", "!!!!", &"a".repeat(60)] {
            let err = bad.parse::<NodeId>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn persisted_identity_is_stable() {
        let dir = std::env::temp_dir().join(format!("memmesh-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = Keypair::load_or_create(&dir).unwrap().node_id();
        let b = Keypair::load_or_create(&dir).unwrap().node_id();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(IDENTITY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join(IDENTITY_FILE), b"garbage").unwrap();
        let err = Keypair::load_or_create(&dir).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted);
        // The corrupt file is left in place, not overwritten.
        assert_eq!(std::fs::read(dir.join(IDENTITY_FILE)).unwrap(), b"garbage");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 12, defect 14: a new identity (and the data dir created for it) must survive
    /// a crash: the directories created and the key's rename are each made durable.
    #[test]
    fn a_new_identity_and_its_new_directories_are_made_durable() {
        let base = std::env::temp_dir().join(format!("memmesh-id-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("data");
        let before = crate::durable::dir_syncs_on_this_thread();
        let id = Keypair::load_or_create(&dir).unwrap().node_id();
        // The parents of `base` and `data` (each created), then `data` after the rename.
        assert_eq!(crate::durable::dir_syncs_on_this_thread() - before, 3);
        assert_eq!(Keypair::load_or_create(&dir).unwrap().node_id(), id);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn identity_errors_keep_their_kind_message_and_cause() {
        let e = "abc!".parse::<NodeId>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().starts_with("invalid node id \"abc!\": "), "{e}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the decoder's error is kept"
        );
        let e = "aaaa".parse::<NodeId>().unwrap_err();
        assert_eq!(
            e.message(),
            "invalid node id \"aaaa\": a node id is 32 bytes, got 2"
        );
        let e = NodeId::from_slice(&[1, 2, 3]).unwrap_err();
        assert_eq!(e.message(), "a node id is 32 bytes, got 3");
        let e = Keypair::from_pkcs8(b"garbage").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert!(e.message().starts_with("not a valid Ed25519 PKCS#8 key: "));
        assert!(matches!(
            e.downcast_ref::<IdentityError>(),
            Some(IdentityError::BadKey(_))
        ));
    }

    #[test]
    fn a_bad_key_keeps_rings_reason_as_the_source() {
        let e = Keypair::from_pkcs8(b"garbage").unwrap_err();
        let cause = std::error::Error::source(&e).expect("ring's reason is kept");
        assert!(e.message().ends_with(&cause.to_string()), "{e}");
        assert_eq!(e.chain(), e.to_string(), "the quoted cause is not repeated");
    }
}
