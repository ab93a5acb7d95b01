//! The BLAKE3 tree of transferred content. Pure logic: no I/O.
//!
//! Content is cut into chunks whose size is a power of two of at least 1 KiB (BLAKE3's own
//! chunk length), so every transfer chunk is a complete subtree of the content's BLAKE3
//! tree. A chunk's hash is that subtree's chaining value (for content of a single chunk,
//! the root hash itself), and the hash of the whole — the ordinary `blake3::hash` of the
//! content, what `b3sum` prints, and a block's id — is merged from the chunk hashes without
//! reading the data a second time. Each side of a transfer therefore hashes every byte
//! once, and a corrupted chunk is still caught at the chunk where it happens.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, Mode};

use crate::error::Result;
use crate::transfer::error::TransferError;

/// Smallest chunk size: BLAKE3's chunk length.
pub const MIN_CHUNK_SIZE: u32 = blake3::CHUNK_LEN as u32;
/// Largest chunk size.
pub const MAX_CHUNK_SIZE: u32 = 64 << 20;

/// Checks that `chunk_size` is a power of two in `MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE`.
pub fn check_chunk_size(chunk_size: u32) -> Result<()> {
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(TransferError::ChunkSize(chunk_size).into());
    }
    Ok(())
}

/// The number of chunks of `size` bytes of content.
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size.max(1)))
}

/// The length of chunk `index`.
pub fn chunk_len(size: u64, chunk_size: u32, index: u64) -> u32 {
    let start = index.saturating_mul(u64::from(chunk_size));
    size.saturating_sub(start).min(u64::from(chunk_size)) as u32
}

/// The hash of chunk `index` (holding `data`) of content cut into `count` chunks of
/// `chunk_size` bytes (a size [`check_chunk_size`] accepts). `data` must be the chunk's
/// whole content: non-empty and at most `chunk_size` bytes when `count > 1`; anything else
/// yields a hash no correct chunk has.
pub fn chunk_hash(index: u64, count: u64, chunk_size: u32, data: &[u8]) -> [u8; 32] {
    if check_chunk_size(chunk_size).is_err() {
        return *blake3::hash(data).as_bytes();
    }
    crate::hashtree::subtree_hash(index, count, chunk_size, data)
}

/// The hash of the whole content from the hashes of all its chunks, in order.
pub fn root(chunk_hashes: &[[u8; 32]]) -> [u8; 32] {
    match chunk_hashes {
        [] => *blake3::hash(&[]).as_bytes(),
        [only] => *only,
        _ => merge(chunk_hashes, true),
    }
}

/// Merges the subtrees of `hashes` (at least two) the way BLAKE3 shapes its tree: the
/// left side holds the largest power of two of chunks that leaves the right side non-empty.
fn merge(hashes: &[[u8; 32]], is_root: bool) -> [u8; 32] {
    if let [only] = hashes {
        return *only;
    }
    let n = hashes.len();
    let split = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
    let left = merge(&hashes[..split], false);
    let right = merge(&hashes[split..], false);
    if is_root {
        *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(&left, &right, Mode::Hash)
    }
}

/// The chunk hashes and root of content held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentTree {
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// The hash of every chunk, in order.
    pub chunk_hashes: Vec<[u8; 32]>,
    /// The hash of the whole (`blake3::hash` of the content).
    pub root: [u8; 32],
}

impl ContentTree {
    /// Hashes `data` (once) into its tree of `chunk_size` chunks.
    pub fn of(data: &[u8], chunk_size: u32) -> Result<Self> {
        Self::of_parallel(data, chunk_size, 1)
    }

    /// The same as [`ContentTree::of`], the chunks spread over up to `threads` threads.
    pub fn of_parallel(data: &[u8], chunk_size: u32, threads: usize) -> Result<Self> {
        check_chunk_size(chunk_size)?;
        let count = chunk_count(data.len() as u64, chunk_size);
        let size = chunk_size as usize;
        let hash_run = |first: usize, run: &[u8]| -> Vec<[u8; 32]> {
            run.chunks(size)
                .enumerate()
                .map(|(i, c)| chunk_hash((first + i) as u64, count, chunk_size, c))
                .collect()
        };
        let threads = threads.clamp(1, (count as usize).max(1));
        let chunk_hashes = if threads == 1 {
            hash_run(0, data)
        } else {
            // Contiguous runs of whole chunks, one per thread.
            let per_thread = (count as usize).div_ceil(threads);
            std::thread::scope(|scope| {
                let runs: Vec<_> = data
                    .chunks(per_thread * size)
                    .enumerate()
                    .map(|(t, run)| scope.spawn(move || hash_run(t * per_thread, run)))
                    .collect();
                runs.into_iter()
                    .flat_map(|r| r.join().unwrap_or_default())
                    .collect::<Vec<_>>()
            })
        };
        if chunk_hashes.len() as u64 != count {
            return Err(TransferError::Bug("a hashing thread failed").into());
        }
        let root = root(&chunk_hashes);
        Ok(Self {
            chunk_size,
            chunk_hashes,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 % 251) as u8).collect()
    }

    #[test]
    fn the_root_is_the_plain_blake3_hash_for_every_shape() {
        for chunk_size in [1024u32, 2048, 4096] {
            let c = chunk_size as usize;
            for len in [
                0,
                1,
                c - 1,
                c,
                c + 1,
                2 * c,
                3 * c,
                3 * c + 7,
                4 * c,
                5 * c - 1,
                7 * c + 100,
                8 * c,
                9 * c + 1,
                13 * c + 999,
            ] {
                let d = data(len);
                let tree = ContentTree::of(&d, chunk_size).unwrap();
                assert_eq!(
                    tree.root,
                    *blake3::hash(&d).as_bytes(),
                    "len {len}, chunk size {chunk_size}"
                );
                assert_eq!(
                    tree.chunk_hashes.len() as u64,
                    chunk_count(len as u64, chunk_size)
                );
            }
        }
    }

    #[test]
    fn hashing_on_several_threads_gives_the_same_tree() {
        for len in [0, 1, 1024, 5 * 1024 + 3, 16 * 1024, 17 * 1024 - 1] {
            let d = data(len);
            let one = ContentTree::of(&d, 1024).unwrap();
            for threads in [2, 3, 8, 64] {
                assert_eq!(ContentTree::of_parallel(&d, 1024, threads).unwrap(), one);
            }
        }
    }

    #[test]
    fn a_changed_byte_changes_only_its_chunk_hash() {
        let mut d = data(5 * 1024 + 10);
        let before = ContentTree::of(&d, 1024).unwrap();
        d[2 * 1024 + 5] ^= 1;
        let after = ContentTree::of(&d, 1024).unwrap();
        let differ: Vec<usize> = (0..before.chunk_hashes.len())
            .filter(|&i| before.chunk_hashes[i] != after.chunk_hashes[i])
            .collect();
        assert_eq!(differ, vec![2]);
        assert_ne!(before.root, after.root);
    }

    #[test]
    fn a_chunk_hash_depends_on_its_position() {
        let block = vec![9u8; 1024];
        assert_ne!(
            chunk_hash(0, 2, 1024, &block),
            chunk_hash(1, 2, 1024, &block)
        );
    }

    #[test]
    fn invalid_input_never_panics() {
        assert!(check_chunk_size(1000).is_err());
        assert!(check_chunk_size(512).is_err());
        assert!(check_chunk_size(128 << 20).is_err());
        check_chunk_size(1 << 20).unwrap();
        // Empty or oversized chunks get a hash, never a panic.
        let _ = chunk_hash(3, 5, 1024, &[]);
        let _ = chunk_hash(3, 5, 1024, &[0; 4096]);
        let _ = chunk_hash(3, 5, 1000, &[0; 10]);
        assert_eq!(root(&[]), *blake3::hash(b"").as_bytes());
    }
}
