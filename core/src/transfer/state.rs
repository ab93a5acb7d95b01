//! The resume state kept beside a partial file (`<partial>` → `.memmesh-state`). Pure
//! logic: bytes in, values out.
//!
//! A checkpoint says "the first `count` chunks of the partial file are verified and on
//! disk" and holds the [`TreeStack`] of those chunks (at most 64 chaining values), so a
//! resumed transfer neither re-reads nor re-hashes the partial file. It is written only
//! after the partial file was synced up to that point (see `writeback.rs`), replacing the
//! previous one atomically, and carries a checksum: a torn or foreign file is ignored
//! (the transfer then starts over), never trusted.

use crate::transfer::stack::TreeStack;
use crate::transfer::tree::chunk_count;

const MAGIC: &[u8; 8] = b"MMXFER\x00\x01";

/// Where a transfer into a file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identifies the transfer (its content id and origin, see `partials::partial_key`).
    pub key: [u8; 32],
    /// Total bytes of the content.
    pub size: u64,
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// The verified chunks on disk.
    pub tree: TreeStack,
}

impl Checkpoint {
    /// Bytes of the partial file the checkpoint covers.
    pub fn bytes(&self) -> u64 {
        self.tree
            .count()
            .saturating_mul(u64::from(self.chunk_size))
            .min(self.size)
    }

    /// Encodes the checkpoint (with a trailing checksum).
    pub fn encode(&self) -> Vec<u8> {
        let (count, stack, last) = self.tree.parts();
        let mut out = Vec::with_capacity(128 + 32 * stack.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.push(stack.len() as u8);
        for cv in stack {
            out.extend_from_slice(cv);
        }
        match last {
            Some(h) => {
                out.push(1);
                out.extend_from_slice(h);
            }
            None => out.push(0),
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Decodes a checkpoint; `None` for anything torn, foreign or inconsistent.
    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        let body_len = bytes.len().checked_sub(32)?;
        let (body, sum) = bytes.split_at(body_len);
        if blake3::hash(body).as_bytes() != sum {
            return None;
        }
        let mut r = Reader(body);
        if r.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let key: [u8; 32] = r.take(32)?.try_into().ok()?;
        let size = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let chunk_size = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let count = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let depth = usize::from(*r.take(1)?.first()?);
        let mut stack = Vec::with_capacity(depth.min(64));
        for _ in 0..depth {
            stack.push(r.take(32)?.try_into().ok()?);
        }
        let last = match r.take(1)?.first()? {
            0 => None,
            1 => Some(r.take(32)?.try_into().ok()?),
            _ => return None,
        };
        if !r.0.is_empty() || chunk_size == 0 || count > chunk_count(size, chunk_size) {
            return None;
        }
        let tree = TreeStack::from_parts(count, stack, last)?;
        Some(Checkpoint {
            key,
            size,
            chunk_size,
            tree,
        })
    }
}

/// The checkpoint a lent writer (the files store's partial) kept for the first `bytes`
/// of a fetch, if the fetch of `size` bytes in chunks of `chunk_size` under `key` can
/// continue from it: it decodes, names the same transfer, size and chunk size, covers
/// exactly `bytes`, and leaves at least one chunk to fetch (a complete one is of no use:
/// the whole is verified only at the end, so it starts over). Pure: the engine's half of
/// the "resume or restart" decision.
pub fn usable(
    state: &[u8],
    bytes: u64,
    key: &[u8; 32],
    size: u64,
    chunk_size: u32,
) -> Option<Checkpoint> {
    let c = Checkpoint::decode(state)?;
    let fits = &c.key == key
        && c.size == size
        && c.chunk_size == chunk_size
        && c.bytes() == bytes
        && c.tree.count() < chunk_count(size, chunk_size);
    fits.then_some(c)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::tree::chunk_hash;

    fn checkpoint(chunks: u64) -> Checkpoint {
        let mut tree = TreeStack::new();
        for i in 0..chunks {
            tree.push(chunk_hash(i, 100, 1024, &[i as u8; 1024]));
        }
        Checkpoint {
            key: [7; 32],
            size: 100 * 1024 - 3,
            chunk_size: 1024,
            tree,
        }
    }

    #[test]
    fn checkpoints_round_trip() {
        for chunks in [0, 1, 2, 3, 64, 99, 100] {
            let c = checkpoint(chunks);
            assert_eq!(Checkpoint::decode(&c.encode()), Some(c.clone()));
        }
        assert_eq!(checkpoint(100).bytes(), 100 * 1024 - 3);
        assert_eq!(checkpoint(3).bytes(), 3 * 1024);
    }

    #[test]
    fn a_lent_writer_resumes_only_the_same_transfer_with_chunks_left() {
        let c = checkpoint(3);
        let state = c.encode();
        let (key, size, cs) = (c.key, c.size, c.chunk_size);
        assert_eq!(usable(&state, 3 * 1024, &key, size, cs), Some(c.clone()));
        // Another transfer, size or chunk size; bytes the writer does not hold.
        assert_eq!(usable(&state, 3 * 1024, &[8; 32], size, cs), None);
        assert_eq!(usable(&state, 3 * 1024, &key, size + 1, cs), None);
        assert_eq!(usable(&state, 3 * 1024, &key, size, 2048), None);
        assert_eq!(usable(&state, 2 * 1024, &key, size, cs), None);
        assert_eq!(usable(&state[1..], 3 * 1024, &key, size, cs), None);
        // Every chunk: nothing left to fetch, start over.
        let whole = checkpoint(100);
        assert_eq!(usable(&whole.encode(), whole.bytes(), &key, size, cs), None);
        assert!(usable(&checkpoint(99).encode(), 99 * 1024, &key, size, cs).is_some());
    }

    #[test]
    fn torn_foreign_or_inconsistent_bytes_are_refused() {
        let good = checkpoint(37).encode();
        for cut in 0..good.len() {
            assert_eq!(Checkpoint::decode(&good[..cut]), None, "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert_eq!(Checkpoint::decode(&bad), None, "byte {i}");
        }
        // More chunks than the size holds, even with a valid checksum.
        let mut c = checkpoint(3);
        c.size = 2048;
        assert_eq!(Checkpoint::decode(&c.encode()), None);
        assert_eq!(Checkpoint::decode(b""), None);
        assert_eq!(Checkpoint::decode(&[0u8; 4096]), None);
    }
}
