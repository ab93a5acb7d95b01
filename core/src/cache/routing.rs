//! The routing table: the members the cache places partitions on, versioned by an epoch
//! that increases with every membership change, with every partition's ranking. Pure.

use crate::cache::partition::{rank, PARTITIONS};
use crate::identity::NodeId;

/// Members and the owner ranking of every partition.
#[derive(Debug, Clone)]
pub struct Table {
    /// Increases with every membership change seen by this node.
    pub epoch: u64,
    /// The members, sorted.
    pub members: Vec<NodeId>,
    /// A digest of the member list: two tables with the same digest place alike.
    pub digest: u64,
    /// How many times this node had rejoined the cluster under a renewed identity when
    /// the table was made (see `Membership::rejoins`): a change means every replica here
    /// may be stale.
    pub rejoins: u64,
    ranks: Vec<Vec<NodeId>>,
}

impl Table {
    /// The table of `members` (any order, duplicates ignored) at `epoch`.
    pub fn new(epoch: u64, mut members: Vec<NodeId>) -> Self {
        members.sort();
        members.dedup();
        let ranks = (0..PARTITIONS as u16).map(|p| rank(&members, p)).collect();
        let mut hasher = blake3::Hasher::new();
        for m in &members {
            hasher.update(m.as_bytes());
        }
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        Self {
            epoch,
            members,
            digest: u64::from_le_bytes(digest),
            rejoins: 0,
            ranks,
        }
    }

    /// The same table, made after this node's `rejoins`-th rejoin.
    pub fn after_rejoins(mut self, rejoins: u64) -> Self {
        self.rejoins = rejoins;
        self
    }

    /// The owners of partition `p` with `replicas` copies, primary first.
    pub fn owners(&self, p: u16, replicas: u32) -> &[NodeId] {
        let ranked = self
            .ranks
            .get(p as usize)
            .map(|r| r.as_slice())
            .unwrap_or(&[]);
        &ranked[..ranked.len().min(replicas as usize)]
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.members.binary_search(id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn owners_are_capped_by_the_member_count() {
        let ids: Vec<NodeId> = (0..3)
            .map(|_| Keypair::generate().unwrap().node_id())
            .collect();
        let t = Table::new(1, ids.clone());
        assert_eq!(t.owners(5, 2).len(), 2);
        assert_eq!(t.owners(5, 7).len(), 3);
        assert!(t.contains(&ids[1]));
        let again = Table::new(2, ids.into_iter().rev().collect());
        assert_eq!(t.owners(9, 2), again.owners(9, 2));
    }
}
