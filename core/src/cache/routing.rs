//! The routing table: the members the cache places partitions on, versioned by an epoch
//! that increases with every membership change, with every partition's ranking; and who
//! a write or a read of a partition goes to. Pure.

use std::borrow::Cow;

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
    /// Live nodes that were members and are draining (ADR 0025): they own nothing any
    /// more but still hold their data, so the partitions they owned are pulled from
    /// them too. Not part of the digest. Sorted.
    pub handing_off: Vec<NodeId>,
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
            handing_off: Vec::new(),
            ranks,
        }
    }

    /// The same table, made after this node's `rejoins`-th rejoin.
    pub fn after_rejoins(mut self, rejoins: u64) -> Self {
        self.rejoins = rejoins;
        self
    }

    /// The same table, with `nodes` handing their data off (see [`Table::handing_off`]).
    pub fn with_handing_off(mut self, mut nodes: Vec<NodeId>) -> Self {
        nodes.sort();
        nodes.dedup();
        nodes.retain(|n| !self.contains(n));
        self.handing_off = nodes;
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

/// Every node a write of partition `p` goes to: its owners in `current`, then, while a
/// move may be under way (`previous` is the table before it), its owners in `previous`
/// that are still members of `current`. No node appears twice.
pub fn write_targets(
    current: &Table,
    previous: Option<&Table>,
    p: u16,
    replicas: u32,
) -> Vec<NodeId> {
    write_targets_in(current, previous, p, replicas).into_owned()
}

/// [`write_targets`], borrowed from `current` when the previous table adds no node (the
/// steady state: no copy per entry written).
pub fn write_targets_in<'t>(
    current: &'t Table,
    previous: Option<&Table>,
    p: u16,
    replicas: u32,
) -> Cow<'t, [NodeId]> {
    let owners = current.owners(p, replicas);
    let adds = |o: &NodeId| current.contains(o) && !owners.contains(o);
    match previous {
        Some(prev) if prev.owners(p, replicas).iter().any(adds) => {
            let mut out = owners.to_vec();
            for o in prev.owners(p, replicas) {
                if current.contains(o) && !out.contains(o) {
                    out.push(*o);
                }
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(owners),
    }
}

/// Whether `me` is the only node a write of partition `p` goes to ([`write_targets`] is
/// exactly `[me]`): then the write needs no request to anyone, not even to this node's
/// own cache service (`cache::local_write`).
pub fn only_target(
    me: &NodeId,
    current: &Table,
    previous: Option<&Table>,
    p: u16,
    replicas: u32,
) -> bool {
    current.owners(p, replicas) == [*me]
        && previous.is_none_or(|prev| {
            prev.owners(p, replicas)
                .iter()
                .all(|o| o == me || !current.contains(o))
        })
}

/// Orders `targets` for a read: `me` first, then the others in their order, those for
/// which `unreachable` holds (they recently failed to answer) last. Stable.
pub fn by_preference(me: &NodeId, targets: &mut [NodeId], unreachable: impl Fn(&NodeId) -> bool) {
    targets.sort_by_key(|t| (t != me, unreachable(t)));
}

/// The first of `targets` in [`by_preference`]'s order, without reordering or copying
/// them (`unreachable` is asked once per target).
pub fn preferred(
    me: &NodeId,
    targets: &[NodeId],
    unreachable: impl Fn(&NodeId) -> bool,
) -> Option<NodeId> {
    targets
        .iter()
        .min_by_key(|t| (*t != me, unreachable(t)))
        .copied()
}

/// The nodes a read of partition `p` asks, in order: its current owners by preference
/// (see [`by_preference`]), then the other write targets (previous owners during a move).
pub fn read_order(
    me: &NodeId,
    current: &Table,
    previous: Option<&Table>,
    p: u16,
    replicas: u32,
    unreachable: impl Fn(&NodeId) -> bool,
) -> Vec<NodeId> {
    let mut out = current.owners(p, replicas).to_vec();
    by_preference(me, &mut out, unreachable);
    for t in write_targets(current, previous, p, replicas) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
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

    fn ids(n: usize) -> Vec<NodeId> {
        (0..n)
            .map(|_| Keypair::generate().unwrap().node_id())
            .collect()
    }

    #[test]
    fn only_target_is_write_targets_being_exactly_me() {
        let ids = ids(3);
        let alone = Table::new(1, ids[..1].to_vec());
        let pair = Table::new(2, ids[..2].to_vec());
        let other = Table::new(3, ids[1..2].to_vec());
        let cases = [
            (&alone, None),
            (&alone, Some(&pair)),
            (&pair, None),
            (&pair, Some(&alone)),
            (&other, None),
        ];
        for p in 0..crate::cache::partition::PARTITIONS as u16 {
            for (current, previous) in cases {
                for replicas in [1, 2] {
                    let targets = write_targets(current, previous, p, replicas);
                    assert_eq!(
                        only_target(&ids[0], current, previous, p, replicas),
                        targets == [ids[0]],
                        "partition {p}, replicas {replicas}"
                    );
                }
            }
        }
        assert!(only_target(&ids[0], &alone, None, 0, 2));
        assert!(!only_target(&ids[0], &pair, None, 0, 2));
    }

    #[test]
    fn writes_go_to_current_owners_then_previous_owners_still_members() {
        let ids = ids(4);
        let old = Table::new(1, ids[..3].to_vec());
        let new = Table::new(2, ids.clone());
        for p in 0..crate::cache::partition::PARTITIONS as u16 {
            let targets = write_targets(&new, Some(&old), p, 2);
            assert_eq!(&targets[..2], new.owners(p, 2));
            let mut expected = new.owners(p, 2).to_vec();
            for o in old.owners(p, 2) {
                if !expected.contains(o) {
                    expected.push(*o);
                }
            }
            assert_eq!(targets, expected, "partition {p}");
            assert_eq!(write_targets(&new, None, p, 2), new.owners(p, 2));
        }
        // A previous owner that left is not written to.
        let gone = Table::new(3, ids[1..].to_vec());
        for p in 0..crate::cache::partition::PARTITIONS as u16 {
            let targets = write_targets(&gone, Some(&new), p, 2);
            assert!(!targets.contains(&ids[0]));
            assert!(targets.len() <= 4);
        }
    }

    #[test]
    fn reads_prefer_this_node_then_rank_order_with_the_unreachable_last() {
        let ids = ids(5);
        let t = Table::new(1, ids.clone());
        let p = 11;
        let owners = t.owners(p, 3).to_vec();
        // Not an owner, nobody unreachable: rank order.
        let outsider = ids.iter().find(|i| !owners.contains(i)).copied().unwrap();
        assert_eq!(read_order(&outsider, &t, None, p, 3, |_| false), owners);
        // An owner reads itself first; the rest keep rank order.
        let me = owners[2];
        let order = read_order(&me, &t, None, p, 3, |_| false);
        assert_eq!(order, vec![owners[2], owners[0], owners[1]]);
        // An unreachable owner goes last, behind the others.
        let order = read_order(&outsider, &t, None, p, 3, |n| *n == owners[0]);
        assert_eq!(order, vec![owners[1], owners[2], owners[0]]);
        // Previous owners come after every current one.
        let before = Table::new(0, ids[..2].to_vec());
        let order = read_order(&outsider, &t, Some(&before), p, 3, |_| false);
        assert_eq!(&order[..3], &owners[..]);
        assert_eq!(order, write_targets(&t, Some(&before), p, 3));
    }

    #[test]
    fn write_targets_are_borrowed_unless_the_previous_table_adds_a_node() {
        let ids = ids(4);
        let now = Table::new(2, ids[..3].to_vec());
        let same = Table::new(1, ids[..3].to_vec());
        let before = Table::new(1, ids[1..].to_vec());
        for p in 0..crate::cache::partition::PARTITIONS as u16 {
            for replicas in [1, 2, 3] {
                for previous in [None, Some(&same), Some(&before)] {
                    let got = write_targets_in(&now, previous, p, replicas);
                    let mut want = now.owners(p, replicas).to_vec();
                    for o in previous.map_or(&[][..], |t| t.owners(p, replicas)) {
                        if now.contains(o) && !want.contains(o) {
                            want.push(*o);
                        }
                    }
                    assert_eq!(got.as_ref(), want.as_slice());
                    let adds = want.len() > now.owners(p, replicas).len();
                    assert_eq!(matches!(got, Cow::Owned(_)), adds);
                }
            }
        }
    }

    #[test]
    fn the_preferred_target_is_the_first_by_preference() {
        let ids = ids(4);
        assert_eq!(preferred(&ids[0], &[], |_| false), None);
        // Every choice of "me" (a target or not) and of unreachable targets.
        for me in &ids {
            for mask in 0u32..8 {
                let unreachable = |n: &NodeId| {
                    ids[..3]
                        .iter()
                        .position(|i| i == n)
                        .is_some_and(|k| mask & (1 << k) != 0)
                };
                let targets = &ids[..3];
                let mut sorted = targets.to_vec();
                by_preference(me, &mut sorted, unreachable);
                assert_eq!(
                    preferred(me, targets, unreachable),
                    sorted.first().copied(),
                    "mask {mask}"
                );
            }
        }
    }
}
