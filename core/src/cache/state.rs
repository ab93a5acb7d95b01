//! The cache's state on a node: its buckets, the routing table (and the one before it,
//! for writes during a move), and the hybrid logical clock.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::cache::bucket::Bucket;
use crate::cache::error::CacheError;
use crate::cache::hlc::Hlc;
use crate::cache::limits::{LOCAL_BUCKET_RESERVE, MAX_BUCKETS};
use crate::cache::routing::Table;
use crate::error::Result;
use crate::identity::NodeId;

/// How long after a membership change writes also go to the partitions' previous owners.
pub const TRANSITION: Duration = Duration::from_secs(30);

/// How long a member that failed to answer is tried after the others.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// Who makes a node create a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This node's user (`Node::cache`).
    Local,
    /// A peer: a definition, a write or a read-modify-write naming a bucket this node
    /// does not know, or the bucket list of a member it meets.
    Peer,
}

impl Origin {
    /// The most buckets a node may hold for a bucket of this origin to be created:
    /// [`MAX_BUCKETS`], less [`LOCAL_BUCKET_RESERVE`] for peers, so that a member defining
    /// junk buckets cannot stop this node's user from opening its own.
    pub fn limit(self) -> usize {
        match self {
            Origin::Local => MAX_BUCKETS,
            Origin::Peer => MAX_BUCKETS.saturating_sub(LOCAL_BUCKET_RESERVE),
        }
    }

    fn who(self) -> &'static str {
        match self {
            Origin::Local => "this node's user",
            Origin::Peer => "peers",
        }
    }
}

/// Cache state of one node.
#[derive(Debug)]
pub struct CacheState {
    /// Versions for writes.
    pub hlc: Hlc,
    buckets: RwLock<HashMap<String, Arc<Bucket>>>,
    table: RwLock<Arc<Table>>,
    epoch: std::sync::atomic::AtomicU64,
    rejoins: std::sync::atomic::AtomicU64,
    previous: RwLock<Option<(Arc<Table>, Instant)>>,
    unreachable: std::sync::Mutex<HashMap<NodeId, Instant>>,
    /// Woken when the table changes or buckets appear (the maintenance task waits on it).
    pub changed: tokio::sync::Notify,
}

impl CacheState {
    /// The state of a node that knows only itself.
    #[cfg(test)]
    pub fn new(me: NodeId) -> Self {
        Self::starting(me, true)
    }

    /// The state of a node that knows only itself; one that does not `holds_data` (a
    /// client, ADR 0024) starts with a table without members: it owns nothing.
    pub fn starting(me: NodeId, holds_data: bool) -> Self {
        let members = if holds_data { vec![me] } else { Vec::new() };
        Self {
            hlc: Hlc::default(),
            buckets: RwLock::new(HashMap::new()),
            table: RwLock::new(Arc::new(Table::new(0, members))),
            epoch: std::sync::atomic::AtomicU64::new(0),
            rejoins: std::sync::atomic::AtomicU64::new(0),
            previous: RwLock::new(None),
            unreachable: std::sync::Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The previous table, while a move may still be under way.
    pub fn previous(&self) -> Option<Arc<Table>> {
        self.previous_at(Instant::now())
    }

    /// [`CacheState::previous`] at `now`: the table before the current one, for
    /// [`TRANSITION`] after the current one was installed.
    pub fn previous_at(&self, now: Instant) -> Option<Arc<Table>> {
        let prev = self.previous.read().unwrap_or_else(|p| p.into_inner());
        prev.as_ref()
            .filter(|(_, since)| now.saturating_duration_since(*since) < TRANSITION)
            .map(|(t, _)| t.clone())
    }

    /// How long writes still go to the previous table's owners too ([`TRANSITION`] after
    /// the current table was installed), at `now`; zero once they no longer do.
    pub fn transition_left_at(&self, now: Instant) -> Duration {
        let prev = self.previous.read().unwrap_or_else(|p| p.into_inner());
        prev.as_ref().map_or(Duration::ZERO, |(_, since)| {
            TRANSITION.saturating_sub(now.saturating_duration_since(*since))
        })
    }

    /// The epoch of the current table (cheaper than [`CacheState::table`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether this node has rejoined the cluster (see `Membership::rejoins`) since the
    /// current table was made, given the rejoins counted so far: its replicas may then be
    /// stale, and until the table follows (and its partitions are pulled again) it must
    /// not answer from them as if they were complete.
    pub fn rejoined_since_table(&self, rejoins_now: u64) -> bool {
        self.rejoins.load(std::sync::atomic::Ordering::Acquire) != rejoins_now
    }

    /// Installs a new table; returns the one it replaces.
    pub fn set_table(&self, new: Table) -> Arc<Table> {
        self.set_table_at(new, Instant::now())
    }

    /// [`CacheState::set_table`] at `now` (the replaced table is the previous one until
    /// [`TRANSITION`] after `now`).
    pub fn set_table_at(&self, new: Table, now: Instant) -> Arc<Table> {
        let epoch = new.epoch;
        self.rejoins
            .store(new.rejoins, std::sync::atomic::Ordering::Release);
        let new = Arc::new(new);
        let old = std::mem::replace(
            &mut *self.table.write().unwrap_or_else(|p| p.into_inner()),
            new,
        );
        *self.previous.write().unwrap_or_else(|p| p.into_inner()) = Some((old.clone(), now));
        self.epoch
            .store(epoch, std::sync::atomic::Ordering::Release);
        old
    }

    /// Records that `id` did not answer a cache request in time (and forgets those that
    /// failed longer ago than [`UNREACHABLE_FOR`], so node ids that come and go do not
    /// pile up).
    pub fn mark_unreachable(&self, id: NodeId) {
        self.mark_unreachable_at(id, Instant::now());
    }

    /// [`CacheState::mark_unreachable`] at `now`.
    pub fn mark_unreachable_at(&self, id: NodeId, now: Instant) {
        let mut map = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| now.saturating_duration_since(*t) < UNREACHABLE_FOR);
        map.insert(id, now);
    }

    /// Records that `id` answered.
    pub fn mark_reachable(&self, id: &NodeId) {
        let mut map = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        if !map.is_empty() {
            map.remove(id);
        }
    }

    /// Whether `id` failed to answer within the last `UNREACHABLE_FOR`.
    pub fn is_unreachable(&self, id: &NodeId) -> bool {
        self.is_unreachable_at(id, Instant::now())
    }

    /// [`CacheState::is_unreachable`] at `now`.
    pub fn is_unreachable_at(&self, id: &NodeId, now: Instant) -> bool {
        let map = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .is_some_and(|t| now.saturating_duration_since(*t) < UNREACHABLE_FOR)
    }

    /// The bucket `name`, if known.
    pub fn bucket(&self, name: &str) -> Option<Arc<Bucket>> {
        self.buckets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Every known bucket.
    pub fn buckets(&self) -> Vec<Arc<Bucket>> {
        self.buckets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Inserts the bucket `make` builds unless one named `name` exists; returns the one in
    /// place. Fails with `QuotaExceeded` (building nothing) when this node already holds
    /// as many buckets as `origin` may make it create (see [`Origin::limit`]).
    pub fn insert_with(
        &self,
        name: &str,
        origin: Origin,
        make: impl FnOnce() -> Bucket,
    ) -> Result<Arc<Bucket>> {
        let mut map = self.buckets.write().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = map.get(name) {
            return Ok(b.clone());
        }
        let limit = origin.limit();
        if map.len() >= limit {
            return Err(CacheError::TooManyBuckets {
                held: map.len(),
                who: origin.who(),
                limit,
                name: name.to_string(),
            }
            .into());
        }
        let bucket = Arc::new(make());
        map.insert(name.to_string(), bucket.clone());
        drop(map);
        self.changed.notify_one();
        Ok(bucket)
    }

    /// How many buckets this node holds.
    #[cfg(test)]
    pub fn bucket_count(&self) -> usize {
        self.buckets.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Removes bucket `name` (a definition refused by the cluster).
    pub fn remove(&self, name: &str) {
        self.buckets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::identity::Keypair;

    fn id() -> NodeId {
        Keypair::generate().unwrap().node_id()
    }

    #[test]
    fn peers_may_create_buckets_up_to_their_share_and_the_user_up_to_the_limit() {
        let me = id();
        let state = CacheState::new(me);
        let budget = Arc::new(crate::memory::MemoryBudget::new(u64::MAX));
        let make = |name: &str| {
            let (name, budget, table) = (name.to_string(), budget.clone(), state.table());
            move || Bucket::new(name, Default::default(), budget, table, me, true)
        };
        for i in 0..Origin::Peer.limit() {
            let name = format!("peer{i}");
            state.insert_with(&name, Origin::Peer, make(&name)).unwrap();
        }
        let err = state
            .insert_with("one-more", Origin::Peer, make("one-more"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        // One that exists is returned, whoever asks.
        assert!(state.insert_with("peer3", Origin::Peer, make("x")).is_ok());
        for i in 0..LOCAL_BUCKET_RESERVE {
            let name = format!("mine{i}");
            state
                .insert_with(&name, Origin::Local, make(&name))
                .unwrap();
        }
        assert_eq!(state.bucket_count(), MAX_BUCKETS);
        let err = state
            .insert_with("last", Origin::Local, make("last"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
        assert!(err.message().contains("1024"), "{}", err.message());
    }

    #[test]
    fn failures_are_forgotten_once_old() {
        let state = CacheState::new(id());
        let t0 = Instant::now();
        for _ in 0..100 {
            state.mark_unreachable_at(id(), t0);
        }
        let (a, b) = (id(), id());
        state.mark_unreachable_at(a, t0 + UNREACHABLE_FOR / 2);
        state.mark_unreachable_at(b, t0 + UNREACHABLE_FOR + Duration::from_millis(1));
        {
            let map = state.unreachable.lock().unwrap_or_else(|p| p.into_inner());
            assert_eq!(map.len(), 2, "the 100 old failures are forgotten");
            assert!(map.contains_key(&a) && map.contains_key(&b));
        }
        let later = t0 + UNREACHABLE_FOR;
        assert!(state.is_unreachable_at(&a, later));
        assert!(!state.is_unreachable_at(&a, later + UNREACHABLE_FOR / 2));
        state.mark_reachable(&b);
        assert!(!state.is_unreachable_at(&b, later));
    }

    #[test]
    fn the_previous_table_is_kept_for_the_transition() {
        let (a, b) = (id(), id());
        let state = CacheState::new(a);
        let t0 = Instant::now();
        assert!(state.previous_at(t0).is_none());
        assert_eq!(state.transition_left_at(t0), Duration::ZERO);
        let old = state.set_table_at(Table::new(1, vec![a, b]), t0);
        assert_eq!(old.members, vec![a]);
        assert_eq!(state.epoch(), 1);
        let prev = state.previous_at(t0 + TRANSITION / 2);
        assert_eq!(prev.map(|t| t.epoch), Some(0));
        assert!(state.previous_at(t0 + TRANSITION).is_none());
        assert_eq!(
            state.transition_left_at(t0 + TRANSITION / 2),
            TRANSITION / 2
        );
        assert_eq!(state.transition_left_at(t0 + TRANSITION), Duration::ZERO);
    }
}
