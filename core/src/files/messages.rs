//! The files wire service's messages (`Service::Files`): one request frame, one reply
//! frame, both bulk-encoded with a version byte first. Every field is checked on the
//! serving side ([`Request::check`]).

use serde::{Deserialize, Serialize};

use super::error::FilesError;
use super::store::MAX_NAME_LEN;

/// The version this build speaks.
pub const VERSION: u8 = 1;
/// Most holders a `Hold` may name (the most replicas a put may ask for).
pub const MAX_REPLICAS: u32 = 16;
/// Largest file a peer may ask this node to hold (1 TiB).
pub const MAX_HOLD_SIZE: u64 = 1 << 40;

/// A request to a node's files service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`VERSION`].
    pub version: u8,
    /// What is asked.
    pub op: Op,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Fetch file `id` from the asker and store it durably; answered `Held` once it is.
    Hold {
        /// The file's BLAKE3 digest.
        id: [u8; 32],
        /// Its plaintext size.
        size: u64,
        /// Its name, if any.
        name: Option<String>,
        /// Its content type, if any.
        content_type: Option<String>,
        /// The other holders the asker knows (itself excluded).
        holders: Vec<[u8; 32]>,
    },
    /// Whether file `id` is stored here.
    Has {
        /// The file's BLAKE3 digest.
        id: [u8; 32],
    },
    /// Delete file `id` here (and keep a tombstone so that it never comes back).
    Forget {
        /// The file's BLAKE3 digest.
        id: [u8; 32],
        /// Whether to keep a tombstone.
        tombstone: bool,
    },
}

/// A files service's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The file is stored durably here.
    Held,
    /// The file is stored here, `size` bytes of plaintext.
    Yes {
        /// Plaintext size.
        size: u64,
    },
    /// The file is not stored here.
    No,
    /// The file was deleted (a tombstone is kept here).
    Gone,
    /// The file is deleted here.
    Forgotten,
}

impl Request {
    /// A request of this build's version.
    pub fn new(op: Op) -> Request {
        Request {
            version: VERSION,
            op,
        }
    }

    /// Checks every field a peer controls.
    pub fn check(&self) -> Result<(), FilesError> {
        if self.version != VERSION {
            return Err(FilesError::Version {
                found: self.version,
                speaks: VERSION,
            });
        }
        if let Op::Hold {
            size,
            name,
            content_type,
            holders,
            ..
        } = &self.op
        {
            if *size > MAX_HOLD_SIZE {
                return Err(FilesError::Invalid(format!(
                    "a file of {size} bytes is larger than the {MAX_HOLD_SIZE} a node holds for others"
                )));
            }
            for v in [name, content_type].into_iter().flatten() {
                if v.len() > MAX_NAME_LEN {
                    return Err(FilesError::Invalid(format!(
                        "name or content type longer than {MAX_NAME_LEN} bytes"
                    )));
                }
            }
            if holders.len() > MAX_REPLICAS as usize {
                return Err(FilesError::Invalid(format!(
                    "more than {MAX_REPLICAS} holders named"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::{decode_bulk, encode_bulk};

    #[test]
    fn requests_round_trip_and_bad_fields_are_refused() {
        let hold = Request::new(Op::Hold {
            id: [1; 32],
            size: 5,
            name: Some("a".into()),
            content_type: None,
            holders: vec![[2; 32]],
        });
        let back: Request = decode_bulk(&encode_bulk(&hold).unwrap()).unwrap();
        assert_eq!(back, hold);
        assert!(hold.check().is_ok());
        let mut v = hold.clone();
        v.version = 9;
        assert!(v.check().unwrap_err().to_string().contains("version 9"));
        let huge = Request::new(Op::Hold {
            id: [1; 32],
            size: u64::MAX,
            name: None,
            content_type: None,
            holders: vec![],
        });
        assert!(huge.check().is_err());
        let many = Request::new(Op::Hold {
            id: [1; 32],
            size: 1,
            name: Some("x".repeat(MAX_NAME_LEN + 1)),
            content_type: None,
            holders: vec![],
        });
        assert!(many.check().is_err());
        assert!(decode_bulk::<Request>(b"\x01\x07").is_err());
    }
}
