//! The receiving side's chunk verification state machine. Pure logic: no I/O.
//!
//! A transfer of `size` bytes is cut into chunks of `chunk_size` bytes (the last one
//! shorter). Each chunk arrives with its index, length and BLAKE3 hash; the receiver checks
//! that it is the next one expected, that its length is right and that its content hashes
//! to what the sender announced (its subtree of the BLAKE3 tree, see [`crate::transfer::tree`]);
//! the hash of the whole is merged from the chunk hashes at the end. Corruption is caught
//! at the chunk where it happens, and a transfer can resume after the last verified chunk:
//! [`Verifier::resume`] continues from the checkpoint kept beside the partial file.

use crate::error::Result;
use crate::transfer::error::TransferError;
use crate::transfer::stack::{check_resume_point, TreeStack};
use crate::transfer::tree::{check_chunk_size, chunk_hash};
pub use crate::transfer::tree::{chunk_count, chunk_len};

/// Default chunk size: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;

/// What the sender says about one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkHeader {
    /// Position of the chunk (0-based).
    pub index: u64,
    /// Its length in bytes.
    pub len: u32,
    /// Hash of its content ([`crate::transfer::tree::chunk_hash`]).
    pub hash: [u8; 32],
}

/// Verifies chunks in order and hashes the whole, keeping O(log n) state (a
/// [`TreeStack`]) whatever the number of chunks.
#[derive(Debug, Clone)]
pub struct Verifier {
    size: u64,
    chunk_size: u32,
    tree: TreeStack,
}

impl Verifier {
    /// A verifier for `size` bytes in chunks of `chunk_size` (a power of two from 1 KiB
    /// to 64 MiB).
    pub fn new(size: u64, chunk_size: u32) -> Result<Self> {
        check_chunk_size(chunk_size)?;
        Ok(Self {
            size,
            chunk_size,
            tree: TreeStack::new(),
        })
    }

    /// Index of the next chunk expected.
    pub fn next(&self) -> u64 {
        self.tree.count()
    }

    /// Bytes verified so far.
    pub fn verified_bytes(&self) -> u64 {
        self.next()
            .saturating_mul(u64::from(self.chunk_size))
            .min(self.size)
    }

    /// Whether every chunk has been verified.
    pub fn is_complete(&self) -> bool {
        self.next() == chunk_count(self.size, self.chunk_size)
    }

    /// The verified chunks merged so far: what a resume needs (kept beside a partial
    /// file, and its [`TreeStack::digest`] sent to the sender).
    pub fn tree(&self) -> &TreeStack {
        &self.tree
    }

    /// Checks `data` against `header` and accepts it as the next chunk. A chunk out of
    /// order or of the wrong length is `InvalidInput`; content that does not match its hash
    /// is `Corrupted` (ask for that chunk again). Nothing changes on error.
    pub fn accept(&mut self, header: &ChunkHeader, data: &[u8]) -> Result<()> {
        if header.index != self.next() {
            return Err(TransferError::OutOfOrder {
                got: header.index,
                expected: self.next(),
            }
            .into());
        }
        let expected = chunk_len(self.size, self.chunk_size, header.index);
        if self.is_complete() || header.len != expected || data.len() != expected as usize {
            return Err(TransferError::ChunkLength {
                index: header.index,
                got: data.len(),
                announced: header.len,
                expected,
            }
            .into());
        }
        let count = chunk_count(self.size, self.chunk_size);
        let hash = chunk_hash(header.index, count, self.chunk_size, data);
        if hash != header.hash {
            return Err(TransferError::ChunkHash(header.index).into());
        }
        self.tree.push(hash);
        Ok(())
    }

    /// Continues after the chunks merged in `tree` (a checkpoint of an earlier attempt
    /// at the same content, whose chunks are on disk already). `InvalidInput` if it holds
    /// more chunks than the content has.
    pub fn resume(&mut self, tree: TreeStack) -> Result<()> {
        check_resume_point(tree.count(), chunk_count(self.size, self.chunk_size))?;
        self.tree = tree;
        Ok(())
    }

    /// The BLAKE3 hash of the whole content, once complete; `Corrupted` if it differs from
    /// `announced`.
    pub fn finish(&self, announced: &[u8; 32]) -> Result<[u8; 32]> {
        if !self.is_complete() {
            return Err(TransferError::EndedEarly {
                got: self.next(),
                count: chunk_count(self.size, self.chunk_size),
            }
            .into());
        }
        let hash = self.tree.root();
        if &hash != announced {
            return Err(TransferError::WholeHash.into());
        }
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn chunks(data: &[u8], size: u32) -> Vec<(ChunkHeader, &[u8])> {
        let count = chunk_count(data.len() as u64, size);
        data.chunks(size as usize)
            .enumerate()
            .map(|(i, c)| {
                let header = ChunkHeader {
                    index: i as u64,
                    len: c.len() as u32,
                    hash: chunk_hash(i as u64, count, size, c),
                };
                (header, c)
            })
            .collect()
    }

    #[test]
    fn a_clean_transfer_verifies_chunk_by_chunk_and_as_a_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut v = Verifier::new(data.len() as u64, 1024).unwrap();
        for (h, c) in chunks(&data, 1024) {
            v.accept(&h, c).unwrap();
        }
        assert!(v.is_complete());
        assert_eq!(v.verified_bytes(), 10_000);
        assert_eq!(
            v.finish(blake3::hash(&data).as_bytes()).unwrap(),
            *blake3::hash(&data).as_bytes()
        );
        assert_eq!(v.finish(&[0; 32]).unwrap_err().kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn corruption_is_caught_at_its_chunk_and_the_chunk_can_be_sent_again() {
        let data = vec![7u8; 3000];
        let mut v = Verifier::new(3000, 1024).unwrap();
        let cs = chunks(&data, 1024);
        v.accept(&cs[0].0, cs[0].1).unwrap();
        let mut bad = cs[1].1.to_vec();
        bad[17] ^= 1;
        assert_eq!(
            v.accept(&cs[1].0, &bad).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        assert_eq!(v.next(), 1);
        v.accept(&cs[1].0, cs[1].1).unwrap();
        assert_eq!(
            v.accept(&cs[0].0, cs[0].1).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        v.accept(&cs[2].0, cs[2].1).unwrap();
        v.finish(blake3::hash(&data).as_bytes()).unwrap();
    }

    #[test]
    fn resume_continues_after_the_last_verified_chunk() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut first = Verifier::new(5000, 1024).unwrap();
        let cs = chunks(&data, 1024);
        for (h, c) in &cs[..3] {
            first.accept(h, c).unwrap();
        }
        let mut again = Verifier::new(5000, 1024).unwrap();
        again.resume(first.tree().clone()).unwrap();
        assert_eq!(again.next(), 3);
        assert_eq!(again.verified_bytes(), 3 * 1024);
        assert_eq!(
            again.accept(&cs[2].0, cs[2].1).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        for (h, c) in &cs[3..] {
            again.accept(h, c).unwrap();
        }
        again.finish(blake3::hash(&data).as_bytes()).unwrap();
        // A checkpoint of more chunks than the content has is refused.
        let mut whole = TreeStack::new();
        for (h, _) in &cs {
            whole.push(h.hash);
        }
        whole.push([0; 32]);
        assert!(Verifier::new(5000, 1024).unwrap().resume(whole).is_err());
    }

    #[test]
    fn empty_and_exact_sizes() {
        let v = Verifier::new(0, 1024).unwrap();
        assert!(v.is_complete());
        v.finish(blake3::hash(b"").as_bytes()).unwrap();
        assert_eq!(chunk_count(2048, 1024), 2);
        assert_eq!(chunk_len(2048, 1024, 1), 1024);
        assert_eq!(chunk_len(2049, 1024, 2), 1);
        assert!(Verifier::new(1, 0).is_err());
        assert!(Verifier::new(1, 1000).is_err());
    }
}
