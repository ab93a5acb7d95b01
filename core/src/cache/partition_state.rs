//! The state of each partition of a bucket on this node, as a state machine: not owned,
//! ready, or syncing from the members that may hold data this node lacks; and since when
//! a partition is not owned or was last pulled from here (its data is kept a while for
//! the new owners). Pure: transitions take the routing tables and `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::cache::partition::PARTITIONS;
use crate::cache::routing::Table;
use crate::identity::NodeId;

/// The state of one partition on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PartitionState {
    /// This node does not own the partition (it may still hold data from before a move).
    NotOwned = 0,
    /// This node owns the partition and holds every acknowledged write of it.
    Ready = 1,
    /// This node owns the partition but is still pulling it from members that may hold
    /// data.
    Syncing = 2,
}

impl PartitionState {
    /// Its one-byte form (for an atomic).
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The state of a one-byte form; an unknown byte reads as [`PartitionState::NotOwned`].
    pub fn from_u8(b: u8) -> Self {
        match b {
            1 => PartitionState::Ready,
            2 => PartitionState::Syncing,
            _ => PartitionState::NotOwned,
        }
    }

    /// The state after a routing change: `owner` says whether this node owns the
    /// partition in the new table; `pending` (the members the partition must still be
    /// pulled from) is updated in place. A partition this node keeps owning must also be
    /// pulled from `newcomers` (members that may hold writes it missed); one it starts
    /// owning from every other member (`others`); one it was syncing stops waiting for
    /// members that left (`is_member` says who is still in). Owned with nothing pending
    /// is ready.
    pub fn on_table(
        self,
        owner: bool,
        pending: &mut BTreeSet<NodeId>,
        newcomers: &BTreeSet<NodeId>,
        others: &BTreeSet<NodeId>,
        is_member: impl Fn(&NodeId) -> bool,
    ) -> Self {
        if !owner {
            pending.clear();
            return PartitionState::NotOwned;
        }
        match self {
            PartitionState::Ready => pending.extend(newcomers.iter().copied()),
            PartitionState::Syncing => {
                pending.retain(|m| is_member(m));
                pending.extend(newcomers.iter().copied());
            }
            PartitionState::NotOwned => *pending = others.clone(),
        }
        if pending.is_empty() {
            PartitionState::Ready
        } else {
            PartitionState::Syncing
        }
    }

    /// The state once `source` has given everything it holds of the partition: a
    /// syncing partition with nothing left pending is ready; others are unchanged.
    pub fn on_pulled(self, pending: &mut BTreeSet<NodeId>, source: &NodeId) -> Self {
        if pending.remove(source) && pending.is_empty() && self == PartitionState::Syncing {
            PartitionState::Ready
        } else {
            self
        }
    }
}

/// Every partition of one bucket on this node.
#[derive(Debug, Clone)]
pub struct Partitions {
    states: Vec<PartitionState>,
    pending: Vec<BTreeSet<NodeId>>,
    not_owned_since: Vec<Option<Instant>>,
    last_served: Vec<Option<Instant>>,
    /// The members that pulled everything this node holds of each partition.
    pulled_by: Vec<BTreeSet<NodeId>>,
}

impl Partitions {
    /// The partitions of a bucket with `replicas` copies placed by `table`, on node `me`,
    /// at `now`. With `fresh` (a bucket this node just defined and no one else has),
    /// owned partitions are ready at once; otherwise they are pulled from every other
    /// member first.
    pub fn new(table: &Table, replicas: u32, me: NodeId, fresh: bool, now: Instant) -> Self {
        let others: BTreeSet<NodeId> = table.members.iter().copied().filter(|m| *m != me).collect();
        let mut pending = vec![BTreeSet::new(); PARTITIONS];
        let mut not_owned_since = vec![None; PARTITIONS];
        let states = (0..PARTITIONS as u16)
            .map(|p| {
                let i = p as usize;
                if !table.owners(p, replicas).contains(&me) {
                    not_owned_since[i] = Some(now);
                    PartitionState::NotOwned
                } else if fresh || others.is_empty() {
                    PartitionState::Ready
                } else {
                    pending[i] = others.clone();
                    PartitionState::Syncing
                }
            })
            .collect();
        Self {
            states,
            pending,
            not_owned_since,
            last_served: vec![None; PARTITIONS],
            pulled_by: vec![BTreeSet::new(); PARTITIONS],
        }
    }

    /// The state of partition `p` ([`PartitionState::NotOwned`] for one that does not
    /// exist).
    #[cfg(test)]
    pub fn state(&self, p: u16) -> PartitionState {
        self.states
            .get(p as usize)
            .copied()
            .unwrap_or(PartitionState::NotOwned)
    }

    /// Every partition's state, by partition.
    pub fn states(&self) -> &[PartitionState] {
        &self.states
    }

    /// The members partition `p` is still being pulled from.
    pub fn pending(&self, p: u16) -> Vec<NodeId> {
        self.pending
            .get(p as usize)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every (source, partitions) pull still to do.
    pub fn pulls(&self) -> BTreeMap<NodeId, Vec<u16>> {
        let mut out: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
        for (p, sources) in self.pending.iter().enumerate() {
            for s in sources {
                out.entry(*s).or_default().push(p as u16);
            }
        }
        out
    }

    /// Moves from `old` to `new` at `now` (see [`PartitionState::on_table`]). When this
    /// node rejoined in between (the cluster had declared it down: a split or a pause),
    /// every other member counts as new: what it holds may have missed writes, so it
    /// pulls every partition it owns from everyone before answering alone again.
    pub fn on_table(&mut self, old: &Table, new: &Table, replicas: u32, me: NodeId, now: Instant) {
        let rejoined = new.rejoins != old.rejoins;
        let newcomers: BTreeSet<NodeId> = new
            .members
            .iter()
            .copied()
            .filter(|m| *m != me && (rejoined || !old.contains(m)))
            .collect();
        let others: BTreeSet<NodeId> = new.members.iter().copied().filter(|m| *m != me).collect();
        // Draining nodes that were members of `old` still hold what they owned there.
        let leaving: Vec<NodeId> = new
            .handing_off
            .iter()
            .copied()
            .filter(|m| *m != me && old.contains(m))
            .collect();
        for p in 0..PARTITIONS as u16 {
            let i = p as usize;
            let owner = new.owners(p, replicas).contains(&me);
            let state = self.states[i];
            if !owner && state != PartitionState::NotOwned {
                self.not_owned_since[i] = Some(now);
            }
            if owner {
                self.not_owned_since[i] = None;
            }
            let mut sources = others.clone();
            if owner && state == PartitionState::NotOwned {
                sources.extend(
                    leaving
                        .iter()
                        .filter(|m| old.owners(p, replicas).contains(m))
                        .copied(),
                );
            }
            self.states[i] =
                state.on_table(owner, &mut self.pending[i], &newcomers, &sources, |m| {
                    new.contains(m) || new.handing_off.contains(m)
                });
        }
    }

    /// Records that `source` has given this node everything it holds of `partitions`.
    pub fn pulled(&mut self, source: &NodeId, partitions: &[u16]) {
        for &p in partitions {
            let i = p as usize;
            if let (Some(state), Some(pending)) = (self.states.get_mut(i), self.pending.get_mut(i))
            {
                *state = state.on_pulled(pending, source);
            }
        }
    }

    /// Records that a peer pulled `partitions` from here at `now`.
    pub fn served(&mut self, partitions: &[u16], now: Instant) {
        for &p in partitions {
            if let Some(s) = self.last_served.get_mut(p as usize) {
                *s = Some(now);
            }
        }
    }

    /// Records that `by` pulled everything this node holds of `partitions`.
    pub fn pulled_all(&mut self, by: NodeId, partitions: &[u16]) {
        for &p in partitions {
            if let Some(s) = self.pulled_by.get_mut(p as usize) {
                s.insert(by);
            }
        }
    }

    /// Whether partition `p`'s data here is still to be handed off: it is owned here, or
    /// one of its owners in `now` that did not own it in `before` has not pulled it all
    /// from here yet (ADR 0025).
    pub fn handoff_pending(&self, p: u16, before: &Table, now: &Table, replicas: u32) -> bool {
        let i = p as usize;
        if self
            .states
            .get(i)
            .is_none_or(|s| *s != PartitionState::NotOwned)
        {
            return self.states.get(i).is_some();
        }
        let had = before.owners(p, replicas);
        now.owners(p, replicas)
            .iter()
            .filter(|o| !had.contains(o))
            .any(|o| !self.pulled_by[i].contains(o))
    }

    /// Which partitions' data may be dropped at `now`: not owned for at least `after`,
    /// and not pulled from here for as long.
    pub fn stale(&self, now: Instant, after: Duration) -> Vec<bool> {
        let old = |t: Option<Instant>| t.is_none_or(|t| now.saturating_duration_since(t) >= after);
        (0..PARTITIONS)
            .map(|i| {
                self.states[i] == PartitionState::NotOwned
                    && self.not_owned_since[i]
                        .is_some_and(|t| now.saturating_duration_since(t) >= after)
                    && old(self.last_served[i])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ids;
    use PartitionState::*;

    fn set(of: &[NodeId]) -> BTreeSet<NodeId> {
        of.iter().copied().collect()
    }

    #[test]
    fn the_byte_form_round_trips_and_unknown_bytes_are_not_owned() {
        for s in [NotOwned, Ready, Syncing] {
            assert_eq!(PartitionState::from_u8(s.as_u8()), s);
        }
        assert_eq!(PartitionState::from_u8(7), NotOwned);
    }

    #[test]
    fn transitions_on_a_routing_change() {
        let n = ids(4);
        let all = |_: &NodeId| true;
        // Losing ownership: not owned, nothing pending, whatever the state.
        for s in [NotOwned, Ready, Syncing] {
            let mut pending = set(&n[..2]);
            assert_eq!(
                s.on_table(false, &mut pending, &set(&n[2..]), &set(&n), all),
                NotOwned
            );
            assert!(pending.is_empty());
        }
        // Gaining ownership: pull from every other member; alone, ready at once.
        let mut pending = BTreeSet::new();
        assert_eq!(
            NotOwned.on_table(true, &mut pending, &set(&[]), &set(&n[1..]), all),
            Syncing
        );
        assert_eq!(pending, set(&n[1..]));
        let mut pending = BTreeSet::new();
        assert_eq!(
            NotOwned.on_table(true, &mut pending, &set(&[]), &set(&[]), all),
            Ready
        );
        // Ready stays ready unless newcomers may hold writes it missed.
        let mut pending = BTreeSet::new();
        assert_eq!(
            Ready.on_table(true, &mut pending, &set(&[]), &set(&n), all),
            Ready
        );
        assert_eq!(
            Ready.on_table(true, &mut pending, &set(&n[3..]), &set(&n), all),
            Syncing
        );
        assert_eq!(pending, set(&n[3..]));
        // Syncing stops waiting for members that left, and becomes ready if none is left.
        let mut pending = set(&n[1..3]);
        let gone = |m: &NodeId| *m != n[1] && *m != n[2];
        assert_eq!(
            Syncing.on_table(true, &mut pending, &set(&[]), &set(&n), gone),
            Ready
        );
        let mut pending = set(&n[1..3]);
        let some_gone = |m: &NodeId| *m != n[1];
        let to = Syncing.on_table(true, &mut pending, &set(&n[3..]), &set(&n), some_gone);
        assert_eq!((to, pending), (Syncing, set(&[n[2], n[3]])));
    }

    #[test]
    fn a_syncing_partition_is_ready_once_every_source_has_been_pulled() {
        let n = ids(3);
        let mut pending = set(&n[..2]);
        assert_eq!(Syncing.on_pulled(&mut pending, &n[0]), Syncing);
        assert_eq!(
            Syncing.on_pulled(&mut pending, &n[2]),
            Syncing,
            "not a source"
        );
        assert_eq!(Syncing.on_pulled(&mut pending, &n[1]), Ready);
        // A pull that ends after the partition moved away changes nothing.
        let mut pending = set(&n[..1]);
        assert_eq!(NotOwned.on_pulled(&mut pending, &n[0]), NotOwned);
    }

    #[test]
    fn a_bucket_syncs_what_it_gains_and_drops_what_it_lost_after_the_handoff() {
        let n = ids(3);
        let me = n[0];
        let t0 = Instant::now();
        let after = Duration::from_secs(30);
        let alone = Table::new(1, vec![me]);
        // Alone: every partition is owned and ready, fresh or not.
        let mut parts = Partitions::new(&alone, 2, me, false, t0);
        assert!(parts.states().iter().all(|s| *s == Ready));
        assert!(parts.pulls().is_empty());
        // Two others join: partitions still owned pull from both; lost ones are not owned.
        let three = Table::new(2, n.clone());
        parts.on_table(&alone, &three, 2, me, t0);
        for p in 0..PARTITIONS as u16 {
            let owner = three.owners(p, 2).contains(&me);
            let expected = if owner { Syncing } else { NotOwned };
            assert_eq!(parts.state(p), expected, "partition {p}");
            let pending = parts.pending(p);
            assert_eq!(pending.len(), if owner { 2 } else { 0 });
        }
        let pulls = parts.pulls();
        assert_eq!(pulls.keys().copied().collect::<Vec<_>>(), n[1..].to_vec());
        // Pulling from both makes the owned partitions ready.
        for (source, ps) in &pulls {
            parts.pulled(source, ps);
        }
        assert!(parts.states().iter().all(|s| *s != Syncing));
        assert!(parts.pulls().is_empty());
        // Data of lost partitions is dropped only after `after`, and not while pulled.
        let lost: Vec<u16> = (0..PARTITIONS as u16)
            .filter(|p| parts.state(*p) == NotOwned)
            .collect();
        assert!(!lost.is_empty());
        assert!(parts.stale(t0 + after / 2, after).iter().all(|s| !s));
        parts.served(&lost[..1], t0 + after / 2);
        let stale = parts.stale(t0 + after, after);
        assert!(!stale[lost[0] as usize], "pulled from recently");
        assert!(lost[1..].iter().all(|p| stale[*p as usize]));
        assert_eq!(stale.iter().filter(|s| **s).count(), lost.len() - 1);
        assert!(parts.stale(t0 + 2 * after, after)[lost[0] as usize]);
        // Owning again forgets since when it was not owned.
        parts.on_table(
            &three,
            &alone.clone().after_rejoins(0),
            2,
            me,
            t0 + 3 * after,
        );
        assert!(parts.stale(t0 + 10 * after, after).iter().all(|s| !s));
        // A made-up partition reads as not owned.
        assert_eq!(parts.state(u16::MAX), NotOwned);
        assert!(parts.pending(u16::MAX).is_empty());
    }

    #[test]
    fn a_rejoin_makes_every_other_member_a_source_again() {
        let n = ids(3);
        let me = n[0];
        let t0 = Instant::now();
        let table = Table::new(1, n.clone());
        let mut parts = Partitions::new(&table, 3, me, true, t0);
        assert!(
            parts.states().iter().all(|s| *s == Ready),
            "fresh: ready at once"
        );
        // Same members, but this node rejoined: pull everything from everyone.
        let rejoined = Table::new(2, n.clone()).after_rejoins(1);
        parts.on_table(&table, &rejoined, 3, me, t0);
        assert!(parts.states().iter().all(|s| *s == Syncing));
        assert_eq!(parts.pending(5), n[1..].to_vec());
        // Without a rejoin, the same members change nothing.
        let mut calm = Partitions::new(&table, 3, me, true, t0);
        calm.on_table(&table, &Table::new(2, n.clone()), 3, me, t0);
        assert!(calm.states().iter().all(|s| *s == Ready));
    }

    #[test]
    fn a_joined_bucket_pulls_its_partitions_from_every_other_member() {
        let n = ids(3);
        let table = Table::new(1, n.clone());
        let parts = Partitions::new(&table, 1, n[1], false, Instant::now());
        for p in 0..PARTITIONS as u16 {
            if table.owners(p, 1)[0] == n[1] {
                assert_eq!(parts.state(p), Syncing);
                assert_eq!(parts.pending(p), vec![n[0], n[2]]);
            } else {
                assert_eq!(parts.state(p), NotOwned);
            }
        }
    }

    #[test]
    fn a_partition_gained_from_a_draining_node_is_pulled_from_it() {
        let n = ids(3);
        let (me, other, drainer) = (n[0], n[1], n[2]);
        let now = Instant::now();
        let old = Table::new(1, n.clone());
        // The drainer became a client: out of the table, but handing its data off.
        let new = Table::new(2, vec![me, other]).with_handing_off(vec![drainer]);
        let mut parts = Partitions::new(&old, 1, me, false, now);
        for p in 0..PARTITIONS as u16 {
            parts.pulled(&other, &[p]);
            parts.pulled(&drainer, &[p]);
        }
        parts.on_table(&old, &new, 1, me, now);
        let gained: Vec<u16> = (0..PARTITIONS as u16)
            .filter(|p| old.owners(*p, 1) == [drainer] && new.owners(*p, 1) == [me])
            .collect();
        assert!(!gained.is_empty());
        for &p in &gained {
            assert_eq!(parts.state(p), Syncing);
            assert_eq!(parts.pending(p), {
                let mut v = vec![other, drainer];
                v.sort();
                v
            });
        }
        // The drainer's side: what it owned is pending until the new owner pulled it all.
        let mut mine = Partitions::new(&old, 1, drainer, true, now);
        let after = Table::new(2, vec![me, other]);
        mine.on_table(&old, &after, 1, drainer, now);
        let p = gained[0];
        assert!(mine.handoff_pending(p, &old, &after, 1));
        mine.pulled_all(other, &[p]);
        assert!(
            mine.handoff_pending(p, &old, &after, 1),
            "not its new owner"
        );
        mine.pulled_all(me, &[p]);
        assert!(!mine.handoff_pending(p, &old, &after, 1));
        // A partition whose owners already held it (no new owner) has nothing to hand off.
        let held = (0..PARTITIONS as u16)
            .find(|q| old.owners(*q, 1) == [me] && after.owners(*q, 1) == [me])
            .unwrap();
        assert!(!mine.handoff_pending(held, &old, &after, 1));
    }
}
