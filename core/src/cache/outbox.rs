//! Sending writes to peers, coalesced: concurrent writes to one peer travel in one
//! `ApplyBatch` request when a request to it is already under way (the queue and its
//! decisions are `coalesce.rs`). Each write gets exactly the answer its own `Apply` would
//! have got: its outcomes, or its error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::cache::client::{call_remote_body, unexpected, WRITE_ATTEMPT};
use crate::cache::coalesce::{Admit, Lane, Size};
use crate::cache::limits::MAX_BATCH;
use crate::cache::messages::{Outcome, PartReply, Response};
use crate::cache::outgoing::{OutPart, Outgoing};
use crate::cache::service::CacheService;
use crate::cache::tombstones::PAGE_ITEM_OVERHEAD;
use crate::cache::validate::max_entry_bytes;
use crate::error::Result;
use crate::identity::NodeId;
use crate::node::connect::PeerError;
use crate::node::finish::FinishOnDrop;
use crate::wire::codec::encode_bulk_sized;
use crate::wire::Reply;

/// Bytes a part counts for its envelope (bucket spec, encoding) besides its entries and
/// recipients.
const PART_OVERHEAD: usize = 64;

/// One write waiting to be sent, and where its answer goes.
#[derive(Debug)]
struct Pending {
    part: OutPart,
    reply: oneshot::Sender<Result<Vec<Outcome>>>,
}

/// The lanes of writes to each peer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    lanes: Mutex<BTreeMap<NodeId, Lane<Pending>>>,
    /// Write requests sent to peers (`Apply` and `ApplyBatch`).
    requests: AtomicU64,
    /// Writes they carried (an `ApplyBatch` carries several).
    parts: AtomicU64,
}

impl Outbox {
    /// (requests, writes): the write requests sent to peers so far and the writes they
    /// carried; their ratio says how much coalescing saved (`INFO memmesh`).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.parts.load(Ordering::Relaxed),
        )
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Lane<Pending>>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a request may carry: [`MAX_BATCH`] entries and a message's worth of bytes.
fn max_request(shared: &CacheService) -> Size {
    Size {
        entries: MAX_BATCH,
        bytes: max_entry_bytes(shared.config.max_message_size),
    }
}

/// The size of `part` as a request counts it.
fn size_of(part: &OutPart) -> Size {
    let entries = part.entries().fold(0usize, |n, e| {
        n.saturating_add(e.key.len())
            .saturating_add(e.value.as_ref().map_or(0, |v| v.len()))
            .saturating_add(PAGE_ITEM_OVERHEAD)
    });
    Size {
        entries: part.len(),
        bytes: entries
            .saturating_add(part.spec.name.len())
            .saturating_add(part.sent_to.len().saturating_mul(32))
            .saturating_add(PART_OVERHEAD),
    }
}

/// Applies `part` at peer `target` (never this node) and returns its outcomes, within
/// [`WRITE_ATTEMPT`] as a request of its own would be. Travels with other writes to
/// `target` when a request to it is under way.
pub(crate) async fn apply_at(
    shared: &Arc<CacheService>,
    target: NodeId,
    part: OutPart,
) -> Result<Vec<Outcome>> {
    let (tx, mut rx) = oneshot::channel();
    let size = size_of(&part);
    let max = max_request(shared);
    let admit = shared.outbox.lanes().entry(target).or_default().push(
        Pending { part, reply: tx },
        size,
        max,
    );
    match admit {
        Admit::Alone(p) => {
            // Boxed: this rare path's future would otherwise make every write's larger.
            let mut answers = Box::pin(send(shared, target, vec![p.part])).await;
            return answers.pop().unwrap_or_else(|| Err(unexpected("apply")));
        }
        // The lane was idle: this writer sends its write itself (no task, no wake-up of
        // another worker, no hand-off of the answer). A writer that gives up midway
        // leaves the request to finish on a task of its own (a write on its way is never
        // cancelled); the writes that queue behind it go to a sender task once it is
        // answered.
        Admit::Send(batch) => {
            FinishOnDrop::new(lead(shared.clone(), target, batch)).await;
            return match rx.try_recv() {
                Ok(answer) => answer,
                Err(_) => Err(unexpected("apply")),
            };
        }
        Admit::Queued => {}
    }
    match tokio::time::timeout(WRITE_ATTEMPT, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(unexpected("apply")),
        Err(_) => Err(PeerError::NoAnswer {
            peer: target.short(),
            deadline: WRITE_ATTEMPT,
        }
        .into()),
    }
}

/// The first request of an idle lane, sent by its writer: `batch`, answered; what queued
/// meanwhile goes on in a sender task.
async fn lead(shared: Arc<CacheService>, target: NodeId, batch: Vec<Pending>) {
    if let Some(next) = round(&shared, target, batch).await {
        tokio::spawn(drain(shared, target, next));
    }
}

/// Sends `batch`, then what queued meanwhile, until the lane has nothing left.
async fn drain(shared: Arc<CacheService>, target: NodeId, mut batch: Vec<Pending>) {
    while let Some(next) = round(&shared, target, batch).await {
        batch = next;
    }
}

/// Sends `batch` in one request and gives each write its answer; returns the writes that
/// queued meanwhile (the next request), or `None` when the lane has nothing left.
async fn round(
    shared: &Arc<CacheService>,
    target: NodeId,
    batch: Vec<Pending>,
) -> Option<Vec<Pending>> {
    let (parts, replies): (Vec<OutPart>, Vec<_>) =
        batch.into_iter().map(|p| (p.part, p.reply)).unzip();
    let answers = send(shared, target, parts).await;
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
    let max = max_request(shared);
    let mut lanes = shared.outbox.lanes();
    let lane = lanes.get_mut(&target)?;
    let next = lane.next(max, |p| !p.reply.is_closed());
    if next.is_none() && lane.is_idle() {
        lanes.remove(&target);
    }
    next
}

/// Sends `parts` to `target` in one request (a plain `Apply` for one part) and returns
/// each part's answer, in order.
async fn send(
    shared: &Arc<CacheService>,
    target: NodeId,
    parts: Vec<OutPart>,
) -> Vec<Result<Vec<Outcome>>> {
    let n = parts.len();
    shared.outbox.requests.fetch_add(1, Ordering::Relaxed);
    shared.outbox.parts.fetch_add(n as u64, Ordering::Relaxed);
    // Encoded into a buffer of about the request's size (no regrowth, no copies).
    let size = parts
        .iter()
        .fold(0usize, |n, p| n.saturating_add(size_of(p).bytes));
    let req = match parts.as_slice() {
        [part] => Outgoing::One(part),
        parts => Outgoing::Batch(parts),
    };
    let body = match encode_bulk_sized(&req, size) {
        Ok(body) => body,
        Err(e) => {
            let e = crate::error::Error::from(e);
            return vec![Err(e); n];
        }
    };
    if n == 1 {
        let answer = match call_remote_body(shared, target, body, WRITE_ATTEMPT).await {
            Ok(Response::Applied(outcomes)) => Ok(outcomes),
            Ok(_) => Err(unexpected("apply")),
            Err(e) => Err(e),
        };
        return vec![answer];
    }
    match call_remote_body(shared, target, body, WRITE_ATTEMPT).await {
        Ok(Response::AppliedBatch(replies)) if replies.len() == n => {
            replies.into_iter().map(part_answer).collect()
        }
        Ok(_) => (0..n).map(|_| Err(unexpected("apply batch"))).collect(),
        Err(e) => vec![Err(e); n],
    }
}

/// One part's answer as its own `Apply` would have given it.
fn part_answer(reply: PartReply) -> Result<Vec<Outcome>> {
    match reply {
        PartReply::Applied(outcomes) => Ok(outcomes),
        PartReply::Failed { kind, message } => Err(Reply::Err { kind, message }
            .into_result()
            .err()
            .unwrap_or_else(|| unexpected("apply batch"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::limits::ENTRY_ENVELOPE;
    use crate::cache::messages::Spec;
    use crate::cache::partition::partition_of;
    use crate::cache::store::EntryView;
    use crate::cache::CacheOptions;
    use crate::testkit::ids;
    use crate::wire::codec::encode_bulk;

    #[test]
    fn a_batch_within_the_counted_size_fits_in_a_message() {
        let options = CacheOptions {
            ttl: Some(std::time::Duration::MAX),
            max_entries: Some(u64::MAX),
            max_bytes: Some(u64::MAX),
            replicas: 16,
        };
        let spec = Arc::new(Spec {
            name: "b".repeat(255),
            options,
        });
        let part = |i: usize| {
            let entries: Vec<EntryView> = (0..i % 3 + 1)
                .map(|j| {
                    let key = format!("key:{i}:{j}");
                    EntryView {
                        partition: partition_of(&key),
                        key,
                        value: Some(bytes::Bytes::from(vec![7u8; 100])),
                        version: u64::MAX,
                        expires: u64::MAX,
                    }
                })
                .collect();
            let idx = (0..entries.len()).collect();
            OutPart::new(spec.clone(), Arc::new(entries), idx, ids(16))
        };
        let parts: Vec<OutPart> = (0..300).map(part).collect();
        let counted = parts
            .iter()
            .fold(0usize, |n, p| n.saturating_add(size_of(p).bytes));
        let encoded = encode_bulk(&Outgoing::Batch(&parts)).unwrap_or_default();
        assert!(!encoded.is_empty());
        // A request of at most `max_entry_bytes` counted bytes fits in `max_message_size`.
        assert!(
            encoded.len() <= counted + ENTRY_ENVELOPE,
            "{} > {counted} + {ENTRY_ENVELOPE}",
            encoded.len()
        );
    }
}
