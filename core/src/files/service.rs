//! The files wire service (`Service::Files`, ADR 0018): holding files for other nodes
//! (`Hold`: the holder pulls the file from the asker through the transfer engine and
//! answers only once it is durable), answering whether a file is here (`Has`) and
//! applying deletes (`Forget`). And the asking side: replication on put, search on get,
//! repair of a damaged copy, distributed delete with its retries.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tracing::{debug, info, warn};

use super::crypt::stored_len;
use super::error::FilesError;
use super::holders::{acts_for, rank, Backoff};
use super::id::FileId;
use super::messages::{Op, Reply, Request};
use super::partial::PartialWriter;
use super::progress::Relay;
use super::reader::{EncryptingWriter, MemoryWriter, Received, Slot};
use super::store::{blocking, Reservation, Store};
use super::{Files, PutOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::call::call_peer_within;
use crate::node::shared::Shared;
use crate::peer::PeerState;
use crate::service::{BoxFuture, Fetcher, FrameHandler, ServiceError};
use crate::service::{Direction, Progress};
use crate::slots::Slots;
use crate::transport::trust::Trust;
use crate::wire::codec::{decode_bulk, encode_bulk};
use crate::wire::Service;

/// Most `Hold`s one peer may have this node serve at once.
pub const MAX_HOLDS_PER_PEER: usize = 4;
/// Most `Hold`s this node serves at once.
pub const MAX_HOLDS_PER_NODE: usize = 16;
/// Most `Has` / `Forget` one peer may have this node answer at once.
pub const MAX_ASKS_PER_PEER: usize = 32;
/// Most `Has` / `Forget` this node answers at once.
pub const MAX_ASKS_PER_NODE: usize = 256;
/// Most peers asked at once by a search, a replication or a delete.
pub const FANOUT: usize = 8;
/// How long a pull waits, at most, for another pull of the same file from the same node
/// to let its partial replica go (`CLAIM_TRIES` × `CLAIM_WAIT`) before it goes without.
const CLAIM_TRIES: u32 = 40;
const CLAIM_WAIT: Duration = Duration::from_millis(50);
/// How often unacknowledged deletes are looked at.
const RETRY_TICK: Duration = Duration::from_secs(1);
/// How often tombstones past their retention are dropped.
const EXPIRE_EVERY: Duration = Duration::from_secs(3600);

/// The files service of a node: its runtime, its store and the transfer engine's fetch.
pub struct FilesService {
    node: Arc<Shared>,
    files: Files,
    fetcher: Arc<dyn Fetcher>,
    holds: Arc<Slots<NodeId>>,
    asks: Arc<Slots<NodeId>>,
    retries: Mutex<HashMap<([u8; 32], NodeId), Backoff>>,
    /// Relays the transfer engine's progress of files to [`Files::progress`].
    relay: Relay,
}

impl std::fmt::Debug for FilesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesService")
            .field("node", &self.node.id)
            .finish_non_exhaustive()
    }
}

impl FilesService {
    /// The files service of `node` over `files`, fetching through `fetcher` (whose
    /// progress events are on `progress`); attaches itself to `files` and starts the
    /// retry of unacknowledged deletes.
    pub(crate) fn start(
        node: Arc<Shared>,
        files: &Files,
        fetcher: Arc<dyn Fetcher>,
        progress: Option<tokio::sync::broadcast::Sender<Progress>>,
    ) -> Arc<Self> {
        let service = Arc::new(FilesService {
            relay: Relay::new(progress, files.progress_sender()),
            node,
            files: files.clone(),
            fetcher,
            holds: Slots::new("file holds", MAX_HOLDS_PER_PEER, MAX_HOLDS_PER_NODE),
            asks: Slots::new("file requests", MAX_ASKS_PER_PEER, MAX_ASKS_PER_NODE),
            retries: Mutex::new(HashMap::new()),
        });
        if files.attach(service.clone()) {
            if let Some(runtime) = &files.inner.runtime {
                runtime.spawn(retry_loop(service.clone()));
            }
        }
        service
    }

    fn me(&self) -> NodeId {
        self.node.id
    }

    /// Live members of the view that hold data for others (clients excluded, ADR
    /// 0024), this node excluded.
    pub(crate) fn live_members(&self) -> Vec<NodeId> {
        let me = self.me();
        self.node
            .members
            .live_holders()
            .unwrap_or_default()
            .into_iter()
            .filter(|id| *id != me)
            .collect()
    }

    /// How many of a file's replicas this node's own copy counts for: one on a member,
    /// none on a client, whose replicas are all on members (ADR 0024).
    fn own_copy(&self) -> usize {
        usize::from(self.node.holds_data())
    }

    fn is_live_member(&self, peer: &NodeId) -> bool {
        matches!(self.node.members.state(peer), Some(s) if s != PeerState::Down)
    }

    async fn call(&self, peer: NodeId, op: Op, deadline: Duration) -> Result<Reply> {
        let body = encode_bulk(&Request::new(op))?;
        let reply = call_peer_within(&self.node, peer, Service::Files, &body, deadline).await?;
        Ok(decode_bulk::<Reply>(&reply)?)
    }

    fn unexpected(peer: NodeId, reply: Reply) -> Error {
        FilesError::Invalid(format!(
            "node {} answered {reply:?}, which does not answer the request",
            peer.short()
        ))
        .into()
    }

    // ----- serving side -----

    async fn serve(self: Arc<Self>, from: NodeId, body: Bytes) -> Result<Bytes> {
        let request: Request = decode_bulk(&body)?;
        request.check()?;
        let store = self.files.store()?;
        let reply = match request.op {
            Op::Has { id } => {
                let _place = self.asks.take(&from)?;
                if store.tombstoned(&id)? {
                    Reply::Gone
                } else {
                    match store.record_of(&FileId::from_digest(id))? {
                        Some(r) => Reply::Yes { size: r.size },
                        None => Reply::No,
                    }
                }
            }
            Op::Forget { id, tombstone } => {
                let _place = self.asks.take(&from)?;
                if !self.is_live_member(&from) {
                    return Err(FilesError::NotMember { peer: from.short() }.into());
                }
                let had = store.clone().tombstone(id, Vec::new(), tombstone).await?;
                info!(
                    id = %FileId::from_digest(id),
                    by = %from.short(),
                    had,
                    "files: deleted at a holder's request"
                );
                Reply::Forgotten
            }
            Op::Hold {
                id,
                size,
                name,
                content_type,
                holders,
            } => {
                if !self.is_live_member(&from) {
                    return Err(FilesError::NotMember { peer: from.short() }.into());
                }
                if !self.node.holds_data() {
                    // A client holds no replicas for others (ADR 0024).
                    return Err(FilesError::ClientHoldsNothing.into());
                }
                let _place = self.holds.take(&from)?;
                let options = PutOptions {
                    name,
                    content_type,
                    replicas: 1,
                };
                let mut told: Vec<NodeId> = holders
                    .into_iter()
                    .map(NodeId::from_bytes)
                    .filter(|h| *h != self.me())
                    .collect();
                told.push(from);
                self.receive(&store, from, id, size, options, told).await?;
                Reply::Held
            }
        };
        Ok(Bytes::from(encode_bulk(&reply)?))
    }

    /// Pulls file `id` (`size` bytes) from `peer` into the store, encrypted as it
    /// arrives, and records it with `holders` (besides this node). A tombstoned id is
    /// refused; a file already here only gains the holders.
    async fn receive(
        &self,
        store: &Arc<Store>,
        peer: NodeId,
        id: [u8; 32],
        size: u64,
        options: PutOptions,
        holders: Vec<NodeId>,
    ) -> Result<()> {
        let file = FileId::from_digest(id);
        if store.tombstoned(&id)? {
            return Err(FilesError::Tombstoned {
                id: file.to_string(),
            }
            .into());
        }
        if store.holds(&id) {
            store.add_holders(id, holders).await?;
            return Ok(());
        }
        let (received, reservation) = self.pull(store, peer, id, size).await?;
        store
            .finish_put(
                received.tmp,
                received.digest,
                received.size,
                options,
                reservation,
                true,
            )
            .await?;
        store.add_holders(id, holders).await?;
        debug!(id = %file, from = %peer.short(), size, "files: holding a copy");
        Ok(())
    }

    /// Pulls file `id` (`size` bytes) from `peer` into a synced temporary content file,
    /// encrypted as it arrives, checked against the id and size; returns it with its
    /// reservation against the quota. The pull goes through the partial replica of
    /// (`id`, `peer`) (`partial.rs`): it resumes what an interrupted pull kept, and keeps
    /// what it verified if it is interrupted in turn; a pull whose content proved wrong
    /// removes it.
    async fn pull<'a>(
        &self,
        store: &'a Arc<Store>,
        peer: NodeId,
        id: [u8; 32],
        size: u64,
    ) -> Result<(Received, Reservation<'a>)> {
        let slot: Slot = Slot::default();
        // Claimed before the reservation: at rest, a partial counts against the quota
        // (and may be removed to make room); in use, the reservation covers it.
        let mut claimed = store.partials().claim(&id, peer.as_bytes());
        // A pull of the same file from the same node that just stopped may still be
        // checkpointing (a retry comes at once): give it a moment.
        for _ in 0..CLAIM_TRIES {
            if claimed.is_some() {
                break;
            }
            tokio::time::sleep(CLAIM_WAIT).await;
            claimed = store.partials().claim(&id, peer.as_bytes());
        }
        let reservation = store.reserve(stored_len(size))?;
        let (writer, settled): (Box<dyn crate::service::ChunkWriter>, _) = match claimed {
            Some((claim, settled)) => {
                let (st, sl) = (store.clone(), slot.clone());
                let w = blocking(move || PartialWriter::open(st, claim, id, size, sl)).await?;
                if w.kept_bytes() > 0 {
                    debug!(id = %FileId::from_digest(id), from = %peer.short(), kept = w.kept_bytes(), "files: resuming a replica");
                }
                (Box::new(w), Some(settled))
            }
            // Another pull of the same file from the same node runs: this one keeps
            // nothing.
            None => {
                let w = EncryptingWriter::create(
                    store.contents_dir(),
                    store.key(),
                    size,
                    slot.clone(),
                )?;
                (Box::new(w), None)
            }
        };
        let fetched = self.fetch_from(id, peer, size, writer).await;
        if let Some(settled) = settled {
            // The writer keeps its checkpoint (or removes its file) before the pull ends.
            let _ = settled.await;
        }
        if let Err(e) = &fetched {
            if matches!(e.kind(), ErrorKind::Corrupted | ErrorKind::InvalidInput) {
                store.partials().discard(&id, peer.as_bytes());
            }
        }
        fetched?;
        let received = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or(FilesError::Internal("a received file was not handed over"))?;
        if received.digest != id || received.size != size {
            return Err(FilesError::corrupted(format!(
                "{} from {}: {} bytes received do not match the id and size asked",
                FileId::from_digest(id),
                peer.short(),
                received.size
            ))
            .into());
        }
        Ok((received, reservation))
    }

    /// Fetches `id` (`size` bytes) from `peer` into `into`, its progress relayed.
    async fn fetch_from(
        &self,
        id: [u8; 32],
        peer: NodeId,
        size: u64,
        into: Box<dyn crate::service::ChunkWriter>,
    ) -> Result<u64> {
        let fetch = self.fetcher.fetch_into(id, peer, into);
        self.relay
            .during(
                FileId::from_digest(id),
                size,
                Direction::Receiving,
                fetch,
                |r: &Result<u64>| if r.is_ok() { vec![peer] } else { Vec::new() },
            )
            .await
    }

    // ----- asking side -----

    /// The node this service runs on (its membership view and connection pool).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.node
    }

    /// Whether `peer` may have room for `size` bytes of plaintext: its advert says so,
    /// or it has not advertised any free disk yet (0 is also what a node advertises
    /// before its store is wired; a node without a data dir refuses the `Hold`).
    fn has_room(&self, peer: &NodeId, size: u64) -> bool {
        match self.node.members.get().and_then(|m| m.disk_free(peer)) {
            Some(free) if free > 0 => free >= stored_len(size),
            _ => true,
        }
    }

    /// Checks, before anything is stored, that `replicas` nodes (this one and live
    /// members advertising room for `size` bytes, if known) can hold a file.
    pub(crate) fn check_replicas(
        &self,
        replicas: u32,
        size: Option<u64>,
    ) -> std::result::Result<(), FilesError> {
        let available = self
            .live_members()
            .iter()
            .filter(|p| size.is_none_or(|s| self.has_room(p, s)))
            .count()
            + self.own_copy();
        if replicas as usize > available {
            return Err(FilesError::TooFewMembers {
                replicas,
                available,
            });
        }
        Ok(())
    }

    /// Has `replicas - 1` other nodes hold `id` (stored here already): live members
    /// ranked by rendezvous, asked in parallel, a refusal moving on to the next. Live
    /// holders already recorded count. Once done, every holder is told the whole set.
    pub(crate) async fn replicate(self: Arc<Self>, id: FileId, options: PutOptions) -> Result<()> {
        let need = (options.replicas as usize).saturating_sub(self.own_copy());
        if need == 0 {
            return Ok(());
        }
        let store = self.files.store()?;
        let record = store
            .record_of(&id)?
            .ok_or_else(|| FilesError::NotFound { id: id.to_string() })?;
        let me = self.me();
        let live = self.live_members();
        let recorded: Vec<NodeId> = store
            .holders(id.digest())?
            .into_iter()
            .filter(|h| *h != me)
            .collect();
        let known: Vec<NodeId> = recorded
            .iter()
            .copied()
            .filter(|h| live.contains(h))
            .collect();
        let what = Hold {
            id,
            size: record.size,
            name: options.name.clone().or(record.name.clone()),
            content_type: options.content_type.clone().or(record.content_type.clone()),
        };
        let (added, last) = self
            .place(
                &store,
                &what,
                need.saturating_sub(known.len()),
                &recorded,
                &known,
            )
            .await?;
        let mut held = known;
        held.extend(added);
        if held.len() < need {
            return Err(FilesError::Replicated {
                id: id.to_string(),
                held: held.len() + self.own_copy(),
                replicas: options.replicas,
                why: last.map_or_else(
                    || "no other live member could hold it".to_string(),
                    |e| e.to_string(),
                ),
            }
            .into());
        }
        self.tell_holders(&what, &held).await;
        Ok(())
    }

    fn hold_deadline(&self, size: u64) -> Duration {
        // Room for the holder to pull the file: a second per MiB beyond the timeout.
        self.node
            .config
            .request_timeout
            .saturating_add(Duration::from_secs(size >> 20))
    }

    /// Has `need` more nodes hold `what`: live members not in `exclude`, ranked by
    /// rendezvous, asked in parallel (a refusal or failure moves on to the next); each
    /// `Held` is recorded. Returns the new holders and the last failure.
    /// The progress of each holder's pull is relayed to [`Files::progress`] (`Sending`).
    async fn place(
        self: &Arc<Self>,
        store: &Arc<Store>,
        what: &Hold,
        need: usize,
        exclude: &[NodeId],
        told: &[NodeId],
    ) -> Result<(Vec<NodeId>, Option<Error>)> {
        let placing = self.place_now(store, what, need, exclude, told);
        self.relay
            .during(
                what.id,
                what.size,
                Direction::Sending,
                placing,
                |r: &Result<(Vec<NodeId>, Option<Error>)>| {
                    r.as_ref().map(|(held, _)| held.clone()).unwrap_or_default()
                },
            )
            .await
    }

    /// [`FilesService::place`], without the progress.
    async fn place_now(
        self: &Arc<Self>,
        store: &Arc<Store>,
        what: &Hold,
        need: usize,
        exclude: &[NodeId],
        told: &[NodeId],
    ) -> Result<(Vec<NodeId>, Option<Error>)> {
        let mut held: Vec<NodeId> = Vec::new();
        if need == 0 {
            return Ok((held, None));
        }
        let roomy: Vec<NodeId> = self
            .live_members()
            .into_iter()
            .filter(|p| self.has_room(p, what.size))
            .collect();
        let mut candidates = rank(what.id.digest(), &roomy, exclude).into_iter();
        let mut running = FuturesUnordered::new();
        let hold = |peer: NodeId, held: &[NodeId]| {
            let mut set: Vec<NodeId> = told.to_vec();
            set.extend(held.iter().copied());
            let op = what.op(&set);
            let deadline = self.hold_deadline(what.size);
            let this = self.clone();
            async move { (peer, this.call(peer, op, deadline).await) }
        };
        let mut last: Option<Error> = None;
        loop {
            while held.len() + running.len() < need {
                match candidates.next() {
                    Some(c) => running.push(hold(c, &held)),
                    None => break,
                }
            }
            if held.len() >= need {
                break;
            }
            let Some((peer, result)) = running.next().await else {
                break;
            };
            match result {
                Ok(Reply::Held) => {
                    store.add_holders(*what.id.digest(), vec![peer]).await?;
                    held.push(peer);
                }
                Ok(other) => last = Some(Self::unexpected(peer, other)),
                Err(e) => {
                    debug!(id = %what.id, peer = %peer.short(), error = %e, "files: a hold failed");
                    last = Some(e);
                }
            }
        }
        Ok((held, last))
    }

    /// Tells every holder in `holders` the whole set (a `Hold` of a file it holds only
    /// records holders). Failures are only logged.
    async fn tell_holders(self: &Arc<Self>, what: &Hold, holders: &[NodeId]) {
        let deadline = self.node.config.request_timeout;
        let asks: Vec<(NodeId, Op)> = holders
            .iter()
            .map(|&peer| {
                let others: Vec<NodeId> = holders.iter().copied().filter(|h| *h != peer).collect();
                (peer, what.op(&others))
            })
            .collect();
        futures::stream::iter(asks)
            .map(|(peer, op)| async move {
                if let Err(e) = self.call(peer, op, deadline).await {
                    debug!(peer = %peer.short(), error = %e, "files: telling a holder the others");
                }
            })
            .buffer_unordered(FANOUT)
            .collect::<Vec<()>>()
            .await;
    }

    /// Restores the replica count of the files stored here that `down` (declared down)
    /// held, for the files this node acts for (the first surviving holder by rendezvous):
    /// one file at a time, each placed as a put places it.
    async fn restore(self: Arc<Self>, down: BTreeSet<NodeId>) {
        let Ok(store) = self.files.store() else {
            return;
        };
        let all = match store.all_holders() {
            Ok(all) => all,
            Err(e) => {
                debug!(error = %e, "files: reading holders");
                return;
            }
        };
        let me = self.me();
        for (digest, holders) in all {
            if self.node.is_closed() {
                return;
            }
            if !holders.iter().any(|h| down.contains(h)) || !store.holds(&digest) {
                continue;
            }
            let is_down =
                |h: &NodeId| *h != me && self.node.members.state(h) == Some(PeerState::Down);
            let survivors: Vec<NodeId> = holders
                .iter()
                .copied()
                .filter(|h| !is_down(h))
                .chain(std::iter::once(me))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if !acts_for(&digest, &me, &survivors) {
                continue;
            }
            let id = FileId::from_digest(digest);
            let lost = holders.iter().filter(|h| is_down(h)).count();
            let Ok(Some(record)) = store.record_of(&id) else {
                continue;
            };
            let what = Hold {
                id,
                size: record.size,
                name: record.name,
                content_type: record.content_type,
            };
            let told: Vec<NodeId> = survivors.iter().copied().filter(|h| *h != me).collect();
            match self.place(&store, &what, lost, &holders, &told).await {
                Ok((added, last)) => {
                    if added.len() < lost {
                        warn!(id = %id, restored = added.len(), lost, last = ?last.map(|e| e.to_string()), "files: replica count not fully restored");
                    } else {
                        info!(id = %id, restored = added.len(), "files: replica count restored");
                    }
                    if !added.is_empty() {
                        let mut all: Vec<NodeId> = told;
                        all.extend(added);
                        self.tell_holders(&what, &all).await;
                    }
                }
                Err(e) => debug!(id = %id, error = %e, "files: restoring replicas"),
            }
        }
    }

    /// How many more copies of a file held by `holders` (this node among them) must be
    /// placed on members so that this node's copy is no longer needed: the copies held
    /// here or on live nodes, less those on live members other than this node (ADR 0025).
    fn copies_to_move(&self, holders: &[NodeId], live: &BTreeSet<NodeId>) -> usize {
        let me = self.me();
        let set: BTreeSet<NodeId> = holders.iter().copied().chain(std::iter::once(me)).collect();
        let wanted = set
            .iter()
            .filter(|h| {
                **h == me || matches!(self.node.members.state(h), Some(s) if s != PeerState::Down)
            })
            .count();
        let have = set.iter().filter(|h| live.contains(h)).count();
        wanted.saturating_sub(have)
    }

    /// Every file stored here with its recorded holders.
    async fn stored(&self, store: &Arc<Store>) -> Result<Vec<super::FileInfo>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.clone().list(cursor, super::MAX_PAGE).await?;
            out.extend(page.files);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// How many files stored here still need a copy on another member before this
    /// (draining) node can stop (ADR 0025). Without a data dir, none.
    pub(crate) async fn handoff_left(&self) -> Result<usize> {
        let Ok(store) = self.files.store() else {
            return Ok(0);
        };
        let live: BTreeSet<NodeId> = self.live_members().into_iter().collect();
        Ok(self
            .stored(&store)
            .await?
            .iter()
            .filter(|f| self.copies_to_move(&f.holders, &live) > 0)
            .count())
    }

    /// Hands off the files stored here (draining, ADR 0025): each one whose copy here is
    /// needed gets a copy placed on another member, as a restore places it, and every
    /// holder learns the new set. Returns how many are still to move.
    pub(crate) async fn hand_off(self: Arc<Self>) -> Result<usize> {
        let Ok(store) = self.files.store() else {
            return Ok(0);
        };
        let me = self.me();
        let mut left = 0;
        for file in self.stored(&store).await? {
            if self.node.is_closed() {
                return Err(Error::closed());
            }
            let live: BTreeSet<NodeId> = self.live_members().into_iter().collect();
            let need = self.copies_to_move(&file.holders, &live);
            if need == 0 {
                continue;
            }
            let what = Hold {
                id: file.id,
                size: file.size,
                name: file.name.clone(),
                content_type: file.content_type.clone(),
            };
            let mut exclude = file.holders.clone();
            exclude.push(me);
            let told: Vec<NodeId> = file
                .holders
                .iter()
                .copied()
                .filter(|h| live.contains(h))
                .collect();
            match self.place(&store, &what, need, &exclude, &told).await {
                Ok((added, last)) => {
                    if added.len() < need {
                        left += 1;
                        debug!(id = %file.id, moved = added.len(), need, last = ?last.map(|e| e.to_string()), "files: handing off, not placed yet");
                    } else {
                        info!(id = %file.id, "files: handed off");
                    }
                    if !added.is_empty() {
                        let mut all = told;
                        all.extend(added);
                        self.tell_holders(&what, &all).await;
                    }
                }
                Err(e) => {
                    left += 1;
                    debug!(id = %file.id, error = %e, "files: handing off");
                }
            }
        }
        Ok(left)
    }

    /// The live members holding `id`, recorded holders first, with its size; `Gone`
    /// from any of them (or a local tombstone) is `NotFound`.
    async fn find(&self, store: &Arc<Store>, id: FileId) -> Result<Vec<(NodeId, u64)>> {
        let gone = || -> Error { FilesError::Tombstoned { id: id.to_string() }.into() };
        if store.tombstoned(id.digest())? {
            return Err(gone());
        }
        let live = self.live_members();
        let recorded: Vec<NodeId> = store
            .holders(id.digest())?
            .into_iter()
            .filter(|h| live.contains(h))
            .collect();
        let mut order = recorded.clone();
        order.extend(live.iter().filter(|p| !recorded.contains(p)));
        let deadline = self.node.config.request_timeout;
        let mut answers: Vec<(usize, NodeId, Result<Reply>)> =
            futures::stream::iter(order.iter().copied().enumerate())
                .map(|(i, p)| async move {
                    (
                        i,
                        p,
                        self.call(p, Op::Has { id: *id.digest() }, deadline).await,
                    )
                })
                .buffer_unordered(FANOUT)
                .collect()
                .await;
        answers.sort_by_key(|(i, ..)| *i);
        let mut found = Vec::new();
        for (_, peer, answer) in answers {
            match answer {
                Ok(Reply::Gone) => return Err(gone()),
                Ok(Reply::Yes { size }) => found.push((peer, size)),
                Ok(_) => {}
                Err(e) => debug!(id = %id, peer = %peer.short(), error = %e, "files: no answer"),
            }
        }
        if found.is_empty() {
            return Err(FilesError::NoHolder {
                id: id.to_string(),
                asked: order.len(),
            }
            .into());
        }
        Ok(found)
    }

    /// The contents of `id` from a live member holding it, verified.
    pub(crate) async fn fetch_bytes(self: Arc<Self>, id: FileId) -> Result<Bytes> {
        let store = self.files.store()?;
        let mut last = None;
        for (peer, size) in self.find(&store, id).await? {
            let slot = Arc::new(Mutex::new(None));
            let writer = MemoryWriter::new(size, slot.clone());
            match self
                .fetch_from(*id.digest(), peer, size, Box::new(writer))
                .await
            {
                Ok(_) => {
                    let data = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(data) = data {
                        return Ok(Bytes::from(data));
                    }
                }
                Err(e) => {
                    debug!(id = %id, peer = %peer.short(), error = %e, "files: fetch failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| FilesError::Internal("a fetch handed nothing over").into()))
    }

    /// Writes the contents of `id`, fetched from a live member holding it, to `path`.
    pub(crate) async fn fetch_to_path(
        self: Arc<Self>,
        id: FileId,
        path: std::path::PathBuf,
    ) -> Result<()> {
        let store = self.files.store()?;
        let mut last = None;
        for (peer, size) in self.find(&store, id).await? {
            if path.symlink_metadata().is_ok() {
                return Err(
                    FilesError::Invalid(format!("{} already exists", path.display())).into(),
                );
            }
            // Through the transfer engine's partial file beside `path`: a get interrupted
            // resumes when repeated into the same path (from the same holder, which the
            // search asks first as long as it is recorded and live).
            let fetch = self.fetcher.fetch_to_path(*id.digest(), peer, path.clone());
            let fetched = self
                .relay
                .during(
                    id,
                    size,
                    Direction::Receiving,
                    fetch,
                    |r: &Result<PathBuf>| {
                        if r.is_ok() {
                            vec![peer]
                        } else {
                            Vec::new()
                        }
                    },
                )
                .await;
            match fetched {
                Ok(delivered) if delivered == path => return Ok(()),
                Ok(delivered) => {
                    return Err(FilesError::Invalid(format!(
                        "{} appeared during the get; the file was written to {}",
                        path.display(),
                        delivered.display()
                    ))
                    .into())
                }
                Err(e) => {
                    debug!(id = %id, peer = %peer.short(), error = %e, "files: fetch failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| FilesError::Internal("no holder answered").into()))
    }

    /// A local copy of `id` was found damaged: fetches a good copy from another holder,
    /// then sets the damaged one aside and puts the good one in its place. `Corrupted`
    /// (the damaged copy left where it is) if no holder has a good copy.
    pub(crate) async fn repair(self: Arc<Self>, id: FileId, damage: Error) -> Result<()> {
        let store = self.files.store()?;
        warn!(id = %id, error = %damage, "files: the local copy is damaged; looking for a replica");
        let found = match self.find(&store, id).await {
            Ok(found) => found,
            Err(e)
                if e.kind() == crate::ErrorKind::NotFound && !store.tombstoned(id.digest())? =>
            {
                return Err(damage);
            }
            Err(e) => return Err(e),
        };
        let record = store.record_of(&id).ok().flatten();
        let options = PutOptions {
            name: record.as_ref().and_then(|r| r.name.clone()),
            content_type: record.as_ref().and_then(|r| r.content_type.clone()),
            replicas: 1,
        };
        for (peer, size) in found {
            let (received, reservation) = match self.pull(&store, peer, *id.digest(), size).await {
                Ok(r) => r,
                Err(e) => {
                    debug!(id = %id, peer = %peer.short(), error = %e, "files: repair failed");
                    continue;
                }
            };
            let me = self.me();
            let holders: Vec<NodeId> = store
                .clone()
                .set_aside(*id.digest())
                .await?
                .into_iter()
                .filter(|h| *h != me)
                .collect();
            store
                .finish_put(
                    received.tmp,
                    received.digest,
                    received.size,
                    options,
                    reservation,
                    true,
                )
                .await?;
            store.add_holders(*id.digest(), holders).await?;
            info!(id = %id, from = %peer.short(), "files: repaired from a replica");
            return Ok(());
        }
        Err(damage)
    }

    /// Deletes `id` here and on every holder: a tombstone waits for each one's
    /// acknowledgement (holders down now get it when they are back).
    pub(crate) async fn delete(self: Arc<Self>, id: FileId) -> Result<()> {
        let store = self.files.store()?;
        if !store.holds(id.digest()) {
            return Err(FilesError::NotFound { id: id.to_string() }.into());
        }
        let me = self.me();
        let others: Vec<NodeId> = store
            .holders(id.digest())?
            .into_iter()
            .filter(|h| *h != me)
            .collect();
        store
            .clone()
            .tombstone(*id.digest(), others.clone(), false)
            .await?;
        let live: BTreeSet<NodeId> = self.live_members().into_iter().collect();
        let reachable: Vec<NodeId> = others.into_iter().filter(|o| live.contains(o)).collect();
        self.forget_on(&store, *id.digest(), reachable).await;
        Ok(())
    }

    /// Sends `Forget` for `id` to `nodes`; records each acknowledgement, backs off on
    /// each failure.
    async fn forget_on(&self, store: &Arc<Store>, id: [u8; 32], nodes: Vec<NodeId>) {
        let deadline = self.node.config.request_timeout;
        let results: Vec<(NodeId, Result<Reply>)> = futures::stream::iter(nodes)
            .map(|n| async move {
                let op = Op::Forget {
                    id,
                    tombstone: true,
                };
                (n, self.call(n, op, deadline).await)
            })
            .buffer_unordered(FANOUT)
            .collect()
            .await;
        let now = Instant::now();
        for (node, result) in results {
            match result {
                Ok(Reply::Forgotten) => {
                    if let Err(e) = store.ack(id, node).await {
                        warn!(error = %e, "files: recording a delete's acknowledgement");
                    }
                    self.retries
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&(id, node));
                }
                other => {
                    debug!(peer = %node.short(), answer = ?other.map(|_| ()), "files: a holder did not apply a delete yet");
                    let mut r = self.retries.lock().unwrap_or_else(|p| p.into_inner());
                    let b = r.entry((id, node)).or_insert_with(|| Backoff::now(now));
                    *b = b.failed(now);
                }
            }
        }
    }
}

/// What a `Hold` asks, but the holders it names.
struct Hold {
    id: FileId,
    size: u64,
    name: Option<String>,
    content_type: Option<String>,
}

impl Hold {
    fn op(&self, holders: &[NodeId]) -> Op {
        let mut told: Vec<[u8; 32]> = holders.iter().map(|h| *h.as_bytes()).collect();
        told.truncate(super::messages::MAX_REPLICAS as usize);
        Op::Hold {
            id: *self.id.digest(),
            size: self.size,
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            holders: told,
        }
    }
}

/// Until the node shuts down: sends unacknowledged deletes again to holders that are
/// live, with backoff per holder (a holder that comes back is tried at once); and when
/// members are newly declared down, restores the replica count of what they held (in a
/// task of its own, one at a time).
async fn retry_loop(service: Arc<FilesService>) {
    let mut was_live: BTreeSet<NodeId> = BTreeSet::new();
    let mut was_down: BTreeSet<NodeId> = BTreeSet::new();
    let restoring = Arc::new(tokio::sync::Semaphore::new(1));
    let mut expired_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = service.node.cancel.cancelled() => return,
            _ = tokio::time::sleep(RETRY_TICK) => {}
        }
        let Ok(store) = service.files.store() else {
            return;
        };
        if expired_at.is_none_or(|t| t.elapsed() >= EXPIRE_EVERY) {
            expired_at = Some(Instant::now());
            if let Err(e) = store.expire_tombstones().await {
                debug!(error = %e, "files: dropping old tombstones");
            }
            // Partial replicas at rest for more than a day are not resumed any more.
            store.partials().sweep(super::checkpoint::MAX_AGE);
        }
        let down: BTreeSet<NodeId> = service
            .node
            .members
            .get()
            .map(|m| m.states())
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, s)| *s == PeerState::Down)
            .map(|(id, _)| id)
            .collect();
        let newly: BTreeSet<NodeId> = down.difference(&was_down).copied().collect();
        was_down = down;
        if !newly.is_empty() {
            let service = service.clone();
            let restoring = restoring.clone();
            tokio::spawn(async move {
                let Ok(_one) = restoring.acquire().await else {
                    return;
                };
                service.restore(newly).await;
            });
        }
        let pending = match store.pending_tombstones() {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, "files: reading pending deletes");
                continue;
            }
        };
        let live: BTreeSet<NodeId> = service.live_members().into_iter().collect();
        let now = Instant::now();
        let mut due: HashMap<[u8; 32], Vec<NodeId>> = HashMap::new();
        {
            let mut r = service.retries.lock().unwrap_or_else(|p| p.into_inner());
            for (id, nodes) in &pending {
                for n in nodes {
                    if !live.contains(n) {
                        continue;
                    }
                    let b = r.entry((*id, *n)).or_insert_with(|| Backoff::now(now));
                    if !was_live.contains(n) {
                        *b = b.back(now);
                    }
                    if b.due(now) {
                        due.entry(*id).or_default().push(*n);
                    }
                }
            }
            r.retain(|(id, n), _| pending.iter().any(|(p, ns)| p == id && ns.contains(n)));
        }
        was_live = live;
        for (id, nodes) in due {
            service.forget_on(&store, id, nodes).await;
        }
    }
}

impl FrameHandler for FilesService {
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        _trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>> {
        Box::pin(async move {
            match service {
                Service::Files => self.serve(from, body).await,
                _ => Err(ServiceError::NotMine("files").into()),
            }
        })
    }
}
