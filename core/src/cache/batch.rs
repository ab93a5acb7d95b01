//! Splitting a user's batch into requests that a peer accepts: at most
//! [`MAX_BATCH`](crate::cache::limits::MAX_BATCH) items and at most a message's worth of
//! bytes each. Pure logic.

use std::ops::Range;

/// Consecutive ranges of items (sized by `sizes`) with at most `max_count` items and at
/// most `max_bytes` bytes each; an item larger than `max_bytes` goes alone in its range.
pub fn batches(sizes: &[usize], max_count: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let max_count = max_count.max(1);
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0usize, 0usize);
    for (i, &size) in sizes.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_count || bytes.saturating_add(size) > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_counts_and_bytes_and_cover_everything_once() {
        assert!(batches(&[], 3, 10).is_empty());
        assert_eq!(batches(&[1; 7], 3, 100), vec![0..3, 3..6, 6..7]);
        assert_eq!(batches(&[4, 4, 4, 4], 10, 8), vec![0..2, 2..4]);
        assert_eq!(batches(&[20, 1, 1, 30], 10, 8), vec![0..1, 1..3, 3..4]);
        assert_eq!(batches(&[1, 1], 0, 8), vec![0..1, 1..2]);
        let sizes: Vec<usize> = (0..1000).map(|i| i % 17).collect();
        let ranges = batches(&sizes, 64, 100);
        let covered: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
        assert_eq!(covered, (0..1000).collect::<Vec<_>>());
        assert!(ranges
            .iter()
            .all(|r| r.len() <= 64
                && (r.len() == 1 || sizes[r.clone()].iter().sum::<usize>() <= 100)));
    }
}
