//! The receiving side's chunk verification state machine. Pure logic: no I/O.
//!
//! A transfer of `size` bytes is cut into chunks of `chunk_size` bytes (the last one
//! shorter). Each chunk arrives with its index, length and BLAKE3 hash; the receiver checks
//! that it is the next one expected, that its length is right and that its content hashes
//! to what the sender announced, and folds it into the hash of the whole. Corruption is
//! caught at the chunk where it happens, and a transfer can resume after the last verified
//! chunk: [`Verifier::resume`] rebuilds the state from the chunks kept on disk.

use crate::error::{Error, ErrorKind, Result};

/// Default chunk size: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;

/// What the sender says about one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkHeader {
    /// Position of the chunk (0-based).
    pub index: u64,
    /// Its length in bytes.
    pub len: u32,
    /// BLAKE3 hash of its content.
    pub hash: [u8; 32],
}

impl ChunkHeader {
    /// The header of chunk `index` holding `data`.
    pub fn of(index: u64, data: &[u8]) -> Self {
        Self {
            index,
            len: data.len() as u32,
            hash: *blake3::hash(data).as_bytes(),
        }
    }
}

/// Verifies chunks in order and hashes the whole.
#[derive(Debug, Clone)]
pub struct Verifier {
    size: u64,
    chunk_size: u32,
    next: u64,
    whole: blake3::Hasher,
    chunk_hashes: Vec<[u8; 32]>,
}

/// The number of chunks of a transfer of `size` bytes.
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size.max(1)))
}

/// The expected length of chunk `index`.
pub fn chunk_len(size: u64, chunk_size: u32, index: u64) -> u32 {
    let start = index.saturating_mul(u64::from(chunk_size));
    size.saturating_sub(start).min(u64::from(chunk_size)) as u32
}

impl Verifier {
    /// A verifier for `size` bytes in chunks of `chunk_size`.
    pub fn new(size: u64, chunk_size: u32) -> Result<Self> {
        if chunk_size == 0 || chunk_size > 64 << 20 {
            return Err(Error::invalid(format!(
                "chunk size must be 1 B..=64 MiB, got {chunk_size}"
            )));
        }
        Ok(Self {
            size,
            chunk_size,
            next: 0,
            whole: blake3::Hasher::new(),
            chunk_hashes: Vec::new(),
        })
    }

    /// Index of the next chunk expected.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Bytes verified so far.
    pub fn verified_bytes(&self) -> u64 {
        (self.next * u64::from(self.chunk_size)).min(self.size)
    }

    /// Whether every chunk has been verified.
    pub fn is_complete(&self) -> bool {
        self.next == chunk_count(self.size, self.chunk_size)
    }

    /// The hashes of the verified chunks, in order (kept beside a partial file so the
    /// transfer can resume).
    pub fn chunk_hashes(&self) -> &[[u8; 32]] {
        &self.chunk_hashes
    }

    /// Checks `data` against `header` and accepts it as the next chunk. A chunk out of
    /// order or of the wrong length is `InvalidInput`; content that does not match its hash
    /// is `Corrupted` (ask for that chunk again). Nothing changes on error.
    pub fn accept(&mut self, header: &ChunkHeader, data: &[u8]) -> Result<()> {
        if header.index != self.next {
            return Err(Error::invalid(format!(
                "chunk {} arrived where chunk {} was expected",
                header.index, self.next
            )));
        }
        let expected = chunk_len(self.size, self.chunk_size, header.index);
        if self.is_complete() || header.len != expected || data.len() != expected as usize {
            return Err(Error::invalid(format!(
                "chunk {} has {} bytes (header says {}), expected {expected}",
                header.index,
                data.len(),
                header.len
            )));
        }
        let hash = *blake3::hash(data).as_bytes();
        if hash != header.hash {
            return Err(Error::new(
                ErrorKind::Corrupted,
                format!("chunk {} does not match its hash", header.index),
            ));
        }
        self.whole.update(data);
        self.chunk_hashes.push(hash);
        self.next += 1;
        Ok(())
    }

    /// Rebuilds the state after `chunks` already verified (read back from a partial
    /// file), so that the transfer continues after them. Each must match the hash kept
    /// for it; the first that does not is where the transfer resumes.
    pub fn resume<'a>(
        &mut self,
        kept: &[[u8; 32]],
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> u64 {
        for (hash, data) in kept.iter().zip(chunks) {
            let header = ChunkHeader {
                index: self.next,
                len: data.len() as u32,
                hash: *hash,
            };
            if self.accept(&header, data).is_err() {
                break;
            }
        }
        self.next
    }

    /// The BLAKE3 hash of the whole content, once complete; `Corrupted` if it differs from
    /// `announced`.
    pub fn finish(&self, announced: &[u8; 32]) -> Result<[u8; 32]> {
        if !self.is_complete() {
            return Err(Error::invalid(format!(
                "the transfer ended after {} of {} chunks",
                self.next,
                chunk_count(self.size, self.chunk_size)
            )));
        }
        let hash = *self.whole.finalize().as_bytes();
        if &hash != announced {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "the whole content does not match its announced hash",
            ));
        }
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8], size: u32) -> Vec<(ChunkHeader, &[u8])> {
        data.chunks(size as usize)
            .enumerate()
            .map(|(i, c)| (ChunkHeader::of(i as u64, c), c))
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
        let mut v = Verifier::new(3000, 1000).unwrap();
        let cs = chunks(&data, 1000);
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
        let mut first = Verifier::new(5000, 1000).unwrap();
        let cs = chunks(&data, 1000);
        for (h, c) in &cs[..3] {
            first.accept(h, c).unwrap();
        }
        let kept = first.chunk_hashes().to_vec();
        // The partial file on disk has the three chunks, the third damaged.
        let mut on_disk = data[..3000].to_vec();
        on_disk[2500] ^= 0xff;
        let mut again = Verifier::new(5000, 1000).unwrap();
        let next = again.resume(&kept, on_disk.chunks(1000));
        assert_eq!(next, 2, "the damaged chunk is sent again");
        for (h, c) in &cs[2..] {
            again.accept(h, c).unwrap();
        }
        again.finish(blake3::hash(&data).as_bytes()).unwrap();
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
    }
}
