//! The blocks this node holds in RAM, each with the set of nodes that put it (its
//! owners), charged to the node's memory budget. Pure logic.
//!
//! The same content is stored and charged once, however many nodes put it; each owner
//! beyond the first costs [`OWNER_OVERHEAD`]. Only an owner can free its reference, and
//! the block is dropped with its last reference. Owners that are gone for good (neither
//! connected nor members any more, for [`DEPARTED_GRACE`]) lose their references in
//! [`BlockStore::sweep`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::blocks::id::BlockId;
use crate::error::{Classify, ErrorKind, Result};
use crate::identity::NodeId;
use crate::memory::{MemoryBudget, QuotaExceeded};

/// Why the store refuses a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The memory budget cannot hold the block (or its new owner).
    #[error("cannot store a block of {len} bytes: {source}")]
    NoRoom {
        /// The block's length.
        len: usize,
        /// The budget's refusal.
        source: QuotaExceeded,
    },
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NoRoom { .. } => ErrorKind::QuotaExceeded,
        }
    }
}

/// Bytes charged per block on top of its content: the map slot, the id, the `Bytes`
/// handle, its first owner and the allocator's header, rounded up.
pub const BLOCK_OVERHEAD: u64 = 128;
/// Bytes charged for each owner of a block beyond its first (its id in the owner set).
pub const OWNER_OVERHEAD: u64 = 64;
/// How long an owner must have been gone (not connected, not a member) before its
/// references are released.
pub const DEPARTED_GRACE: Duration = Duration::from_secs(10);
/// Shortest interval between two sweeps for departed owners.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The bytes a block of `len` bytes costs against the quota (with one owner).
pub fn block_cost(len: usize) -> u64 {
    (len as u64).saturating_add(BLOCK_OVERHEAD)
}

/// What [`BlockStore::free`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freed {
    /// The owner's reference is gone; `dropped` says whether the block went with it
    /// (it was the last reference).
    Released {
        /// Whether the block itself was dropped.
        dropped: bool,
    },
    /// The block is here, but this node does not hold a reference to it.
    NotOwner,
    /// The block is not here.
    NotHere,
}

#[derive(Debug)]
struct Held {
    data: Bytes,
    owners: BTreeSet<NodeId>,
}

impl Held {
    fn cost(&self) -> u64 {
        let extra = (self.owners.len() as u64).saturating_sub(1);
        block_cost(self.data.len()).saturating_add(extra.saturating_mul(OWNER_OVERHEAD))
    }
}

/// Blocks held locally, with their owners.
#[derive(Debug)]
pub struct BlockStore {
    budget: Arc<MemoryBudget>,
    blocks: HashMap<BlockId, Held>,
    by_owner: HashMap<NodeId, BTreeSet<BlockId>>,
    bytes: u64,
    missing_since: HashMap<NodeId, Instant>,
    last_sweep: Option<Instant>,
    sweeper: bool,
}

impl BlockStore {
    /// An empty store charging `budget`.
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            blocks: HashMap::new(),
            by_owner: HashMap::new(),
            bytes: 0,
            missing_since: HashMap::new(),
            last_sweep: None,
            sweeper: false,
        }
    }

    /// Stores `data` under its id for `owner`. Content that is already here is not
    /// stored again: `owner` joins its owners (costing [`OWNER_OVERHEAD`] if it is new).
    /// Fails with `QuotaExceeded` (storing nothing, evicting nothing) if the budget is
    /// short.
    pub fn put(&mut self, data: Bytes, owner: NodeId) -> Result<BlockId> {
        let id = BlockId::of(&data);
        let cost = match self.blocks.get(&id) {
            Some(held) if held.owners.contains(&owner) => return Ok(id),
            Some(_) => OWNER_OVERHEAD,
            None => block_cost(data.len()),
        };
        self.budget
            .try_reserve(cost)
            .map_err(|source| StoreError::NoRoom {
                len: data.len(),
                source,
            })?;
        let len = data.len() as u64;
        let held = self.blocks.entry(id).or_insert_with(|| Held {
            data,
            owners: BTreeSet::new(),
        });
        if held.owners.is_empty() {
            self.bytes = self.bytes.saturating_add(len);
        }
        held.owners.insert(owner);
        self.by_owner.entry(owner).or_default().insert(id);
        Ok(id)
    }

    /// The block `id`, if held here.
    pub fn get(&self, id: &BlockId) -> Option<Bytes> {
        self.blocks.get(id).map(|h| h.data.clone())
    }

    /// Whether `id` is held here.
    pub fn contains(&self, id: &BlockId) -> bool {
        self.blocks.contains_key(id)
    }

    /// The nodes holding a reference to `id` (empty if it is not here).
    pub fn owners(&self, id: &BlockId) -> Vec<NodeId> {
        self.blocks
            .get(id)
            .map(|h| h.owners.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Drops `owner`'s reference to `id`, and the block with its last reference.
    pub fn free(&mut self, id: &BlockId, owner: &NodeId) -> Freed {
        let Some(held) = self.blocks.get_mut(id) else {
            return Freed::NotHere;
        };
        if !held.owners.remove(owner) {
            return Freed::NotOwner;
        }
        if let Some(ids) = self.by_owner.get_mut(owner) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_owner.remove(owner);
            }
        }
        if !held.owners.is_empty() {
            self.budget.release(OWNER_OVERHEAD);
            return Freed::Released { dropped: false };
        }
        if let Some(held) = self.blocks.remove(id) {
            self.bytes = self.bytes.saturating_sub(held.data.len() as u64);
            self.budget.release(block_cost(held.data.len()));
        }
        Freed::Released { dropped: true }
    }

    /// Drops every reference `owner` holds; returns how many.
    pub fn release_owner(&mut self, owner: &NodeId) -> usize {
        let ids = self.by_owner.remove(owner).unwrap_or_default();
        let mut n = 0;
        for id in &ids {
            // `by_owner` is gone already: `free` finds nothing more to update there.
            if matches!(self.free(id, owner), Freed::Released { .. }) {
                n += 1;
            }
        }
        n
    }

    /// Owners other than `me` that hold at least one reference.
    pub fn foreign_owners(&self, me: &NodeId) -> Vec<NodeId> {
        self.by_owner.keys().filter(|o| *o != me).copied().collect()
    }

    /// Releases the references of owners other than `me` that `present` says are gone
    /// and that have been gone for [`DEPARTED_GRACE`] (an owner seen present again starts
    /// over). Does nothing if the last sweep was less than [`SWEEP_INTERVAL`] ago.
    /// Returns the owners released, with how many references each held.
    pub fn sweep(
        &mut self,
        now: Instant,
        me: &NodeId,
        present: impl Fn(&NodeId) -> bool,
    ) -> Vec<(NodeId, usize)> {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_INTERVAL)
        {
            return Vec::new();
        }
        self.last_sweep = Some(now);
        let owners = self.foreign_owners(me);
        self.missing_since.retain(|o, _| owners.contains(o));
        let mut released = Vec::new();
        for owner in owners {
            if present(&owner) {
                self.missing_since.remove(&owner);
                continue;
            }
            let since = *self.missing_since.entry(owner).or_insert(now);
            if now.saturating_duration_since(since) >= DEPARTED_GRACE {
                self.missing_since.remove(&owner);
                released.push((owner, self.release_owner(&owner)));
            }
        }
        released
    }

    /// Marks that a sweeper runs for this store; `false` if one already did.
    pub fn start_sweeper(&mut self) -> bool {
        !std::mem::replace(&mut self.sweeper, true)
    }

    /// Marks the sweeper as stopped if no foreign owner is left (`true`: it may stop).
    pub fn stop_sweeper_if_idle(&mut self, me: &NodeId) -> bool {
        if self.foreign_owners(me).is_empty() {
            self.sweeper = false;
            true
        } else {
            false
        }
    }

    /// How many blocks are held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Content bytes held (without overhead).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for BlockStore {
    fn drop(&mut self) {
        let cost = self
            .blocks
            .values()
            .fold(0u64, |sum, h| sum.saturating_add(h.cost()));
        self.budget.release(cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn id() -> NodeId {
        Keypair::generate().unwrap().node_id()
    }

    #[test]
    fn quota_counts_overhead_and_refuses_without_evicting() {
        let me = id();
        let budget = Arc::new(MemoryBudget::new(2 * block_cost(100)));
        let mut s = BlockStore::new(budget.clone());
        let a = s.put(Bytes::from(vec![1u8; 100]), me).unwrap();
        let again = s.put(Bytes::from(vec![1u8; 100]), me).unwrap();
        assert_eq!(a, again);
        assert_eq!(budget.used(), block_cost(100));
        s.put(Bytes::from(vec![2u8; 100]), me).unwrap();
        let err = s.put(Bytes::from(vec![3u8; 1]), me).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(s.len(), 2);
        assert!(s.get(&a).is_some());
        assert_eq!(s.free(&a, &me), Freed::Released { dropped: true });
        assert_eq!(s.free(&a, &me), Freed::NotHere);
        assert_eq!(budget.used(), block_cost(100));
        s.put(Bytes::from(vec![3u8; 1]), me).unwrap();
    }

    #[test]
    fn shared_content_is_stored_once_and_freed_by_its_last_owner() {
        let (a, b, d) = (id(), id(), id());
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        let mut s = BlockStore::new(budget.clone());
        let block = s.put(Bytes::from_static(b"same bytes"), a).unwrap();
        assert_eq!(s.put(Bytes::from_static(b"same bytes"), b).unwrap(), block);
        assert_eq!(s.len(), 1);
        assert_eq!(s.bytes(), 10);
        assert_eq!(budget.used(), block_cost(10) + OWNER_OVERHEAD);
        let mut owners = s.owners(&block);
        owners.sort();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(owners, expected);
        // Someone who never put it cannot free it.
        assert_eq!(s.free(&block, &d), Freed::NotOwner);
        assert_eq!(s.free(&block, &a), Freed::Released { dropped: false });
        assert_eq!(s.free(&block, &a), Freed::NotOwner);
        assert_eq!(&s.get(&block).unwrap()[..], b"same bytes");
        assert_eq!(budget.used(), block_cost(10));
        assert_eq!(s.free(&block, &b), Freed::Released { dropped: true });
        assert!(s.is_empty());
        assert_eq!((budget.used(), s.bytes()), (0, 0));
    }

    #[test]
    fn an_extra_owner_over_the_quota_is_refused() {
        let (a, b) = (id(), id());
        let budget = Arc::new(MemoryBudget::new(block_cost(10) + OWNER_OVERHEAD - 1));
        let mut s = BlockStore::new(budget.clone());
        let block = s.put(Bytes::from_static(b"0123456789"), a).unwrap();
        let err = s.put(Bytes::from_static(b"0123456789"), b).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(s.owners(&block), vec![a]);
    }

    #[test]
    fn owners_gone_for_good_lose_their_references_after_a_grace() {
        let (me, stays, leaves) = (id(), id(), id());
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        let mut s = BlockStore::new(budget.clone());
        let shared = s.put(Bytes::from_static(b"shared"), leaves).unwrap();
        s.put(Bytes::from_static(b"shared"), stays).unwrap();
        let only = s.put(Bytes::from_static(b"only theirs"), leaves).unwrap();
        let mine = s.put(Bytes::from_static(b"mine"), me).unwrap();
        let t0 = Instant::now();
        let present = |o: &NodeId| *o != leaves;
        assert!(
            s.sweep(t0, &me, present).is_empty(),
            "gone, not yet for long"
        );
        assert!(
            s.sweep(t0 + SWEEP_INTERVAL / 2, &me, |_| false).is_empty(),
            "rate-limited"
        );
        let later = t0 + DEPARTED_GRACE;
        assert_eq!(s.sweep(later, &me, present), vec![(leaves, 2)]);
        assert!(!s.contains(&only));
        assert_eq!(s.owners(&shared), vec![stays]);
        assert!(
            s.contains(&mine),
            "this node's own references are never swept"
        );
        assert_eq!(budget.used(), block_cost(6) + block_cost(4));
        // An owner that comes back before the grace ends keeps its references.
        let t1 = later + SWEEP_INTERVAL;
        assert!(s.sweep(t1, &me, |_| false).is_empty());
        assert!(s.sweep(t1 + SWEEP_INTERVAL, &me, |_| true).is_empty());
        assert!(
            s.sweep(t1 + DEPARTED_GRACE, &me, |_| false).is_empty(),
            "its absence starts over"
        );
        assert_eq!(s.owners(&shared), vec![stays]);
    }

    #[test]
    fn dropping_the_store_gives_everything_back() {
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        let mut s = BlockStore::new(budget.clone());
        s.put(Bytes::from_static(b"x"), id()).unwrap();
        s.put(Bytes::from_static(b"x"), id()).unwrap();
        drop(s);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_refused_put_keeps_the_budget_refusal_as_its_cause() {
        let mut s = BlockStore::new(Arc::new(MemoryBudget::new(100)));
        let e = s.put(Bytes::from(vec![0u8; 10]), id()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        let cause = QuotaExceeded {
            needed: block_cost(10),
            used: 0,
            limit: 100,
        };
        assert_eq!(
            e.message(),
            format!("cannot store a block of 10 bytes: {cause}")
        );
        let source = std::error::Error::source(&e).and_then(|c| c.downcast_ref::<QuotaExceeded>());
        assert_eq!(source, Some(&cause));
    }
}
