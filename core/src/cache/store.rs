//! One bucket's entries on one node: a compact slab with an exact LRU order (`lru.rs`), TTL, byte and
//! entry limits, last-writer-wins versions and tombstones. Pure logic: time is passed in.
//!
//! Each entry keeps its key and value in one allocation, and 48 bytes of bookkeeping (40
//! in the slab, 8 in the LRU order) plus about 5 in the index; [`ENTRY_OVERHEAD`] is what it is charged on top of
//! its key and value, against `max_bytes` and the node's memory quota. Everything a write
//! costs (entries and tombstones alike) is reserved from the quota before anything
//! changes, so a write that does not fit fails with `QuotaExceeded` and changes nothing.
//! The store refuses what it cannot represent (a key longer than `u16::MAX` bytes, more
//! than 2^31 slots) instead of truncating it.

use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::cache::error::CacheError;
use crate::cache::lru::Lru;
use crate::cache::partition::PARTITIONS;
use crate::cache::tombstones::{Tombstones, PAGE_ITEM_OVERHEAD};
use crate::error::{Error, Result};
use crate::memory::MemoryBudget;

pub use crate::cache::tombstones::{tombstone_cost, TOMBSTONE_OVERHEAD};

/// Bytes charged per entry on top of its key and value.
pub const ENTRY_OVERHEAD: u64 = 80;

/// A pull cursor at or past this value continues through the tombstones (at position
/// `cursor - TOMBSTONE_CURSOR`); below it, through the entries' slots.
pub const TOMBSTONE_CURSOR: u32 = 1 << 31;

/// Most slots (live or free) and most tombstones one store keeps, so that every position
/// can be named by a pull cursor.
const MAX_SLOTS: usize = TOMBSTONE_CURSOR as usize;

/// The bytes an entry costs.
pub fn entry_cost(key_len: usize, value_len: usize) -> u64 {
    u64::try_from(key_len.saturating_add(value_len))
        .unwrap_or(u64::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

#[derive(Debug)]
struct Slot {
    /// Key bytes followed by value bytes; empty for a free slot.
    data: Box<[u8]>,
    version: u64,
    /// Wall-clock expiry in ms since the epoch; 0 = never.
    expires: u64,
    key_len: u16,
    partition: u16,
    live: bool,
}

impl Slot {
    fn key(&self) -> &[u8] {
        self.data.get(..usize::from(self.key_len)).unwrap_or(&[])
    }
    fn value(&self) -> &[u8] {
        self.data.get(usize::from(self.key_len)..).unwrap_or(&[])
    }
    fn cost(&self) -> u64 {
        let key_len = usize::from(self.key_len);
        entry_cost(key_len, self.data.len().saturating_sub(key_len))
    }
    fn expired(&self, now_ms: u64) -> bool {
        self.expires != 0 && self.expires <= now_ms
    }
}

/// An entry as read or moved between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// The key.
    pub key: String,
    /// The value; `None` for a tombstone (a delete).
    pub value: Option<Bytes>,
    /// Its HLC version.
    pub version: u64,
    /// Expiry in ms since the epoch (0 = never).
    pub expires: u64,
    /// Its partition.
    pub partition: u16,
}

/// An entry to apply, borrowed from wherever it is held (an [`EntryView`], or a peer's
/// request read in place): [`Store::apply_written`] copies what it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written<'a> {
    /// The key.
    pub key: &'a str,
    /// The value; `None` for a delete.
    pub value: Option<&'a [u8]>,
    /// Its HLC version.
    pub version: u64,
    /// Expiry in ms since the epoch (0 = never).
    pub expires: u64,
    /// Its partition.
    pub partition: u16,
}

impl EntryView {
    /// The entry, borrowed, as [`Store::apply_written`] takes it.
    pub fn written(&self) -> Written<'_> {
        Written {
            key: &self.key,
            value: self.value.as_deref(),
            version: self.version,
            expires: self.expires,
            partition: self.partition,
        }
    }
}

/// What [`Store::read_within`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The live value and its expiry (ms since the epoch, 0 = never).
    Found {
        /// The value.
        value: Bytes,
        /// Its expiry.
        expires: u64,
    },
    /// No live value.
    Missing,
    /// A live value the caller's `fits` refused.
    Refused,
}

/// Per-node limits of a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most live entries.
    pub max_entries: Option<u64>,
    /// Most bytes, overhead included.
    pub max_bytes: Option<u64>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Entries removed by TTL.
    pub expired: u64,
    /// Entries removed by LRU.
    pub evicted: u64,
}

/// How a write should treat the memory quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Fail with `QuotaExceeded` if the node's quota would be exceeded. Every write the
    /// node applies (a user's, a peer's, a pulled entry) is charged this way.
    Enforce,
    /// Charge past the quota if need be (the excess shows in the budget). Nothing a peer
    /// sends is applied this way.
    Force,
}

impl Charge {
    fn take(self, budget: &MemoryBudget, bytes: u64) -> Result<()> {
        match self {
            Charge::Enforce => budget.reserve(bytes),
            Charge::Force => {
                budget.force(bytes);
                Ok(())
            }
        }
    }
}

/// The outcome of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The write was newer than what was held and took effect.
    pub changed: bool,
    /// A live entry existed before.
    pub existed: bool,
    /// The write did not take effect because a newer version of the key is held (an
    /// entry or a delete): that version. `None` when it took effect or was a repeat of
    /// what is held. A writer uses it to stamp its write again past it, so a write made
    /// after another is never lost to it because the other's node had a clock ahead.
    pub superseded_by: Option<u64>,
}

impl Applied {
    fn done(existed: bool) -> Self {
        Self {
            changed: true,
            existed,
            superseded_by: None,
        }
    }
}

/// The entries of one bucket on this node.
#[derive(Debug)]
pub struct Store {
    slots: Vec<Slot>,
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    lru: Lru,
    free: Vec<u32>,
    len: u64,
    bytes: u64,
    limits: Limits,
    counters: Counters,
    budget: Arc<MemoryBudget>,
    tombstones: Tombstones,
    rng: u64,
    max_slots: usize,
    /// Writes and deletes with a version below this are refused: the bucket was cleared
    /// at it ([`Store::clear_before`]; 0: never cleared).
    cleared_before: u64,
}

impl Store {
    /// An empty store with `limits`, charging `budget`.
    pub fn new(limits: Limits, budget: Arc<MemoryBudget>) -> Self {
        Self::with_max_slots(limits, budget, MAX_SLOTS)
    }

    /// [`Store::new`] holding at most `max_slots` entries and as many tombstones (at most
    /// 2^31; tests use small values to reach the limit).
    pub fn with_max_slots(limits: Limits, budget: Arc<MemoryBudget>, max_slots: usize) -> Self {
        let max_slots = max_slots.min(MAX_SLOTS);
        Self {
            slots: Vec::new(),
            index: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            lru: Lru::new(),
            free: Vec::new(),
            len: 0,
            bytes: 0,
            limits,
            counters: Counters::default(),
            budget,
            tombstones: Tombstones::new(max_slots),
            rng: 0x9e37_79b9_7f4a_7c15,
            max_slots,
            cleared_before: 0,
        }
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there is no live entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held, overhead included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Deletes remembered, and the bytes they are charged to the memory quota.
    pub fn tombstones(&self) -> (usize, u64) {
        (self.tombstones.len(), self.tombstones.bytes())
    }

    /// Forgets every tombstone for which `drop(version, partition)` holds; returns how many.
    fn forget_deletes_where(&mut self, drop: impl FnMut(u64, u16) -> bool) -> usize {
        let (n, released) = self.tombstones.forget_where(drop);
        self.budget.release(released);
        n
    }

    /// Forgets the tombstones of deletes older than `retention_ms` (by their HLC version's
    /// wall-clock part); returns how many. A delete must be remembered as long as a replica
    /// that missed it may come back with an older value (a healed partition): the node
    /// keeps them as long as membership remembers a down member.
    pub fn purge_tombstones(&mut self, now_ms: u64, retention_ms: u64) -> usize {
        let horizon = now_ms.saturating_sub(retention_ms);
        self.forget_deletes_where(|version, _| super::hlc::stamp_ms(version) < horizon)
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        self.index
            .find(h, |&i| {
                self.slots
                    .get(i as usize)
                    .is_some_and(|s| s.live && s.key() == key)
            })
            .copied()
    }

    /// Brings what reading `keys` will touch (their slots, key and value bytes) into the
    /// CPU's caches without acting on any key, so that a batch's cache misses overlap
    /// instead of following one another: in chunks of keys, first every key's slot index
    /// (the index is small and stays cached), then every slot, then every slot's bytes,
    /// each pass a run of loads that do not wait on one another. A hint only: it changes
    /// nothing, and the reads that follow find the same entries, sooner.
    pub fn warm<'k>(&self, keys: impl IntoIterator<Item = &'k str>) {
        const CHUNK: usize = 16;
        let mut keys = keys.into_iter();
        loop {
            let mut at = [u32::MAX; CHUNK];
            let mut n = 0;
            for (slot, key) in at.iter_mut().zip(keys.by_ref()) {
                let h = self.hasher.hash_one(key.as_bytes());
                *slot = self.index.iter_hash(h).next().copied().unwrap_or(u32::MAX);
                n += 1;
            }
            if n == 0 {
                return;
            }
            let mut data: [&[u8]; CHUNK] = [&[]; CHUNK];
            for (d, &i) in data.iter_mut().zip(&at[..n]) {
                if let Some(s) = self.slots.get(i as usize) {
                    *d = &s.data;
                }
            }
            let mut touched = 0u8;
            for d in &data[..n] {
                touched ^= d.first().copied().unwrap_or(0) ^ d.last().copied().unwrap_or(0);
            }
            std::hint::black_box(touched);
            if n < CHUNK {
                return;
            }
        }
    }

    /// Removes slot `i` (live) entirely, without returning its cost to the budget;
    /// returns that cost.
    fn take_slot(&mut self, i: u32) -> u64 {
        self.lru.unlink(i);
        let (h, cost) = {
            let s = &self.slots[i as usize];
            (self.hasher.hash_one(s.key()), s.cost())
        };
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        let s = &mut self.slots[i as usize];
        s.data = Box::new([]);
        s.live = false;
        self.free.push(i);
        self.len = self.len.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(cost);
        cost
    }

    /// Removes slot `i` (live) entirely.
    fn remove_slot(&mut self, i: u32) {
        let cost = self.take_slot(i);
        self.budget.release(cost);
    }

    /// Reads `key` (touching it in the LRU). Expired entries are removed on the way.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<Bytes> {
        match self.read_within(key, now_ms, |_| true) {
            Read::Found { value, .. } => Some(value),
            Read::Missing | Read::Refused => None,
        }
    }

    /// Reads `key` as an owner answers a read: one lookup, the value copied once. A live
    /// value whose length `fits` accepts is returned with its expiry, touched in the LRU
    /// and counted as a hit; one it refuses is left as it was (not copied, touched or
    /// counted); no live value is a miss (counted). Expired entries are removed on the
    /// way.
    pub fn read_within(
        &mut self,
        key: &str,
        now_ms: u64,
        fits: impl FnOnce(usize) -> bool,
    ) -> Read {
        let Some(i) = self.lookup(key, now_ms) else {
            self.counters.misses += 1;
            return Read::Missing;
        };
        let s = &self.slots[i as usize];
        if !fits(s.value().len()) {
            return Read::Refused;
        }
        let found = Read::Found {
            value: Bytes::copy_from_slice(s.value()),
            expires: s.expires,
        };
        self.lru.touch(i);
        self.counters.hits += 1;
        found
    }

    /// The live entry at `key`, removing it if expired.
    fn lookup(&mut self, key: &str, now_ms: u64) -> Option<u32> {
        let i = self.find(key.as_bytes())?;
        if self.slots[i as usize].expired(now_ms) {
            self.remove_slot(i);
            self.counters.expired += 1;
            return None;
        }
        Some(i)
    }

    /// The entry at `key` with its version and expiry, without touching the LRU; a
    /// tombstone if only that is known.
    pub fn peek(&mut self, key: &str, now_ms: u64) -> Option<EntryView> {
        if let Some(i) = self.lookup(key, now_ms) {
            let s = &self.slots[i as usize];
            return Some(EntryView {
                key: key.to_string(),
                value: Some(Bytes::copy_from_slice(s.value())),
                version: s.version,
                expires: s.expires,
                partition: s.partition,
            });
        }
        self.tombstones
            .get(key)
            .map(|(version, partition)| EntryView {
                key: key.to_string(),
                value: None,
                version,
                expires: 0,
                partition,
            })
    }

    /// Applies a write (or, with `value: None`, a delete) if its version is newer than what
    /// is held (last writer wins; equal versions: the greater value wins, a delete loses).
    /// A delete leaves a tombstone so that older data arriving later (a partition pulled
    /// after a move or a healed split) cannot bring the key back; see
    /// [`Store::purge_tombstones`]. Evicts least recently used entries to respect the
    /// limits. Fails, changing nothing, with `InvalidInput` for what the store cannot
    /// represent (a key over `u16::MAX` bytes, a partition that does not exist) and with
    /// `QuotaExceeded` when the write's cost does not fit.
    pub fn apply(&mut self, entry: &EntryView, now_ms: u64, charge: Charge) -> Result<Applied> {
        self.apply_written(entry.written(), now_ms, charge)
    }

    /// [`Store::apply`] of a borrowed entry.
    pub fn apply_written(
        &mut self,
        entry: Written<'_>,
        now_ms: u64,
        charge: Charge,
    ) -> Result<Applied> {
        let key = entry.key;
        let Ok(key_len) = u16::try_from(key.len()) else {
            return Err(CacheError::KeyTooLongToStore(key.len()).into());
        };
        if usize::from(entry.partition) >= PARTITIONS {
            return Err(CacheError::NoSuchPartition(entry.partition).into());
        }
        if entry.version < self.cleared_before {
            // Older than a clear of the bucket: gone. A write is told the clear's version
            // so that its writer, if it wrote after the clear with a clock behind, writes
            // it again past it (as for a newer version held).
            return Ok(Applied {
                changed: false,
                existed: false,
                superseded_by: entry.value.is_some().then_some(self.cleared_before),
            });
        }
        let tomb = self.tombstones.get(key);
        if let Some((v, _)) = tomb {
            if v >= entry.version {
                let repeat = v == entry.version && entry.value.is_none();
                return Ok(Applied {
                    changed: false,
                    existed: false,
                    superseded_by: (!repeat).then_some(v),
                });
            }
        }
        let existing = self.lookup(key, now_ms);
        let existed = existing.is_some();
        if let Some(i) = existing {
            let s = &self.slots[i as usize];
            let newer = match (entry.version.cmp(&s.version), &entry.value) {
                (std::cmp::Ordering::Greater, _) => true,
                (std::cmp::Ordering::Equal, Some(v)) => *v > s.value(),
                _ => false,
            };
            if !newer {
                let repeat = entry.version == s.version && entry.value == Some(s.value());
                return Ok(Applied {
                    changed: false,
                    existed,
                    superseded_by: (!repeat).then_some(s.version),
                });
            }
        }
        match entry.value {
            None => self.delete(key, entry, existing, charge),
            // Already expired: the newest write says the key is gone.
            Some(_) if entry.expires != 0 && entry.expires <= now_ms => {
                let applied = self.delete(key, entry, existing, charge)?;
                if existed {
                    self.counters.expired += 1;
                }
                Ok(applied)
            }
            Some(value) => self.write(key, key_len, value, entry, existing, tomb.is_some(), charge),
        }
    }

    /// The delete part of [`Store::apply`]: removes the entry and remembers the delete,
    /// the tombstone paid for by the entry it replaces when there was one (an entry
    /// always costs more), reserved otherwise.
    fn delete(
        &mut self,
        key: &str,
        entry: Written<'_>,
        existing: Option<u32>,
        charge: Charge,
    ) -> Result<Applied> {
        let existed = existing.is_some();
        let new_tomb = self.tombstones.get(key).is_none();
        let cost = if new_tomb {
            tombstone_cost(key.len())
        } else {
            0
        };
        if new_tomb && !self.tombstones.has_room() {
            return Err(full("deletes remembered"));
        }
        let freed = match existing {
            Some(i) => self.slots[i as usize].cost(),
            None => 0,
        };
        if cost > freed {
            charge.take(&self.budget, cost - freed)?;
        }
        if let Some(i) = existing {
            self.take_slot(i);
        }
        self.budget.release(freed.saturating_sub(cost));
        if self
            .tombstones
            .remember(key, entry.version, entry.partition)
            .is_none()
        {
            // Checked above: cannot happen; give the charge back all the same.
            self.budget.release(cost);
        }
        Ok(Applied::done(existed))
    }

    /// The write part of [`Store::apply`]: reserves what the entry costs beyond what it
    /// replaces (an older entry or a tombstone), then stores it.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        key: &str,
        key_len: u16,
        value: &[u8],
        entry: Written<'_>,
        existing: Option<u32>,
        had_tomb: bool,
        charge: Charge,
    ) -> Result<Applied> {
        if existing.is_none() && self.free.is_empty() && self.slots.len() >= self.max_slots {
            return Err(full("entries"));
        }
        let cost = entry_cost(key.len(), value.len());
        let old_cost = existing.map(|i| self.slots[i as usize].cost()).unwrap_or(0);
        let tomb_cost = if had_tomb {
            tombstone_cost(key.len())
        } else {
            0
        };
        let held = old_cost.saturating_add(tomb_cost);
        if cost > held {
            charge.take(&self.budget, cost - held)?;
        } else {
            self.budget.release(held - cost);
        }
        // Its cost moved to the entry above.
        let _ = self.tombstones.forget(key);
        let len = key.len().saturating_add(value.len());
        let fresh = || {
            let mut data = Vec::with_capacity(len);
            data.extend_from_slice(key.as_bytes());
            data.extend_from_slice(value);
            data.into_boxed_slice()
        };
        let i = match existing {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                // The same key with a value of the same length (a counter, a record of
                // fixed size): its bytes are overwritten where they are, without
                // allocating. Reads copy values out, so no reader sees the change.
                let same_len = s.data.len() == len;
                match s.data.get_mut(key.len()..) {
                    Some(held) if same_len => held.copy_from_slice(value),
                    _ => s.data = fresh(),
                }
                s.version = entry.version;
                s.expires = entry.expires;
                i
            }
            None => {
                let slot = Slot {
                    data: fresh(),
                    version: entry.version,
                    expires: entry.expires,
                    key_len,
                    partition: entry.partition,
                    live: true,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i as usize] = slot;
                        i
                    }
                    None => {
                        // Below `max_slots` <= 2^31 (checked above).
                        let i = u32::try_from(self.slots.len()).unwrap_or(u32::MAX - 1);
                        self.slots.push(slot);
                        i
                    }
                };
                let h = self.hasher.hash_one(key.as_bytes());
                let (slots, hasher) = (&self.slots, &self.hasher);
                self.index.insert_unique(h, i, |&j| {
                    hasher.hash_one(slots.get(j as usize).map_or(&[][..], Slot::key))
                });
                self.len += 1;
                i
            }
        };
        self.bytes = self.bytes.saturating_sub(old_cost).saturating_add(cost);
        self.lru.touch(i);
        self.evict_over_limits(i);
        Ok(Applied::done(existing.is_some()))
    }

    /// Removes least recently used entries (never `keep`) until the limits hold.
    fn evict_over_limits(&mut self, keep: u32) {
        loop {
            let over_entries = self.limits.max_entries.is_some_and(|m| self.len > m);
            let over_bytes = self.limits.max_bytes.is_some_and(|m| self.bytes > m);
            if !(over_entries || over_bytes) {
                return;
            }
            let Some(victim) = self.lru.last() else {
                return;
            };
            if victim == keep {
                return;
            }
            self.remove_slot(victim);
            self.counters.evicted += 1;
        }
    }

    /// Removes expired entries among up to `samples` random slots; returns how many.
    pub fn expire_sample(&mut self, samples: usize, now_ms: u64) -> usize {
        if self.slots.is_empty() {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..samples {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let i = (self.rng % self.slots.len() as u64) as u32;
            let s = &self.slots[i as usize];
            if s.live && s.expired(now_ms) {
                self.remove_slot(i);
                self.counters.expired += 1;
                removed += 1;
            }
        }
        removed
    }

    /// Entries of the given partitions (a set as a bitmap), then their tombstones,
    /// starting at `cursor`, up to `max_bytes` of keys and values (one entry larger than
    /// that travels alone). Returns them and the cursor to continue from (`None` when
    /// done): below [`TOMBSTONE_CURSOR`] a slot of the entries, from it on a position
    /// among the tombstones. A cursor a peer made up gives a short or empty page.
    pub fn page(
        &self,
        wanted: &[bool],
        cursor: u32,
        max_bytes: usize,
        now_ms: u64,
    ) -> (Vec<EntryView>, Option<u32>) {
        let mut out = Vec::new();
        let mut size = 0usize;
        if cursor < TOMBSTONE_CURSOR {
            for (i, s) in self.slots.iter().enumerate().skip(cursor as usize) {
                if !s.live
                    || s.expired(now_ms)
                    || !wanted
                        .get(usize::from(s.partition))
                        .copied()
                        .unwrap_or(false)
                {
                    continue;
                }
                let item = s.data.len().saturating_add(PAGE_ITEM_OVERHEAD);
                if !out.is_empty() && size.saturating_add(item) > max_bytes {
                    // Slot indices stay below `TOMBSTONE_CURSOR`.
                    return (out, u32::try_from(i).ok());
                }
                size = size.saturating_add(item);
                out.push(EntryView {
                    key: String::from_utf8_lossy(s.key()).into_owned(),
                    value: Some(Bytes::copy_from_slice(s.value())),
                    version: s.version,
                    expires: s.expires,
                    partition: s.partition,
                });
            }
        }
        let from = cursor.saturating_sub(TOMBSTONE_CURSOR);
        let next = self
            .tombstones
            .page(wanted, from, max_bytes, &mut out, &mut size)
            .map(|t| TOMBSTONE_CURSOR.saturating_add(t));
        (out, next)
    }

    /// Live entries per partition.
    pub fn counts(&self, now_ms: u64) -> Vec<u64> {
        let mut counts = vec![0u64; PARTITIONS];
        for s in &self.slots {
            if s.live && !s.expired(now_ms) {
                if let Some(c) = counts.get_mut(usize::from(s.partition)) {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Drops every entry and tombstone of the partitions in `which`.
    pub fn drop_partitions(&mut self, which: &[bool]) -> usize {
        let removed = self.remove_live_where(|s| {
            which
                .get(usize::from(s.partition))
                .copied()
                .unwrap_or(false)
        });
        self.forget_deletes_where(|_, p| which.get(usize::from(p)).copied().unwrap_or(false));
        removed
    }

    /// Removes every live entry whose slot `pick` chooses; returns how many.
    fn remove_live_where(&mut self, pick: impl Fn(&Slot) -> bool) -> usize {
        let victims: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| {
                let s = &self.slots[i as usize];
                s.live && pick(s)
            })
            .collect();
        for &i in &victims {
            self.remove_slot(i);
        }
        victims.len()
    }

    /// Clears the bucket as of `version` (a `FLUSHDB`, ADR 0021): removes every entry and
    /// forgets every delete older than it, and from now on refuses writes and deletes
    /// older than it (whether a peer forwards them late or a pull brings them), so that
    /// what was written before the clear cannot come back and what was written after it
    /// stays. Returns how many entries were removed.
    pub fn clear_before(&mut self, version: u64) -> usize {
        self.cleared_before = self.cleared_before.max(version);
        let horizon = self.cleared_before;
        let removed = self.remove_live_where(|s| s.version < horizon);
        self.forget_deletes_where(|v, _| v < horizon);
        removed
    }

    /// The version the bucket was last cleared at ([`Store::clear_before`]; 0: never).
    pub fn cleared_before(&self) -> u64 {
        self.cleared_before
    }

    /// Which partitions hold at least one live entry.
    pub fn occupied(&self) -> Vec<bool> {
        let mut out = vec![false; PARTITIONS];
        for s in &self.slots {
            if s.live {
                if let Some(o) = out.get_mut(usize::from(s.partition)) {
                    *o = true;
                }
            }
        }
        out
    }
}

/// The error for a store that holds as many entries (or tombstones) as it can name.
fn full(what: &'static str) -> Error {
    CacheError::StoreFull(what).into()
}

impl Drop for Store {
    fn drop(&mut self) {
        self.budget
            .release(self.bytes.saturating_add(self.tombstones.bytes()));
    }
}

#[cfg(test)]
mod tests;
