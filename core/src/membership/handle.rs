//! The membership handle ([`Membership`]) the rest of the node uses: it starts the actor,
//! checks and queues what peers send before the actor sees it, and reads the view, the
//! events and the adverts the actor keeps.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use foca::Member;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::membership::actor::{Actor, Input, Setup};
use crate::membership::adverts::{Advert, AdvertTable};
use crate::membership::codec::decode_sync;
use crate::membership::error::MembershipError;
use crate::membership::limits::{
    MAX_QUEUED_PACKETS, MAX_QUEUED_PACKETS_PER_PEER, MAX_SYNCS_IN_FLIGHT,
    MAX_SYNCS_IN_FLIGHT_PER_PEER,
};
use crate::membership::member::{starting_generation, MemberId};
use crate::membership::packet::Packet;
use crate::membership::rate::Queue;
use crate::membership::view::{Event, View};
use crate::node::members::Liveness;
use crate::node::shared::Shared;
use crate::peer::PeerState;
use crate::service::DiskFree;

/// Capacity of the event broadcast channel (per subscriber backlog).
const EVENT_BACKLOG: usize = 1024;

/// The handle other parts of the node use.
#[derive(Debug)]
pub struct Membership {
    tx: mpsc::UnboundedSender<Input>,
    view: Arc<RwLock<View>>,
    events: broadcast::Sender<Event>,
    adverts: AdvertTable,
    rejoins: Arc<AtomicU64>,
    /// SWIM packets waiting for the actor, per peer and in total.
    queue: Queue,
    /// Full-state syncs being served, per peer and in total.
    syncing: Queue,
    /// What tells the actor how much disk to advertise (lent once, by the files store).
    disk: Arc<OnceLock<Arc<dyn DiskFree>>>,
}

impl Membership {
    /// Starts the actor for `shared`.
    pub(crate) fn start(shared: &Arc<Shared>) -> Result<Membership> {
        let cfg = &shared.config.membership;
        cfg.validate()?;
        let generation = starting_generation(shared.config.data_dir.as_deref())?;
        let mut seed = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| MembershipError::Random)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut own = View::new(shared.id, cfg.down_grace);
        own.set_own_role(shared.config.role);
        let view = Arc::new(RwLock::new(own));
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let rejoins = Arc::new(AtomicU64::new(0));
        let adverts = AdvertTable::default();
        let disk: Arc<OnceLock<Arc<dyn DiskFree>>> = Arc::default();
        let actor = Actor::new(
            shared,
            Setup {
                generation,
                seed: u64::from_le_bytes(seed),
                tx: tx.clone(),
                view: view.clone(),
                events: events.clone(),
                rejoins: rejoins.clone(),
                adverts: adverts.clone(),
                disk: disk.clone(),
            },
        );
        shared.runtime.handle().spawn(actor.run(rx));
        Ok(Membership {
            tx,
            view,
            events,
            adverts,
            rejoins,
            queue: Queue::new(MAX_QUEUED_PACKETS_PER_PEER, MAX_QUEUED_PACKETS),
            syncing: Queue::new(MAX_SYNCS_IN_FLIGHT_PER_PEER, MAX_SYNCS_IN_FLIGHT),
            disk,
        })
    }

    /// Hands the actor the addresses the bootstrap DNS names give now (ADR 0027).
    pub(crate) fn bootstrap_named(&self, addrs: Vec<std::net::SocketAddr>) {
        let _ = self.tx.send(Input::BootstrapNamed(addrs));
    }

    /// Whether node `me` (this one) has no live member besides itself.
    pub(crate) fn alone(&self, me: &NodeId) -> bool {
        self.with_view(|v| {
            !v.members()
                .any(|(m, s)| m.id != *me && s == PeerState::Alive)
        })
    }

    /// Advertises, from now on, the disk `source` says this node accepts for others'
    /// files (once; later calls are ignored).
    pub(crate) fn lend_disk(&self, source: Arc<dyn DiskFree>) {
        let _ = self.disk.set(source);
    }

    /// Tells the actor about a fresh authenticated connection.
    pub(crate) fn connected(&self, member: MemberId) {
        let _ = self.tx.send(Input::Connected(member));
    }

    /// Tells the actor a connection ended (`graceful`: the peer said goodbye).
    pub(crate) fn closed(&self, id: NodeId, graceful: bool) {
        let _ = self.tx.send(Input::Closed { id, graceful });
    }

    /// Checks a SWIM packet from the authenticated peer `from` and hands it to the actor.
    /// A packet in another member's name is `Unauthorized`, one over the limits
    /// `InvalidInput` (or `Corrupted`), and one beyond the queue bounds `QuotaExceeded`.
    pub(crate) fn packet(&self, from: NodeId, data: Bytes) -> Result<()> {
        let packet = Packet::parse(data, from)?;
        let ticket = self
            .queue
            .enter(from)
            .ok_or(MembershipError::PacketsQueued)?;
        self.tx
            .send(Input::Packet(Box::new(packet), ticket))
            .map_err(|_| Error::closed())
    }

    /// Decodes the full state of the authenticated peer `from` ([`decode_sync`]),
    /// applies it and returns ours. Beyond the syncs in flight allowed, `QuotaExceeded`.
    pub(crate) async fn sync(&self, from: NodeId, body: &[u8]) -> Result<Vec<Member<MemberId>>> {
        let _ticket = self
            .syncing
            .enter(from)
            .ok_or(MembershipError::SyncsInFlight)?;
        let theirs = decode_sync(body)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::SyncIn {
                from,
                theirs,
                reply,
            })
            .map_err(|_| Error::closed())?;
        rx.await.map_err(|_| Error::closed())?
    }

    /// Leaves the cluster and waits (up to `wait`) for the goodbye to be sent. Runs on
    /// the node runtime.
    pub(crate) async fn leave(&self, wait: Duration) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Input::Leave(done)).is_ok() {
            let _ = tokio::time::timeout(wait, rx).await;
        }
    }

    /// Advertises `role` from now on under a renewed identity (see
    /// [`Engine::set_role`](crate::membership::engine::Engine::set_role)), and waits
    /// until the actor took it.
    pub(crate) async fn set_role(&self, role: crate::peer::Role) -> Result<()> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Input::SetRole(role, done))
            .map_err(|_| Error::closed())?;
        rx.await.map_err(|_| Error::closed())
    }

    /// A new subscription to membership events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The latest free-quota advert of `id` (this node's own included).
    pub fn advert(&self, id: &NodeId) -> Option<Advert> {
        self.adverts.get(id)
    }

    /// How many times this node learned that the cluster had declared it down and
    /// rejoined under a renewed identity (a partition it was cut off by, or a pause).
    /// Whatever it held may have missed writes made meanwhile.
    pub fn rejoins(&self) -> u64 {
        self.rejoins.load(Ordering::Acquire)
    }

    /// Reads the view.
    pub fn with_view<T>(&self, f: impl FnOnce(&View) -> T) -> T {
        f(&self.view.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Liveness for Membership {
    fn state(&self, id: &NodeId) -> Option<PeerState> {
        self.with_view(|v| v.state(id))
    }

    fn states(&self) -> Vec<(NodeId, PeerState)> {
        self.with_view(|v| v.members().map(|(m, s)| (m.id, s)).collect())
    }

    fn clients(&self) -> Vec<NodeId> {
        self.with_view(|v| {
            v.members()
                .filter(|(m, _)| m.role == crate::peer::Role::Client)
                .map(|(m, _)| m.id)
                .collect()
        })
    }

    fn free(&self, id: &NodeId) -> Option<u64> {
        self.advert(id).map(|a| a.free)
    }

    fn disk_free(&self, id: &NodeId) -> Option<u64> {
        self.advert(id).map(|a| a.disk_free)
    }

    fn rejoins(&self) -> u64 {
        Membership::rejoins(self)
    }

    fn connected(&self, id: NodeId, name: String, addrs: Vec<SocketAddr>) {
        Membership::connected(
            self,
            MemberId {
                id,
                generation: 0,
                name,
                addrs,
                // Only the address of the announce: the member's own identity, role
                // included, comes from SWIM.
                role: crate::peer::Role::Member,
            },
        );
    }

    fn closed(&self, id: NodeId, graceful: bool) {
        Membership::closed(self, id, graceful);
    }
}
