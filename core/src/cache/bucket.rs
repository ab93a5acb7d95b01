//! A bucket on this node: its entries and the state of each of its partitions here
//! (not owned, ready, or syncing from the members that may hold data this node lacks).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::cache::partition::PARTITIONS;
use crate::cache::routing::Table;
use crate::cache::store::{Limits, Store};
use crate::cache::{CacheOptions, CacheStats};
use crate::identity::NodeId;
use crate::memory::MemoryBudget;

/// This node does not own the partition (it may still hold data from before a move).
pub const NOT_OWNED: u8 = 0;
/// This node owns the partition and holds every acknowledged write of it.
pub const READY: u8 = 1;
/// This node owns the partition but is still pulling it from members that may hold data.
pub const SYNCING: u8 = 2;

#[derive(Debug)]
struct Sync {
    pending: Vec<BTreeSet<NodeId>>,
    not_owned_since: Vec<Option<Instant>>,
    last_served: Vec<Option<Instant>>,
}

/// One bucket on this node.
#[derive(Debug)]
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// Its options (the same on every node).
    pub options: CacheOptions,
    store: Mutex<Store>,
    parts: Vec<AtomicU8>,
    sync: Mutex<Sync>,
    placed: Mutex<Arc<Table>>,
    placed_epoch: AtomicU64,
    /// Serialises read-modify-writes done here as primary.
    pub rmw_lock: tokio::sync::Mutex<()>,
    /// Bumped whenever partition states change (pull tasks check it).
    pub generation: AtomicU64,
}

impl Bucket {
    /// A bucket placed by `table`. With `fresh` (a bucket this node just defined and no
    /// one else has), owned partitions are ready at once; otherwise they are pulled from
    /// every other member first.
    pub fn new(
        name: String,
        options: CacheOptions,
        budget: Arc<MemoryBudget>,
        table: Arc<Table>,
        me: NodeId,
        fresh: bool,
    ) -> Self {
        let limits = Limits {
            max_entries: options.max_entries,
            max_bytes: options.max_bytes,
        };
        let others: BTreeSet<NodeId> = table.members.iter().copied().filter(|m| *m != me).collect();
        let mut pending = vec![BTreeSet::new(); PARTITIONS];
        let now = Instant::now();
        let not_owned_since = (0..PARTITIONS as u16)
            .map(|p| (!table.owners(p, options.replicas).contains(&me)).then_some(now))
            .collect();
        let parts = (0..PARTITIONS as u16)
            .map(|p| {
                let owner = table.owners(p, options.replicas).contains(&me);
                let state = if !owner {
                    NOT_OWNED
                } else if fresh || others.is_empty() {
                    READY
                } else {
                    pending[p as usize] = others.clone();
                    SYNCING
                };
                AtomicU8::new(state)
            })
            .collect();
        Self {
            name,
            options,
            store: Mutex::new(Store::new(limits, budget)),
            parts,
            sync: Mutex::new(Sync {
                pending,
                not_owned_since,
                last_served: vec![None; PARTITIONS],
            }),
            generation: AtomicU64::new(0),
            placed_epoch: AtomicU64::new(table.epoch),
            placed: Mutex::new(table),
            rmw_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The epoch of the table this bucket is placed by.
    pub fn epoch(&self) -> u64 {
        self.placed_epoch.load(Ordering::Acquire)
    }

    /// Re-places the bucket by `new` (see [`Bucket::on_table`]).
    pub fn place(&self, new: Arc<Table>, me: NodeId, now: Instant) {
        let mut placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        if placed.epoch == new.epoch {
            return;
        }
        self.on_table(&placed, &new, me, now);
        self.placed_epoch.store(new.epoch, Ordering::Release);
        *placed = new;
    }

    /// The entries.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sync(&self) -> MutexGuard<'_, Sync> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of partition `p` here.
    pub fn state(&self, p: u16) -> u8 {
        self.parts
            .get(p as usize)
            .map(|s| s.load(Ordering::Acquire))
            .unwrap_or(NOT_OWNED)
    }

    /// The members partition `p` is still being pulled from.
    pub fn pending(&self, p: u16) -> Vec<NodeId> {
        self.sync()
            .pending
            .get(p as usize)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every (source, partitions) pull still to do.
    pub fn pulls(&self) -> BTreeMap<NodeId, Vec<u16>> {
        let sync = self.sync();
        let mut out: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
        for (p, sources) in sync.pending.iter().enumerate() {
            for s in sources {
                out.entry(*s).or_default().push(p as u16);
            }
        }
        out
    }

    /// Moves to `new` from `old`: partitions this node gains (or that new members may
    /// hold data for) start syncing, partitions it loses stop being owned. When this node
    /// rejoined in between (the cluster had declared it down: a split or a pause), every
    /// other member counts as new: what it holds may have missed writes, so it pulls
    /// every partition it owns from everyone before answering alone again.
    fn on_table(&self, old: &Table, new: &Table, me: NodeId, now: Instant) {
        let rejoined = new.rejoins != old.rejoins;
        let newcomers: BTreeSet<NodeId> = new
            .members
            .iter()
            .copied()
            .filter(|m| *m != me && (rejoined || !old.contains(m)))
            .collect();
        let others: BTreeSet<NodeId> = new.members.iter().copied().filter(|m| *m != me).collect();
        let mut sync = self.sync();
        for p in 0..PARTITIONS as u16 {
            let i = p as usize;
            let owner = new.owners(p, self.options.replicas).contains(&me);
            let state = self.parts[i].load(Ordering::Acquire);
            if !owner {
                if state != NOT_OWNED {
                    sync.not_owned_since[i] = Some(now);
                }
                sync.pending[i].clear();
                self.parts[i].store(NOT_OWNED, Ordering::Release);
                continue;
            }
            sync.not_owned_since[i] = None;
            let pending = &mut sync.pending[i];
            match state {
                READY => pending.extend(newcomers.iter().copied()),
                SYNCING => {
                    pending.retain(|m| new.contains(m));
                    pending.extend(newcomers.iter().copied());
                }
                _ => *pending = others.clone(),
            }
            if pending.is_empty() {
                self.parts[i].store(READY, Ordering::Release);
            } else {
                self.parts[i].store(SYNCING, Ordering::Release);
            }
        }
        drop(sync);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records that `source` has given this node everything it holds of `partitions`.
    pub fn pulled(&self, source: &NodeId, partitions: &[u16]) {
        let mut sync = self.sync();
        for &p in partitions {
            let i = p as usize;
            if let Some(pending) = sync.pending.get_mut(i) {
                if pending.remove(source)
                    && pending.is_empty()
                    && self.parts[i].load(Ordering::Acquire) == SYNCING
                {
                    self.parts[i].store(READY, Ordering::Release);
                }
            }
        }
    }

    /// Records that a peer pulled `partitions` from here (their data is kept a while).
    pub fn served(&self, partitions: &[u16], now: Instant) {
        let mut sync = self.sync();
        for &p in partitions {
            if let Some(s) = sync.last_served.get_mut(p as usize) {
                *s = Some(now);
            }
        }
    }

    /// Drops the data of partitions not owned for at least `after` (and not pulled from
    /// here for as long). Returns how many entries were dropped.
    pub fn drop_stale(&self, now: Instant, after: std::time::Duration) -> usize {
        let sync = self.sync();
        let old = |t: Option<Instant>| t.is_none_or(|t| now.duration_since(t) >= after);
        let which: Vec<bool> = (0..PARTITIONS)
            .map(|i| {
                self.parts[i].load(Ordering::Acquire) == NOT_OWNED
                    && sync.not_owned_since[i].is_some_and(|t| now.duration_since(t) >= after)
                    && old(sync.last_served[i])
            })
            .collect();
        drop(sync);
        if !which.iter().any(|w| *w) {
            return 0;
        }
        self.store().drop_partitions(&which)
    }

    /// This node's counters.
    pub fn stats(&self) -> CacheStats {
        let store = self.store();
        let c = store.counters();
        CacheStats {
            entries: store.len(),
            bytes: store.bytes(),
            hits: c.hits,
            misses: c.misses,
            expired: c.expired,
            evicted: c.evicted,
        }
    }
}
