//! The documents service: Automerge's sync protocol per (document, peer) over a
//! `Service::Docs` request frame, pushed on change, to a peer as soon as it connects
//! (the pool tells each new connection) and every [`SYNC_PERIOD`], with reach
//! checked on both sides of every exchange (ADR 0020).
//!
//! An exchange is driven by the node that has something to say: it generates the sync
//! message for (document, peer) and sends it; the peer applies it and answers with its own
//! next message for the same document (or nothing), until neither side has more to send.
//! The per-peer `sync::State`s live in memory: after a restart, a lost exchange or a
//! reconnection they start afresh, which the protocol handles (it costs one round of
//! heads and Bloom filters, not the document).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::sync::{Message, SyncDoc};
use automerge::AutoCommit;
use bytes::Bytes;
use futures::StreamExt;
use tracing::{debug, warn};

use super::delta::{Before, Delta};
use super::error::DocsError;
use super::log::Sealer;
use super::messages::{Op, Reply, Request};
use super::reach::{may_flow, Reach, Trust};
use super::store::{Entry, Store};
use super::DocId;
use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::service::{BoxFuture, FrameHandler, ServiceError, Shutdown};
use crate::slots::Slots;
use crate::wire::codec::{decode_bulk, encode_bulk};
use crate::wire::Service;

/// How often the sync task retries what failed (pushes, questions to peers) and saves
/// now and then (changes are pushed at once; a peer that connects is asked at once).
pub const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// Every this many periods, every connected peer is asked what changed in its log since
/// this node's position there even if nothing failed (a safety net: a change is pushed
/// when made, and a new connection asks at once).
pub const ASK_EVERY: u32 = 30;
/// The most messages one exchange sends before it yields to others.
pub const MAX_ROUNDS: usize = 32;
/// Documents a single peer may make this node create.
pub const MAX_DOCS_PER_PEER: usize = 10_000;
/// Sync requests served at once for one peer.
pub const MAX_SERVING_PER_PEER: usize = 4;
/// Sync requests served at once in all.
pub const MAX_SERVING: usize = 32;
/// Exchanges this node drives at once.
pub const MAX_OUTGOING: usize = 8;

/// Opens the storage key's sealer (blocking: reads the key file, Argon2id with a
/// passphrase). Given by the API layer, which knows the files store's key.
pub type KeyOpener = Arc<dyn Fn() -> Result<Arc<dyn Sealer>, DocsError> + Send + Sync>;

pub use super::messages::{SyncReply, SyncRequest};

/// The documents service of a node.
pub struct DocsService {
    /// The runtime every service runs on.
    pub(crate) node: Arc<Shared>,
    opener: Option<KeyOpener>,
    store: tokio::sync::OnceCell<Arc<Store>>,
    failed: Mutex<Option<(crate::error::ErrorKind, String)>>,
    closed: AtomicBool,
    dirty: Mutex<super::dirty::Dirty>,
    wake: tokio::sync::Notify,
    serving: Arc<Slots<NodeId>>,
    /// Every change, for [`super::Docs::changes`] (and the HTTP live feed).
    pub changes: tokio::sync::broadcast::Sender<super::DocChange>,
    /// Exchanges under way, driven or served (for [`super::Docs::stats`]).
    pub(crate) active: Arc<std::sync::atomic::AtomicUsize>,
    /// Documents frames and bytes sent to each peer (requests and replies).
    pub(crate) sent: super::traffic::Traffic,
    /// Peers this node is asking "what happened since?" now (one pull per peer).
    pub(crate) pulling: Mutex<HashSet<NodeId>>,
    /// Peers whose last question failed or stopped short: asked again next period.
    pub(crate) ask_again: Mutex<HashSet<NodeId>>,
    /// Documents whose push to a peer failed: offered again next period.
    retry: Mutex<HashSet<DocId>>,
}

/// Counts one exchange under way while it lives.
struct Active(Arc<std::sync::atomic::AtomicUsize>);

impl Active {
    fn new(n: &Arc<std::sync::atomic::AtomicUsize>) -> Active {
        n.fetch_add(1, Ordering::Relaxed);
        Active(n.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for DocsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocsService")
            .field("open", &self.store.initialized())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DocsService {
    /// The documents service of the node `node`, sealing with the key `opener` opens
    /// (`None` without a data dir: documents are kept in memory only); its sync task
    /// starts on the node's runtime.
    pub(crate) fn new(node: Arc<Shared>, opener: Option<KeyOpener>) -> Arc<DocsService> {
        let svc = Arc::new(DocsService {
            node,
            opener,
            store: tokio::sync::OnceCell::new(),
            failed: Mutex::new(None),
            closed: AtomicBool::new(false),
            dirty: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            serving: Slots::new("document syncs", MAX_SERVING_PER_PEER, MAX_SERVING),
            active: Arc::default(),
            sent: super::traffic::Traffic::default(),
            pulling: Mutex::new(HashSet::new()),
            ask_again: Mutex::new(HashSet::new()),
            retry: Mutex::new(HashSet::new()),
            changes: tokio::sync::broadcast::channel(super::changes::CHANGES_BUFFER).0,
        });
        svc.node.runtime.handle().spawn(run(svc.clone()));
        svc
    }

    /// The store, opened on first use (off the caller's executor: key, disk reads).
    pub(crate) async fn store(&self) -> Result<Arc<Store>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DocsError::Closed.into());
        }
        if let Some((kind, msg)) = lock(&self.failed).clone() {
            return Err(Error::new(kind, msg));
        }
        let disk = match (self.node.config.data_dir.clone(), self.opener.clone()) {
            (Some(dir), Some(opener)) => Some((dir, opener)),
            _ => None,
        };
        let handle = self.node.runtime.handle().clone();
        let opened = self
            .store
            .get_or_try_init(|| async move {
                let task = handle.spawn_blocking(move || match disk {
                    Some((dir, opener)) => Store::open(dir, opener()?),
                    // No data dir: documents live in memory only.
                    None => Ok(Store::memory()),
                });
                match task.await {
                    Ok(Ok(s)) => Ok(Arc::new(s)),
                    Ok(Err(e)) => {
                        let e = Error::from(e);
                        Err((e.kind(), e.message().to_string()))
                    }
                    Err(_) => Err((
                        crate::error::ErrorKind::Closed,
                        "the node is shutting down".to_string(),
                    )),
                }
            })
            .await;
        match opened {
            Ok(s) => Ok(s.clone()),
            Err((kind, msg)) => {
                warn!(error = %msg, "the documents store could not be opened");
                *lock(&self.failed) = Some((kind, msg.clone()));
                Err(Error::new(kind, msg))
            }
        }
    }

    /// Runs `f` on the store, on the node's blocking pool (awaitable from any executor).
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Store>) -> std::result::Result<T, DocsError> + Send + 'static,
    {
        let store = self.store().await?;
        let task = self.node.runtime.handle().spawn_blocking(move || f(store));
        match task.await {
            Ok(r) => Ok(r?),
            Err(e) if e.is_cancelled() => Err(DocsError::Closed.into()),
            Err(e) => {
                Err(Error::from(crate::node::runtime::TaskPanicked(e))
                    .context("a documents operation"))
            }
        }
    }

    /// Marks `id` changed: it is offered to peers at once.
    pub(crate) fn mark(&self, id: DocId) {
        lock(&self.dirty).mark(id);
        self.wake.notify_one();
    }

    /// The documents that change from now on (locally or from a peer).
    pub(crate) fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<super::DocChange> {
        self.changes.subscribe()
    }

    /// Whether anyone subscribes to changes: what a change touched is computed only then.
    pub(crate) fn watched(&self) -> bool {
        self.changes.receiver_count() > 0
    }

    /// Announces a change to `id` from `origin` to subscribers (`delta`: what it did,
    /// taken where it was made) and offers it to peers.
    pub(crate) fn changed(&self, id: DocId, origin: super::ChangeOrigin, delta: Delta) {
        match origin {
            // Not back to the peer it came from (its exchange is under way).
            super::ChangeOrigin::Peer(p) => lock(&self.dirty).mark_from(id, p),
            super::ChangeOrigin::Local => lock(&self.dirty).mark(id),
        }
        self.wake.notify_one();
        if self.changes.receiver_count() == 0 {
            return;
        }
        // Not computed (no one subscribed when the change started): the paths are unknown.
        let touched = delta.touched.unwrap_or(super::delta::Touched {
            paths: Vec::new(),
            truncated: true,
        });
        let _ = self.changes.send(super::DocChange {
            id,
            heads: delta.heads,
            paths: touched.paths,
            paths_truncated: touched.truncated,
            origin,
        });
    }

    /// The largest size of one document (`docs_max_bytes`).
    pub(crate) fn cap(&self) -> u64 {
        self.node.config.docs_max_bytes
    }

    /// A peer's encoded sync message, checked: at most [`Self::max_message`] bytes, and
    /// Automerge's format.
    pub(super) fn decode_message(&self, bytes: &[u8]) -> Result<Message> {
        if bytes.len() > self.max_message() {
            return Err(DocsError::TooLarge {
                what: "a sync message",
                size: bytes.len(),
                limit: self.max_message(),
            }
            .into());
        }
        Message::decode(bytes).map_err(|e| {
            DocsError::NotAutomerge {
                what: "a sync message",
                why: e.to_string(),
            }
            .into()
        })
    }

    /// The largest sync message sent or accepted.
    pub(super) fn max_message(&self) -> usize {
        self.node.config.max_message_size
    }

    /// Serves one request from `from`, as the trust level of the connection it came on
    /// allows.
    async fn serve(self: Arc<Self>, from: NodeId, trust: Trust, body: Bytes) -> Result<Bytes> {
        let req: Request = decode_bulk(&body)?;
        if req.version != super::messages::VERSION {
            return Err(DocsError::Invalid(format!(
                "documents protocol version {}, this node speaks {}",
                req.version,
                super::messages::VERSION
            ))
            .into());
        }
        let _slot = self.serving.take(&from)?;
        match req.op {
            Op::Sync(req) => self.serve_sync(from, trust, req).await,
            Op::Since { from: pos, limit } => {
                let reply = super::pull::serve_since(&self, trust, pos, limit).await?;
                Ok(Bytes::from(encode_bulk(&Reply::Since(reply))?))
            }
        }
    }

    /// Serves one sync message from `from`.
    async fn serve_sync(
        self: Arc<Self>,
        from: NodeId,
        trust: Trust,
        req: SyncRequest,
    ) -> Result<Bytes> {
        let _active = Active::new(&self.active);
        let reach = Reach::from_u8(req.reach)
            .ok_or_else(|| DocsError::Invalid(format!("unknown reach byte {}", req.reach)))?;
        let msg = self.decode_message(&req.msg)?;
        let id = DocId(req.doc);
        let len = req.msg.len() as u64;
        let cap = self.cap();
        let want = self.watched();
        let (changed, reply) = self
            .blocking(move |store| {
                serve_blocking(&store, (from, trust), (id, reach), msg, (len, cap), want)
            })
            .await?;
        if let Some(delta) = changed {
            self.changed(id, super::ChangeOrigin::Peer(from), delta);
        }
        let reply = Bytes::from(encode_bulk(&Reply::Sync(SyncReply {
            msg: reply.unwrap_or_default(),
        }))?);
        self.sent.add(from, reply.len());
        Ok(reply)
    }
}

/// The disk-and-CPU part of serving a sync request: what it changed (with the paths it
/// touched if `want`) and the reply.
fn serve_blocking(
    store: &Store,
    (from, trust): (NodeId, Trust),
    (id, reach): (DocId, Reach),
    msg: Message,
    (len, cap): (u64, u64),
    want: bool,
) -> std::result::Result<(Option<Delta>, Option<Vec<u8>>), DocsError> {
    let (entry, changed) = match store.get(id) {
        Ok(entry) => {
            let mine = entry.lock().reach;
            if !may_flow(mine, trust) {
                debug!(doc = %id, peer = %from.short(), reach = %mine, %trust, "refused a sync: reach");
                return Err(DocsError::NotShared { id: id.to_string() });
            }
            let changed = store.receive(&entry, from, msg, (len, cap), want)?;
            (entry, changed)
        }
        Err(_) if store.is_gone(id) => return Err(DocsError::NotFound { id: id.to_string() }),
        Err(_) => adopt(store, (from, trust), (id, reach), msg, (len, cap), want)?,
    };
    let mut st = entry.lock();
    let st = &mut *st;
    let state = st.peers.entry(from).or_default();
    let reply = st
        .doc
        .sync()
        .generate_sync_message(state)
        .map(|m| m.encode());
    Ok((changed, reply))
}

/// Creates here the document `id` that `from` (of `trust`) has, from its sync message
/// `msg` (of `len` bytes, the document at most `cap`): if its `reach` lets it flow to
/// `from` at all, and within the per-peer budget. Returns the new entry, with `from`'s
/// sync state in it, and what changed.
pub(super) fn adopt(
    store: &Store,
    (from, trust): (NodeId, Trust),
    (id, reach): (DocId, Reach),
    msg: Message,
    (len, cap): (u64, u64),
    want: bool,
) -> std::result::Result<(Arc<Entry>, Option<Delta>), DocsError> {
    if !may_flow(reach, trust) {
        return Err(DocsError::NotShared { id: id.to_string() });
    }
    {
        let created = lock(&store.created_by);
        if created.get(&from).copied().unwrap_or(0) >= MAX_DOCS_PER_PEER {
            return Err(DocsError::Busy(format!(
                "this peer already created {MAX_DOCS_PER_PEER} documents here"
            )));
        }
    }
    if len > cap {
        return Err(DocsError::DocTooLarge {
            id: id.to_string(),
            size: len,
            limit: cap,
        });
    }
    // Apply to a fresh document first: a message that fails leaves nothing behind.
    let mut doc = AutoCommit::new();
    let mut state = automerge::sync::State::new();
    // Kept in case another request creates the document first (below).
    let again = msg.clone();
    doc.sync()
        .receive_sync_message(&mut state, msg)
        .map_err(|e| DocsError::NotAutomerge {
            what: "a sync message",
            why: e.to_string(),
        })?;
    let changed = !doc.get_heads().is_empty();
    let delta = changed.then(|| Before::empty(want).delta(&mut doc));
    let entry = match store.create(id, reach, doc, cap) {
        Ok(e) => {
            *lock(&store.created_by).entry(from).or_insert(0) += 1;
            e
        }
        // Created meanwhile by a concurrent request: the message is applied to that
        // document as to any held one (dropping it would lose its changes for good: the
        // sender counts them as sent). Still being created: the sender retries.
        Err(DocsError::Exists { .. }) => {
            let entry = store.get(id).map_err(|_| {
                DocsError::Busy(format!("document {id} is being created by another sync"))
            })?;
            if !may_flow(entry.lock().reach, trust) {
                return Err(DocsError::NotShared { id: id.to_string() });
            }
            let changed = store.receive(&entry, from, again, (len, cap), want)?;
            return Ok((entry, changed));
        }
        Err(e) => return Err(e),
    };
    {
        let mut st = entry.lock();
        st.peers.insert(from, state);
        st.heard_from(from);
    }
    Ok((entry, delta))
}

impl FrameHandler for DocsService {
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>> {
        Box::pin(async move {
            match service {
                Service::Docs => self.serve(from, trust, body).await,
                _ => Err(ServiceError::NotMine("docs").into()),
            }
        })
    }
}

impl Shutdown for DocsService {
    fn stop(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        // The last per-peer sync states, for the first exchanges after a restart.
        if let Some(store) = self.store.get() {
            store.save_states();
            // The event log vouches for every event until the next start.
            store.save_stream(true);
        }
    }
}

/// Offers changed documents to peers at once, and every document every [`SYNC_PERIOD`].
async fn run(svc: Arc<DocsService>) {
    let store = match svc.store().await {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "documents are not synced");
            return;
        }
    };
    let mut tick = tokio::time::interval(SYNC_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A new connection (a peer connected, reconnected or changed trust level) is offered
    // every document at once, not at the next period.
    let mut registrations = svc.node.pool.registrations();
    // Each connected peer's trust level and connection (its stable id).
    let mut known: HashMap<NodeId, (Trust, usize)> = HashMap::new();
    let mut saver = StateSaver::default();
    let mut rounds: u32 = 0;
    loop {
        let (period, checking) = tokio::select! {
            _ = svc.node.cancel.cancelled() => return,
            _ = tick.tick() => (true, false),
            _ = svc.wake.notified() => (false, false),
            Ok(()) = registrations.changed() => (false, true),
        };
        if svc.closed.load(Ordering::Acquire) {
            return;
        }
        // Members and outsiders alike, each with its connection's trust level.
        let connected: HashMap<NodeId, (Trust, usize)> =
            svc.node.pool.connected_trust().into_iter().collect();
        // A peer that (re)connected (a new connection, however briefly it was away), or
        // whose trust changed, starts every document's sync afresh from the heads both
        // are known to share (what `sync::State::encode` keeps: the rest of a state
        // belongs to the lost connection), and is offered every document at once.
        let fresh: Vec<NodeId> = connected
            .iter()
            .filter(|(p, t)| known.get(p) != Some(t))
            .map(|(p, _)| *p)
            .collect();
        if checking && fresh.is_empty() && lock(&svc.dirty).is_empty() {
            continue;
        }
        if period {
            // Pushes that failed are offered again (to every peer they may flow to).
            let again = std::mem::take(&mut *lock(&svc.retry));
            let mut dirty = lock(&svc.dirty);
            for id in again {
                dirty.mark(id);
            }
        }
        let entries: Vec<(Arc<Entry>, super::dirty::Offer)> = lock(&svc.dirty)
            .take()
            .into_iter()
            .filter_map(|(id, offer)| Some((store.get(id).ok()?, offer)))
            .collect();
        if !fresh.is_empty() {
            for e in store.all() {
                let mut st = e.lock();
                for p in &fresh {
                    super::restart::restart(&mut st.peers, *p);
                }
            }
        }
        if period {
            saver.tick(&svc, &store).await;
            rounds = rounds.wrapping_add(1);
            lock(&svc.ask_again).retain(|p| connected.contains_key(p));
        }
        known = connected.clone();
        // Changed documents are pushed to every peer they may flow to at once.
        let mut pairs = Vec::new();
        for (e, offer) in entries {
            let reach = e.lock().reach;
            for (p, (t, _)) in &connected {
                if may_flow(reach, *t) && offer.includes(p) {
                    pairs.push((e.clone(), (*p, *t)));
                }
            }
        }
        // A new connection, a peer whose last question failed (at the next period) and
        // every peer every [`ASK_EVERY`] periods is asked what happened in its log since
        // this node's position there (the stream positions, `pull.rs`).
        let every = period && rounds.is_multiple_of(ASK_EVERY);
        let pulls: Vec<(NodeId, Trust)> = {
            let again = lock(&svc.ask_again);
            connected
                .iter()
                .filter(|(p, _)| every || fresh.contains(p) || (period && again.contains(p)))
                .map(|(p, (t, _))| (*p, *t))
                .collect()
        };
        let pushes = futures::stream::iter(pairs).for_each_concurrent(
            MAX_OUTGOING,
            |(entry, (peer, trust))| {
                let svc = svc.clone();
                async move {
                    match exchange(&svc, &entry, peer, trust).await {
                        Ok(true) => {}
                        // More to say after MAX_ROUNDS messages: goes on next period.
                        Ok(false) => {
                            lock(&svc.retry).insert(entry.id);
                        }
                        Err(e) => {
                            super::restart::restart(&mut entry.lock().peers, peer);
                            lock(&svc.retry).insert(entry.id);
                            debug!(doc = %entry.id, peer = %peer.short(), error = %e, "document sync failed");
                        }
                    }
                }
            },
        );
        let pulls = futures::stream::iter(pulls).for_each_concurrent(
            super::pull::MAX_PULLS,
            |(peer, trust)| {
                let svc = svc.clone();
                async move { super::pull::pull(&svc, peer, trust).await }
            },
        );
        futures::join!(pushes, pulls);
    }
}

/// Saves the per-peer sync states now and then ([`SAVE_STATES_EVERY`] full rounds),
/// when they changed since the last save.
#[derive(Default)]
struct StateSaver {
    rounds: u32,
    last: Vec<super::peer_states::Saved>,
}

/// Full sync rounds ([`SYNC_PERIOD`]) between two saves of the per-peer sync states.
pub const SAVE_STATES_EVERY: u32 = 30;

impl StateSaver {
    async fn tick(&mut self, svc: &Arc<DocsService>, store: &Arc<Store>) {
        self.rounds += 1;
        if self.rounds < SAVE_STATES_EVERY || !store.persistent() {
            return;
        }
        self.rounds = 0;
        let last = std::mem::take(&mut self.last);
        let saved = svc
            .blocking(move |store| {
                let now = store.saved_states();
                if now != last {
                    store.write_states(&now);
                }
                // The positions in peers' logs (the log itself is vouched for only by
                // the clean save at shutdown).
                store.save_stream(false);
                Ok(now)
            })
            .await;
        if let Ok(now) = saved {
            self.last = now;
        }
    }
}

/// Runs the sync protocol for one document with one peer of `trust` until neither has
/// more to say (or the document's reach no longer lets it flow there). Returns whether
/// it got there (false: [`MAX_ROUNDS`] messages were sent and more remain).
pub(super) async fn exchange(
    svc: &Arc<DocsService>,
    entry: &Arc<Entry>,
    peer: NodeId,
    trust: Trust,
) -> Result<bool> {
    let _active = Active::new(&svc.active);
    for _ in 0..MAX_ROUNDS {
        let e = entry.clone();
        let out = svc
            .blocking(move |_| {
                let mut st = e.lock();
                if !st.live || !may_flow(st.reach, trust) {
                    return Ok(None);
                }
                let st = &mut *st;
                let reach = st.reach;
                let state = st.peers.entry(peer).or_default();
                let msg = st.doc.sync().generate_sync_message(state);
                Ok(msg.map(|m| (m.encode(), reach)))
            })
            .await?;
        let Some((msg, reach)) = out else {
            return Ok(true);
        };
        if msg.len() > svc.max_message() {
            return Err(DocsError::TooLarge {
                what: "a sync message",
                size: msg.len(),
                limit: svc.max_message(),
            }
            .into());
        }
        let reply = send_sync(
            svc,
            peer,
            SyncRequest {
                doc: entry.id.0,
                reach: reach.as_u8(),
                msg,
            },
        )
        .await?;
        if reply.msg.is_empty() {
            continue;
        }
        let msg = svc.decode_message(&reply.msg)?;
        let e = entry.clone();
        let (len, cap) = (reply.msg.len() as u64, svc.cap());
        let want = svc.watched();
        let changed = svc
            .blocking(move |store| {
                // Narrowed meanwhile: accept nothing more from this peer (at the trust
                // level of its connection, so an outsider loses a narrowed community
                // document too).
                if !may_flow(e.lock().reach, trust) {
                    return Ok(None);
                }
                store.receive(&e, peer, msg, (len, cap), want)
            })
            .await?;
        if let Some(delta) = changed {
            svc.changed(entry.id, super::ChangeOrigin::Peer(peer), delta);
        }
    }
    Ok(false)
}

/// Sends one sync message to `peer` and returns its answer.
pub(super) async fn send_sync(
    svc: &Arc<DocsService>,
    peer: NodeId,
    req: SyncRequest,
) -> Result<SyncReply> {
    let body = encode_bulk(&Request::new(Op::Sync(req)))?;
    svc.sent.add(peer, body.len());
    let reply = crate::node::call::call_peer(&svc.node, peer, Service::Docs, &body).await?;
    match decode_bulk(&reply)? {
        Reply::Sync(r) => Ok(r),
        Reply::Since(_) => Err(DocsError::Invalid(
            "the peer answered a sync message with a list of documents".into(),
        )
        .into()),
    }
}
