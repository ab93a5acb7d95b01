//! The deletes a store remembers (tombstones): key, version and partition, kept in a slab
//! with stable positions so that a pull can page through them with a cursor, like
//! through the entries. Pure logic: the store charges their cost to the memory budget.

use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::cache::store::EntryView;

/// Bytes charged per tombstone (a delete remembered) on top of its key: the slab slot
/// (boxed key 16 B, version 8 B, partition, padded), the index slot and the allocator's
/// header.
pub const TOMBSTONE_OVERHEAD: u64 = 64;

/// Bytes a page counts per entry or tombstone on top of its key and value.
pub(crate) const PAGE_ITEM_OVERHEAD: usize = 32;

/// The bytes a tombstone costs.
pub fn tombstone_cost(key_len: usize) -> u64 {
    u64::try_from(key_len)
        .unwrap_or(u64::MAX)
        .saturating_add(TOMBSTONE_OVERHEAD)
}

#[derive(Debug)]
struct Tomb {
    key: Box<str>,
    version: u64,
    partition: u16,
}

/// The tombstones of one store.
#[derive(Debug, Default)]
pub(crate) struct Tombstones {
    slots: Vec<Option<Tomb>>,
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    free: Vec<u32>,
    len: usize,
    bytes: u64,
    /// Most slots (positions stay below it, so a cursor can name them).
    max_slots: usize,
}

impl Tombstones {
    /// No tombstone, room for at most `max_slots`.
    pub fn new(max_slots: usize) -> Self {
        Self {
            max_slots,
            ..Self::default()
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes they cost.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn find(&self, key: &str) -> Option<u32> {
        let h = self.hasher.hash_one(key.as_bytes());
        self.index
            .find(h, |&i| {
                self.slots
                    .get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|t| &*t.key == key)
            })
            .copied()
    }

    /// The (version, partition) of the delete of `key`, if remembered.
    pub fn get(&self, key: &str) -> Option<(u64, u16)> {
        let i = self.find(key)?;
        let t = self.slots.get(i as usize)?.as_ref()?;
        Some((t.version, t.partition))
    }

    /// Whether a new tombstone fits.
    pub fn has_room(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < self.max_slots
    }

    /// Remembers that `key` was deleted at `version` (keeping the newest). Returns the
    /// bytes it newly costs (0 when it updated one), or `None` when there is no room
    /// (see [`Tombstones::has_room`]).
    pub fn remember(&mut self, key: &str, version: u64, partition: u16) -> Option<u64> {
        if let Some(i) = self.find(key) {
            if let Some(t) = self.slots.get_mut(i as usize).and_then(Option::as_mut) {
                if t.version < version {
                    t.version = version;
                    t.partition = partition;
                }
            }
            return Some(0);
        }
        if !self.has_room() {
            return None;
        }
        let tomb = Tomb {
            key: key.into(),
            version,
            partition,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(tomb);
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                self.slots.push(Some(tomb));
                i
            }
        };
        let h = self.hasher.hash_one(key.as_bytes());
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(h, i, |&j| {
            let key = slots
                .get(j as usize)
                .and_then(Option::as_ref)
                .map_or(&[][..], |t| t.key.as_bytes());
            hasher.hash_one(key)
        });
        let cost = tombstone_cost(key.len());
        self.len += 1;
        self.bytes = self.bytes.saturating_add(cost);
        Some(cost)
    }

    fn remove_at(&mut self, i: u32) -> u64 {
        let Some(t) = self.slots.get_mut(i as usize).and_then(Option::take) else {
            return 0;
        };
        let h = self.hasher.hash_one(t.key.as_bytes());
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        self.free.push(i);
        self.len -= 1;
        let cost = tombstone_cost(t.key.len());
        self.bytes = self.bytes.saturating_sub(cost);
        cost
    }

    /// Forgets the tombstone of `key`; returns the bytes it cost (0 if there was none).
    pub fn forget(&mut self, key: &str) -> u64 {
        match self.find(key) {
            Some(i) => self.remove_at(i),
            None => 0,
        }
    }

    /// Forgets every tombstone for which `drop(version, partition)` holds; returns how
    /// many and the bytes they cost.
    pub fn forget_where(&mut self, mut drop: impl FnMut(u64, u16) -> bool) -> (usize, u64) {
        let victims: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let t = t.as_ref()?;
                drop(t.version, t.partition).then_some(i as u32)
            })
            .collect();
        let mut bytes = 0u64;
        for &i in &victims {
            bytes = bytes.saturating_add(self.remove_at(i));
        }
        (victims.len(), bytes)
    }

    /// Appends the tombstones of the `wanted` partitions from position `from` to `out`,
    /// counting their bytes in `size`, until `size` would pass `max_bytes` (at least one
    /// goes into an empty page). Returns the position to continue from, `None` when done.
    pub fn page(
        &self,
        wanted: &[bool],
        from: u32,
        max_bytes: usize,
        out: &mut Vec<EntryView>,
        size: &mut usize,
    ) -> Option<u32> {
        for (i, t) in self.slots.iter().enumerate().skip(from as usize) {
            let Some(t) = t else { continue };
            if !wanted
                .get(usize::from(t.partition))
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            let item = t.key.len().saturating_add(PAGE_ITEM_OVERHEAD);
            if !out.is_empty() && size.saturating_add(item) > max_bytes {
                return u32::try_from(i).ok();
            }
            *size = size.saturating_add(item);
            out.push(EntryView {
                key: t.key.to_string(),
                value: None::<Bytes>,
                version: t.version,
                expires: 0,
                partition: t.partition,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_stable_and_reused_and_costs_add_up() {
        let mut t = Tombstones::new(3);
        assert_eq!(t.remember("a", 5, 1), Some(tombstone_cost(1)));
        assert_eq!(t.remember("bb", 6, 2), Some(tombstone_cost(2)));
        assert_eq!(
            t.remember("a", 4, 1),
            Some(0),
            "an older delete changes nothing"
        );
        assert_eq!(t.get("a"), Some((5, 1)));
        assert_eq!(t.remember("a", 9, 1), Some(0));
        assert_eq!(t.get("a"), Some((9, 1)));
        assert_eq!(t.remember("c", 1, 3), Some(tombstone_cost(1)));
        assert!(!t.has_room());
        assert_eq!(t.remember("d", 1, 3), None, "full");
        assert_eq!(t.bytes(), 2 * tombstone_cost(1) + tombstone_cost(2));
        assert_eq!(t.forget("bb"), tombstone_cost(2));
        assert_eq!(t.forget("bb"), 0);
        assert_eq!(t.get("c"), Some((1, 3)), "others keep their place");
        assert_eq!(t.remember("d", 1, 3), Some(tombstone_cost(1)));
        assert_eq!(t.len(), 3);
        let (n, bytes) = t.forget_where(|_, p| p == 3);
        assert_eq!((n, bytes), (2, 2 * tombstone_cost(1)));
        assert_eq!((t.len(), t.bytes()), (1, tombstone_cost(1)));
    }

    #[test]
    fn pages_respect_the_byte_budget_and_resume() {
        let mut t = Tombstones::new(1000);
        for i in 0..100 {
            t.remember(&format!("key{i:03}"), i, (i % 2) as u16);
        }
        let wanted = [true, false];
        let (mut seen, mut from) = (Vec::new(), Some(0));
        while let Some(f) = from {
            let (mut out, mut size) = (Vec::new(), 0);
            from = t.page(&wanted, f, 100, &mut out, &mut size);
            assert!(size <= 100 || out.len() == 1);
            assert!(!out.is_empty() || from.is_none());
            seen.extend(out.into_iter().map(|e| e.key));
        }
        assert_eq!(seen.len(), 50);
        assert!(seen.iter().all(|k| k[3..].parse::<u32>().unwrap() % 2 == 0));
    }
}
