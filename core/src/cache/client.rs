//! The cache operations a node performs for its user: route each key to its owners,
//! write to all of them before acknowledging, read from the best one, retry while the
//! membership settles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::debug;

use crate::cache::batch::batches;
use crate::cache::bucket::Bucket;
use crate::cache::hlc::wall_ms;
use crate::cache::join;
use crate::cache::limits::MAX_BATCH;
use crate::cache::local_write;
use crate::cache::messages::{Lookup, Request, Response, RmwOp, RmwResult, Spec};
use crate::cache::outbox;
use crate::cache::outgoing::OutPart;
use crate::cache::partition::partition_of;
use crate::cache::partition_state::PartitionState;
use crate::cache::plan::WritePlan;
use crate::cache::readbox;
use crate::cache::retry::{Next, Retry};
use crate::cache::routing;
use crate::cache::service::CacheService;
use crate::cache::state::Origin;
use crate::cache::store::EntryView;
use crate::cache::time::{expiry_after, saturating_millis};
use crate::cache::tombstones::PAGE_ITEM_OVERHEAD;
use crate::cache::validate::{check_entry, check_key, check_name, max_entry_bytes};
use crate::cache::{serve, CacheError, CacheOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::call::call_peer_bytes_within;
use crate::wire::codec::{decode_bulk, encode_bulk};
use crate::wire::Service;

/// How long a read waits for one owner before trying the next.
pub(crate) const READ_ATTEMPT: Duration = Duration::from_millis(1000);
/// How long a write waits for one owner before re-evaluating the owners.
pub(crate) const WRITE_ATTEMPT: Duration = Duration::from_millis(3000);

/// Sends `req` to `peer`'s cache service (served in place when `peer` is this node).
pub(crate) async fn call(
    shared: &Arc<CacheService>,
    peer: NodeId,
    req: Request,
) -> Result<Response> {
    call_within(shared, peer, req, shared.config.request_timeout).await
}

/// [`call`] with a deadline; a peer that fails to answer is tried last for a while.
pub(crate) async fn call_within(
    shared: &Arc<CacheService>,
    peer: NodeId,
    req: Request,
    deadline: Duration,
) -> Result<Response> {
    if peer == shared.id {
        return Box::pin(serve::respond(shared, peer, req)).await;
    }
    call_remote(shared, peer, &req, deadline).await
}

/// [`call_within`] for a peer that is not this node.
pub(crate) async fn call_remote(
    shared: &Arc<CacheService>,
    peer: NodeId,
    req: &impl serde::Serialize,
    deadline: Duration,
) -> Result<Response> {
    call_remote_body(shared, peer, encode_bulk(req)?, deadline).await
}

/// [`call_remote`] of a request already encoded.
pub(crate) async fn call_remote_body(
    shared: &Arc<CacheService>,
    peer: NodeId,
    body: Vec<u8>,
    deadline: Duration,
) -> Result<Response> {
    let body = Bytes::from(body);
    match call_peer_bytes_within(&shared.node, peer, Service::Cache, body, deadline).await {
        Ok(reply) => {
            shared.cache.mark_reachable(&peer);
            Ok(decode_bulk(&reply)?)
        }
        Err(e) => {
            if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::PeerUnavailable) {
                shared.cache.mark_unreachable(peer);
            }
            Err(e)
        }
    }
}

pub(crate) fn unexpected(what: &'static str) -> Error {
    CacheError::UnexpectedReply(what).into()
}

/// The current owners of partition `p`.
pub(crate) fn owners_now(shared: &CacheService, b: &Bucket, p: u16) -> Vec<NodeId> {
    shared.cache.table().owners(p, b.options.replicas).to_vec()
}

/// Splits `items` (sized by `size`) into the requests a peer accepts: at most
/// [`MAX_BATCH`] items and a message's worth of bytes each (see `validate.rs`).
fn split<T>(shared: &CacheService, items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    if items.len() == 1 {
        // One item always travels alone, whatever its size (`batches`).
        return vec![items];
    }
    let sizes: Vec<usize> = items
        .iter()
        .map(|t| size(t).saturating_add(PAGE_ITEM_OVERHEAD))
        .collect();
    let ranges = batches(
        &sizes,
        MAX_BATCH,
        max_entry_bytes(shared.config.max_message_size),
    );
    let mut items = items.into_iter();
    ranges
        .into_iter()
        .map(|r| items.by_ref().take(r.len()).collect())
        .collect()
}

/// The error for a bucket `name` that exists with options `held` other than `asked`.
pub(crate) fn options_differ(name: &str, held: CacheOptions, asked: CacheOptions) -> Error {
    CacheError::OptionsDiffer {
        name: name.to_string(),
        held,
        asked,
    }
    .into()
}

pub(crate) fn check_open(shared: &CacheService) -> Result<()> {
    if shared.is_closed() {
        Err(Error::closed())
    } else {
        Ok(())
    }
}

fn spec(b: &Bucket) -> Spec {
    Spec {
        name: b.name.clone(),
        options: b.options,
    }
}

/// Every peer that may take part: routing-table members, live members of the view, and
/// connected peers not confirmed by membership yet (bucket definitions reach them all).
pub(crate) fn live_peers(shared: &CacheService) -> Vec<NodeId> {
    let mut out: BTreeSet<NodeId> = shared.cache.table().members.iter().copied().collect();
    out.extend(crate::node::members::live_peers(shared));
    out.remove(&shared.id);
    out.into_iter().collect()
}

/// Opens or defines bucket `name` (see `Node::cache`).
pub(crate) async fn open(
    shared: &Arc<CacheService>,
    name: &str,
    options: Option<CacheOptions>,
) -> Result<Arc<Bucket>> {
    check_open(shared)?;
    check_name(name)?;
    if let Some(o) = &options {
        o.validate()?;
    }
    if let Some(b) = shared.cache.bucket(name) {
        return match options {
            Some(o) if o != b.options => Err(options_differ(name, b.options, o)),
            _ => Ok(b),
        };
    }
    crate::cache::maintain::follow_membership(shared);
    let peers = live_peers(shared);
    // Does the cluster know it already?
    let listed = futures::future::join_all(
        peers
            .iter()
            .map(|&p| call_within(shared, p, Request::Buckets, WRITE_ATTEMPT)),
    )
    .await;
    let existing = listed.into_iter().find_map(|r| match r {
        Ok(Response::Buckets(specs)) => specs.into_iter().find(|s| s.name == name),
        _ => None,
    });
    let (options, fresh) = match (existing, options) {
        (Some(s), Some(o)) if s.options != o => return Err(options_differ(name, s.options, o)),
        (Some(s), _) => (s.options, false),
        (None, o) => (o.unwrap_or_default(), true),
    };
    let table = shared.cache.table();
    let bucket = shared.cache.insert_with(name, Origin::Local, || {
        Bucket::new(
            name.to_string(),
            options,
            shared.budget.clone(),
            table,
            shared.id,
            fresh,
        )
    })?;
    if bucket.options != options {
        return Err(options_differ(name, bucket.options, options));
    }
    let def = Spec {
        name: name.to_string(),
        options,
    };
    let told = futures::future::join_all(
        peers
            .iter()
            .map(|&p| call_within(shared, p, Request::Define(def.clone()), WRITE_ATTEMPT)),
    )
    .await;
    for r in told {
        if let Err(e) = r {
            if e.kind() == ErrorKind::InvalidInput {
                if fresh {
                    shared.cache.remove(name);
                }
                return Err(e);
            }
            debug!(error = %e, "a peer did not learn the new bucket now; it will on its next write");
        }
    }
    Ok(bucket)
}

/// A local hit or authoritative miss, when this node owns the key's partition fully.
pub(crate) fn try_get_local(shared: &CacheService, b: &Bucket, key: &str) -> Option<Option<Bytes>> {
    let p = partition_of(key);
    if b.state(p) != PartitionState::Ready
        || b.epoch() != shared.cache.epoch()
        || maybe_stale(shared)
    {
        return None;
    }
    Some(b.store().get(key, wall_ms()))
}

/// [`try_get_local`] of many keys at once (a pipelined run of `GET`s, `get_many`): one
/// check of the placement and of staleness, one clock read and one store lock for all.
fn try_get_local_many(
    shared: &CacheService,
    b: &Bucket,
    keys: &[String],
) -> Vec<Option<Option<Bytes>>> {
    if b.epoch() != shared.cache.epoch() || maybe_stale(shared) {
        return vec![None; keys.len()];
    }
    let now = wall_ms();
    let mut store = b.store();
    store.warm(keys.iter().map(String::as_str));
    keys.iter()
        .map(|k| (b.state(partition_of(k)) == PartitionState::Ready).then(|| store.get(k, now)))
        .collect()
}

/// Whether this node just learned that the cluster had declared it down, and its routing
/// table has not followed yet: until it has (and has pulled again), its ready
/// partitions may miss writes made meanwhile and must not answer alone.
pub(crate) fn maybe_stale(shared: &CacheService) -> bool {
    shared
        .members
        .rejoins()
        .is_some_and(|r| shared.cache.rejoined_since_table(r))
}

/// Reads `key` with its expiry from the best owner.
async fn get_entry(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
) -> Result<Option<(Bytes, u64)>> {
    check_open(shared)?;
    check_key(key)?;
    let p = partition_of(key);
    let mut retry = Retry::new(Instant::now(), shared.config.request_timeout);
    loop {
        // Prefer this node, then the rest in rank order, then previous owners; members
        // that failed to answer recently go last.
        let targets = {
            let (table, previous) = (shared.cache.table(), shared.cache.previous());
            routing::read_order(
                &shared.id,
                &table,
                previous.as_deref(),
                p,
                b.options.replicas,
                |t| shared.cache.is_unreachable(t),
            )
        };
        let mut last_err = None;
        let count = targets.len();
        for (n, t) in targets.into_iter().enumerate() {
            let wait = retry.attempt_wait(Instant::now(), READ_ATTEMPT, n + 1 == count);
            let lookup = if t == shared.id {
                let req = Request::Get {
                    bucket: b.name.clone(),
                    keys: vec![key.to_string()],
                };
                match call_within(shared, t, req, wait).await {
                    Ok(Response::Lookups(mut l)) if l.len() == 1 => {
                        l.pop().ok_or_else(|| unexpected("get"))
                    }
                    Ok(_) => Err(unexpected("get")),
                    Err(e) => Err(e),
                }
            } else {
                // Concurrent reads served by `t` share its requests (`readbox.rs`).
                readbox::get_at(shared, t, &b.name, key.to_string(), wait).await
            };
            match lookup {
                Ok(Lookup::Found { value, expires }) => return Ok(Some((value, expires))),
                Ok(Lookup::Missing) => return Ok(None),
                Ok(Lookup::Moved) => {}
                Err(e) => last_err = Some(e),
            }
        }
        match retry.after_failure(Instant::now()) {
            Next::GiveUp => {
                return Err(
                    last_err.unwrap_or_else(|| CacheError::NoOwnerAnswered(key.to_string()).into())
                )
            }
            Next::Wait(pause) => tokio::time::sleep(pause).await,
        }
    }
}

/// `get`.
pub(crate) async fn get(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
) -> Result<Option<Bytes>> {
    if let Some(answer) = try_get_local(shared, b, key) {
        return Ok(answer);
    }
    Ok(get_entry(shared, b, key).await?.map(|(v, _)| v))
}

/// `ttl`.
pub(crate) async fn ttl(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
) -> Result<Option<Duration>> {
    match get_entry(shared, b, key).await? {
        None => Err(CacheError::NoKey {
            key: key.to_string(),
            bucket: b.name.clone(),
        }
        .into()),
        Some((_, 0)) => Ok(None),
        Some((_, expires)) => Ok(Some(Duration::from_millis(
            expires.saturating_sub(wall_ms()),
        ))),
    }
}

/// `get_many`: one request per owner, then single reads for what needs another owner.
pub(crate) async fn get_many(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    keys: Vec<String>,
) -> Result<Vec<Option<Bytes>>> {
    check_open(shared)?;
    for k in &keys {
        check_key(k)?;
    }
    let mut out = try_get_local_many(shared, b, &keys);
    let mut by_owner: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    let (table, now) = (shared.cache.table(), Instant::now());
    for (i, k) in keys.iter().enumerate() {
        if out[i].is_none() {
            let owners = table.owners(partition_of(k), b.options.replicas);
            let first = routing::preferred(&shared.id, owners, |t| {
                shared.cache.is_unreachable_at(t, now)
            });
            if let Some(first) = first {
                by_owner.entry(first).or_default().push(i);
            }
        }
    }
    // Collected: one ask is awaited as it is, several in place (`join.rs`).
    let asks: Vec<_> = by_owner
        .into_iter()
        .flat_map(|(t, idx)| {
            split(shared, idx, |&i| keys[i].len())
                .into_iter()
                .map(move |idx| (t, idx))
        })
        .map(|(t, idx)| {
            let asked: Vec<String> = idx.iter().map(|&i| keys[i].clone()).collect();
            async move {
                let found = if t == shared.id {
                    let req = Request::Get {
                        bucket: b.name.clone(),
                        keys: asked,
                    };
                    match call_within(shared, t, req, READ_ATTEMPT).await {
                        Ok(Response::Lookups(l)) if l.len() == idx.len() => {
                            l.into_iter().map(Ok).collect()
                        }
                        _ => Vec::new(),
                    }
                } else {
                    // Concurrent reads served by `t` share its requests (`readbox.rs`).
                    readbox::get_many_at(shared, t, &b.name, asked, READ_ATTEMPT).await
                };
                (idx, found)
            }
        })
        .collect();
    for (idx, found) in join::join(asks).await {
        // A key without an answer here (an error, a short reply) is read again below.
        for (i, l) in idx.into_iter().zip(found) {
            out[i] = match l {
                Ok(Lookup::Found { value, .. }) => Some(Some(value)),
                Ok(Lookup::Missing) => Some(None),
                Ok(Lookup::Moved) | Err(_) => None,
            };
        }
    }
    let mut result = Vec::with_capacity(keys.len());
    for (i, o) in out.into_iter().enumerate() {
        result.push(match o {
            Some(v) => v,
            None => get_entry(shared, b, &keys[i]).await?.map(|(v, _)| v),
        });
    }
    Ok(result)
}

/// The expiry of a write at `now` with `ttl` (default: the bucket's). A TTL so long that
/// the expiry would pass `u64::MAX` ms saturates there: it effectively never expires.
fn expiry(b: &Bucket, ttl: Option<Duration>, now: u64) -> Result<u64> {
    match ttl.or(b.options.ttl) {
        Some(t) if t.is_zero() => Err(CacheError::ZeroTtl.into()),
        Some(t) => Ok(expiry_after(now, t)),
        None => Ok(0),
    }
}

/// `set_many` (and `set`).
pub(crate) async fn set_many(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    entries: Vec<(String, Bytes)>,
    ttl: Option<Duration>,
) -> Result<()> {
    check_open(shared)?;
    let now = wall_ms();
    let expires = expiry(b, ttl, now)?;
    let mut views = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        check_entry(&key, Some(value.len()), shared.config.max_message_size)?;
        views.push(EntryView {
            partition: partition_of(&key),
            key,
            value: Some(value),
            // One clock read for the call: the stamps still increase, entry by entry.
            version: shared.cache.hlc.now_at(now),
            expires,
        });
    }
    write_entries(shared, b, views).await.map(|_| ())
}

/// `delete`.
pub(crate) async fn delete(shared: &Arc<CacheService>, b: &Arc<Bucket>, key: &str) -> Result<bool> {
    check_open(shared)?;
    check_key(key)?;
    let view = EntryView {
        partition: partition_of(key),
        key: key.to_string(),
        value: None,
        version: shared.cache.hlc.now(),
        expires: 0,
    };
    Ok(write_entries(shared, b, vec![view])
        .await?
        .into_iter()
        .next()
        .unwrap_or(false))
}

/// Writes `entries` to every owner (current and, during a move, previous) and returns,
/// per entry, whether any owner held a live value before. Retries owners that fail while
/// they remain owners, until the request timeout. The decisions (who still needs what,
/// when an entry is stamped again) are the [`WritePlan`]'s; this sends and waits.
pub(crate) async fn write_entries(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    entries: Vec<EntryView>,
) -> Result<Vec<bool>> {
    // This node alone takes them: applied here at once (`local_write.rs`).
    let entries = match local_write::write_alone(shared, b, entries)? {
        Ok(existed) => return Ok(existed),
        Err(entries) => entries,
    };
    let mut retry = Retry::new(Instant::now(), shared.config.request_timeout);
    let spec = b.spec();
    let mut plan = WritePlan::new(entries);
    loop {
        if shared.cache.table().members.is_empty() {
            // Only a client's table is empty (it owns nothing, ADR 0024): until it knows
            // a member, nobody can take the write.
            match retry.after_failure(Instant::now()) {
                Next::GiveUp => {
                    let key = plan.entries().first().map(|e| e.key.clone());
                    return Err(CacheError::NoOwnerAnswered(key.unwrap_or_default()).into());
                }
                Next::Wait(pause) => {
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
        }
        let planned = {
            let (table, previous) = (shared.cache.table(), shared.cache.previous());
            plan.sends(|p| {
                routing::write_targets_in(&table, previous.as_deref(), p, b.options.replicas)
            })
        };
        if planned.is_empty() {
            return Ok(plan.into_existed());
        }
        // This node's own share is applied at once, in place (no wire copies, no
        // forwards: this loop sends to owners that appear meanwhile on its next round).
        // Boxed: each remote send's future is large, and a vector of them moved on every
        // push and again into `join_all` cost more than the write itself (callgrind).
        let mut here = Vec::new();
        let mut sends = Vec::with_capacity(planned.len());
        for send in planned {
            let size = |&i: &usize| {
                let e = &plan.entries()[i];
                e.key
                    .len()
                    .saturating_add(e.value.as_ref().map_or(0, |v| v.len()))
            };
            for todo in split(shared, send.entries, size) {
                let t = send.target;
                if t == shared.id {
                    let views = todo
                        .iter()
                        .filter_map(|&i| plan.entries().get(i))
                        .map(EntryView::written);
                    let applied = serve::apply_here(shared, b, views);
                    here.push((t, todo, applied));
                    continue;
                }
                let part = OutPart::new(
                    spec.clone(),
                    plan.shared_entries().clone(),
                    todo.clone(),
                    send.sent_to.clone(),
                );
                sends.push(Box::pin(async move {
                    (t, todo, outbox::apply_at(shared, t, part).await)
                }));
            }
        }
        let mut last_err = None;
        let replies = futures::future::join_all(sends).await;
        for (t, todo, reply) in here.into_iter().chain(replies) {
            match reply {
                Ok(outcomes) => {
                    let table = shared.cache.table();
                    plan.applied(t, &todo, &outcomes, |p, t| {
                        table.owners(p, b.options.replicas).contains(t)
                    });
                }
                Err(e) if Retry::is_final(e.kind()) => return Err(e),
                Err(e) => {
                    debug!(peer = %t.short(), error = %e, "cache write not acknowledged yet");
                    last_err = Some(e);
                }
            }
        }
        // The version an owner names goes through the clock's drift bound like any
        // peer's stamp: one further ahead fails the write rather than letting it be
        // acknowledged unapplied.
        plan.restamp(|e, t, v| {
            shared.cache.hlc.after_at(v, wall_ms()).map_err(|source| {
                Error::from(CacheError::CannotWritePast {
                    owner: t.short().to_string(),
                    key: e.key.clone(),
                    source,
                })
            })
        })?;
        if let Some(e) = last_err {
            match retry.after_failure(Instant::now()) {
                Next::GiveUp => return Err(CacheError::NotAcknowledged { source: e }.into()),
                Next::Wait(pause) => tokio::time::sleep(pause).await,
            }
        }
    }
}

/// A read-modify-write at the key's primary owner, retried while the membership settles.
async fn rmw(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
    op: RmwOp,
) -> Result<RmwResult> {
    check_open(shared)?;
    check_key(key)?;
    let p = partition_of(key);
    let mut retry = Retry::new(Instant::now(), shared.config.request_timeout);
    loop {
        let Some(&primary) = owners_now(shared, b, p).first() else {
            if shared.holds_data() {
                return Err(CacheError::EmptyTable.into());
            }
            // A client owns nothing: without a member yet there is nobody to ask.
            match retry.after_failure(Instant::now()) {
                Next::GiveUp => return Err(CacheError::NoOwnerAnswered(key.to_string()).into()),
                Next::Wait(pause) => {
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
        };
        let req = Request::Rmw {
            spec: spec(b),
            key: key.to_string(),
            op,
        };
        let err = match call_within(shared, primary, req, 2 * WRITE_ATTEMPT).await {
            Ok(Response::Rmw(RmwResult::NotPrimary)) => {
                CacheError::NoPrimaryYet(key.to_string()).into()
            }
            Ok(Response::Rmw(r)) => return Ok(r),
            Ok(_) => unexpected("rmw"),
            Err(e) if Retry::is_final(e.kind()) => return Err(e),
            Err(e) => e,
        };
        match retry.after_failure(Instant::now()) {
            Next::GiveUp => return Err(err),
            Next::Wait(pause) => tokio::time::sleep(pause).await,
        }
    }
}

/// `incr`.
pub(crate) async fn incr(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
    by: i64,
) -> Result<i64> {
    match rmw(shared, b, key, RmwOp::Incr(by)).await? {
        RmwResult::Int(v) => Ok(v),
        _ => Err(unexpected("incr")),
    }
}

/// `expire`.
pub(crate) async fn expire(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
    ttl: Duration,
) -> Result<bool> {
    if ttl.is_zero() {
        return Err(CacheError::ZeroTtl.into());
    }
    // Saturates: `Duration::MAX` never expires (see `expiry`).
    match rmw(shared, b, key, RmwOp::Expire(saturating_millis(ttl))).await? {
        RmwResult::Existed(e) => Ok(e),
        _ => Err(unexpected("expire")),
    }
}

/// `len`: per partition, the largest count among the owners holding it fully.
pub(crate) async fn len(shared: &Arc<CacheService>, b: &Arc<Bucket>) -> Result<u64> {
    check_open(shared)?;
    let members = shared.cache.table().members.clone();
    let asks = members.iter().map(|&m| {
        call_within(
            shared,
            m,
            Request::Count {
                bucket: b.name.clone(),
            },
            WRITE_ATTEMPT,
        )
    });
    let mut best = vec![0u64; crate::cache::partition::PARTITIONS];
    for reply in futures::future::join_all(asks).await {
        if let Ok(Response::Counts(counts)) = reply {
            for (p, c) in counts {
                if let Some(slot) = best.get_mut(p as usize) {
                    *slot = (*slot).max(c);
                }
            }
        }
    }
    // A peer's count cannot overflow the sum.
    Ok(best.iter().fold(0u64, |n, c| n.saturating_add(*c)))
}
