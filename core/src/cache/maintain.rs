//! The cache's background work on a node: follow membership into the routing table,
//! learn buckets from new members, pull partitions this node gains, expire entries by
//! sampling, and drop data of partitions it lost once nobody needs it any more.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::cache::bucket::Bucket;
use crate::cache::client::call;
use crate::cache::hlc::wall_ms;
use crate::cache::messages::{Request, Response};
use crate::cache::routing::Table;
use crate::cache::serve::bucket_for;
use crate::cache::store::{Charge, EntryView};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::peer::PeerState;

/// How often the maintenance loop runs when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);
/// Random entries examined per sampling round (Redis's active expiry uses 20).
const SAMPLES: usize = 20;
/// How long a partition this node no longer owns keeps its data (and is served to pulls).
pub const HANDOFF: Duration = Duration::from_secs(30);
/// Pause before pulling again from a member that failed.
const PULL_RETRY: Duration = Duration::from_millis(500);
/// How often tombstones past their retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(5);

type Running = Arc<Mutex<HashSet<(String, NodeId)>>>;

/// Runs until the node shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let running: Running = Arc::new(Mutex::new(HashSet::new()));
    let mut last_fail: std::collections::HashMap<NodeId, Instant> = Default::default();
    let (fail_tx, mut fail_rx) = tokio::sync::mpsc::unbounded_channel::<NodeId>();
    let mut next_purge = Instant::now() + PURGE_EVERY;
    // Deletes are remembered as long as membership remembers a down member: any split
    // that membership heals by itself is reconciled without resurrecting a deleted key.
    let retention_ms =
        u64::try_from(shared.config.membership.forget_after.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = shared.cache.changed.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
        while let Ok(id) = fail_rx.try_recv() {
            last_fail.insert(id, Instant::now());
        }
        follow_membership(&shared);
        let table = shared.cache.table();
        let now = Instant::now();
        let purge = now >= next_purge;
        if purge {
            next_purge = now + PURGE_EVERY;
        }
        for b in shared.cache.buckets() {
            if purge {
                let purged = b.store().purge_tombstones(wall_ms(), retention_ms);
                if purged > 0 {
                    debug!(bucket = %b.name, purged, "forgot deletes past their retention");
                }
            }
            b.place(table.clone(), shared.id, now);
            for (source, partitions) in b.pulls() {
                if last_fail
                    .get(&source)
                    .is_some_and(|t| t.elapsed() < PULL_RETRY)
                {
                    continue;
                }
                let key = (b.name.clone(), source);
                if !running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone())
                {
                    continue;
                }
                let (shared, b, running, fail_tx) =
                    (shared.clone(), b.clone(), running.clone(), fail_tx.clone());
                tokio::spawn(async move {
                    if !pull(&shared, &b, source, &partitions).await {
                        let _ = fail_tx.send(source);
                    }
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    shared.cache.changed.notify_one();
                });
            }
            let mut rounds = 0;
            while b.store().expire_sample(SAMPLES, wall_ms()) > SAMPLES / 4 && rounds < 16 {
                rounds += 1;
            }
            let dropped = b.drop_stale(now, HANDOFF);
            if dropped > 0 {
                debug!(bucket = %b.name, dropped, "dropped entries of partitions moved away");
            }
        }
    }
}

/// Rebuilds the table if the live membership changed, and learns buckets from newcomers.
pub(crate) fn follow_membership(shared: &Arc<Shared>) {
    let Ok(m) = shared.membership() else { return };
    let rejoins = m.rejoins();
    let mut members: Vec<NodeId> = m.with_view(|v| {
        v.members()
            .filter(|(_, s)| *s != PeerState::Down)
            .map(|(m, _)| m.id)
            .collect()
    });
    members.push(shared.id);
    members.sort();
    members.dedup();
    let current = shared.cache.table();
    if members == current.members && rejoins == current.rejoins {
        return;
    }
    let old: BTreeSet<NodeId> = current.members.iter().copied().collect();
    let newcomers: Vec<NodeId> = members
        .iter()
        .copied()
        .filter(|m| !old.contains(m))
        .collect();
    info!(
        epoch = current.epoch + 1,
        members = members.len(),
        rejoined = rejoins != current.rejoins,
        "cache routing table changed"
    );
    shared
        .cache
        .set_table(Table::new(current.epoch + 1, members).after_rejoins(rejoins));
    for peer in newcomers {
        let shared = shared.clone();
        tokio::spawn(async move { learn_buckets(&shared, peer).await });
    }
}

/// Creates locally every bucket `peer` knows and this node does not.
async fn learn_buckets(shared: &Arc<Shared>, peer: NodeId) {
    match call(shared, peer, Request::Buckets).await {
        Ok(Response::Buckets(specs)) => {
            for spec in specs {
                if shared.cache.bucket(&spec.name).is_none() {
                    match bucket_for(shared, &spec) {
                        Ok(_) => {
                            debug!(bucket = %spec.name, peer = %peer.short(), "learned a bucket")
                        }
                        Err(e) => debug!(bucket = %spec.name, error = %e, "bucket not learned"),
                    }
                }
            }
        }
        Ok(_) => {}
        Err(e) => debug!(peer = %peer.short(), error = %e, "could not list a new member's buckets"),
    }
}

/// Pulls `partitions` of `b` from `source`, merging by version. Returns whether it
/// completed.
async fn pull(shared: &Arc<Shared>, b: &Arc<Bucket>, source: NodeId, partitions: &[u16]) -> bool {
    let mut cursor = 0u32;
    let mut moved = 0usize;
    loop {
        let req = Request::Pull {
            bucket: b.name.clone(),
            partitions: partitions.to_vec(),
            cursor,
            table: shared.cache.table().digest,
        };
        let (entries, next) = match call(shared, source, req).await {
            Ok(Response::Page { agrees: false, .. }) => {
                debug!(peer = %source.short(), "pull deferred: the source's routing table differs");
                return false;
            }
            Ok(Response::Page { entries, next, .. }) => (entries, next),
            Ok(_) => return false,
            Err(e) => {
                debug!(bucket = %b.name, peer = %source.short(), error = %e, "pull failed");
                return false;
            }
        };
        let now = wall_ms();
        {
            let mut store = b.store();
            for e in entries {
                let e = EntryView::from(e);
                shared.cache.hlc.observe(e.version);
                if store.apply(&e, now, Charge::Force).is_ok() {
                    moved += 1;
                }
            }
        }
        match next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    b.pulled(&source, partitions);
    debug!(bucket = %b.name, peer = %source.short(), partitions = partitions.len(), moved, "pulled partitions");
    true
}
