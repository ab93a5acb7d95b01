//! How the segments of a content file are cut into blocks and dealt to the workers of a
//! parallel seal or open (`parallel.rs`). Pure: no threads, no I/O.
//!
//! A block is [`Shape::per`] consecutive segments (the last block may hold fewer); block
//! `i` goes to worker `i mod workers`, so each worker's blocks come back in order on its
//! own queue and the blocks are put back in file order by taking one from each worker in
//! turn.

use super::crypt::{segments, SEALED_SEGMENT, SEGMENT, TAG};

/// Segments in a block (512 KiB of plaintext): a worker's unit of work.
pub const BLOCK_SEGMENTS: usize = 8;
/// The most workers sealing one file's segments (a put: CPU-bound, one per core).
pub const MAX_WORKERS: usize = 4;
/// The workers of a get of a large file. Each reads its blocks around the page cache one
/// at a time (`direct.rs`) and waits for the disk part of the time, so a get runs more
/// workers than cores to keep this many reads in flight (`bench/README.md`, "Large
/// files, second round": 2 workers on 2 cores left both cores half idle).
pub const GET_WORKERS: usize = 8;

/// How a parallel seal or open is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Segments in a block.
    pub per: usize,
    /// Threads sealing or opening blocks.
    pub workers: usize,
}

impl Shape {
    /// The shape for a machine with `cores` cores: one worker per core, at most
    /// [`MAX_WORKERS`], at least one; blocks of [`BLOCK_SEGMENTS`].
    pub fn for_cores(cores: usize) -> Shape {
        Shape {
            per: BLOCK_SEGMENTS,
            workers: cores.clamp(1, MAX_WORKERS),
        }
    }

    /// The shape of a get of `size` bytes of plaintext: [`GET_WORKERS`] workers, no more
    /// than it has blocks.
    pub fn for_get(size: u64) -> Shape {
        let blocks = segments(size).div_ceil(BLOCK_SEGMENTS as u64);
        Shape {
            per: BLOCK_SEGMENTS,
            workers: usize::try_from(blocks)
                .unwrap_or(GET_WORKERS)
                .clamp(1, GET_WORKERS),
        }
    }

    /// The shape for this machine.
    pub fn here() -> Shape {
        Shape::for_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Block buffers that exist at once (the memory bound: this many blocks of
    /// `per` sealed segments): one being filled, one held back until it is known whether
    /// the next holds data, and two per worker (being worked on, done and waiting).
    pub fn in_flight(&self) -> usize {
        2 * self.workers.max(1) + 2
    }

    /// Bytes of a block buffer.
    pub fn block_bytes(&self) -> usize {
        self.per.max(1) * SEALED_SEGMENT
    }

    /// The worker that seals or opens block `index`.
    pub fn worker_of(&self, index: u64) -> usize {
        (index % self.workers.max(1) as u64) as usize
    }
}

/// A block of consecutive segments of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Its position among the file's blocks (0 first).
    pub index: u64,
    /// The number of its first segment.
    pub first: u64,
    /// Its segments (at least one).
    pub segments: usize,
    /// Its plaintext bytes.
    pub plain: usize,
    /// Whether it holds the file's last segment.
    pub last: bool,
}

impl Block {
    /// Block `index` of `per` segments holding `plain` plaintext bytes (less than a full
    /// block only if it is the last): an empty block is one empty segment (an empty
    /// file).
    pub fn new(index: u64, per: usize, plain: usize, last: bool) -> Block {
        Block {
            index,
            first: index * per as u64,
            segments: plain.div_ceil(SEGMENT).max(1),
            plain,
            last,
        }
    }

    /// Its sealed bytes: the segments with their tags, back to back.
    pub fn sealed(&self) -> usize {
        self.plain + self.segments * TAG
    }

    /// Where segment `j` of the block starts in a block buffer (every segment but the
    /// last is a full sealed segment, so the sealed block is contiguous) and its
    /// plaintext length.
    pub fn segment(&self, j: usize) -> (usize, usize) {
        let start = j * SEGMENT;
        (
            j * SEALED_SEGMENT,
            self.plain.saturating_sub(start).min(SEGMENT),
        )
    }

    /// The number (nonce counter) of segment `j` of the block and whether it is the
    /// file's last segment, or `None` past 2^32 segments.
    pub fn counter(&self, j: usize) -> Option<(u32, bool)> {
        let n = u32::try_from(self.first + j as u64).ok()?;
        Some((n, self.last && j + 1 == self.segments))
    }
}

/// The blocks of a stored plaintext of `size` bytes (its size is known from the content
/// file's length), `per` segments each.
pub fn blocks_of(size: u64, per: usize) -> impl Iterator<Item = Block> {
    let per = per.max(1);
    let count = segments(size).div_ceil(per as u64);
    let full = (per * SEGMENT) as u64;
    (0..count).map(move |index| {
        let last = index + 1 == count;
        let plain = if last { size - index * full } else { full };
        Block::new(index, per, plain as usize, last)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::crypt::stored_len;

    /// Every segment of the file exactly once, in order, the last one flagged last.
    fn check(size: u64, per: usize) {
        let blocks: Vec<Block> = blocks_of(size, per).collect();
        let mut next = 0u64;
        let mut plain = 0u64;
        let mut sealed = 0u64;
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b.index, i as u64);
            assert_eq!(b.first, next, "size {size} per {per}");
            assert!(b.segments >= 1 && b.segments <= per);
            assert_eq!(b.last, i + 1 == blocks.len());
            for j in 0..b.segments {
                let (at, len) = b.segment(j);
                assert_eq!(at, j * SEALED_SEGMENT);
                let (n, last) = b.counter(j).unwrap();
                assert_eq!(u64::from(n), next);
                assert_eq!(last, u64::from(n) + 1 == segments(size));
                // Only the file's last segment may be short.
                if !last {
                    assert_eq!(len, SEGMENT);
                }
                plain += len as u64;
                next += 1;
            }
            sealed += b.sealed() as u64;
        }
        assert_eq!(next, segments(size));
        assert_eq!(plain, size);
        assert_eq!(
            sealed + crate::files::crypt::HEADER_LEN as u64,
            stored_len(size)
        );
    }

    #[test]
    fn blocks_cover_every_segment_once_at_the_boundaries() {
        let s = SEGMENT as u64;
        for per in [1, 2, 3, BLOCK_SEGMENTS] {
            for size in [
                0,
                1,
                s - 1,
                s,
                s + 1,
                2 * s,
                per as u64 * s,
                per as u64 * s + 1,
                7 * s + 3,
                40 * s,
            ] {
                check(size, per);
            }
        }
    }

    #[test]
    fn an_empty_file_is_one_block_of_one_empty_last_segment() {
        let b: Vec<Block> = blocks_of(0, 4).collect();
        assert_eq!(
            b,
            vec![Block {
                index: 0,
                first: 0,
                segments: 1,
                plain: 0,
                last: true
            }]
        );
        assert_eq!(b[0].sealed(), TAG);
        assert_eq!(b[0].counter(0), Some((0, true)));
    }

    #[test]
    fn workers_take_blocks_in_turn_and_memory_is_bounded() {
        let shape = Shape::for_cores(2);
        assert_eq!(shape.workers, 2);
        let dealt: Vec<usize> = (0..5).map(|i| shape.worker_of(i)).collect();
        assert_eq!(dealt, vec![0, 1, 0, 1, 0]);
        assert_eq!(Shape::for_cores(0).workers, 1);
        assert_eq!(Shape::for_cores(64).workers, MAX_WORKERS);
        // A get: as many workers as blocks, up to GET_WORKERS.
        let block = (BLOCK_SEGMENTS * SEGMENT) as u64;
        assert_eq!(Shape::for_get(0).workers, 1);
        assert_eq!(Shape::for_get(block).workers, 1);
        assert_eq!(Shape::for_get(block + 1).workers, 2);
        assert_eq!(Shape::for_get(3 * block).workers, 3);
        assert_eq!(Shape::for_get(1 << 40).workers, GET_WORKERS);
        // A few MiB whatever the file's size.
        let most = Shape::for_cores(64);
        assert!(most.in_flight() * most.block_bytes() <= 8 << 20);
    }

    #[test]
    fn counters_past_two_to_the_32_are_refused() {
        let b = Block::new(u64::from(u32::MAX), 1, SEGMENT, false);
        assert_eq!(b.counter(0), Some((u32::MAX, false)));
        let b = Block::new(u64::from(u32::MAX) + 1, 1, SEGMENT, false);
        assert_eq!(b.counter(0), None);
    }
}
