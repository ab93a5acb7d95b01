//! The blocks this node holds in RAM, charged to the node's memory budget. Pure logic.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::blocks::id::BlockId;
use crate::error::{Error, ErrorKind, Result};
use crate::memory::MemoryBudget;

/// Bytes charged per block on top of its content: the map slot, the id, the `Bytes`
/// handle and the allocator's header, rounded up.
pub const BLOCK_OVERHEAD: u64 = 128;

/// The bytes a block of `len` bytes costs against the quota.
pub fn block_cost(len: usize) -> u64 {
    len as u64 + BLOCK_OVERHEAD
}

/// Blocks held locally.
#[derive(Debug)]
pub struct BlockStore {
    budget: Arc<MemoryBudget>,
    blocks: HashMap<BlockId, Bytes>,
    bytes: u64,
}

impl BlockStore {
    /// An empty store charging `budget`.
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            blocks: HashMap::new(),
            bytes: 0,
        }
    }

    /// Stores `data` under its id. Storing content that is already here costs nothing.
    /// Fails with `QuotaExceeded` (storing nothing, evicting nothing) if the budget is short.
    pub fn put(&mut self, data: Bytes) -> Result<BlockId> {
        let id = BlockId::of(&data);
        if self.blocks.contains_key(&id) {
            return Ok(id);
        }
        let cost = block_cost(data.len());
        self.budget.reserve(cost).map_err(|e| {
            Error::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "cannot store a block of {} bytes: {}",
                    data.len(),
                    e.message()
                ),
            )
        })?;
        self.bytes += data.len() as u64;
        self.blocks.insert(id, data);
        Ok(id)
    }

    /// The block `id`, if held here.
    pub fn get(&self, id: &BlockId) -> Option<Bytes> {
        self.blocks.get(id).cloned()
    }

    /// Whether `id` is held here.
    pub fn contains(&self, id: &BlockId) -> bool {
        self.blocks.contains_key(id)
    }

    /// Removes `id`; returns whether it was here.
    pub fn free(&mut self, id: &BlockId) -> bool {
        match self.blocks.remove(id) {
            Some(data) => {
                self.bytes -= data.len() as u64;
                self.budget.release(block_cost(data.len()));
                true
            }
            None => false,
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
        let cost: u64 = self.blocks.values().map(|b| block_cost(b.len())).sum();
        self.budget.release(cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counts_overhead_and_refuses_without_evicting() {
        let budget = Arc::new(MemoryBudget::new(2 * block_cost(100)));
        let mut s = BlockStore::new(budget.clone());
        let a = s.put(Bytes::from(vec![1u8; 100])).unwrap();
        let again = s.put(Bytes::from(vec![1u8; 100])).unwrap();
        assert_eq!(a, again);
        assert_eq!(budget.used(), block_cost(100));
        s.put(Bytes::from(vec![2u8; 100])).unwrap();
        let err = s.put(Bytes::from(vec![3u8; 1])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(s.len(), 2);
        assert!(s.get(&a).is_some());
        assert!(s.free(&a));
        assert!(!s.free(&a));
        assert_eq!(budget.used(), block_cost(100));
        s.put(Bytes::from(vec![3u8; 1])).unwrap();
    }
}
