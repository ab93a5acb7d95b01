//! Sending reads to peers, coalesced: concurrent `get`s and `get_many`s served by one peer
//! travel in one multi-key `Get` request when a request to it is already under way, on
//! the very queue writes use (`coalesce.rs`, one lane per peer and bucket). Each read gets
//! exactly the answers its own `Get` would have got: its lookups, or its error. A read to
//! an idle lane is sent by its reader itself, with no task of its own; whatever queues
//! behind it is handed to a sender task when it ends or is dropped ([`HandOn`], ADR 0021,
//! seventh amendment).
//!
//! A peer answers a multi-key `Get` within its reply budget: keys past the budget come
//! back `Moved` (a suffix of the answer, after the last key it answered). Those are asked
//! again, so a read never turns into a `Moved` because others' values were large.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cache::client::{call_remote, unexpected, READ_ATTEMPT};
use crate::cache::coalesce::{Admit, Lane, Size};
use crate::cache::limits::MAX_BATCH;
use crate::cache::messages::{Lookup, Request, Response};
use crate::cache::service::CacheService;
use crate::cache::tombstones::PAGE_ITEM_OVERHEAD;
use crate::cache::validate::max_entry_bytes;
use crate::error::Result;
use crate::identity::NodeId;
use crate::node::connect::PeerError;

/// One read (of one key or of several) waiting to be sent, and where its answers go
/// (one per key, in order).
#[derive(Debug)]
struct Pending {
    keys: Vec<String>,
    reply: oneshot::Sender<Vec<Result<Lookup>>>,
}

/// The lanes of reads to each peer, per bucket.
type Lanes = HashMap<NodeId, HashMap<String, Lane<Pending>>>;

/// The lanes of reads to each peer and bucket.
#[derive(Debug, Default)]
pub(crate) struct Readbox {
    lanes: Mutex<Lanes>,
    /// Read requests sent to peers through the lanes.
    requests: AtomicU64,
    /// Keys they carried.
    keys: AtomicU64,
}

impl Readbox {
    /// (requests, keys): the read requests `get` and `get_many` sent to peers so far and
    /// the keys they carried (`INFO memmesh`).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.keys.load(Ordering::Relaxed),
        )
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a request may carry: [`MAX_BATCH`] keys and a message's worth of bytes.
fn max_request(shared: &CacheService) -> Size {
    Size {
        entries: MAX_BATCH,
        bytes: max_entry_bytes(shared.config.max_message_size),
    }
}

/// Looks `key` up in `bucket` at peer `target` (never this node), waiting at most `wait`
/// for the answer. Travels with other reads of that bucket at `target` when a request to
/// it is under way.
pub(crate) async fn get_at(
    shared: &Arc<CacheService>,
    target: NodeId,
    bucket: &str,
    key: String,
    wait: Duration,
) -> Result<Lookup> {
    let mut answers = get_many_at(shared, target, bucket, vec![key], wait).await;
    answers.pop().unwrap_or_else(|| Err(unexpected("get")))
}

/// Looks `keys` (at most one request's worth, `client::split`) up in `bucket` at peer
/// `target` (never this node), waiting at most `wait`: one answer per key, in order.
/// Travels with other reads of that bucket at `target` when a request to it is under way.
pub(crate) async fn get_many_at(
    shared: &Arc<CacheService>,
    target: NodeId,
    bucket: &str,
    keys: Vec<String>,
    wait: Duration,
) -> Vec<Result<Lookup>> {
    let n = keys.len();
    let (tx, rx) = oneshot::channel();
    let size = Size {
        entries: n,
        bytes: keys.iter().fold(0usize, |sum, k| {
            sum.saturating_add(k.len().saturating_add(PAGE_ITEM_OVERHEAD))
        }),
    };
    let max = max_request(shared);
    let admit = {
        let mut lanes = shared.readbox.lanes();
        let per_bucket = lanes.entry(target).or_default();
        let lane = match per_bucket.get_mut(bucket) {
            Some(lane) => lane,
            None => per_bucket.entry(bucket.to_string()).or_default(),
        };
        lane.push(Pending { keys, reply: tx }, size, max)
    };
    match admit {
        Admit::Alone(p) => return ask(shared, target, bucket, p.keys, wait).await,
        // The lane was idle, so the batch is this read alone: it is sent from here, with
        // no task of its own and no hand-off of its answer (a lone reader's round trip
        // is then the bare request's). Reads that queue behind it meanwhile are handed on
        // to a sender task when it ends, or if this reader gives up midway.
        Admit::Send(mut batch) if batch.len() == 1 => {
            let _lane = HandOn {
                shared,
                target,
                bucket,
            };
            let own = batch.pop().map(|p| p.keys).unwrap_or_default();
            return ask(shared, target, bucket, own, wait).await;
        }
        // The sender runs on its own task: a reader that gives up must not cancel the
        // request that carries the others' reads.
        Admit::Send(batch) => {
            tokio::spawn(drain(shared.clone(), target, bucket.to_string(), batch));
        }
        Admit::Queued => {}
    }
    let failed = |e: crate::error::Error| (0..n).map(|_| Err(e.clone())).collect();
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(answers)) if answers.len() == n => answers,
        Ok(_) => failed(unexpected("get")),
        Err(_) => failed(
            PeerError::NoAnswer {
                peer: target.short(),
                deadline: wait,
            }
            .into(),
        ),
    }
}

/// Sends `batch`, then what queued meanwhile, until the lane has nothing left.
async fn drain(shared: Arc<CacheService>, target: NodeId, bucket: String, mut batch: Vec<Pending>) {
    loop {
        let mut keys = Vec::with_capacity(batch.iter().map(|p| p.keys.len()).sum());
        let mut replies = Vec::with_capacity(batch.len());
        for p in batch {
            replies.push((p.keys.len(), p.reply));
            keys.extend(p.keys);
        }
        let mut answers = ask(&shared, target, &bucket, keys, READ_ATTEMPT)
            .await
            .into_iter();
        for (n, reply) in replies {
            let _ = reply.send(answers.by_ref().take(n).collect());
        }
        match next_batch(&shared, target, &bucket) {
            Some(next) => batch = next,
            None => return,
        }
    }
}

/// For a sender whose request ended: the reads queued meanwhile (of readers still
/// waiting), or `None` when nothing waits, the sender's place in the lane then given up
/// (and the lane dropped once idle).
fn next_batch(shared: &CacheService, target: NodeId, bucket: &str) -> Option<Vec<Pending>> {
    let max = max_request(shared);
    let mut lanes = shared.readbox.lanes();
    let per_bucket = lanes.get_mut(&target)?;
    let lane = per_bucket.get_mut(bucket)?;
    if let Some(next) = lane.next(max, |p| !p.reply.is_closed()) {
        return Some(next);
    }
    if lane.is_idle() {
        per_bucket.remove(bucket);
        if per_bucket.is_empty() {
            lanes.remove(&target);
        }
    }
    None
}

/// A lone reader's place in its lane, given up when its request ends or is dropped:
/// the reads that queued behind it go to a sender task of their own.
struct HandOn<'a> {
    shared: &'a Arc<CacheService>,
    target: NodeId,
    bucket: &'a str,
}

impl Drop for HandOn<'_> {
    fn drop(&mut self) {
        if let Some(batch) = next_batch(self.shared, self.target, self.bucket) {
            let task = drain(
                self.shared.clone(),
                self.target,
                self.bucket.to_string(),
                batch,
            );
            self.shared.runtime.handle().spawn(task);
        }
    }
}

/// Asks `target` for `keys` of `bucket` in one `Get` (again for the keys past its reply
/// budget) and returns each key's answer, in order.
async fn ask(
    shared: &Arc<CacheService>,
    target: NodeId,
    bucket: &str,
    keys: Vec<String>,
    wait: Duration,
) -> Vec<Result<Lookup>> {
    let n = keys.len();
    let mut answers: Vec<Result<Lookup>> = Vec::with_capacity(n);
    let mut rest = keys;
    while !rest.is_empty() {
        shared.readbox.requests.fetch_add(1, Ordering::Relaxed);
        shared
            .readbox
            .keys
            .fetch_add(rest.len() as u64, Ordering::Relaxed);
        let asked = rest.len();
        let req = Request::Get {
            bucket: bucket.to_string(),
            keys: rest,
        };
        let answer = call_remote(shared, target, &req, wait).await;
        rest = match req {
            Request::Get { keys, .. } => keys,
            _ => Vec::new(),
        };
        let lookups = match answer {
            Ok(Response::Lookups(l)) if l.len() == asked => l,
            Ok(_) => {
                answers.extend((0..asked).map(|_| Err(unexpected("get"))));
                break;
            }
            Err(e) => {
                answers.extend((0..asked).map(|_| Err(e.clone())));
                break;
            }
        };
        let answered = over_budget_from(&lookups);
        answers.extend(lookups.into_iter().take(answered).map(Ok));
        rest.drain(..answered);
    }
    answers
}

/// Where the keys a multi-key `Get` left unanswered for its reply budget start: after the
/// last key answered `Found` or `Missing` (the `Moved` before it are the peer's verdict),
/// or the end when nothing was answered (then every `Moved` is its verdict too), so each
/// round makes progress.
fn over_budget_from(lookups: &[Lookup]) -> usize {
    match lookups.iter().rposition(|l| !matches!(l, Lookup::Moved)) {
        Some(last) => last + 1,
        None => lookups.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Lookup {
        Lookup::Found {
            value: bytes::Bytes::from(vec![1]),
            expires: 0,
        }
    }

    #[test]
    fn keys_past_the_reply_budget_are_asked_again_and_verdicts_are_kept() {
        use Lookup::{Missing, Moved};
        // A `Moved` suffix after answers: cut by the budget, asked again.
        assert_eq!(
            over_budget_from(&[found(), Moved, Missing, Moved, Moved]),
            3
        );
        // Nothing but `Moved`: the peer's verdict for every key (no endless re-asking).
        assert_eq!(over_budget_from(&[Moved, Moved]), 2);
        // Everything answered.
        assert_eq!(over_budget_from(&[Missing, found()]), 2);
        assert_eq!(over_budget_from(&[]), 0);
    }
}
