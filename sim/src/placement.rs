//! Figures about cache placement between two routing tables. Pure.
//!
//! A partition "moves" when its owner set (the first `replicas` members of its ranking)
//! differs between the tables. After a failure a partition "keeps" its owners when it
//! still has `replicas` owners, all live, and every owner that survived still owns it
//! (so at most the failed node's copy has to be made again, by the cache, on the one new
//! owner).

use std::collections::BTreeSet;

use memmesh::cache::partition::{score, PARTITIONS};
use memmesh::cache::routing::Table;
use memmesh::identity::NodeId;

/// Every partition.
pub fn partitions() -> impl Iterator<Item = u16> {
    (0..PARTITIONS).filter_map(|p| u16::try_from(p).ok())
}

fn owner_set(t: &Table, p: u16, replicas: u32) -> BTreeSet<NodeId> {
    t.owners(p, replicas).iter().copied().collect()
}

/// How many partitions have a different owner set in `after` than in `before`.
pub fn moved(before: &Table, after: &Table, replicas: u32) -> usize {
    partitions()
        .filter(|&p| owner_set(before, p, replicas) != owner_set(after, p, replicas))
        .count()
}

/// How many partitions `id` owns in `t`.
pub fn owned_by(t: &Table, id: &NodeId, replicas: u32) -> usize {
    partitions()
        .filter(|&p| t.owners(p, replicas).contains(id))
        .count()
}

/// Whether every partition that moved between `before` and `after` now has `newcomer`
/// among its owners (a join takes partitions for the newcomer and moves nothing else).
pub fn only_newcomer_takes(
    before: &Table,
    after: &Table,
    newcomer: &NodeId,
    replicas: u32,
) -> bool {
    partitions().all(|p| {
        owner_set(before, p, replicas) == owner_set(after, p, replicas)
            || after.owners(p, replicas).contains(newcomer)
    })
}

/// The partitions of `after` (the table recomputed without the nodes that failed) that do
/// not keep their owners (see the module documentation), given the live members.
pub fn not_kept(before: &Table, after: &Table, live: &BTreeSet<NodeId>, replicas: u32) -> usize {
    let want = (replicas as usize).min(live.len());
    partitions()
        .filter(|&p| {
            let now = owner_set(after, p, replicas);
            let survivors: BTreeSet<NodeId> = owner_set(before, p, replicas)
                .into_iter()
                .filter(|o| live.contains(o))
                .collect();
            now.len() != want || !now.iter().all(|o| live.contains(o)) || !survivors.is_subset(&now)
        })
        .count()
}

/// Every member's rendezvous score for every partition, from core's
/// [`score`], computed once: the owners of the tables
/// that differ from these members by one node (one joined, one failed) are then found by a
/// scan instead of a [`Table::new`] each, which ranks every partition again (a quarter of a
/// second for 1,000 members in a debug build). The ranking is core's: highest score first,
/// ties by id; [`Scores::same_as`] checks it against a real table.
#[derive(Debug, Clone)]
pub struct Scores {
    members: Vec<NodeId>,
    /// `by_partition[p][i]`: the score of `members[i]` for partition `p`.
    by_partition: Vec<Vec<u64>>,
}

/// A node's scores for every partition.
pub fn scores_of(id: &NodeId) -> Vec<u64> {
    partitions().map(|p| score(id, p)).collect()
}

impl Scores {
    /// The scores of `members` (duplicates ignored).
    pub fn new(mut members: Vec<NodeId>) -> Self {
        members.sort();
        members.dedup();
        let by_partition = partitions()
            .map(|p| members.iter().map(|m| score(m, p)).collect())
            .collect();
        Self {
            members,
            by_partition,
        }
    }

    /// The members.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The owners of `p` (primary first) among the members without `without` (an index
    /// into [`Scores::members`]) and with `with` (a newcomer and its [`scores_of`]).
    pub fn owners(
        &self,
        p: u16,
        replicas: u32,
        without: Option<usize>,
        with: Option<(&NodeId, &[u64])>,
    ) -> Vec<NodeId> {
        let row = &self.by_partition[usize::from(p)];
        let mut best: Vec<(u64, NodeId)> = Vec::with_capacity(replicas as usize + 1);
        let better = |a: &(u64, NodeId), b: &(u64, NodeId)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
        let mut offer = |cand: (u64, NodeId)| {
            let at = best
                .iter()
                .position(|b| better(&cand, b))
                .unwrap_or(best.len());
            if at < replicas as usize {
                best.insert(at, cand);
                best.truncate(replicas as usize);
            }
        };
        for (i, (m, s)) in self.members.iter().zip(row).enumerate() {
            if Some(i) != without {
                offer((*s, *m));
            }
        }
        if let Some((id, scores)) = with {
            if let Some(s) = scores.get(usize::from(p)) {
                offer((*s, *id));
            }
        }
        best.into_iter().map(|(_, m)| m).collect()
    }

    /// Whether `t` places every partition as these scores do without `without` and with
    /// `with`.
    pub fn same_as(
        &self,
        t: &Table,
        replicas: u32,
        without: Option<usize>,
        with: Option<(&NodeId, &[u64])>,
    ) -> bool {
        partitions()
            .all(|p| t.owners(p, replicas) == self.owners(p, replicas, without, with).as_slice())
    }
}

/// `1/n + 5 %` of the partitions: the most a join into `n` members may move (the
/// issue's bound for scenario (a), which holds there for any `replicas` up to 3 because
/// `n` is 1,000).
pub fn join_bound(n: usize) -> f64 {
    (1.0 / n as f64 + 0.05) * PARTITIONS as f64
}

/// `replicas/n + 5 %` of the partitions: the most a join may move when it takes its fair
/// share of the `replicas × PARTITIONS` owner slots. With few members `replicas/n` is
/// what a join moves on average (it enters each partition's top `replicas` with that
/// probability), so `1/n` would be exceeded by chance alone: with 50 members, 2 copies
/// and 271 partitions the mean is 10.8 and `1/n + 5 %` is 19.0, 2.5 standard deviations
/// away.
pub fn share_bound(n: usize, replicas: u32) -> f64 {
    (f64::from(replicas) / n as f64 + 0.05) * PARTITIONS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u8>) -> Vec<NodeId> {
        range.map(|i| NodeId::from_bytes([i; 32])).collect()
    }

    #[test]
    fn a_failure_keeps_and_a_join_takes() {
        let all = ids(1..11);
        let before = Table::new(1, all.clone());
        let live: BTreeSet<NodeId> = all[1..].iter().copied().collect();
        let after = Table::new(2, all[1..].to_vec());
        assert_eq!(not_kept(&before, &after, &live, 2), 0);
        assert_eq!(moved(&before, &after, 2), owned_by(&before, &all[0], 2));
        // A table that ignores the failure does not keep.
        assert!(not_kept(&before, &before, &live, 2) > 0);
        assert!(only_newcomer_takes(&after, &before, &all[0], 2));
        assert!(!only_newcomer_takes(&after, &before, &all[1], 2));
        // Scores rank as core's tables do.
        let scores = Scores::new(all[1..].to_vec());
        let joiner = scores_of(&all[0]);
        assert!(scores.same_as(&after, 3, None, None));
        assert!(scores.same_as(&before, 3, None, Some((&all[0], &joiner))));
        let without = scores.members().iter().position(|m| *m == all[5]);
        let fewer = Table::new(
            3,
            all[1..].iter().copied().filter(|m| *m != all[5]).collect(),
        );
        assert!(scores.same_as(&fewer, 2, without, None));
        assert!(!scores.same_as(&fewer, 2, None, None));
    }
}
