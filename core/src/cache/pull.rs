//! What a node keeps of the pages it pulls from another member (pure logic; the I/O is in
//! `maintain.rs`). A source is a member, but what it sends is checked like any peer
//! input:
//!
//! - only entries of the partitions asked for are kept (others are counted and dropped);
//! - keys and values are held to the limits of a user's write (`validate.rs`);
//! - versions further ahead than the clock's drift bound are dropped (`hlc.rs`);
//! - a page may carry at most [`PAGE_BYTES`] plus one entry of keys and values, and its
//!   cursor must move forward, or the source is cut off (the pull fails, retried later);
//! - one round of a pull brings at most [`MAX_PULL_ROUND_BYTES`]; the pull then pauses
//!   and resumes from the same cursor, so a source that says "more" forever is paced
//!   rather than followed;
//! - what is kept is charged to the memory quota like a write (see `Store::apply`): a
//!   pull that does not fit stops where it is and retries later.

use crate::cache::error::CacheError;
use crate::cache::limits::{MAX_PULL_ROUND_BYTES, PAGE_BYTES};
use crate::cache::messages::WireEntry;
use crate::cache::partition::{partition_of, PARTITIONS};
use crate::cache::store::EntryView;
use crate::cache::tombstones::PAGE_ITEM_OVERHEAD;
use crate::cache::validate::{check_wire_entry, max_entry_bytes};
use crate::error::Result;

/// One round of a pull of some partitions from one source.
#[derive(Debug, Clone)]
pub struct PullRound {
    wanted: Vec<bool>,
    cursor: u32,
    round_bytes: u64,
    max_message_size: usize,
}

/// The entries of a page worth keeping, and how many were dropped and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sifted {
    /// Entries to apply (still subject to the quota and to last-writer-wins).
    pub keep: Vec<EntryView>,
    /// Entries of partitions that were not asked for.
    pub foreign: usize,
    /// Entries with a key or value past the limits.
    pub invalid: usize,
    /// Entries stamped further ahead than the clock accepts.
    pub too_new: usize,
}

impl Sifted {
    /// How many entries were dropped.
    pub fn dropped(&self) -> usize {
        self.foreign + self.invalid + self.too_new
    }
}

/// What to do after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ask for the page at this cursor.
    More(u32),
    /// The source has nothing more: the pull is complete.
    Done,
    /// This round brought its share: pause, then continue from this cursor.
    Pause(u32),
}

impl PullRound {
    /// A round pulling `partitions` from `cursor` on a node whose frames carry at most
    /// `max_message_size` bytes.
    pub fn new(partitions: &[u16], cursor: u32, max_message_size: usize) -> Self {
        let mut wanted = vec![false; PARTITIONS];
        for &p in partitions {
            if let Some(w) = wanted.get_mut(usize::from(p)) {
                *w = true;
            }
        }
        Self {
            wanted,
            cursor,
            round_bytes: 0,
            max_message_size,
        }
    }

    /// The cursor of the next page to ask for.
    pub fn cursor(&self) -> u32 {
        self.cursor
    }

    /// Bytes of keys and values this round has brought so far.
    pub fn bytes(&self) -> u64 {
        self.round_bytes
    }

    /// The most bytes of keys and values a page may carry: what a source puts in one
    /// page, plus the one entry that may cross that line.
    pub fn max_page_bytes(&self) -> usize {
        PAGE_BYTES
            .saturating_add(max_entry_bytes(self.max_message_size))
            .saturating_add(PAGE_ITEM_OVERHEAD)
    }

    /// Sifts the page a source answered to [`PullRound::cursor`] with (`entries`, and
    /// `next`, its cursor of the next page), keeping the entries whose version
    /// `version_ok` accepts. Fails, keeping nothing, when the source broke the protocol: a
    /// page larger than [`PullRound::max_page_bytes`], or a next cursor that does not move
    /// forward.
    pub fn sift(
        &mut self,
        entries: Vec<WireEntry>,
        next: Option<u32>,
        version_ok: impl Fn(u64) -> bool,
    ) -> Result<(Sifted, Next)> {
        let page_bytes = entries.iter().fold(0usize, |n, e| {
            let size = e
                .key
                .len()
                .saturating_add(e.value.as_ref().map_or(0, |v| v.len()))
                .saturating_add(PAGE_ITEM_OVERHEAD);
            n.saturating_add(size)
        });
        if page_bytes > self.max_page_bytes() {
            return Err(CacheError::PageTooLarge {
                size: page_bytes,
                max: self.max_page_bytes(),
            }
            .into());
        }
        if let Some(n) = next {
            if n <= self.cursor {
                return Err(CacheError::CursorBackwards {
                    at: self.cursor,
                    next: n,
                }
                .into());
            }
        }
        let mut sifted = Sifted::default();
        for e in entries {
            if check_wire_entry(&e, self.max_message_size).is_err() {
                sifted.invalid += 1;
                continue;
            }
            let p = partition_of(&e.key);
            if !self.wanted.get(usize::from(p)).copied().unwrap_or(false) {
                sifted.foreign += 1;
                continue;
            }
            if !version_ok(e.version) {
                sifted.too_new += 1;
                continue;
            }
            sifted.keep.push(EntryView::from(e));
        }
        self.round_bytes = self
            .round_bytes
            .saturating_add(u64::try_from(page_bytes).unwrap_or(u64::MAX));
        let step = match next {
            None => Next::Done,
            Some(n) => {
                self.cursor = n;
                if self.round_bytes >= MAX_PULL_ROUND_BYTES {
                    Next::Pause(n)
                } else {
                    Next::More(n)
                }
            }
        };
        Ok((sifted, step))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::hlc::{horizon, Hlc};
    use crate::cache::limits::MAX_KEY_LEN;
    use crate::cache::store::{Charge, Limits, Store};
    use crate::error::ErrorKind;
    use crate::memory::MemoryBudget;

    const MAX_MESSAGE: usize = 8 << 20;
    const WALL: u64 = 1_700_000_000_000;

    fn wire(key: &str, value_len: usize, version: u64) -> WireEntry {
        WireEntry {
            key: key.into(),
            value: Some(bytes::Bytes::from(vec![b'v'; value_len])),
            version,
            expires: 0,
        }
    }

    /// Keys of partition `p` (and of no other).
    fn keys_of(p: u16, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("key{i}"))
            .filter(|k| partition_of(k) == p)
            .take(n)
            .collect()
    }

    fn ok(_: u64) -> bool {
        true
    }

    #[test]
    fn only_entries_of_the_partitions_asked_for_with_valid_keys_and_versions_are_kept() {
        let hlc = Hlc::default();
        let mut round = PullRound::new(&[3, 5], 0, MAX_MESSAGE);
        let mut page: Vec<WireEntry> = keys_of(3, 4)
            .iter()
            .chain(&keys_of(5, 2))
            .map(|k| wire(k, 10, 7))
            .collect();
        page.extend(keys_of(4, 3).iter().map(|k| wire(k, 10, 7)));
        page.push(wire(&"k".repeat(MAX_KEY_LEN + 1), 1, 7));
        page.push(wire("", 1, 7));
        page.push(wire(&keys_of(3, 5)[4], 1, u64::MAX));
        page.push(wire(&keys_of(5, 3)[2], 1, horizon(WALL) + 1));
        let (sifted, next) = round
            .sift(page, None, |v| hlc.check_at(v, WALL).is_ok())
            .unwrap();
        assert_eq!(next, Next::Done);
        assert_eq!(sifted.keep.len(), 6);
        assert!(sifted
            .keep
            .iter()
            .all(|e| e.partition == 3 || e.partition == 5));
        assert_eq!((sifted.foreign, sifted.invalid, sifted.too_new), (3, 2, 2));
        assert_eq!(sifted.dropped(), 7);
        // A delete (tombstone) of a partition asked for is kept too.
        let mut round = PullRound::new(&[3], 0, MAX_MESSAGE);
        let mut delete = wire(&keys_of(3, 1)[0], 0, 9);
        delete.value = None;
        let (sifted, _) = round.sift(vec![delete], None, ok).unwrap();
        assert_eq!(sifted.keep.len(), 1);
        assert!(sifted.keep[0].value.is_none());
    }

    #[test]
    fn a_page_too_large_or_a_cursor_that_does_not_move_cuts_the_source_off() {
        let keys = keys_of(1, 10);
        let mut round = PullRound::new(&[1], 10, MAX_MESSAGE);
        // A cursor that goes back, or stays.
        for bad in [Some(10), Some(3)] {
            let err = round.clone().sift(vec![wire(&keys[0], 1, 1)], bad, ok);
            assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        // A page with more than a page's worth of bytes.
        let big = max_entry_bytes(MAX_MESSAGE) - 16;
        let page: Vec<WireEntry> = keys.iter().take(2).map(|k| wire(k, big, 1)).collect();
        let err = round.clone().sift(page, Some(11), ok).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("larger"), "{}", err.message());
        // One entry as large as a write may be travels alone: accepted.
        let (sifted, next) = round
            .sift(vec![wire(&keys[0], big, 1)], Some(11), ok)
            .unwrap();
        assert_eq!((sifted.keep.len(), next), (1, Next::More(11)));
        assert_eq!(round.cursor(), 11);
    }

    #[test]
    fn an_endless_source_is_paced_by_rounds_and_memory_stays_within_the_quota() {
        // A hostile source answers every page with "more", 2 MiB of fresh entries each
        // time, forever. The round pauses once it has brought its share, and the store,
        // charged like a write, stops at the quota.
        let quota = 8 << 20;
        let budget = Arc::new(MemoryBudget::new(quota));
        let mut store = Store::new(Limits::default(), budget.clone());
        let keys = keys_of(7, 3_000);
        let mut round = PullRound::new(&[7], 0, MAX_MESSAGE);
        let (mut pages, mut refused, mut k) = (0u32, 0usize, 0usize);
        let paused_at = loop {
            let page: Vec<WireEntry> = (0..64)
                .map(|_| {
                    k = (k + 1) % keys.len();
                    wire(&keys[k], 32 * 1024 - 64, 1 + k as u64)
                })
                .collect();
            let (sifted, next) = round.sift(page, Some(round.cursor() + 1), ok).unwrap();
            for e in &sifted.keep {
                if let Err(e) = store.apply(e, 0, Charge::Enforce) {
                    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
                    refused += 1;
                }
            }
            assert!(budget.used() <= quota);
            pages += 1;
            assert!(pages < 1000, "the round never paused");
            if let Next::Pause(c) = next {
                break c;
            }
        };
        assert_eq!(paused_at, round.cursor());
        assert!(round.bytes() >= MAX_PULL_ROUND_BYTES);
        assert!(round.bytes() < MAX_PULL_ROUND_BYTES + round.max_page_bytes() as u64);
        assert!(refused > 0, "the source sent more than the quota");
        assert!(budget.used() <= quota && budget.used() > quota / 2);
        // The store is still consistent: what it holds is what it charged.
        assert_eq!(budget.used(), store.bytes());
        // The next round resumes from the cursor it paused at.
        let round = PullRound::new(&[7], paused_at, MAX_MESSAGE);
        assert_eq!(round.cursor(), paused_at);
    }

    #[test]
    fn a_page_served_by_an_honest_store_is_accepted_whole() {
        let budget = Arc::new(MemoryBudget::new(u64::MAX));
        let mut source = Store::new(Limits::default(), budget.clone());
        let keys = keys_of(2, 300);
        for (i, k) in keys.iter().enumerate() {
            let e = EntryView::from(wire(k, 20_000, 1 + i as u64));
            source.apply(&e, 0, Charge::Enforce).unwrap();
        }
        source
            .apply(
                &EntryView::from(wire(
                    &keys_of(2, 301)[300],
                    max_entry_bytes(MAX_MESSAGE) - 10,
                    9,
                )),
                0,
                Charge::Enforce,
            )
            .unwrap();
        let mut wanted = vec![false; PARTITIONS];
        wanted[2] = true;
        let mut round = PullRound::new(&[2], 0, MAX_MESSAGE);
        let mut got = 0;
        loop {
            let (page, next) = source.page(&wanted, round.cursor(), PAGE_BYTES, 0);
            let page: Vec<WireEntry> = page.iter().map(WireEntry::from).collect();
            let (sifted, step) = round.sift(page, next, ok).unwrap();
            assert_eq!(sifted.dropped(), 0);
            got += sifted.keep.len();
            match step {
                Next::More(_) => {}
                Next::Done => break,
                Next::Pause(_) => panic!("less than a round's worth"),
            }
        }
        assert_eq!(got, 301);
    }
}
