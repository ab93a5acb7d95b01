//! The cache service: what a node does with a cache request, whether it came from a peer
//! or from this node itself (local owners are served by the same code, without I/O).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::debug;

use crate::cache::bucket::Bucket;
use crate::cache::client::{
    call_within, maybe_stale, options_differ, owners_now, READ_ATTEMPT, WRITE_ATTEMPT,
};
use crate::cache::error::CacheError;
use crate::cache::hlc::wall_ms;
use crate::cache::limits::PAGE_BYTES;
use crate::cache::messages::{
    ApplyIn, GetRef, Lookup, Outcome, PartReply, Request, Response, RmwOp, RmwResult, Spec,
    WireEntry,
};
use crate::cache::partition::{partition_of, PARTITIONS};
use crate::cache::partition_state::PartitionState;
use crate::cache::plan::Forward;
use crate::cache::routing;
use crate::cache::service::CacheService;
use crate::cache::state::Origin;
use crate::cache::store::{Charge, EntryView, Read, Written};
use crate::cache::time::expiry_after;
use crate::cache::validate::{
    check_apply_in, check_name, check_read, check_request, check_wire_entry, max_entry_bytes,
};
use crate::error::Result;
use crate::identity::NodeId;
use crate::wire::codec::{decode_bulk, encode_bulk_sized};

/// Serves a cache frame from `from`. A `Get` and the writes (`Apply`, `ApplyBatch`), the
/// requests an owner answers most, are read in place: their keys and values are not
/// copied out of the frame (a written value is copied once, into the store).
pub(crate) async fn handle(shared: &Arc<CacheService>, from: NodeId, body: Bytes) -> Result<Bytes> {
    let resp = if let Some(get) = GetRef::decode(&body) {
        check_read(get.bucket, &get.keys)?;
        get_reply(shared, get.bucket, &get.keys).await
    } else if let Some(writes) = ApplyIn::decode(&body) {
        check_apply_in(&writes, shared.config.max_message_size)?;
        match writes {
            ApplyIn::One(w) => {
                let entries: Vec<Written<'_>> = w.entries.iter().map(|e| e.written()).collect();
                apply(shared, from, w.spec, &entries, w.sent_to).await?
            }
            ApplyIn::Batch(parts) => {
                let parts = parts.into_iter().map(|p| {
                    let entries: Vec<Written<'_>> = p.entries.iter().map(|e| e.written()).collect();
                    (p.spec, entries, p.sent_to)
                });
                apply_batch(shared, from, parts).await?
            }
        }
    } else {
        let req: Request = decode_bulk(&body)?;
        respond(shared, from, req).await?
    };
    Ok(Bytes::from(encode_bulk_sized(&resp, size_hint(&resp))?))
}

/// About how many bytes `resp` encodes to: a reply carrying values is then written into
/// one buffer of its size, not into one that grows (each growth a copy of all so far).
fn size_hint(resp: &Response) -> usize {
    const PER_ENTRY: usize = 24;
    match resp {
        Response::Lookups(lookups) => lookups.iter().fold(16usize, |n, l| match l {
            Lookup::Found { value, .. } => n.saturating_add(value.len()).saturating_add(PER_ENTRY),
            Lookup::Missing | Lookup::Moved => n.saturating_add(1),
        }),
        Response::Page { entries, .. } => entries.iter().fold(16usize, |n, e| {
            n.saturating_add(e.key.len())
                .saturating_add(e.value.as_ref().map_or(0, |v| v.len()))
                .saturating_add(PER_ENTRY)
        }),
        _ => 64,
    }
}

/// The answer to a `Get` of `keys` in `bucket`: every key `Moved` when the bucket is
/// unknown here.
async fn get_reply(shared: &Arc<CacheService>, bucket: &str, keys: &[impl AsRef<str>]) -> Response {
    match shared.cache.bucket(bucket) {
        Some(b) => Response::Lookups(lookup(shared, &b, keys).await),
        None => Response::Lookups(vec![Lookup::Moved; keys.len()]),
    }
}

/// The bucket of `spec`, created (to be pulled from the others) if unknown here, within
/// the number of buckets `from` may make this node create (`state::Origin`).
pub(crate) fn bucket_for(
    shared: &Arc<CacheService>,
    from: NodeId,
    spec: &Spec,
) -> Result<Arc<Bucket>> {
    check_name(&spec.name)?;
    spec.options.validate()?;
    let b = match shared.cache.bucket(&spec.name) {
        Some(b) => b,
        None => {
            let origin = if from == shared.id {
                Origin::Local
            } else {
                Origin::Peer
            };
            let table = shared.cache.table();
            shared.cache.insert_with(&spec.name, origin, || {
                Bucket::new(
                    spec.name.clone(),
                    spec.options,
                    shared.budget.clone(),
                    table,
                    shared.id,
                    false,
                )
            })?
        }
    };
    if b.options != spec.options {
        return Err(options_differ(&spec.name, b.options, spec.options));
    }
    Ok(b)
}

/// Answers `req` from `from` (which may be this node). Every length and count in it is
/// checked first, with the limits a user's call is held to (`validate.rs`).
pub(crate) async fn respond(
    shared: &Arc<CacheService>,
    from: NodeId,
    req: Request,
) -> Result<Response> {
    check_request(&req, shared.config.max_message_size)?;
    match req {
        Request::Define(spec) => {
            bucket_for(shared, from, &spec)?;
            Ok(Response::Done)
        }
        Request::Buckets => Ok(Response::Buckets(
            shared
                .cache
                .buckets()
                .iter()
                .map(|b| Spec {
                    name: b.name.clone(),
                    options: b.options,
                })
                .collect(),
        )),
        Request::Apply {
            spec,
            entries,
            sent_to,
        } => {
            let entries: Vec<Written<'_>> = entries.iter().map(WireEntry::written).collect();
            apply(shared, from, spec, &entries, sent_to).await
        }
        Request::ApplyBatch(parts) => {
            let parts = parts.iter().map(|p| {
                let entries: Vec<Written<'_>> = p.entries.iter().map(WireEntry::written).collect();
                (p.spec.clone(), entries, p.sent_to.clone())
            });
            apply_batch(shared, from, parts).await
        }
        Request::Get { bucket, keys } => Ok(get_reply(shared, &bucket, &keys).await),
        Request::Peek { bucket, keys } => {
            let peeked = match shared.cache.bucket(&bucket) {
                Some(b) => peek_prefix(&b, &keys, reply_budget(shared), wall_ms())
                    .iter()
                    .map(|e| e.as_ref().map(WireEntry::from))
                    .collect(),
                None => vec![None; keys.len()],
            };
            Ok(Response::Peeked(peeked))
        }
        Request::Rmw { spec, key, op } => rmw(shared, from, spec, key, op).await,
        Request::Pull {
            bucket,
            partitions,
            cursor,
            table,
        } => {
            if shared.members.is_client(&from) {
                return Err(CacheError::PullByClient(from.short().to_string()).into());
            }
            let agrees = shared.cache.table().digest == table;
            let Some(b) = shared.cache.bucket(&bucket) else {
                return Ok(Response::Page {
                    entries: Vec::new(),
                    next: None,
                    agrees,
                });
            };
            let mut wanted = vec![false; PARTITIONS];
            for p in &partitions {
                if let Some(w) = wanted.get_mut(*p as usize) {
                    *w = true;
                }
            }
            // A page fits this node's frames (a message's worth) as well as the 2 MiB.
            let max = PAGE_BYTES.min(reply_budget(shared));
            let (entries, next) = b.store().page(&wanted, cursor, max, wall_ms());
            // Only a member keeps handed-off data alive by pulling it (any peer may read
            // it, but not make this node hold it for ever). A member whose table does not
            // agree yet counts: it pulls again until the tables agree, and the data must
            // still be here then.
            if shared.cache.table().contains(&from) {
                b.served(&partitions, Instant::now());
                if next.is_none() && agrees {
                    b.pulled_all(from, &partitions);
                }
            }
            Ok(Response::Page {
                entries: entries.iter().map(WireEntry::from).collect(),
                next,
                agrees,
            })
        }
        Request::Count { bucket } => {
            let Some(b) = shared.cache.bucket(&bucket) else {
                return Ok(Response::Counts(Vec::new()));
            };
            let counts = b.store().counts(wall_ms());
            Ok(Response::Counts(
                counts
                    .into_iter()
                    .enumerate()
                    .filter(|(p, _)| b.state(*p as u16) == PartitionState::Ready)
                    .map(|(p, c)| (p as u16, c))
                    .collect(),
            ))
        }
        Request::Clear { bucket, version } => {
            // Stamped by the clearing node: within the drift bound like any write, and
            // this node's later writes follow it.
            let now = wall_ms();
            shared.cache.hlc.check_at(version, now)?;
            shared.cache.hlc.observe_at(version, now)?;
            if let Some(b) = shared.cache.bucket(&bucket) {
                let removed = b.store().clear_before(version);
                debug!(bucket = %bucket, removed, peer = %from.short(), "cache bucket cleared");
            }
            Ok(Response::Done)
        }
    }
}

/// Applies writes here, then forwards them to owners the writer did not know about. A
/// version further ahead than the clock accepts refuses the whole request, before
/// anything is applied (`InvalidInput`).
async fn apply(
    shared: &Arc<CacheService>,
    from: NodeId,
    spec: Spec,
    entries: &[Written<'_>],
    sent_to: Vec<NodeId>,
) -> Result<Response> {
    let b = bucket_for(shared, from, &spec)?;
    let outcomes = apply_views(shared, from, &b, &spec, entries, &sent_to).await?;
    Ok(Response::Applied(outcomes))
}

/// Applies each part of an `ApplyBatch` as its own `Apply` would be, concurrently (a
/// part's forwards do not hold up the others): a part that fails is answered with its
/// error and leaves the others applied.
async fn apply_batch<'a>(
    shared: &Arc<CacheService>,
    from: NodeId,
    parts: impl Iterator<Item = (Spec, Vec<Written<'a>>, Vec<NodeId>)>,
) -> Result<Response> {
    let each = parts.map(|(spec, entries, sent_to)| async move {
        match apply(shared, from, spec, &entries, sent_to).await {
            Ok(Response::Applied(outcomes)) => PartReply::Applied(outcomes),
            Ok(_) => part_failed(&crate::cache::client::unexpected("apply")),
            Err(e) => part_failed(&e),
        }
    });
    Ok(Response::AppliedBatch(
        futures::future::join_all(each).await,
    ))
}

/// The answer to a part that failed with `e` (its kind by name, as a wire `Reply::Err`).
pub(crate) fn part_failed(e: &crate::error::Error) -> PartReply {
    PartReply::Failed {
        kind: e.kind().as_str().to_string(),
        message: crate::transport::rpc::truncate(e.message()),
    }
}

/// Applies `views` of bucket `b` to this node's store, without forwarding them, and
/// returns, per entry, what applying it did. A version further ahead than the clock
/// accepts refuses them all, before anything is applied (`InvalidInput`). The writes
/// this node coordinates use it for their own share: their coordinator sends to owners
/// that appear meanwhile itself, on its next round (`client::write_entries`).
pub(crate) fn apply_here<'a>(
    shared: &CacheService,
    b: &Bucket,
    views: impl Iterator<Item = Written<'a>> + Clone,
) -> Result<Vec<Outcome>> {
    let now = wall_ms();
    for e in views.clone() {
        shared.cache.hlc.check_at(e.version, now)?;
    }
    let mut existed = Vec::with_capacity(views.size_hint().0);
    let mut store = b.store();
    store.warm(views.clone().map(|e| e.key));
    for e in views {
        shared.cache.hlc.observe_at(e.version, now)?;
        let applied = store.apply_written(e, now, Charge::Enforce)?;
        existed.push(Outcome {
            existed: applied.existed,
            superseded_by: applied.superseded_by,
        });
    }
    Ok(existed)
}

/// Applies `views` of bucket `b` here, written by `from` (this node, or a peer) and sent
/// to `sent_to`, then forwards them to the owners in this node's table that the writer
/// did not send to. Returns, per entry, what applying it did. A version further ahead
/// than the clock accepts refuses them all, before anything is applied (`InvalidInput`).
async fn apply_views(
    shared: &Arc<CacheService>,
    from: NodeId,
    b: &Arc<Bucket>,
    spec: &Spec,
    views: &[Written<'_>],
    sent_to: &[NodeId],
) -> Result<Vec<Outcome>> {
    let existed = apply_here(shared, b, views.iter().copied())?;
    // Forward to owners in our table that the writer did not send to.
    let partitions: Vec<u16> = views.iter().map(|e| e.partition).collect();
    let (table, previous) = (shared.cache.table(), shared.cache.previous());
    let forward = Forward::plan(&partitions, sent_to, [from, shared.id], |p| {
        routing::write_targets_in(&table, previous.as_deref(), p, b.options.replicas)
    });
    if !forward.extra.is_empty() {
        let all_sent = forward.all_sent;
        let forwards = forward.extra.into_iter().map(|(t, idx)| {
            let req = Request::Apply {
                spec: spec.clone(),
                entries: idx
                    .iter()
                    .filter_map(|&i| views.get(i))
                    .map(WireEntry::from)
                    .collect(),
                sent_to: all_sent.clone(),
            };
            async move {
                if let Err(e) = call_within(shared, t, req, WRITE_ATTEMPT).await {
                    debug!(peer = %t.short(), error = %e, "forwarding a cache write failed");
                }
            }
        });
        futures::future::join_all(forwards).await;
    }
    Ok(existed)
}

/// Bytes of keys and values one reply carries at most (a message's worth, see
/// `validate::max_entry_bytes`); one entry larger than that travels alone. Without it, a
/// read naming one large value a thousand times made the node copy it a thousand times.
fn reply_budget(shared: &CacheService) -> usize {
    max_entry_bytes(shared.config.max_message_size)
}

/// The bytes an entry takes in a reply.
fn entry_size(e: &Option<EntryView>) -> usize {
    e.as_ref().map_or(0, |e| {
        e.key
            .len()
            .saturating_add(e.value.as_ref().map_or(0, |v| v.len()))
    })
}

/// What this node holds for a prefix of `keys` (at least one key), as many as fit in
/// `budget` bytes.
fn peek_prefix(b: &Bucket, keys: &[String], budget: usize, now: u64) -> Vec<Option<EntryView>> {
    let mut store = b.store();
    let (mut out, mut size) = (Vec::new(), 0usize);
    for k in keys {
        let e = store.peek(k, now);
        let item = entry_size(&e);
        if !out.is_empty() && size.saturating_add(item) > budget {
            break;
        }
        size = size.saturating_add(item);
        out.push(e);
    }
    out
}

/// Reads `keys` as an owner: authoritative when the partition is ready here; while it is
/// syncing, the newest of what this node and the members it pulls from hold. Keys past a
/// reply's worth of values ([`reply_budget`]) are answered `Moved`: the reader asks again.
pub(crate) async fn lookup(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    keys: &[impl AsRef<str>],
) -> Vec<Lookup> {
    let now = wall_ms();
    let budget = reply_budget(shared);
    let mut size = 0usize;
    let mut out = vec![Lookup::Moved; keys.len()];
    let mut syncing = Vec::new();
    // Just told it had been declared down: answer like a syncing owner until the table
    // follows (the maintenance task is woken at once).
    let stale = maybe_stale(shared);
    {
        let mut store = b.store();
        store.warm(keys.iter().map(AsRef::as_ref));
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_ref();
            let p = partition_of(key);
            match b.state(p) {
                PartitionState::Ready if stale => syncing.push(i),
                PartitionState::Ready => {
                    let fits = |len: usize| {
                        size == 0 || size.saturating_add(key.len().saturating_add(len)) <= budget
                    };
                    out[i] = match store.read_within(key, now, fits) {
                        Read::Found { value, expires } => {
                            size = size.saturating_add(key.len().saturating_add(value.len()));
                            Lookup::Found { value, expires }
                        }
                        Read::Missing => Lookup::Missing,
                        Read::Refused => break,
                    }
                }
                PartitionState::NotOwned => out[i] = Lookup::Moved,
                PartitionState::Syncing => syncing.push(i),
            }
        }
    }
    if syncing.is_empty() {
        return out;
    }
    let wanted: Vec<String> = syncing
        .iter()
        .map(|&i| keys[i].as_ref().to_string())
        .collect();
    // A prefix of them (see `consult`); the others stay `Moved`.
    let newest = consult(shared, b, &wanted).await;
    for (slot, found) in syncing.into_iter().zip(newest) {
        out[slot] = match found {
            Some(EntryView {
                value: Some(v),
                expires,
                ..
            }) if expires == 0 || expires > now => {
                let item = keys[slot].as_ref().len().saturating_add(v.len());
                if size > 0 && size.saturating_add(item) > budget {
                    break;
                }
                size = size.saturating_add(item);
                Lookup::Found {
                    value: v.clone(),
                    expires,
                }
            }
            _ => Lookup::Missing,
        };
    }
    out
}

/// The newest version of each key of a prefix of `keys` (at least one key; all of them
/// unless their values pass a reply's worth of bytes, [`reply_budget`]) among this node
/// and every member that may hold data for its partition (those still being pulled from,
/// and the other owners). What a member answers counts only if it is an entry of the key
/// asked for, within the limits of a write and with a version the clock accepts; a member
/// that answers part of the keys is asked again for the rest.
pub(crate) async fn consult(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    keys: &[String],
) -> Vec<Option<EntryView>> {
    let budget = reply_budget(shared);
    let mut best = peek_prefix(b, keys, budget, wall_ms());
    let keys = &keys[..best.len()];
    let mut by_source: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let p = partition_of(key);
        let mut sources: BTreeSet<NodeId> = b.pending(p).into_iter().collect();
        sources.extend(owners_now(shared, b, p));
        sources.remove(&shared.id);
        for s in sources {
            by_source.entry(s).or_default().push(i);
        }
    }
    let asks = by_source.into_iter().map(|(s, idx)| async move {
        let (answers, covered) = peek_from(shared, b, s, keys, &idx, budget).await;
        (s, idx, answers, covered)
    });
    let mut answered = keys.len();
    for (s, idx, answers, covered) in futures::future::join_all(asks).await {
        if let Some(&first_left) = idx.get(covered) {
            answered = answered.min(first_left);
        }
        for (i, f) in answers {
            if f.key != keys[i]
                || check_wire_entry(&f, shared.config.max_message_size).is_err()
                || shared.cache.hlc.check(f.version).is_err()
            {
                debug!(peer = %s.short(), "ignored a peeked entry that is not a valid answer");
                continue;
            }
            let f = EntryView::from(f);
            if best[i].as_ref().is_none_or(|b| f.version > b.version) {
                best[i] = Some(f);
            }
        }
    }
    best.truncate(answered.max(1));
    best
}

/// Asks `source` what it holds of the keys `idx` of `keys`, again for what a short answer
/// left out, until it has given `budget` bytes. Returns what it holds (by key index) and
/// how many of `idx` it answered for: all of them when it fails to answer (it then counts
/// as holding nothing, like an unreachable member).
async fn peek_from(
    shared: &Arc<CacheService>,
    b: &Bucket,
    source: NodeId,
    keys: &[String],
    idx: &[usize],
    budget: usize,
) -> (Vec<(usize, WireEntry)>, usize) {
    let (mut answers, mut size, mut done) = (Vec::new(), 0usize, 0usize);
    while done < idx.len() {
        if done > 0 && size >= budget {
            break;
        }
        let ask = &idx[done..];
        let req = Request::Peek {
            bucket: b.name.clone(),
            keys: ask.iter().map(|&i| keys[i].clone()).collect(),
        };
        match call_within(shared, source, req, READ_ATTEMPT).await {
            Ok(Response::Peeked(found)) if !found.is_empty() => {
                let n = found.len().min(ask.len());
                for (&i, f) in ask.iter().zip(found) {
                    if let Some(f) = f {
                        size = size.saturating_add(
                            f.key
                                .len()
                                .saturating_add(f.value.as_ref().map_or(0, |v| v.len())),
                        );
                        answers.push((i, f));
                    }
                }
                done += n;
            }
            _ => return (answers, idx.len()),
        }
    }
    (answers, done)
}

/// A read-modify-write at the primary owner: read, compute, write to every owner.
async fn rmw(
    shared: &Arc<CacheService>,
    from: NodeId,
    spec: Spec,
    key: String,
    op: RmwOp,
) -> Result<Response> {
    let b = bucket_for(shared, from, &spec)?;
    let p = partition_of(&key);
    let owners = owners_now(shared, &b, p);
    if owners.first() != Some(&shared.id) {
        return Ok(Response::Rmw(RmwResult::NotPrimary));
    }
    let _serial = b.rmw_lock(p).lock().await;
    let now = wall_ms();
    let current = consult_or_local(shared, &b, &key).await;
    if let Some(e) = &current {
        // The new version must follow the one it replaces, even if that one was stamped
        // by a node whose clock is ahead (within the drift bound).
        shared.cache.hlc.observe(e.version)?;
    }
    let live = current.filter(|e| e.value.is_some() && (e.expires == 0 || e.expires > now));
    let (entry, result) = match op {
        RmwOp::Incr(by) => {
            let old = match &live {
                Some(e) => parse_int(e.value.as_deref().unwrap_or_default())?,
                None => 0,
            };
            let new = old
                .checked_add(by)
                .ok_or_else(|| CacheError::IncrOverflow {
                    key: key.clone(),
                    by,
                })?;
            let expires = match &live {
                Some(e) => e.expires,
                None => spec.options.ttl.map_or(0, |t| expiry_after(now, t)),
            };
            (
                Some(EntryView {
                    key: key.clone(),
                    value: Some(Bytes::from(new.to_string())),
                    version: shared.cache.hlc.now(),
                    expires,
                    partition: p,
                }),
                RmwResult::Int(new),
            )
        }
        RmwOp::Expire(ms) => match live {
            Some(e) => (
                Some(EntryView {
                    version: shared.cache.hlc.now(),
                    // Saturates: an expiry past `u64::MAX` ms never comes.
                    expires: expiry_after(now, Duration::from_millis(ms)),
                    ..e
                }),
                RmwResult::Existed(true),
            ),
            None => (None, RmwResult::Existed(false)),
        },
    };
    if let Some(entry) = entry {
        crate::cache::client::write_entries(shared, &b, vec![entry]).await?;
    }
    Ok(Response::Rmw(result))
}

async fn consult_or_local(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    key: &str,
) -> Option<EntryView> {
    let p = partition_of(key);
    if b.state(p) == PartitionState::Ready && !maybe_stale(shared) {
        return b.store().peek(key, wall_ms());
    }
    consult(shared, b, &[key.to_string()]).await.pop().flatten()
}

fn parse_int(v: &[u8]) -> Result<i64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| CacheError::NotAnInteger.into())
}
