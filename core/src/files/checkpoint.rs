//! The sealed checkpoint of a partial replica (`files/partial-<key>.ckpt`, ADR 0018) and
//! the decision to resume from it or start over. Pure logic: bytes and numbers in, values
//! out (the storage key seals and opens).
//!
//! A partial file is a content file cut after a whole number of sealed segments, none of
//! them the last (`docs/storage-format.md`). Its checkpoint says how many plaintext bytes
//! those segments hold, carries a copy of the partial file's header (the wrapped file key)
//! and the transfer engine's state for those bytes (opaque here), and is sealed with the
//! storage key, bound to the file id and the node it is pulled from.

use std::time::Duration;

use ring::aead::LessSafeKey;

use super::crypt::{open_box, seal_box, HEADER_LEN, SEALED_SEGMENT, SEGMENT};
use super::error::FilesError;

/// The first bytes of a checkpoint file.
pub const MAGIC: &[u8; 8] = b"memmeshP";
/// The checkpoint format version.
pub const VERSION: u8 = 1;
/// Largest checkpoint file read (the engine's state is a few KiB at most).
pub const MAX_LEN: u64 = 8 << 10;
/// Largest engine state kept.
pub const MAX_STATE: usize = 4 << 10;
/// A partial file whose checkpoint is older than this is removed, never resumed.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Bytes of the clear part of a checkpoint (magic, version, id, origin): the associated
/// data of its box.
const CLEAR_LEN: usize = 8 + 1 + 32 + 32;

/// Where a partial replica stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The file id (BLAKE3 of the whole plaintext).
    pub id: [u8; 32],
    /// The node the file is pulled from.
    pub origin: [u8; 32],
    /// The plaintext size of the whole file.
    pub size: u64,
    /// Plaintext bytes in the partial file's sealed segments (a multiple of the segment
    /// size, less than `size`).
    pub covered: u64,
    /// When it was written, unix ms.
    pub written: u64,
    /// A copy of the partial file's header.
    pub header: Vec<u8>,
    /// The transfer engine's state for the `covered` bytes (opaque here).
    pub state: Vec<u8>,
}

/// Bytes of a partial file whose sealed segments hold `covered` plaintext bytes.
pub fn partial_len(covered: u64) -> u64 {
    HEADER_LEN as u64 + (covered / SEGMENT as u64) * SEALED_SEGMENT as u64
}

impl Checkpoint {
    /// The checkpoint, sealed with `key`.
    pub fn seal(&self, key: &LessSafeKey) -> Result<Vec<u8>, FilesError> {
        if self.header.len() != HEADER_LEN || self.state.len() > MAX_STATE {
            return Err(FilesError::Internal("a checkpoint of the wrong shape"));
        }
        let mut clear = Vec::with_capacity(CLEAR_LEN);
        clear.extend_from_slice(MAGIC);
        clear.push(VERSION);
        clear.extend_from_slice(&self.id);
        clear.extend_from_slice(&self.origin);
        let mut plain = Vec::with_capacity(24 + HEADER_LEN + 2 + self.state.len());
        plain.extend_from_slice(&self.size.to_le_bytes());
        plain.extend_from_slice(&self.covered.to_le_bytes());
        plain.extend_from_slice(&self.written.to_le_bytes());
        plain.extend_from_slice(&self.header);
        plain.extend_from_slice(&(self.state.len() as u16).to_le_bytes());
        plain.extend_from_slice(&self.state);
        let boxed = seal_box(key, &clear, &plain)?;
        clear.extend_from_slice(&boxed);
        Ok(clear)
    }

    /// Opens a checkpoint sealed with `key`; `None` for anything torn, foreign, tampered
    /// or inconsistent.
    pub fn open(bytes: &[u8], key: &LessSafeKey) -> Option<Checkpoint> {
        if bytes.len() < CLEAR_LEN || bytes.len() as u64 > MAX_LEN {
            return None;
        }
        let (clear, boxed) = bytes.split_at(CLEAR_LEN);
        if &clear[..8] != MAGIC || clear[8] != VERSION {
            return None;
        }
        let plain = open_box(key, clear, boxed)?;
        let id: [u8; 32] = clear[9..41].try_into().ok()?;
        let origin: [u8; 32] = clear[41..73].try_into().ok()?;
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(plain.get(at..at + 8)?.try_into().ok()?))
        };
        let (size, covered, written) = (u64_at(0)?, u64_at(8)?, u64_at(16)?);
        let header = plain.get(24..24 + HEADER_LEN)?.to_vec();
        let at = 24 + HEADER_LEN;
        let len = usize::from(u16::from_le_bytes(plain.get(at..at + 2)?.try_into().ok()?));
        let state = plain.get(at + 2..)?.to_vec();
        if state.len() != len || len > MAX_STATE {
            return None;
        }
        Some(Checkpoint {
            id,
            origin,
            size,
            covered,
            written,
            header,
            state,
        })
    }
}

/// What a pull does with the partial file it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Continue after `covered` plaintext bytes; the partial file is cut to `len` bytes
    /// (anything after was written past the checkpoint and is not trusted).
    Resume {
        /// Plaintext bytes kept.
        covered: u64,
        /// Bytes of the partial file kept.
        len: u64,
    },
    /// Remove the partial file and its checkpoint, and start from the first byte.
    Restart(&'static str),
}

/// Whether a partial file `partial` bytes long (`None`: missing) with the checkpoint
/// `checkpoint` (`None`: missing or does not open) can be kept, `age` after the
/// checkpoint was written: the checks made at start and before a resume.
pub fn keep(checkpoint: Option<&Checkpoint>, partial: Option<u64>, age: Duration) -> Decision {
    let Some(c) = checkpoint else {
        return Decision::Restart("no checkpoint opens");
    };
    let Some(on_disk) = partial else {
        return Decision::Restart("the partial file is missing");
    };
    if c.covered == 0 || c.covered >= c.size || !c.covered.is_multiple_of(SEGMENT as u64) {
        return Decision::Restart("the checkpoint covers no usable part");
    }
    let len = partial_len(c.covered);
    if on_disk < len {
        return Decision::Restart("the partial file is shorter than its checkpoint");
    }
    if age > MAX_AGE {
        return Decision::Restart("older than a day");
    }
    Decision::Resume {
        covered: c.covered,
        len,
    }
}

/// [`keep`], for a pull of file `id` (`size` bytes) from `origin`: resume only a
/// checkpoint of that same pull.
pub fn decide(
    checkpoint: Option<&Checkpoint>,
    partial: Option<u64>,
    age: Duration,
    id: &[u8; 32],
    origin: &[u8; 32],
    size: u64,
) -> Decision {
    match checkpoint {
        Some(c) if &c.id != id || &c.origin != origin => {
            Decision::Restart("the checkpoint is of another pull")
        }
        Some(c) if c.size != size => Decision::Restart("the size changed"),
        _ => keep(checkpoint, partial, age),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::crypt::aead_key;

    fn sample(covered: u64) -> Checkpoint {
        Checkpoint {
            id: [1; 32],
            origin: [2; 32],
            size: 10 * SEGMENT as u64 + 5,
            covered,
            written: 1_700_000_000_000,
            header: vec![9; HEADER_LEN],
            state: vec![3; 200],
        }
    }

    #[test]
    fn checkpoints_round_trip_sealed_and_refuse_anything_else() {
        let key = aead_key(&[4; 32]).unwrap();
        let c = sample(4 * SEGMENT as u64);
        let sealed = c.seal(&key).unwrap();
        assert_eq!(Checkpoint::open(&sealed, &key), Some(c.clone()));
        // Another key, any flipped byte, any cut.
        assert_eq!(
            Checkpoint::open(&sealed, &aead_key(&[5; 32]).unwrap()),
            None
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert_eq!(Checkpoint::open(&bad, &key), None, "byte {i}");
        }
        for cut in 0..sealed.len() {
            assert_eq!(Checkpoint::open(&sealed[..cut], &key), None, "cut {cut}");
        }
        assert_eq!(Checkpoint::open(&vec![0; 9000], &key), None);
        // Shapes that cannot be sealed.
        let mut big = c.clone();
        big.state = vec![0; MAX_STATE + 1];
        assert!(big.seal(&key).is_err());
        let mut short = c;
        short.header.pop();
        assert!(short.seal(&key).is_err());
    }

    #[test]
    fn a_partial_is_resumed_only_when_its_checkpoint_opens_fits_and_is_recent() {
        let hour = Duration::from_secs(3600);
        let c = sample(4 * SEGMENT as u64);
        let len = partial_len(c.covered);
        assert_eq!(len, HEADER_LEN as u64 + 4 * SEALED_SEGMENT as u64);
        let resume = Decision::Resume {
            covered: c.covered,
            len,
        };
        let (id, origin, size) = (c.id, c.origin, c.size);
        assert_eq!(
            decide(Some(&c), Some(len), hour, &id, &origin, size),
            resume
        );
        // Bytes written past the checkpoint are cut off, not trusted.
        assert_eq!(
            decide(Some(&c), Some(len + 999), hour, &id, &origin, size),
            resume
        );
        let restarts = [
            decide(None, Some(len), hour, &id, &origin, size),
            decide(Some(&c), None, hour, &id, &origin, size),
            decide(Some(&c), Some(len - 1), hour, &id, &origin, size),
            decide(Some(&c), Some(len), 25 * hour, &id, &origin, size),
            decide(Some(&c), Some(len), hour, &[7; 32], &origin, size),
            decide(Some(&c), Some(len), hour, &id, &[7; 32], size),
            decide(Some(&c), Some(len), hour, &id, &origin, size + 1),
            decide(Some(&sample(0)), Some(len), hour, &id, &origin, size),
            decide(
                Some(&sample(11 * SEGMENT as u64)),
                Some(u64::MAX),
                hour,
                &id,
                &origin,
                size,
            ),
            decide(
                Some(&sample(SEGMENT as u64 + 1)),
                Some(len),
                hour,
                &id,
                &origin,
                size,
            ),
        ];
        for (i, d) in restarts.iter().enumerate() {
            assert!(matches!(d, Decision::Restart(_)), "case {i}: {d:?}");
        }
    }
}
