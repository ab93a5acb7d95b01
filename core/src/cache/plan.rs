//! The plan of one cache write (of one or many entries): which nodes each entry still has
//! to reach, which have acknowledged it, whether a live value existed before it, and
//! when an entry must be stamped again because an owner held a newer version. Pure: the
//! caller sends what [`WritePlan::sends`] lists, feeds the replies back, and asks again
//! until nothing is left to send.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::cache::messages::Outcome;
use crate::cache::store::EntryView;
use crate::identity::NodeId;

/// Most times one entry is stamped again because an owner held a newer version.
pub const MAX_RESTAMPS: u32 = 4;

/// Acknowledgements one entry keeps without allocating: an entry's targets are its
/// owners (`replicas`), and its previous owners too while owners change.
const INLINE_ACKS: usize = 4;

/// The nodes that have acknowledged one entry: the first [`INLINE_ACKS`] kept inline (a
/// write of many entries made a set, and an allocation, per entry), any more in a vector.
#[derive(Debug, Clone, Default)]
struct Acks {
    inline: [Option<NodeId>; INLINE_ACKS],
    more: Vec<NodeId>,
}

impl Acks {
    fn contains(&self, t: &NodeId) -> bool {
        self.inline.iter().any(|a| a.as_ref() == Some(t)) || self.more.contains(t)
    }

    fn insert(&mut self, t: NodeId) {
        if self.contains(&t) {
            return;
        }
        // Slots fill in order and only `clear` empties them: the first free one ends
        // the inline part.
        match self.inline.iter_mut().find(|a| a.is_none()) {
            Some(free) => *free = Some(t),
            None => self.more.push(t),
        }
    }

    fn clear(&mut self) {
        self.inline = [None; INLINE_ACKS];
        self.more.clear();
    }

    #[cfg(test)]
    fn sorted(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.inline.iter().flatten().copied().collect();
        all.extend_from_slice(&self.more);
        all.sort();
        all
    }
}

/// One request to send: entries (by index in the plan) to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// The node to send to.
    pub target: NodeId,
    /// Every node the entries are sent to in this round (the receiver forwards them to
    /// owners it knows of that are not in it).
    pub sent_to: Vec<NodeId>,
    /// The entries, by index, that `target` has not acknowledged yet.
    pub entries: Vec<usize>,
}

/// The state of one write: its entries and, for each, who has acknowledged it.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// Shared with the requests that carry them (`outgoing.rs`); a restamp copies them
    /// if a request still holds them.
    entries: Arc<Vec<EntryView>>,
    /// For each entry, the nodes that have acknowledged it.
    acked: Vec<Acks>,
    /// For each entry, whether a current owner held a live value before.
    existed: Vec<bool>,
    /// For each entry, how many times it was stamped again.
    restamped: Vec<u32>,
    /// Owners that answered with a newer version, since the last [`WritePlan::restamp`]:
    /// (entry, owner, version held).
    superseded: Vec<(usize, NodeId, u64)>,
}

impl WritePlan {
    /// The plan of writing `entries`, acknowledged by no one yet.
    pub fn new(entries: Vec<EntryView>) -> Self {
        let n = entries.len();
        Self {
            entries: Arc::new(entries),
            acked: vec![Acks::default(); n],
            existed: vec![false; n],
            restamped: vec![0; n],
            superseded: Vec::new(),
        }
    }

    /// The entries, as they are to be sent now (with their latest stamps).
    pub fn entries(&self) -> &[EntryView] {
        &self.entries
    }

    /// The entries, shared: what a request to an owner carries them in (`OutPart`).
    pub fn shared_entries(&self) -> &Arc<Vec<EntryView>> {
        &self.entries
    }

    /// The nodes that have acknowledged entry `i` so far, in order.
    #[cfg(test)]
    pub fn acked(&self, i: usize) -> Option<Vec<NodeId>> {
        self.acked.get(i).map(Acks::sorted)
    }

    /// What to send now, given `targets(partition)`, the nodes a write of a partition
    /// must reach (`routing::write_targets`). Entries with the same targets travel
    /// together; each target gets those it has not acknowledged. Empty when every
    /// target of every entry has acknowledged it: the write is done.
    pub fn sends<T: AsRef<[NodeId]>>(&self, targets: impl FnMut(u16) -> T) -> Vec<Send> {
        match self.entries.as_slice() {
            [one] => self.sends_of_one(one.partition, targets),
            _ => self.grouped_sends(targets),
        }
    }

    /// [`WritePlan::sends`] of a plan of one entry (a plain `SET`): no grouping needed.
    fn sends_of_one<T: AsRef<[NodeId]>>(
        &self,
        partition: u16,
        mut targets: impl FnMut(u16) -> T,
    ) -> Vec<Send> {
        let ts = targets(partition);
        let ts = ts.as_ref();
        let Some(acked) = self.acked.first() else {
            return Vec::new();
        };
        ts.iter()
            .filter(|t| !acked.contains(t))
            .map(|t| Send {
                target: *t,
                sent_to: ts.to_vec(),
                entries: vec![0],
            })
            .collect()
    }

    /// [`WritePlan::sends`] of any plan: entries grouped by their full target set.
    fn grouped_sends<T: AsRef<[NodeId]>>(&self, mut targets: impl FnMut(u16) -> T) -> Vec<Send> {
        // Group the entries still missing somewhere by their full target set (a copy of
        // a target set per group, not per entry).
        let mut groups: BTreeMap<Vec<NodeId>, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            let ts = targets(e.partition);
            let ts = ts.as_ref();
            if ts.iter().any(|t| !self.acked[i].contains(t)) {
                match groups.get_mut(ts) {
                    Some(group) => group.push(i),
                    None => {
                        groups.insert(ts.to_vec(), vec![i]);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (ts, idx) in groups {
            for t in &ts {
                let todo: Vec<usize> = idx
                    .iter()
                    .copied()
                    .filter(|&i| !self.acked[i].contains(t))
                    .collect();
                if !todo.is_empty() {
                    out.push(Send {
                        target: *t,
                        sent_to: ts.clone(),
                        entries: todo,
                    });
                }
            }
        }
        out
    }

    /// Records what `target` answered for the entries `sent` (one [`Outcome`] each, in
    /// order; missing outcomes count as no answer). An entry it applied (or already
    /// held) is acknowledged by it; whether a live value existed counts only when
    /// `current_owner(partition, target)` holds (a previous owner may hold a copy that a
    /// write elsewhere did not reach). An entry it held a newer version of waits for
    /// [`WritePlan::restamp`].
    pub fn applied(
        &mut self,
        target: NodeId,
        sent: &[usize],
        outcomes: &[Outcome],
        mut current_owner: impl FnMut(u16, &NodeId) -> bool,
    ) {
        for (&i, o) in sent.iter().zip(outcomes) {
            if i >= self.entries.len() {
                continue;
            }
            if let Some(v) = o.superseded_by {
                self.superseded.push((i, target, v));
                continue;
            }
            self.acked[i].insert(target);
            if current_owner(self.entries[i].partition, &target) {
                self.existed[i] |= o.existed;
            }
        }
    }

    /// Handles the newer versions owners reported since the last call. An owner held a
    /// version newer than an entry's stamp, though this write is the later one (it is
    /// happening now): the other was stamped by a node whose clock is ahead, or raced
    /// this one. The entry is stamped again past that version by `stamp_past(entry,
    /// owner, version)` and must reach every target again, so a write is never lost to
    /// an older one. Bounded: after [`MAX_RESTAMPS`] the owner's answer counts as an
    /// acknowledgement (writers racing on one key settle by the last stamp). A version
    /// not past the entry's current stamp (it was stamped again meanwhile) is ignored.
    /// The first error of `stamp_past` is returned (the entries restamped before it keep
    /// their new stamps).
    pub fn restamp<E>(
        &mut self,
        mut stamp_past: impl FnMut(&EntryView, NodeId, u64) -> Result<u64, E>,
    ) -> Result<(), E> {
        for (i, t, v) in std::mem::take(&mut self.superseded) {
            if self.restamped[i] < MAX_RESTAMPS {
                let Some(e) = self.entries.get(i) else {
                    continue;
                };
                if v >= e.version {
                    self.restamped[i] += 1;
                    let version = stamp_past(e, t, v)?;
                    if let Some(e) = Arc::make_mut(&mut self.entries).get_mut(i) {
                        e.version = version;
                    }
                    self.acked[i].clear();
                }
            } else {
                self.acked[i].insert(t);
            }
        }
        Ok(())
    }

    /// Per entry, whether a current owner held a live value before the write.
    #[cfg(test)]
    pub fn existed(&self) -> &[bool] {
        &self.existed
    }

    /// The plan's per-entry answer: whether a live value existed before.
    pub fn into_existed(self) -> Vec<bool> {
        self.existed
    }
}

/// Where a node that applied a write forwards it: to the targets in its own table that
/// the writer did not send to (its table may know owners the writer's did not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Per extra target, the entries (by index) to forward to it.
    pub extra: BTreeMap<NodeId, Vec<usize>>,
    /// Every node the write then went to, sorted: the writer's recipients, the writer
    /// and this node, and the extra targets (sent along, so they do not forward again).
    pub all_sent: Vec<NodeId>,
}

impl Forward {
    /// The forwards of a write of entries in `partitions` (one per entry) that the writer
    /// sent to `sent_to`, received by a node where `targets(partition)` are the write
    /// targets; `also_known` are nodes that have it anyway (the writer and this node).
    pub fn plan<T: AsRef<[NodeId]>>(
        partitions: &[u16],
        sent_to: &[NodeId],
        also_known: impl IntoIterator<Item = NodeId>,
        mut targets: impl FnMut(u16) -> T,
    ) -> Self {
        let known: BTreeSet<NodeId> = sent_to.iter().copied().chain(also_known).collect();
        let mut extra: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for (i, &p) in partitions.iter().enumerate() {
            for t in targets(p).as_ref() {
                if !known.contains(t) {
                    extra.entry(*t).or_default().push(i);
                }
            }
        }
        let mut all_sent: Vec<NodeId> = known.into_iter().collect();
        all_sent.extend(extra.keys().copied());
        all_sent.sort();
        all_sent.dedup();
        Self { extra, all_sent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ids;

    #[test]
    fn acks_keep_each_node_once_inline_then_beyond_and_clear_to_nothing() {
        let n = ids(INLINE_ACKS + 3);
        let mut a = Acks::default();
        assert!(n.iter().all(|t| !a.contains(t)));
        for t in n.iter().rev().chain(&n) {
            a.insert(*t);
        }
        assert!(n.iter().all(|t| a.contains(t)));
        let mut want = n.clone();
        want.sort();
        assert_eq!(a.sorted(), want, "each node once, whichever part holds it");
        a.clear();
        assert!(a.sorted().is_empty() && n.iter().all(|t| !a.contains(t)));
        a.insert(n[5]);
        assert_eq!(a.sorted(), vec![n[5]]);
    }

    fn entry(key: &str, partition: u16, version: u64) -> EntryView {
        EntryView {
            key: key.into(),
            value: Some(bytes::Bytes::from_static(b"v")),
            version,
            expires: 0,
            partition,
        }
    }

    fn ok(existed: bool) -> Outcome {
        Outcome {
            existed,
            superseded_by: None,
        }
    }

    fn newer(v: u64) -> Outcome {
        Outcome {
            existed: true,
            superseded_by: Some(v),
        }
    }

    /// Partition 0 goes to (a, b), partition 1 to (b, c).
    fn two_partitions(n: &[NodeId]) -> impl Fn(u16) -> Vec<NodeId> + '_ {
        move |p| match p {
            0 => vec![n[0], n[1]],
            _ => vec![n[1], n[2]],
        }
    }

    #[test]
    fn a_plan_of_one_entry_sends_what_the_grouped_plan_would() {
        let n = ids(3);
        let mut plan = WritePlan::new(vec![entry("x", 1, 1)]);
        for round in 0..3 {
            let one = plan.sends(two_partitions(&n));
            assert_eq!(one, plan.grouped_sends(two_partitions(&n)), "round {round}");
            if let Some(first) = one.first() {
                plan.applied(first.target, &[0], &[ok(false)], |_, _| true);
            }
        }
        assert!(plan.sends(two_partitions(&n)).is_empty());
        assert!(plan.grouped_sends(two_partitions(&n)).is_empty());
    }

    #[test]
    fn entries_with_the_same_targets_travel_together_to_each_target() {
        let n = ids(3);
        let plan = WritePlan::new(vec![entry("x", 0, 1), entry("y", 1, 1), entry("z", 0, 1)]);
        let sends = plan.sends(two_partitions(&n));
        let mut got: Vec<(NodeId, Vec<NodeId>, Vec<usize>)> = sends
            .into_iter()
            .map(|s| (s.target, s.sent_to, s.entries))
            .collect();
        got.sort();
        let mut expected = vec![
            (n[0], vec![n[0], n[1]], vec![0, 2]),
            (n[1], vec![n[0], n[1]], vec![0, 2]),
            (n[1], vec![n[1], n[2]], vec![1]),
            (n[2], vec![n[1], n[2]], vec![1]),
        ];
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_write_is_acknowledged_once_every_target_has_it_and_only_the_missing_are_retried() {
        let n = ids(3);
        let mut plan = WritePlan::new(vec![entry("x", 0, 1), entry("y", 1, 1)]);
        let owners = two_partitions(&n);
        // a and b answer; c does not.
        plan.applied(n[0], &[0], &[ok(false)], |_, _| true);
        plan.applied(n[1], &[0], &[ok(true)], |_, _| true);
        plan.applied(n[1], &[1], &[ok(false)], |_, _| true);
        let sends = plan.sends(&owners);
        assert_eq!(
            sends,
            vec![Send {
                target: n[2],
                sent_to: vec![n[1], n[2]],
                entries: vec![1]
            }],
            "only what c has not acknowledged is sent again"
        );
        // A short answer (fewer outcomes than entries) acknowledges only what it covers.
        plan.applied(n[2], &[1, 0], &[], |_, _| true);
        assert_eq!(plan.sends(&owners).len(), 1);
        plan.applied(n[2], &[1], &[ok(true)], |_, _| true);
        assert!(plan.sends(&owners).is_empty(), "every target acknowledged");
        assert_eq!(plan.existed(), &[true, true]);
        assert_eq!(plan.acked(0).map(|a| a.len()), Some(2));
    }

    #[test]
    fn with_one_replica_one_acknowledgement_is_enough_and_new_targets_are_added() {
        let n = ids(3);
        let mut plan = WritePlan::new(vec![entry("x", 0, 1)]);
        let one = |_| vec![n[0]];
        assert_eq!(plan.sends(one).len(), 1);
        plan.applied(n[0], &[0], &[ok(false)], |_, _| true);
        assert!(plan.sends(one).is_empty());
        // The targets changed (a move began): the new owner is still missing.
        let moved = |_| vec![n[1], n[0]];
        let sends = plan.sends(moved);
        assert_eq!(sends.len(), 1);
        assert_eq!(
            (sends[0].target, &sends[0].sent_to),
            (n[1], &vec![n[1], n[0]])
        );
        // A previous owner's answer does not say whether the key existed.
        plan.applied(n[1], &[0], &[ok(true)], |_, t| *t != n[1]);
        assert!(plan.sends(moved).is_empty());
        assert_eq!(plan.into_existed(), vec![false]);
    }

    #[test]
    fn a_newer_version_held_by_an_owner_restamps_the_entry_and_resends_it_everywhere() {
        let n = ids(2);
        let both = |_| vec![n[0], n[1]];
        let mut plan = WritePlan::new(vec![entry("x", 0, 10)]);
        plan.applied(n[0], &[0], &[ok(false)], |_, _| true);
        plan.applied(n[1], &[0], &[newer(50)], |_, _| true);
        // Before the restamp, only b is missing.
        assert_eq!(plan.sends(both).len(), 1);
        let mut asked = Vec::new();
        plan.restamp(|e, t, v| {
            asked.push((e.version, t, v));
            Ok::<_, ()>(v + 1)
        })
        .unwrap();
        assert_eq!(asked, vec![(10, n[1], 50)]);
        assert_eq!(plan.entries()[0].version, 51);
        assert_eq!(plan.sends(both).len(), 2, "sent to every target again");
        // Two owners reporting versions in the same round: the second is already passed.
        plan.applied(n[0], &[0], &[newer(60)], |_, _| true);
        plan.applied(n[1], &[0], &[newer(55)], |_, _| true);
        plan.restamp(|_, _, v| Ok::<_, ()>(v + 1)).unwrap();
        assert_eq!(plan.entries()[0].version, 61);
        plan.applied(n[0], &[0], &[ok(true)], |_, _| true);
        plan.applied(n[1], &[0], &[ok(true)], |_, _| true);
        plan.restamp(|_, _, _| Err("not called")).unwrap();
        assert!(plan.sends(both).is_empty());
    }

    #[test]
    fn restamps_are_bounded_then_the_owner_counts_as_acknowledging() {
        let n = ids(1);
        let one = |_| vec![n[0]];
        let mut plan = WritePlan::new(vec![entry("x", 0, 1)]);
        let mut v = 100;
        for _ in 0..MAX_RESTAMPS {
            plan.applied(n[0], &[0], &[newer(v)], |_, _| true);
            plan.restamp(|_, _, past| Ok::<_, ()>(past + 1)).unwrap();
            assert_eq!(plan.sends(one).len(), 1);
            v += 100;
        }
        plan.applied(n[0], &[0], &[newer(v)], |_, _| true);
        let mut called = false;
        plan.restamp(|_, _, _| {
            called = true;
            Ok::<_, ()>(0)
        })
        .unwrap();
        assert!(!called, "no fifth restamp");
        assert!(plan.sends(one).is_empty(), "racing writers settle");
    }

    #[test]
    fn with_a_routing_table_a_write_is_done_once_its_replicas_owners_have_it() {
        use crate::cache::partition::partition_of;
        use crate::cache::routing::{write_targets, Table};
        let n = ids(5);
        let table = Table::new(1, n.clone());
        for replicas in [1u32, 2, 3] {
            let keys = ["a", "b", "c", "d"];
            let plan_entries = keys.iter().map(|k| entry(k, partition_of(k), 1)).collect();
            let mut plan = WritePlan::new(plan_entries);
            let targets = |p| write_targets(&table, None, p, replicas);
            let mut rounds = 0;
            loop {
                let sends = plan.sends(targets);
                if sends.is_empty() {
                    break;
                }
                for s in &sends {
                    assert!(table
                        .owners(plan.entries()[s.entries[0]].partition, replicas)
                        .contains(&s.target));
                    let outcomes = vec![ok(false); s.entries.len()];
                    plan.applied(s.target, &s.entries, &outcomes, |_, _| true);
                }
                rounds += 1;
            }
            assert_eq!(rounds, 1, "every owner answered the first round");
            for (i, k) in keys.iter().enumerate() {
                let acked = plan.acked(i).unwrap();
                let mut owners = table.owners(partition_of(k), replicas).to_vec();
                owners.sort();
                assert_eq!(acked, owners, "{k} with {replicas} replicas");
            }
        }
    }

    #[test]
    fn a_write_is_forwarded_to_the_targets_the_writer_did_not_know() {
        let n = ids(5);
        let (writer, me) = (n[0], n[1]);
        // The writer sent to (me, n2); this node's table also has n3 for partition 1.
        let targets = |p: u16| match p {
            0 => vec![me, n[2]],
            _ => vec![me, n[2], n[3]],
        };
        let f = Forward::plan(&[0, 1, 1], &[me, n[2]], [writer, me], targets);
        assert_eq!(f.extra, BTreeMap::from([(n[3], vec![1, 2])]));
        let mut all = vec![writer, me, n[2], n[3]];
        all.sort();
        assert_eq!(f.all_sent, all);
        // Nothing new: nothing to forward.
        let f = Forward::plan(&[0], &[me, n[2]], [writer, me], targets);
        assert!(f.extra.is_empty());
        // The writer itself is never forwarded to, even if it is a target here.
        let f = Forward::plan(&[0], &[], [writer, me], |_| vec![writer, me, n[4]]);
        assert_eq!(f.extra, BTreeMap::from([(n[4], vec![0])]));
    }

    #[test]
    fn a_version_the_clock_refuses_fails_the_restamp() {
        let n = ids(1);
        let mut plan = WritePlan::new(vec![entry("x", 0, 1), entry("y", 0, 1)]);
        plan.applied(n[0], &[0, 1], &[newer(u64::MAX), newer(7)], |_, _| true);
        let err = plan
            .restamp(|e, _, _| {
                if e.key == "x" {
                    Err("too far ahead")
                } else {
                    Ok(8)
                }
            })
            .unwrap_err();
        assert_eq!(err, "too far ahead");
        // Out-of-range indices from a confused caller are ignored.
        plan.applied(n[0], &[9], &[ok(true)], |_, _| true);
        assert_eq!(plan.existed(), &[false, false]);
    }
}
