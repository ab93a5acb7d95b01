//! The layout of the documents store's small sealed files (`sync-states`, `stream`):
//! an 8-byte magic ‖ a version byte ‖ the storage key's AEAD box, bound to a per-file
//! associated data, of the bincode encoding of the value (big-endian, standard bincode 2
//! configuration, as the wire's bulk bodies). See `docs/storage-format.md`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::log::Sealer;

/// What tells one kind of sealed file from another.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The file's first bytes.
    pub magic: [u8; 8],
    /// The format version written and read.
    pub version: u8,
    /// The associated data of the box.
    pub aad: &'static [u8],
}

/// The file's bytes for `value`, sealed with `key`.
pub fn seal<T: Serialize>(kind: Kind, value: &T, key: &dyn Sealer) -> Result<Vec<u8>, String> {
    let plain = crate::wire::codec::encode_bulk(value).map_err(|e| e.to_string())?;
    let boxed = key.seal(kind.aad, &plain)?;
    let mut out = Vec::with_capacity(kind.magic.len() + 1 + boxed.len());
    out.extend_from_slice(&kind.magic);
    out.push(kind.version);
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// The value in a file's `bytes`, or why it cannot be read.
pub fn open<T: DeserializeOwned>(kind: Kind, bytes: &[u8], key: &dyn Sealer) -> Result<T, String> {
    let rest = bytes
        .strip_prefix(&kind.magic[..])
        .ok_or("bad magic: not this kind of file")?;
    let (&version, boxed) = rest.split_first().ok_or("truncated")?;
    if version != kind.version {
        return Err(format!(
            "format version {version}, this memmesh reads {}",
            kind.version
        ));
    }
    let plain = key
        .open(kind.aad, boxed)
        .ok_or("does not open with the storage key (tampered, truncated or another key)")?;
    crate::wire::codec::decode_bulk(&plain).map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Sealer;

    /// A toy sealer for the format tests: XOR with a byte, the AAD's length as a tag.
    pub(crate) struct Xor(pub u8);

    impl Sealer for Xor {
        fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
            let mut out: Vec<u8> = plain.iter().map(|b| b ^ self.0).collect();
            out.push(aad.len() as u8);
            Ok(out)
        }
        fn open(&self, aad: &[u8], boxed: &[u8]) -> Option<Vec<u8>> {
            let (tag, body) = boxed.split_last()?;
            (*tag == aad.len() as u8).then(|| body.iter().map(|b| b ^ self.0).collect())
        }
    }
}
