//! Catching up by stream positions (ADR 0020, seventh slice): this node asks a peer what
//! happened in the peer's event log since its position there, syncs only those
//! documents, then moves its position. The peer answers from its log, listing only the
//! documents the asker's trust level may see.
//!
//! A position moves only once every document listed up to it was synced to the end (an
//! exchange that failed or ran out of rounds leaves it where it was, and the next pull
//! lists that document again). Documents the peer lists that this node does not hold are
//! fetched with a first message from an empty document, within the per-peer budget of
//! documents a peer may make this node create.

use std::sync::Arc;

use automerge::sync::SyncDoc;
use automerge::{AutoCommit, ChangeHash};
use futures::StreamExt;
use tracing::debug;

use super::error::DocsError;
use super::events::{page, Position};
use super::messages::{
    Listed, Op, Reply, Request, SinceReply, SyncRequest, MAX_LISTED_HEADS, MAX_SINCE_PAGE,
};
use super::reach::{may_flow, Reach, Trust};
use super::sync::{adopt, exchange, send_sync, DocsService};
use super::DocId;
use crate::error::Result;
use crate::identity::NodeId;
use crate::wire::codec::{decode_bulk, encode_bulk};
use crate::wire::Service;

/// Peers asked at once.
pub const MAX_PULLS: usize = 4;
/// Documents of one page synced at once.
pub const PULL_CONCURRENCY: usize = 4;
/// Documents asked for per page.
pub const PAGE: u32 = 256;
/// Pages asked per pull (the next pull goes on from there).
pub const MAX_PAGES: usize = 16;

/// Answers "what happened since `from`?" from a peer of `trust`: one page of at most
/// `limit` (capped) documents it may see, from this node's event log.
pub(super) async fn serve_since(
    svc: &Arc<DocsService>,
    trust: Trust,
    from: Position,
    limit: u32,
) -> Result<SinceReply> {
    let limit = limit.clamp(1, MAX_SINCE_PAGE) as usize;
    if let Some(head) = svc.store().await?.stream.nothing_after(from) {
        // Nothing happened since: answered here, without a trip through the blocking pool
        // (every new connection asks, so a forming cluster asks N(N-1) times).
        return Ok(SinceReply {
            docs: Vec::new(),
            up_to: head,
            more: false,
        });
    }
    svc.blocking(move |store| {
        // The log's lock is not held while documents are looked at.
        let (after, head) = store.stream.after(from);
        let mut listed = Vec::new();
        let since = page(&after, head, limit, |doc| {
            let Ok(entry) = store.get(doc) else {
                return false;
            };
            let mut st = entry.lock();
            let ok = st.live && may_flow(st.reach, trust);
            if ok {
                let heads = st.doc.get_heads();
                listed.push(Listed {
                    doc: doc.0,
                    reach: st.reach.as_u8(),
                    heads: if heads.len() <= MAX_LISTED_HEADS {
                        heads.iter().map(|h| h.0).collect()
                    } else {
                        Vec::new()
                    },
                });
            }
            ok
        });
        Ok(SinceReply {
            docs: listed,
            up_to: since.up_to,
            more: since.more,
        })
    })
    .await
}

/// Asks `peer` (of `trust`) what happened since this node's position in its log, syncs
/// those documents, and moves the position (one pull per peer at a time; a pull that
/// does not get to the end is asked again at the next period).
pub(super) async fn pull(svc: &Arc<DocsService>, peer: NodeId, trust: Trust) {
    if !svc
        .pulling
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(peer)
    {
        return;
    }
    let r = pull_pages(svc, peer, trust).await;
    svc.pulling
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&peer);
    let finished = match r {
        Ok(finished) => finished,
        Err(e) => {
            debug!(peer = %peer.short(), error = %e, "asking a peer what changed failed");
            false
        }
    };
    // Asked again at the next period until a question gets to the end.
    let mut again = svc.ask_again.lock().unwrap_or_else(|p| p.into_inner());
    if finished {
        again.remove(&peer);
    } else {
        again.insert(peer);
    }
}

/// Whether it got to the end of the peer's log (false: a document could not be synced,
/// or [`MAX_PAGES`] pages were not enough).
async fn pull_pages(svc: &Arc<DocsService>, peer: NodeId, trust: Trust) -> Result<bool> {
    let store = svc.store().await?;
    let mut from = store.stream.position(&peer);
    for _ in 0..MAX_PAGES {
        let body = encode_bulk(&Request::new(Op::Since { from, limit: PAGE }))?;
        let reply = crate::node::call::call_peer(&svc.node, peer, Service::Docs, &body).await?;
        let since = match decode_bulk(&reply)? {
            Reply::Since(s) => s,
            Reply::Sync(_) => {
                return Err(DocsError::Invalid(
                    "the peer answered a question about its log with a sync message".into(),
                )
                .into())
            }
        };
        let docs = check(&since)?;
        let all_done = futures::stream::iter(docs)
            .map(|(id, reach, heads)| sync_one(svc, peer, trust, id, reach, heads))
            .buffer_unordered(PULL_CONCURRENCY)
            .fold(true, |ok, done| async move { ok && done })
            .await;
        if !all_done {
            return Ok(false);
        }
        store.stream.advance(peer, since.up_to);
        if !since.more {
            return Ok(true);
        }
        from = since.up_to;
    }
    Ok(false)
}

/// The documents of a peer's answer, checked (hostile bytes: a page longer than asked,
/// an unknown reach, a position of no log).
fn check(since: &SinceReply) -> Result<Vec<(DocId, Reach, Vec<ChangeHash>)>> {
    if since.docs.len() > PAGE as usize {
        return Err(DocsError::Invalid(format!(
            "the peer listed {} documents, more than the {PAGE} asked",
            since.docs.len()
        ))
        .into());
    }
    if since.up_to.epoch == 0 {
        return Err(DocsError::Invalid("the peer's log has no epoch".into()).into());
    }
    since
        .docs
        .iter()
        .map(|l: &Listed| {
            let reach = Reach::from_u8(l.reach)
                .ok_or_else(|| DocsError::Invalid(format!("unknown reach byte {}", l.reach)))?;
            if l.heads.len() > MAX_LISTED_HEADS {
                return Err(DocsError::Invalid(format!(
                    "the peer listed {} heads for a document, more than {MAX_LISTED_HEADS}",
                    l.heads.len()
                ))
                .into());
            }
            let heads = l.heads.iter().map(|h| ChangeHash(*h)).collect();
            Ok((DocId(l.doc), reach, heads))
        })
        .collect()
}

/// Syncs the listed document `id` with `peer`, which has it at `heads`: whether it got
/// to the end (a document this node deleted, or may not share with the peer, or already
/// holds at the same heads, counts as done).
async fn sync_one(
    svc: &Arc<DocsService>,
    peer: NodeId,
    trust: Trust,
    id: DocId,
    reach: Reach,
    heads: Vec<ChangeHash>,
) -> bool {
    let r = async {
        let store = svc.store().await?;
        if store.is_gone(id) {
            return Ok(true);
        }
        let entry = match store.get(id) {
            Ok(e) => {
                if !heads.is_empty() && same_heads(&e, peer, &heads) {
                    return Ok(true);
                }
                e
            }
            Err(_) if !may_flow(reach, trust) => return Ok(true),
            Err(_) => match fetch_new(svc, peer, trust, id, reach).await? {
                Some(e) => e,
                None => return Ok(true),
            },
        };
        let r = exchange(svc, &entry, peer, trust).await;
        if r.is_err() {
            // The exchange was lost on both sides (restart.rs).
            super::restart::restart(&mut entry.lock().peers, peer);
        }
        r
    }
    .await;
    match r {
        Ok(done) => done,
        Err(e) => {
            debug!(doc = %id, peer = %peer.short(), error = %e, "pulling a document failed");
            false
        }
    }
}

/// Whether `entry` is at `heads` here (then the peer's copy and this one are the same:
/// nothing to sync, and its book says so).
fn same_heads(entry: &super::store::Entry, peer: NodeId, heads: &[ChangeHash]) -> bool {
    let mut st = entry.lock();
    let mut ours = st.doc.get_heads();
    ours.sort_unstable();
    let mut theirs = heads.to_vec();
    theirs.sort_unstable();
    if ours != theirs {
        return false;
    }
    st.books
        .of(peer)
        .heard(Some(&theirs), &ours, super::book::now_ms());
    true
}

/// Fetches a document this node does not hold from `peer`: a first message from an
/// empty document, whose answer creates it here (as a push from the peer would).
/// `None`: the peer had nothing to send.
async fn fetch_new(
    svc: &Arc<DocsService>,
    peer: NodeId,
    trust: Trust,
    id: DocId,
    reach: Reach,
) -> Result<Option<Arc<super::store::Entry>>> {
    let hello = {
        let mut empty = AutoCommit::new();
        let mut state = automerge::sync::State::new();
        let msg = empty.sync().generate_sync_message(&mut state);
        msg.map(|m| m.encode()).unwrap_or_default()
    };
    let reply = send_sync(
        svc,
        peer,
        SyncRequest {
            doc: id.0,
            reach: reach.as_u8(),
            msg: hello,
        },
    )
    .await?;
    if reply.msg.is_empty() {
        return Ok(None);
    }
    let msg = svc.decode_message(&reply.msg)?;
    let (len, cap, want) = (reply.msg.len() as u64, svc.cap(), svc.watched());
    let (entry, changed) = svc
        .blocking(move |store| {
            if store.is_gone(id) {
                return Err(DocsError::NotFound { id: id.to_string() });
            }
            match store.get(id) {
                // Arrived meanwhile (a push from the peer): apply to it.
                Ok(e) => {
                    let changed = store.receive(&e, peer, msg, (len, cap), want)?;
                    Ok((e, changed))
                }
                Err(_) => adopt(&store, (peer, trust), (id, reach), msg, (len, cap), want),
            }
        })
        .await?;
    if let Some(delta) = changed {
        svc.changed(id, super::ChangeOrigin::Peer(peer), delta);
    }
    Ok(Some(entry))
}
