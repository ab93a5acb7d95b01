//! A bucket on this node: its entries and the state of each of its partitions here
//! (not owned, ready, or syncing from the members that may hold data this node lacks).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::cache::messages::Spec;
use crate::cache::partition_state::{PartitionState, Partitions};
use crate::cache::routing::Table;
use crate::cache::store::{Limits, Store};
use crate::cache::{CacheOptions, CacheStats};
use crate::identity::NodeId;
use crate::memory::MemoryBudget;

/// Stripes of the read-modify-write locks of a bucket. Before, one lock per bucket
/// serialised every `incr` and `expire` a primary did, each holding it for a whole
/// replication round trip: at most one per round trip per node, whatever the keys.
pub const RMW_STRIPES: usize = 32;

/// The stripe of the read-modify-write lock of partition `p`: every key of a partition
/// (so every operation on one key) takes the same lock.
pub fn rmw_stripe(p: u16) -> usize {
    usize::from(p) % RMW_STRIPES
}

/// One bucket on this node.
#[derive(Debug)]
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// Its options (the same on every node).
    pub options: CacheOptions,
    store: Mutex<Store>,
    /// Each partition's state, readable without a lock; written only under `sync`, as
    /// a copy of what the state machine there decided.
    parts: Vec<AtomicU8>,
    sync: Mutex<Partitions>,
    placed: Mutex<Arc<Table>>,
    placed_epoch: AtomicU64,
    /// Serialise read-modify-writes done here as primary: one lock per stripe of
    /// partitions ([`rmw_stripe`]), so those of one key are serialised and those of keys
    /// in other stripes run at once.
    rmw_locks: Vec<tokio::sync::Mutex<()>>,
    /// Bumped whenever partition states change (pull tasks check it).
    pub generation: AtomicU64,
    /// Its name and options as the writes it sends carry them, made once.
    spec: Arc<Spec>,
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
        let sync = Partitions::new(&table, options.replicas, me, fresh, Instant::now());
        let parts = sync
            .states()
            .iter()
            .map(|s| AtomicU8::new(s.as_u8()))
            .collect();
        Self {
            spec: Arc::new(Spec {
                name: name.clone(),
                options,
            }),
            name,
            options,
            store: Mutex::new(Store::new(limits, budget)),
            parts,
            sync: Mutex::new(sync),
            generation: AtomicU64::new(0),
            placed_epoch: AtomicU64::new(table.epoch),
            placed: Mutex::new(table),
            rmw_locks: (0..RMW_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Its name and options, as a write request carries them.
    pub fn spec(&self) -> Arc<Spec> {
        self.spec.clone()
    }

    /// The lock that serialises read-modify-writes of partition `p` here.
    pub fn rmw_lock(&self, p: u16) -> &tokio::sync::Mutex<()> {
        &self.rmw_locks[rmw_stripe(p)]
    }

    /// The epoch of the table this bucket is placed by.
    pub fn epoch(&self) -> u64 {
        self.placed_epoch.load(Ordering::Acquire)
    }

    /// Re-places the bucket by `new` at `now`: partitions this node gains (or that new
    /// members may hold data for) start syncing, partitions it loses stop being owned
    /// (see [`Partitions::on_table`]).
    pub fn place(&self, new: Arc<Table>, me: NodeId, now: Instant) {
        let mut placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        if placed.epoch == new.epoch {
            return;
        }
        {
            let mut sync = self.sync();
            sync.on_table(&placed, &new, self.options.replicas, me, now);
            self.publish(&sync);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.placed_epoch.store(new.epoch, Ordering::Release);
        *placed = new;
    }

    /// Copies the states decided in `sync` (held locked) to the lock-free ones.
    fn publish(&self, sync: &Partitions) {
        for (slot, state) in self.parts.iter().zip(sync.states()) {
            slot.store(state.as_u8(), Ordering::Release);
        }
    }

    /// The entries.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sync(&self) -> MutexGuard<'_, Partitions> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of partition `p` here.
    pub fn state(&self, p: u16) -> PartitionState {
        self.parts
            .get(p as usize)
            .map(|s| PartitionState::from_u8(s.load(Ordering::Acquire)))
            .unwrap_or(PartitionState::NotOwned)
    }

    /// The members partition `p` is still being pulled from.
    pub fn pending(&self, p: u16) -> Vec<NodeId> {
        self.sync().pending(p)
    }

    /// Every (source, partitions) pull still to do.
    pub fn pulls(&self) -> BTreeMap<NodeId, Vec<u16>> {
        self.sync().pulls()
    }

    /// Records that `source` has given this node everything it holds of `partitions`.
    pub fn pulled(&self, source: &NodeId, partitions: &[u16]) {
        let mut sync = self.sync();
        sync.pulled(source, partitions);
        self.publish(&sync);
    }

    /// Records that a peer pulled `partitions` from here (their data is kept a while).
    pub fn served(&self, partitions: &[u16], now: Instant) {
        self.sync().served(partitions, now);
    }

    /// Records that the member `by` pulled everything this node holds of `partitions`.
    pub fn pulled_all(&self, by: NodeId, partitions: &[u16]) {
        self.sync().pulled_all(by, partitions);
    }

    /// How many partitions holding entries here are still to be handed off, placed by
    /// `before` when draining began (see [`Partitions::handoff_pending`]).
    pub fn handoff_left(&self, before: &Table, now_ms: u64) -> usize {
        let counts = self.store().counts(now_ms);
        let placed = self
            .placed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let sync = self.sync();
        counts
            .iter()
            .enumerate()
            .filter(|(p, c)| {
                **c > 0 && sync.handoff_pending(*p as u16, before, &placed, self.options.replicas)
            })
            .count()
    }

    /// Drops the data of partitions not owned for at least `after` (and not pulled from
    /// here for as long). Returns how many entries were dropped.
    pub fn drop_stale(&self, now: Instant, after: std::time::Duration) -> usize {
        let which = self.sync().stale(now, after);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::partition::{partition_of, PARTITIONS};

    #[test]
    fn one_key_always_takes_one_rmw_lock_and_partitions_spread_over_every_stripe() {
        for key in ["counter", "a", "k:0000001"] {
            let p = partition_of(key);
            assert_eq!(rmw_stripe(p), rmw_stripe(partition_of(key)));
            assert!(rmw_stripe(p) < RMW_STRIPES);
        }
        let mut used = [false; RMW_STRIPES];
        for p in 0..PARTITIONS as u16 {
            used[rmw_stripe(p)] = true;
        }
        assert!(used.iter().all(|u| *u));
    }
}
