//! The cache's background work on a node: follow membership into the routing table,
//! learn buckets from new members, pull partitions this node gains, expire entries by
//! sampling, and drop data of partitions it lost once nobody needs it any more.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::cache::bucket::Bucket;
use crate::cache::client::call;
use crate::cache::hlc::wall_ms;
use crate::cache::limits::{PULL_QUOTA_RETRY, PULL_ROUND_PAUSE};
use crate::cache::messages::{Request, Response};
use crate::cache::pull::{Next, PullRound};
use crate::cache::pull_schedule::{Every, PullEnd, PullKey, PullSchedule};
use crate::cache::routing::Table;
use crate::cache::serve::bucket_for;
use crate::cache::service::CacheService;
use crate::cache::store::Charge;
use crate::error::ErrorKind;
use crate::identity::NodeId;
use crate::peer::PeerState;

/// How often the maintenance loop runs when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);
/// Random entries examined per sampling round (Redis's active expiry uses 20).
const SAMPLES: usize = 20;
/// How long a partition this node no longer owns keeps its data (and is served to pulls).
pub const HANDOFF: Duration = Duration::from_secs(30);
/// How often tombstones past their retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(5);

type Running = Arc<Mutex<HashSet<PullKey>>>;

/// Runs until the node shuts down.
pub(crate) async fn run(shared: Arc<CacheService>) {
    let running: Running = Arc::new(Mutex::new(HashSet::new()));
    let mut schedule = PullSchedule::new();
    let (end_tx, mut end_rx) =
        tokio::sync::mpsc::unbounded_channel::<(PullKey, Vec<u16>, PullEnd)>();
    let mut purge_every = Every::new(PURGE_EVERY, Instant::now());
    // Deletes are remembered as long as membership remembers a down member: any split
    // that membership heals by itself is reconciled without resurrecting a deleted key.
    let retention_ms =
        u64::try_from(shared.config.membership.forget_after.as_millis()).unwrap_or(u64::MAX);
    // Membership wakes the loop when this node rejoined (its data may be stale).
    let mut members_changed = shared.members.subscribe();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = shared.cache.changed.notified() => {}
            _ = members_changed.changed() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
        while let Ok((key, partitions, end)) = end_rx.try_recv() {
            schedule.ended(key, partitions, end, Instant::now());
        }
        schedule.forget_old_failures(Instant::now());
        follow_membership(&shared);
        let table = shared.cache.table();
        let now = Instant::now();
        let purge = purge_every.due(now);
        for b in shared.cache.buckets() {
            if purge {
                let purged = b.store().purge_tombstones(wall_ms(), retention_ms);
                if purged > 0 {
                    debug!(bucket = %b.name, purged, "forgot deletes past their retention");
                }
            }
            b.place(table.clone(), shared.id, now);
            let pulls = b.pulls();
            // Forget where pulls that are no longer wanted had paused.
            schedule.keep_wanted(&b.name, |source| pulls.contains_key(source));
            for (source, partitions) in pulls {
                let key = (b.name.clone(), source);
                // A paused pull of the same partitions resumes where it stopped, when due.
                let Some(start) = schedule.start(&key, &partitions, now) else {
                    continue;
                };
                if !running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone())
                {
                    continue;
                }
                let (shared, b, running, end_tx) =
                    (shared.clone(), b.clone(), running.clone(), end_tx.clone());
                tokio::spawn(async move {
                    let end = pull(&shared, &b, source, &partitions, start).await;
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    let _ = end_tx.send((key, partitions, end));
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
pub(crate) fn follow_membership(shared: &Arc<CacheService>) {
    let Some(m) = shared.members.get() else {
        return;
    };
    let rejoins = m.rejoins();
    // Clients own no partitions (ADR 0024): neither others nor, on a client, itself.
    let clients: BTreeSet<NodeId> = m.clients().into_iter().collect();
    let mut members: Vec<NodeId> = m
        .states()
        .into_iter()
        .filter(|(id, s)| *s != PeerState::Down && !clients.contains(id))
        .map(|(id, _)| id)
        .collect();
    if shared.holds_data() {
        members.push(shared.id);
    }
    members.sort();
    members.dedup();
    let current = shared.cache.table();
    // Members that became clients while live are draining (ADR 0025): their data is
    // pulled from them as long as they are up.
    let mut handing_off: Vec<NodeId> = m
        .states()
        .into_iter()
        .filter(|(id, s)| {
            *s != PeerState::Down
                && clients.contains(id)
                && (current.contains(id) || current.handing_off.contains(id))
        })
        .map(|(id, _)| id)
        .collect();
    handing_off.sort();
    handing_off.dedup();
    if members == current.members
        && rejoins == current.rejoins
        && handing_off == current.handing_off
    {
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
    shared.cache.set_table(
        Table::new(current.epoch + 1, members)
            .after_rejoins(rejoins)
            .with_handing_off(handing_off),
    );
    for peer in newcomers {
        let shared = shared.clone();
        tokio::spawn(async move { learn_buckets(&shared, peer).await });
    }
}

/// Creates locally every bucket `peer` knows and this node does not.
async fn learn_buckets(shared: &Arc<CacheService>, peer: NodeId) {
    match call(shared, peer, Request::Buckets).await {
        Ok(Response::Buckets(specs)) => {
            for spec in specs {
                if shared.cache.bucket(&spec.name).is_none() {
                    match bucket_for(shared, peer, &spec) {
                        Ok(_) => {
                            debug!(bucket = %spec.name, peer = %peer.short(), "learned a bucket")
                        }
                        Err(e) if e.kind() == ErrorKind::QuotaExceeded => {
                            warn!(peer = %peer.short(), error = %e, "no room for more buckets");
                            break;
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

/// Pulls `partitions` of `b` from `source` from `cursor` on, merging by version, for one
/// round (see `pull.rs`): only entries of those partitions, with valid keys and values
/// and versions the clock accepts, are kept, each charged to the memory quota like a
/// write. A round that brought its share pauses; a round that hits the quota stops where
/// it is (the partitions stay syncing, so reads still consult the source, which keeps
/// their data while it is pulled from) and both resume from the same cursor later.
async fn pull(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    source: NodeId,
    partitions: &[u16],
    cursor: u32,
) -> PullEnd {
    let mut round = PullRound::new(partitions, cursor, shared.config.max_message_size);
    let (mut moved, mut dropped) = (0usize, 0usize);
    let end = loop {
        let at = round.cursor();
        let req = Request::Pull {
            bucket: b.name.clone(),
            partitions: partitions.to_vec(),
            cursor: at,
            table: shared.cache.table().digest,
        };
        let (entries, next) = match call(shared, source, req).await {
            Ok(Response::Page { agrees: false, .. }) => {
                debug!(peer = %source.short(), "pull deferred: the source's routing table differs");
                return PullEnd::Failed;
            }
            Ok(Response::Page { entries, next, .. }) => (entries, next),
            Ok(_) => return PullEnd::Failed,
            Err(e) => {
                debug!(bucket = %b.name, peer = %source.short(), error = %e, "pull failed");
                return PullEnd::Failed;
            }
        };
        let now = wall_ms();
        let hlc = &shared.cache.hlc;
        let (sifted, step) = match round.sift(entries, next, |v| hlc.check_at(v, now).is_ok()) {
            Ok(x) => x,
            Err(e) => {
                warn!(bucket = %b.name, peer = %source.short(), error = %e, "pull source cut off");
                return PullEnd::Failed;
            }
        };
        if sifted.dropped() > 0 {
            dropped += sifted.dropped();
            warn!(
                bucket = %b.name,
                peer = %source.short(),
                foreign = sifted.foreign,
                invalid = sifted.invalid,
                too_new = sifted.too_new,
                "dropped pulled entries that were not asked for or not acceptable"
            );
        }
        let mut full = None;
        {
            let mut store = b.store();
            for e in &sifted.keep {
                if hlc.observe_at(e.version, now).is_err() {
                    dropped += 1;
                    continue;
                }
                match store.apply(e, now, Charge::Enforce) {
                    Ok(_) => moved += 1,
                    Err(err) if err.kind() == ErrorKind::QuotaExceeded => {
                        full = Some(err);
                        break;
                    }
                    Err(err) => {
                        dropped += 1;
                        debug!(bucket = %b.name, error = %err, "a pulled entry was not applied");
                    }
                }
            }
        }
        if let Some(err) = full {
            debug!(bucket = %b.name, peer = %source.short(), error = %err, "pull stopped at the memory quota");
            break PullEnd::Paused {
                cursor: at,
                retry: PULL_QUOTA_RETRY,
            };
        }
        match step {
            Next::More(_) => {}
            Next::Done => break PullEnd::Complete,
            Next::Pause(c) => {
                break PullEnd::Paused {
                    cursor: c,
                    retry: PULL_ROUND_PAUSE,
                }
            }
        }
    };
    if end == PullEnd::Complete {
        b.pulled(&source, partitions);
    }
    debug!(bucket = %b.name, peer = %source.short(), partitions = partitions.len(), moved, dropped, bytes = round.bytes(), ?end, "pulled partitions");
    end
}
