//! The BLAKE3 tree of a transfer built chunk by chunk in O(log n) memory. Pure logic.
//!
//! [`TreeStack`] (defined in [`crate::hashtree`], shared with the files store) takes the
//! chunk hashes of [`crate::transfer::tree`] in order and keeps only the chaining values
//! of the complete subtrees seen so far, merged the way BLAKE3 merges its own chunks (a
//! subtree is merged only once more input is known to follow, so the last one can still
//! become the root). Its root is the ordinary `blake3::hash` of the content. It is also
//! the whole resume state of a transfer: `count` chunks verified and at most 64 chaining
//! values, so neither side keeps 32 bytes per chunk, and the state of a 3 GiB transfer
//! travels in a few dozen bytes ([`TreeStack::digest`]).

use crate::error::Result;
use crate::transfer::error::TransferError;

pub use crate::hashtree::TreeStack;

/// Checks a resume point announced by a peer against the number of chunks.
pub fn check_resume_point(chunks: u64, count: u64) -> Result<()> {
    if chunks > count {
        return Err(TransferError::ResumePoint { chunks, count }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::tree::{chunk_count, chunk_hash, root, ContentTree};

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[test]
    fn the_incremental_root_is_blake3_for_every_count() {
        for chunks in 0..70usize {
            for tail in [0usize, 1, 1023] {
                let len = (chunks * 1024).saturating_sub(if chunks > 0 { tail } else { 0 });
                let d = data(len);
                let tree = ContentTree::of(&d, 1024).unwrap();
                let mut s = TreeStack::new();
                for h in &tree.chunk_hashes {
                    s.push(*h);
                }
                assert_eq!(s.count(), chunk_count(len as u64, 1024));
                assert_eq!(s.root(), *blake3::hash(&d).as_bytes(), "len {len}");
                assert_eq!(s.root(), root(&tree.chunk_hashes));
            }
        }
    }

    #[test]
    fn parts_round_trip_and_bad_shapes_are_refused() {
        let d = data(37 * 2048 + 5);
        let tree = ContentTree::of(&d, 2048).unwrap();
        let mut s = TreeStack::new();
        for (i, h) in tree.chunk_hashes.iter().enumerate() {
            let (count, stack, last) = s.parts();
            let back = TreeStack::from_parts(count, stack.to_vec(), last.copied()).unwrap();
            assert_eq!(back, s, "after {i} chunks");
            s.push(*h);
        }
        assert_eq!(s.root(), *blake3::hash(&d).as_bytes());
        assert!(TreeStack::from_parts(0, vec![], Some([0; 32])).is_none());
        assert!(TreeStack::from_parts(1, vec![], None).is_none());
        assert!(TreeStack::from_parts(2, vec![], Some([0; 32])).is_none());
        assert!(TreeStack::from_parts(u64::MAX, vec![[0; 32]; 3], Some([0; 32])).is_none());
    }

    #[test]
    fn digests_tell_different_prefixes_apart() {
        let mut a = TreeStack::new();
        let mut b = TreeStack::new();
        assert_eq!(a.digest(), b.digest());
        let h = |i: u64| chunk_hash(i, 10, 1024, &[i as u8; 1024]);
        for i in 0..5 {
            a.push(h(i));
            b.push(h(i));
        }
        assert_eq!(a.digest(), b.digest());
        a.push(h(5));
        b.push(h(6));
        assert_ne!(a.digest(), b.digest());
        let mut c = TreeStack::new();
        for i in 0..5 {
            c.push(h(i));
        }
        assert_ne!(a.digest(), c.digest(), "a prefix differs from the whole");
        assert!(check_resume_point(10, 10).is_ok());
        assert!(check_resume_point(11, 10).is_err());
    }
}
