//! The membership engine: every decision a node's membership makes, without I/O.
//!
//! [`Engine`] owns foca (SWIM) and everything it decides with: [`Admission`], the [`View`],
//! the [`RejoinSchedule`] and [`Bootstrap`] schedules that heal splits, the dial budget for
//! SWIM packets to unconnected members, the rate of full-state syncs each peer may start,
//! and this node's free-quota adverts. It is told what happened at an instant `now` (a
//! checked packet, a foca timer, a connection, a full-state sync, the periodic
//! [`TICK`], leaving) and leaves what to do as [`Output`]s: packets to send and to whom,
//! timers, syncs to start, bootstrap addresses to dial, events to publish, renewals of
//! this node's identity. It reads the transport through [`Peers`] (who is connected, how
//! a packet would go) and keeps the transport's address book current through it.
//!
//! The membership actor (`actor.rs`) drives it with QUIC calls and tokio timers; the
//! simulator (`sim/`, crate `memmesh-sim`) drives the very same engine on virtual time.
//!
//! Healing a split: SWIM never probes a member it declared down, so after a partition both
//! sides would stay apart for good. Every `rejoin_interval` the engine announces itself to
//! a few members it holds as down (through the addresses it knows, even when it has no
//! live member left), and re-dials the bootstrap addresses while it is alone or while no
//! live member is at one of them (an island formed during the split: nobody outside holds
//! its members as down). A member
//! that hears from a node it declared down answers `TurnUndead`; a node that learns it
//! was declared down renews its identity (`generation + 1`) and rejoins, as foca intends
//! ([`Output::Rejoined`]).
//!
//! Hostile members: every packet must have been checked ([`Packet::parse`]) before it gets
//! here; admission ([`Admission`]) decides which members it may add (at most
//! [`MAX_MEMBERS`]) and whose word counts; syncs are bounded by rate, dials to unconnected
//! members by a token bucket. Limits: [`crate::membership::limits`]; reasons: ADR 0008.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use foca::{AccumulatingRuntime, Foca, Member, OwnedNotification, State, Timer};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, info, trace, warn};

use crate::identity::NodeId;
use crate::membership::admission::{Admission, Census, Seat, Sifted};
use crate::membership::adverts::{Advert, AdvertHandler, AdvertTable};
use crate::membership::codec::SwimCodec;
use crate::membership::config::MembershipConfig;
use crate::membership::error::MembershipError;
use crate::membership::limits::{
    CORRECTIONS_PER_PEER_PER_SECOND, CORRECTION_BURST, MAX_MEMBERS, SWIM_DIALS_PER_SECOND,
    SWIM_DIAL_BURST, SYNCS_PER_PEER_PER_SECOND, SYNC_BURST, WARN_INTERVAL,
};
use crate::membership::member::MemberId;
use crate::membership::packet::Packet;
use crate::membership::prove::{Proving, PROVE_FANOUT};
use crate::membership::rate::{PeerBuckets, Throttle, TokenBucket};
use crate::membership::rejoin::{Bootstrap, RejoinSchedule};
use crate::membership::view::{Event, View};
use crate::peer::PeerState;

/// How often the engine wants [`Engine::tick`]: it checks grace periods, forgets the dead,
/// syncs, reaches across splits and advertises on it.
pub const TICK: Duration = Duration::from_millis(100);
/// Shortest interval between two free-quota adverts of this node.
const ADVERT_MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Down members announced to on each rejoin round.
pub const REJOIN_FANOUT: usize = 2;

/// Where the engine keeps its [`View`]: the view itself (the simulator), or a view shared
/// behind a lock with its readers (a node: the engine holds the lock only while it writes).
pub trait ViewCell {
    /// Runs `f` on the view.
    fn with<T>(&mut self, f: impl FnOnce(&mut View) -> T) -> T;
}

impl ViewCell for View {
    fn with<T>(&mut self, f: impl FnOnce(&mut View) -> T) -> T {
        f(self)
    }
}

impl ViewCell for Arc<RwLock<View>> {
    fn with<T>(&mut self, f: impl FnOnce(&mut View) -> T) -> T {
        f(&mut self.write().unwrap_or_else(|p| p.into_inner()))
    }
}

/// How a packet to a member would go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// On a live connection, at once.
    Live,
    /// A dial to it is under way (the packet would be dropped: SWIM tolerates a loss).
    Dialling,
    /// It needs a dial, trying this many known addresses.
    Unconnected {
        /// Addresses known for it.
        addrs: usize,
    },
}

/// The transport as the engine sees it: the connection pool in a node, the simulated
/// network in the simulator.
pub trait Peers {
    /// Peers with a live connection.
    fn connected(&self) -> Vec<NodeId>;
    /// How a packet to `id` would go.
    fn reach(&self, id: &NodeId) -> Reach;
    /// Records a member that is not down (its name and dialable addresses), so a packet
    /// to it can dial it.
    fn learn(&self, member: &MemberId);
    /// Forgets a member that membership dropped (unless it is connected).
    fn forget(&self, id: &NodeId);
    /// Whether a peer with a live connection is known at `addr` (dialled there, or seen
    /// from there): a bootstrap address it answers needs no re-dial.
    fn live_at(&self, addr: SocketAddr) -> bool;
}

/// This node's storage quota, as advertised to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeQuota {
    /// The quota.
    pub limit: u64,
    /// What is free of it.
    pub free: u64,
    /// Disk this node accepts for others' files (see `Advert::disk_free`).
    pub disk_free: u64,
}

/// What the engine asks its driver to do, in order.
#[derive(Debug)]
pub enum Output {
    /// Send a SWIM packet to `to` (the dial budget allowed it).
    Send {
        /// The member (its addresses are in the transport's address book).
        to: MemberId,
        /// The packet.
        data: Bytes,
    },
    /// Give `timer` back ([`Engine::timer`]) after `after`.
    Timer {
        /// The delay.
        after: Duration,
        /// The timer.
        timer: Timer<MemberId>,
    },
    /// Exchange full states with `to`: send `ours`, hand its answer to
    /// [`Engine::sync_reply`].
    Sync {
        /// The peer.
        to: NodeId,
        /// This node's member states.
        ours: Vec<Member<MemberId>>,
    },
    /// Dial a bootstrap address (this node has no live member, or none at that address).
    Dial(SocketAddr),
    /// Publish a membership event.
    Event(Event),
    /// The cluster had declared this node down: it renewed its identity and rejoined.
    /// Whatever it holds may have missed writes made meanwhile.
    Rejoined {
        /// Its new generation.
        generation: u64,
    },
}

/// Throttles for the warnings about what membership refused.
#[derive(Debug)]
struct Warnings {
    over_cap: Throttle,
    hearsay: Throttle,
    full: Throttle,
    syncs: Throttle,
    dials: Throttle,
}

impl Default for Warnings {
    fn default() -> Self {
        Self {
            over_cap: Throttle::new(WARN_INTERVAL),
            hearsay: Throttle::new(WARN_INTERVAL),
            full: Throttle::new(WARN_INTERVAL),
            syncs: Throttle::new(WARN_INTERVAL),
            dials: Throttle::new(WARN_INTERVAL),
        }
    }
}

fn member_state(s: State) -> PeerState {
    match s {
        State::Alive => PeerState::Alive,
        State::Suspect => PeerState::Suspect,
        State::Down => PeerState::Down,
    }
}

type Swim = Foca<MemberId, SwimCodec, StdRng, AdvertHandler>;

/// How an [`Engine`] starts.
#[derive(Debug, Clone)]
pub struct Start {
    /// This node's SWIM identity (its generation: see
    /// [`starting_generation`](crate::membership::member::starting_generation)).
    pub me: MemberId,
    /// The timings.
    pub config: MembershipConfig,
    /// The bootstrap addresses, re-dialled while this node is alone.
    pub bootstrap: Vec<String>,
    /// Seeds every random choice (foca's and the engine's).
    pub seed: u64,
    /// The free-quota adverts (this node's and the ones gossiped).
    pub adverts: AdvertTable,
}

/// A node's membership decisions: foca and everything it decides with (see the module
/// documentation). Feed it inputs, then carry out [`Engine::take_outputs`].
pub struct Engine<V: ViewCell = View> {
    me: NodeId,
    cfg: MembershipConfig,
    foca: Swim,
    rt: AccumulatingRuntime<MemberId>,
    view: V,
    rng: StdRng,
    advert_seq: u64,
    /// What was last advertised, and when.
    advertised: Option<((u64, u64), Instant)>,
    /// Identity renewals after being declared down.
    rejoins: u64,
    /// Re-dialling the bootstrap addresses while alone or apart from them.
    bootstrap: Bootstrap,
    /// Announcing to members held as down.
    rejoin: RejoinSchedule,
    /// Announcing to live members only heard of, so that they prove who they are.
    proving: Proving,
    /// This node said goodbye: it stops reaching out.
    left: bool,
    /// The free-quota adverts.
    adverts: AdvertTable,
    /// Who gets in, and whose word counts.
    admission: Admission,
    /// Dials SWIM may start to members with no live connection.
    dials: TokenBucket,
    /// Full-state syncs each peer may start.
    syncs: PeerBuckets,
    /// Announces this node may send to a peer that addressed an older identity of it.
    corrections: PeerBuckets,
    /// Warnings about refused input, at most one of each kind per [`WARN_INTERVAL`].
    warnings: Warnings,
    next_sync: Instant,
    next_rejoin: Instant,
    out: Vec<Output>,
}

impl<V: ViewCell> std::fmt::Debug for Engine<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("me", &self.me)
            .field("generation", &self.foca.identity().generation)
            .field("rejoins", &self.rejoins)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<V: ViewCell> Engine<V> {
    /// An engine started at `now`, keeping `view` (a view of `start.me`'s node with the
    /// configured down grace).
    pub fn new(start: Start, view: V, now: Instant) -> Self {
        let Start {
            me,
            config,
            bootstrap,
            seed,
            adverts,
        } = start;
        let id = me.id;
        let generation = me.generation;
        let handler = AdvertHandler::new(adverts.clone(), id, generation);
        let foca = Foca::with_custom_broadcast(
            me,
            config.foca_config(),
            StdRng::seed_from_u64(seed),
            SwimCodec,
            handler,
        );
        Self {
            me: id,
            foca,
            rt: AccumulatingRuntime::new(),
            view,
            rng: StdRng::seed_from_u64(seed.rotate_left(17)),
            advert_seq: generation,
            advertised: None,
            rejoins: 0,
            bootstrap: Bootstrap::new(&bootstrap),
            rejoin: RejoinSchedule::new(config.rejoin_interval),
            proving: Proving::new(),
            left: false,
            adverts,
            admission: Admission::new(id, MAX_MEMBERS),
            dials: TokenBucket::new(SWIM_DIALS_PER_SECOND, SWIM_DIAL_BURST),
            syncs: PeerBuckets::new(SYNCS_PER_PEER_PER_SECOND, SYNC_BURST, MAX_MEMBERS),
            corrections: PeerBuckets::new(
                CORRECTIONS_PER_PEER_PER_SECOND,
                CORRECTION_BURST,
                MAX_MEMBERS,
            ),
            warnings: Warnings::default(),
            next_sync: now + config.full_sync_interval,
            next_rejoin: now + config.rejoin_interval,
            cfg: config,
            out: Vec::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Its current SWIM identity (the generation grows with each rejoin).
    pub fn identity(&self) -> &MemberId {
        self.foca.identity()
    }

    /// How many times it rejoined under a renewed identity.
    pub fn rejoins(&self) -> u64 {
        self.rejoins
    }

    /// Whether it left the cluster.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The member states foca holds (every state, this node excluded).
    pub fn states(&self) -> Vec<Member<MemberId>> {
        self.foca.iter_membership_state().cloned().collect()
    }

    /// What to do, in order, after the inputs given since the last call.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// A checked packet ([`Packet::parse`]): its sender speaks for itself (its own
    /// generation outweighs hearsay, and it gets a seat if one can be made), its updates
    /// are hearsay (sifted by admission); foca then sees the packet without what was
    /// dropped.
    pub fn packet(&mut self, packet: &Packet, now: Instant, peers: &impl Peers) {
        let r = self.on_packet(packet, now, peers);
        self.finish(r, now, peers);
    }

    /// A foca timer given back (see [`Output::Timer`]).
    pub fn timer(&mut self, timer: Timer<MemberId>, now: Instant, peers: &impl Peers) {
        let r = self.foca.handle_timer(timer, &mut self.rt);
        self.finish(r, now, peers);
    }

    /// A new authenticated connection with `member` (as its handshake tells: generation
    /// 0): it counts as connected in the view, and is announced to if SWIM does not know
    /// it.
    pub fn connected(&mut self, member: MemberId, now: Instant, peers: &impl Peers) {
        self.view.with(|v| v.connected(&member.id));
        let known = self.foca.iter_members().any(|m| m.id().id == member.id);
        let r = if known {
            Ok(())
        } else {
            self.foca.announce(member, &mut self.rt)
        };
        self.finish(r, now, peers);
    }

    /// A connection with `id` ended; `graceful`: the peer said goodbye (it is down at
    /// once).
    pub fn closed(&mut self, id: NodeId, graceful: bool, now: Instant, peers: &impl Peers) {
        if graceful {
            let events = self.view.with(|v| v.left(&id, now));
            self.publish(events);
        }
        self.finish(Ok(()), now, peers);
    }

    /// A full-state sync from the authenticated peer `from` (decoded and checked by
    /// [`decode_sync`](crate::membership::codec::decode_sync)): returns this node's
    /// states to answer with and applies theirs as admission allows, or refuses when
    /// `from` started too many.
    pub fn sync_in(
        &mut self,
        from: NodeId,
        theirs: Vec<Member<MemberId>>,
        now: Instant,
        peers: &impl Peers,
    ) -> Result<Vec<Member<MemberId>>, MembershipError> {
        if !self.syncs.try_take(from, now) {
            if let Some(n) = self.warnings.syncs.note(1, now) {
                warn!(
                    refused = n,
                    "full-state syncs refused: a peer sent too many"
                );
            }
            self.finish(Ok(()), now, peers);
            return Err(MembershipError::SyncRate);
        }
        let ours = self.states();
        let r = self.apply_hearsay(from, theirs, now);
        self.finish(r, now, peers);
        Ok(ours)
    }

    /// The answer to this node's [`Output::Sync`] from `from`, applied as admission
    /// allows.
    pub fn sync_reply(
        &mut self,
        from: NodeId,
        theirs: Vec<Member<MemberId>>,
        now: Instant,
        peers: &impl Peers,
    ) {
        let r = self.apply_hearsay(from, theirs, now);
        self.finish(r, now, peers);
    }

    /// The periodic tick (every [`TICK`]): a full-state sync when due, reaching across a
    /// split when due, grace periods and forgetting, and this node's free quota advertised
    /// when it changed (`quota`; `None` advertises nothing).
    pub fn tick(&mut self, now: Instant, quota: Option<FreeQuota>, peers: &impl Peers) {
        if now >= self.next_sync {
            self.next_sync = now + self.cfg.full_sync_interval;
            self.start_sync();
            self.advertised = None; // re-advertise for members that joined since
        }
        if now >= self.next_rejoin {
            self.next_rejoin = now + self.cfg.rejoin_interval;
            self.reach_across(now, peers);
        }
        self.forget(now, peers);
        self.prove_heard(now, peers);
        if let Some(quota) = quota {
            self.advertise(quota, now);
        }
        self.finish(Ok(()), now, peers);
    }

    /// Replaces the addresses the bootstrap DNS names give now (ADR 0027): they are
    /// re-dialled with the fixed ones while this node is alone, and the ones not given
    /// before are dialled at once (a node that just appeared in DNS). Addresses gone from
    /// DNS are no longer dialled.
    pub fn set_bootstrap_named(&mut self, addrs: Vec<SocketAddr>) {
        let added = self.bootstrap.set_named(addrs);
        if self.left {
            return;
        }
        self.out.extend(added.into_iter().map(Output::Dial));
    }

    /// Leaves the cluster: SWIM's goodbye to the members (in the outputs); this node
    /// stops reaching out.
    pub fn leave(&mut self, now: Instant, peers: &impl Peers) {
        self.left = true;
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            debug!(error = %e, "leaving the cluster");
        }
        self.finish(Ok(()), now, peers);
    }

    /// Changes this node's advertised role at runtime (draining: a member becomes a
    /// client, ADR 0025): a renewed identity (`generation + 1`, so it wins over the old
    /// one everywhere) with `role`, announced like a rejoin. A later rejoin renews this
    /// identity and so keeps the role. Nothing happens when the role is already `role`.
    pub fn set_role(&mut self, role: crate::peer::Role, now: Instant, peers: &impl Peers) {
        if self.left || self.foca.identity().role == role {
            return;
        }
        let renewed = MemberId {
            generation: self.foca.identity().generation.wrapping_add(1),
            ..self.foca.identity().clone()
        }
        .with_role(role);
        self.view.with(|v| v.set_own_role(role));
        let r = self.foca.change_identity(renewed, &mut self.rt);
        self.finish(r, now, peers);
    }

    fn finish(&mut self, r: Result<(), foca::Error>, now: Instant, peers: &impl Peers) {
        if let Err(e) = r {
            // Bad packets from peers end up here: log and carry on.
            debug!(error = %e, "membership input rejected");
        }
        self.flush(now, peers);
    }

    fn on_packet(
        &mut self,
        packet: &Packet,
        now: Instant,
        peers: &impl Peers,
    ) -> Result<(), foca::Error> {
        let sender = packet.sender().clone();
        let mut census = self.census();
        if let Some(hearsay) = census.hearsay_above(&sender) {
            debug!(
                peer = %sender.id.short(),
                held = hearsay.generation,
                own = sender.generation,
                "a member's own generation replaces one only heard of"
            );
            self.purge(hearsay)?;
            self.view.with(|v| v.recant(&sender));
            census.remove(&sender.id);
        }
        match self.admission.seat(&census, &sender) {
            Seat::Held => {}
            Seat::Free => census.insert(sender.clone()),
            Seat::Evict(out) => {
                self.evict(out.clone(), peers)?;
                census.remove(&out.id);
                census.insert(sender.clone());
            }
            Seat::Full => {
                if let Some(n) = self.warnings.full.note(1, now) {
                    warn!(
                        refused = n,
                        max = MAX_MEMBERS,
                        "membership is full of live members that spoke for themselves: \
                         packets from new members refused"
                    );
                }
                return Ok(());
            }
        }
        self.admission.heard_from(&sender, now);
        let sifted = self
            .admission
            .sift(&census, &packet.updates(), Some(sender.id), now);
        self.report(&sifted, now);
        let data = packet.rebuild(&sifted.keep);
        self.foca.handle_data(&data, &mut self.rt)?;
        self.ask_contradicted(&sifted.contradicted, now)?;
        self.correct_stale(packet, now)
    }

    /// A peer that addresses an older identity of this node (it missed a renewal: its
    /// probes would go unanswered, as foca drops them, until it declared this live node
    /// down) is told the current one: an announce, which replaces the old identity in its
    /// member list. At most [`CORRECTIONS_PER_PEER_PER_SECOND`] per peer.
    fn correct_stale(&mut self, packet: &Packet, now: Instant) -> Result<(), foca::Error> {
        let to = packet.recipient();
        let stale = to.id == self.me && to != self.foca.identity() && !packet.is_announce();
        if !stale || self.left || !self.corrections.try_take(packet.sender().id, now) {
            return Ok(());
        }
        debug!(
            peer = %packet.sender().id.short(),
            addressed = to.generation,
            current = self.foca.identity().generation,
            "a peer addressed an older identity of this node: it is told the current one"
        );
        self.foca.announce(packet.sender().clone(), &mut self.rt)
    }

    /// Applies members heard from `from` (a full-state sync), as admission allows.
    fn apply_hearsay(
        &mut self,
        from: NodeId,
        theirs: Vec<Member<MemberId>>,
        now: Instant,
    ) -> Result<(), foca::Error> {
        let census = self.census();
        let refs: Vec<&Member<MemberId>> = theirs.iter().collect();
        let sifted = self.admission.sift(&census, &refs, Some(from), now);
        self.report(&sifted, now);
        let kept = theirs
            .into_iter()
            .zip(sifted.keep)
            .filter_map(|(m, keep)| keep.then_some(m));
        self.foca.apply_many(kept, false, &mut self.rt)?;
        self.ask_contradicted(&sifted.contradicted, now)
    }

    /// Logs (throttled) what admission dropped.
    fn report(&mut self, sifted: &Sifted, now: Instant) {
        let over_cap = u64::try_from(sifted.over_cap).unwrap_or(u64::MAX);
        if let Some(n) = self.warnings.over_cap.note(over_cap, now) {
            warn!(
                dropped = n,
                max = MAX_MEMBERS,
                "membership is full: members only heard of were not admitted"
            );
        }
        let contradicted = u64::try_from(sifted.contradicted.len()).unwrap_or(u64::MAX);
        if let Some(n) = self.warnings.hearsay.note(contradicted, now) {
            // A member that renewed its identity is reported by others before it speaks
            // to this node again: normal after a rejoin, so not a warning.
            debug!(
                ignored = n,
                "updates claiming a new generation for a member that says otherwise were \
                 ignored; the member is asked itself"
            );
        }
    }

    /// Asks the members whose own word others contradicted (a higher generation heard
    /// of: a renewal this node missed, or a lie) to speak for themselves: an announce to
    /// the identity held, which foca accepts for any generation of that node and answers
    /// with the current one. Without it this node would keep probing the old identity,
    /// which foca drops unanswered, until it declared a live member down. At most
    /// [`CORRECTIONS_PER_PEER_PER_SECOND`] per member.
    fn ask_contradicted(&mut self, ids: &[NodeId], now: Instant) -> Result<(), foca::Error> {
        if self.left {
            return Ok(());
        }
        for id in ids {
            let held = self
                .foca
                .iter_members()
                .find(|m| m.id().id == *id)
                .map(|m| m.id().clone());
            let Some(held) = held else { continue };
            if self.corrections.try_take(*id, now) {
                trace!(peer = %id.short(), "asking a member whose generation others contradicted");
                self.foca.announce(held, &mut self.rt)?;
            }
        }
        Ok(())
    }

    /// What foca holds now.
    fn census(&self) -> Census {
        Census::new(self.foca.iter_membership_state())
    }

    /// Removes `held` from foca at once, telling no one.
    fn purge(&mut self, held: MemberId) -> Result<(), foca::Error> {
        self.foca.apply_many(
            std::iter::once(Member::down(held.clone())),
            false,
            &mut self.rt,
        )?;
        self.foca
            .handle_timer(Timer::RemoveDown(held), &mut self.rt)
    }

    /// Makes room: removes `out` from foca, the view, the transport's address book and
    /// the adverts.
    fn evict(&mut self, out: MemberId, peers: &impl Peers) -> Result<(), foca::Error> {
        debug!(peer = %out.id.short(), "removed to make room for a member speaking for itself");
        self.purge(out.clone())?;
        let events = self.view.with(|v| v.remove(&out.id));
        self.publish(events);
        peers.forget(&out.id);
        self.adverts.forget(&out.id);
        self.admission.forget(&out.id);
        Ok(())
    }

    /// Whether a packet to `id` may go: at once on a live connection; otherwise it needs
    /// a dial, which the dial budget must allow (one token per address to try, at least
    /// one).
    fn may_send(&mut self, reach: Reach, now: Instant) -> bool {
        let addrs = match reach {
            Reach::Live => return true,
            // A dial is under way; SWIM tolerates a lost packet.
            Reach::Dialling => return false,
            Reach::Unconnected { addrs } => addrs,
        };
        let cost = addrs.clamp(1, SWIM_DIAL_BURST as usize);
        if self
            .dials
            .try_take(u32::try_from(cost).unwrap_or(u32::MAX), now)
        {
            return true;
        }
        if let Some(n) = self.warnings.dials.note(1, now) {
            debug!(
                dropped = n,
                "SWIM packets to unconnected members dropped: the dial budget is spent"
            );
        }
        false
    }

    fn publish(&mut self, events: Vec<Event>) {
        self.out.extend(events.into_iter().map(Output::Event));
    }

    /// Turns what foca asked for into outputs, then refreshes the view.
    fn flush(&mut self, now: Instant, peers: &impl Peers) {
        // Learn the addresses of live members first: a packet to one needs them to dial.
        let states: Vec<(MemberId, PeerState)> = self
            .foca
            .iter_membership_state()
            .map(|m| (m.id().clone(), member_state(m.state())))
            .collect();
        for (m, s) in &states {
            if *s != PeerState::Down {
                peers.learn(m);
            }
        }
        while let Some((to, data)) = self.rt.to_send() {
            if self.may_send(peers.reach(&to.id), now) {
                self.out.push(Output::Send { to, data });
            }
        }
        while let Some((after, timer)) = self.rt.to_schedule() {
            self.out.push(Output::Timer { after, timer });
        }
        while let Some(n) = self.rt.to_notify() {
            match n {
                OwnedNotification::Rejoin(me) => {
                    self.rejoins += 1;
                    info!(
                        generation = me.generation,
                        "the cluster had declared this node down: rejoined under a renewed identity"
                    );
                    self.out.push(Output::Rejoined {
                        generation: me.generation,
                    });
                }
                // Leaving makes foca defunct on purpose.
                OwnedNotification::Defunct if !self.left => {
                    warn!("the cluster declared this node down and it could not rejoin")
                }
                n => trace!(notification = ?n, "foca"),
            }
        }
        // The view (and so the application, the cache's routing and block placement)
        // only holds members that have proved who they are to this node: by speaking for
        // themselves in SWIM, or by an authenticated connection. Members only heard of
        // are SWIM's business until then (a real one answers its first probe).
        if states.iter().any(|(m, _)| !self.admission.proved(&m.id)) {
            let held: BTreeSet<NodeId> = states.iter().map(|(m, _)| m.id).collect();
            for id in peers.connected() {
                if held.contains(&id) {
                    self.admission.connected(id);
                }
            }
        }
        let admission = &self.admission;
        let states = states.into_iter().filter(|(m, _)| admission.proved(&m.id));
        let events = self.view.with(|v| v.observe(states, now));
        self.publish(events);
    }

    /// Grace periods, then members down for longer than `forget_after` forgotten.
    fn forget(&mut self, now: Instant, peers: &impl Peers) {
        let after = self.cfg.forget_after;
        let (events, forgotten) = self.view.with(|v| (v.tick(now), v.forget(now, after)));
        self.publish(events);
        for id in forgotten {
            peers.forget(&id);
            self.adverts.forget(&id);
        }
        let census = self.census();
        self.admission.retain(&census);
    }

    /// Gossips this node's free quota when it changed (at most every
    /// `ADVERT_MIN_INTERVAL`) or when a periodic refresh is due.
    fn advertise(&mut self, quota: FreeQuota, now: Instant) {
        let free = quota.free;
        let figures = (free, quota.disk_free);
        if let Some((last, at)) = self.advertised {
            if last == figures || now.duration_since(at) < ADVERT_MIN_INTERVAL {
                return;
            }
        }
        self.advert_seq = self.advert_seq.saturating_add(1);
        let advert = Advert {
            id: self.me,
            seq: self.advert_seq,
            quota: quota.limit,
            free,
            disk_free: quota.disk_free,
        };
        match advert.encode() {
            Ok(data) => {
                if let Err(e) = self.foca.add_broadcast(&data) {
                    debug!(error = %e, "free-quota advert not queued");
                }
            }
            Err(e) => debug!(error = %e, "free-quota advert not encoded"),
        }
        self.advertised = Some((figures, now));
    }

    /// Reaches across a healed split: announces this node to a few members held as down
    /// (their addresses are still known), and re-dials the bootstrap addresses while no
    /// member is live or no live member is at them. Whoever answers brings the two sides
    /// back together.
    fn reach_across(&mut self, now: Instant, peers: &impl Peers) {
        if self.left {
            return;
        }
        let live: BTreeSet<NodeId> = self.foca.iter_members().map(|m| m.id().id).collect();
        // The newest identity of each node held as down (a renewed one may be live), among
        // those that proved who they are (announcing to a member only heard of would dial
        // wherever whoever mentioned it said).
        let mut newest: BTreeMap<NodeId, MemberId> = BTreeMap::new();
        for m in self.foca.iter_membership_state() {
            let id = m.id();
            if m.state() == State::Down
                && id.id != self.me
                && !live.contains(&id.id)
                && self.admission.proved(&id.id)
            {
                let slot = newest.entry(id.id).or_insert_with(|| id.clone());
                if id.generation > slot.generation {
                    *slot = id.clone();
                }
            }
        }
        let down: Vec<NodeId> = newest.keys().copied().collect();
        let rng = &mut self.rng;
        let chosen = self
            .rejoin
            .due(&down, now, REJOIN_FANOUT, |n| rng.random_range(0..n));
        for id in chosen {
            let Some(member) = newest.remove(&id) else {
                continue;
            };
            trace!(peer = %id.short(), "announcing to a member held as down");
            if let Err(e) = self.foca.announce(member, &mut self.rt) {
                debug!(error = %e, "announce to a down member");
            }
        }
        let alone = !live.iter().any(|id| self.admission.proved(id));
        // Addresses of live members that proved who they are, and this node's own (a
        // bootstrap list shared by every node names each of them).
        let advertised: BTreeSet<SocketAddr> = self
            .foca
            .iter_members()
            .filter(|m| self.admission.proved(&m.id().id))
            .flat_map(|m| m.id().addrs.iter().copied())
            .chain(self.foca.identity().addrs.iter().copied())
            .collect();
        let met = |a: &SocketAddr| advertised.contains(a) || peers.live_at(*a);
        for addr in self
            .bootstrap
            .due(alone, met, now, self.cfg.rejoin_interval)
        {
            self.out.push(Output::Dial(addr));
        }
    }

    /// Announces this node to live members only heard of (see [`crate::membership::prove`]):
    /// a real member answers for itself and enters the view within a round trip, instead
    /// of when SWIM's round robin gets to it.
    /// Only members an announce can go to now count as asked (a packet the dial budget
    /// or a dial under way would drop must not double their spacing).
    fn prove_heard(&mut self, now: Instant, peers: &impl Peers) {
        if self.left {
            return;
        }
        let mut unproved: Vec<MemberId> = self
            .foca
            .iter_members()
            .map(|m| m.id().clone())
            .filter(|m| m.id != self.me && !self.admission.proved(&m.id))
            .collect();
        if unproved.is_empty() && self.proving.is_empty() {
            return;
        }
        unproved.sort_by_key(|a| a.id);
        let ids: Vec<NodeId> = unproved.iter().map(|m| m.id).collect();
        let dials = &mut self.dials;
        let mut reserved: u32 = 0;
        let can_send = |id: &NodeId| match peers.reach(id) {
            Reach::Live => true,
            Reach::Dialling => false,
            Reach::Unconnected { addrs } => {
                let cost = u32::try_from(addrs.clamp(1, SWIM_DIAL_BURST as usize))
                    .unwrap_or(SWIM_DIAL_BURST);
                let ok = dials.has(reserved.saturating_add(cost), now);
                if ok {
                    reserved = reserved.saturating_add(cost);
                }
                ok
            }
        };
        for id in self.proving.due(&ids, now, PROVE_FANOUT, can_send) {
            let Some(member) = unproved.iter().find(|m| m.id == id) else {
                continue;
            };
            trace!(peer = %id.short(), "announcing to a member only heard of");
            if let Err(e) = self.foca.announce(member.clone(), &mut self.rt) {
                debug!(error = %e, "announce to a member only heard of");
            }
        }
    }

    /// Exchanges full states with a random live member that proved who it is.
    fn start_sync(&mut self) {
        let live: Vec<NodeId> = self
            .foca
            .iter_members()
            .map(|m| m.id().id)
            .filter(|id| self.admission.proved(id))
            .collect();
        if live.is_empty() {
            return;
        }
        let peer = live[self.rng.random_range(0..live.len())];
        self.out.push(Output::Sync {
            to: peer,
            ours: self.states(),
        });
    }
}

impl Engine<View> {
    /// The view (an engine that keeps its view itself).
    pub fn view(&self) -> &View {
        &self.view
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::net::Ipv4Addr;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 7400))
    }

    fn member(i: u8, generation: u64) -> MemberId {
        MemberId::own(
            NodeId::from_bytes([i; 32]),
            generation,
            &format!("n{i}"),
            &[addr(i)],
        )
    }

    /// A transport for tests: who is connected, how unconnected members are reached,
    /// and what the engine learned and forgot.
    #[derive(Default)]
    struct Net {
        conns: BTreeSet<NodeId>,
        /// Addresses an unconnected member is dialled at (`None`: every member is live).
        unconnected_addrs: Option<usize>,
        learned: RefCell<BTreeSet<NodeId>>,
        forgot: RefCell<Vec<NodeId>>,
    }

    impl Peers for Net {
        fn connected(&self) -> Vec<NodeId> {
            self.conns.iter().copied().collect()
        }

        fn reach(&self, id: &NodeId) -> Reach {
            match self.unconnected_addrs {
                Some(addrs) if !self.conns.contains(id) => Reach::Unconnected { addrs },
                _ => Reach::Live,
            }
        }

        fn learn(&self, member: &MemberId) {
            self.learned.borrow_mut().insert(member.id);
        }

        fn forget(&self, id: &NodeId) {
            self.forgot.borrow_mut().push(*id);
        }

        fn live_at(&self, _addr: SocketAddr) -> bool {
            false
        }
    }

    fn engine(i: u8, bootstrap: &[SocketAddr], now: Instant) -> Engine {
        let me = member(i, 1_000 + u64::from(i));
        let view = View::new(me.id, MembershipConfig::default().down_grace);
        let start = Start {
            me,
            config: MembershipConfig::default(),
            bootstrap: bootstrap.iter().map(|a| a.to_string()).collect(),
            seed: u64::from(i),
            adverts: AdvertTable::default(),
        };
        Engine::new(start, view, now)
    }

    fn sends(outputs: &[Output]) -> Vec<(NodeId, Bytes)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, data } => Some((to.id, data.clone())),
                _ => None,
            })
            .collect()
    }

    fn events(outputs: &[Output]) -> Vec<Event> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    /// Two engines with a connection: `a` announces itself to `b`; packets go back and
    /// forth (checked as the node's handle checks them) until neither has more to say.
    /// Returns every output of each.
    fn meet(a: &mut Engine, b: &mut Engine, now: Instant) -> (Vec<Output>, Vec<Output>) {
        let both: BTreeSet<NodeId> = [a.id(), b.id()].into_iter().collect();
        let net = Net {
            conns: both,
            ..Net::default()
        };
        let handshake = MemberId::own(b.id(), 0, "b", &[addr(9)]);
        a.connected(handshake, now, &net);
        let (mut all_a, mut all_b) = (Vec::new(), Vec::new());
        let mut out_a = a.take_outputs();
        let mut out_b = Vec::new();
        for _ in 0..20 {
            for (to, data) in sends(&out_a) {
                assert_eq!(to, b.id());
                let packet = Packet::parse(data, a.id()).expect("a packet foca wrote");
                b.packet(&packet, now, &net);
            }
            all_a.append(&mut out_a);
            out_b.extend(b.take_outputs());
            for (to, data) in sends(&out_b) {
                assert_eq!(to, a.id());
                let packet = Packet::parse(data, b.id()).expect("a packet foca wrote");
                a.packet(&packet, now, &net);
            }
            all_b.append(&mut out_b);
            out_a = a.take_outputs();
            if sends(&out_a).is_empty() {
                all_a.append(&mut out_a);
                break;
            }
        }
        (all_a, all_b)
    }

    #[test]
    fn two_engines_that_connect_see_each_other_up() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        let (out_a, out_b) = meet(&mut a, &mut b, t0);
        let up = |e: &Event, id: NodeId| matches!(e, Event::PeerUp { id: x, .. } if *x == id);
        assert!(events(&out_a).iter().any(|e| up(e, b.id())), "{out_a:?}");
        assert!(events(&out_b).iter().any(|e| up(e, a.id())), "{out_b:?}");
        assert_eq!(a.view().state(&b.id()), Some(PeerState::Alive));
        assert_eq!(b.view().state(&a.id()), Some(PeerState::Alive));
        // foca asks for its timers through the outputs.
        assert!(out_a.iter().any(|o| matches!(o, Output::Timer { .. })));
        assert_eq!(a.rejoins(), 0);
    }

    #[test]
    fn a_goodbye_on_the_connection_reports_the_peer_down_at_once() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        meet(&mut a, &mut b, t0);
        a.closed(b.id(), true, t0, &Net::default());
        let down = events(&a.take_outputs());
        assert!(down.contains(&Event::PeerDown { id: b.id() }), "{down:?}");
        // A connection that merely ended changes nothing by itself.
        b.closed(a.id(), false, t0, &Net::default());
        assert!(events(&b.take_outputs()).is_empty());
    }

    #[test]
    fn each_peer_may_start_only_so_many_syncs() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        meet(&mut a, &mut b, t0);
        let net = Net::default();
        for _ in 0..SYNC_BURST {
            let ours = a
                .sync_in(b.id(), b.states(), t0, &net)
                .expect("within the burst");
            assert_eq!(ours.len(), 1);
            assert_eq!(ours[0].id().id, b.id());
        }
        assert!(matches!(
            a.sync_in(b.id(), Vec::new(), t0, &net),
            Err(MembershipError::SyncRate)
        ));
        // Another peer has its own budget.
        assert!(a.sync_in(member(3, 1).id, Vec::new(), t0, &net).is_ok());
    }

    #[test]
    fn packets_to_unconnected_members_spend_the_dial_budget() {
        let t0 = Instant::now();
        let mut a = engine(1, &[], t0);
        // Each handshake makes the engine announce itself to a member SWIM does not know.
        let net = Net {
            unconnected_addrs: Some(8),
            ..Net::default()
        };
        for i in 10..20 {
            a.connected(member(i, 0), t0, &net);
        }
        let sent = sends(&a.take_outputs()).len();
        assert_eq!(sent, (SWIM_DIAL_BURST / 8) as usize);
        // On live connections nothing is held back.
        let mut b = engine(2, &[], t0);
        for i in 10..20 {
            b.connected(member(i, 0), t0, &Net::default());
        }
        assert_eq!(sends(&b.take_outputs()).len(), 10);
    }

    #[test]
    fn named_bootstrap_addresses_are_dialled_once_when_they_appear() {
        let now = Instant::now();
        let mut e = engine(1, &[], now);
        e.take_outputs();
        let a: SocketAddr = "10.0.0.9:7400".parse().unwrap();
        e.set_bootstrap_named(vec![a]);
        let dials: Vec<_> = e
            .take_outputs()
            .into_iter()
            .filter(|o| matches!(o, Output::Dial(x) if *x == a))
            .collect();
        assert_eq!(dials.len(), 1);
        e.set_bootstrap_named(vec![a]);
        assert!(e.take_outputs().is_empty(), "known already");
    }

    #[test]
    fn ticks_sync_with_a_proved_member_and_alone_redial_the_bootstrap() {
        let t0 = Instant::now();
        let cfg = MembershipConfig::default();
        let boot = addr(7);
        let mut alone = engine(3, &[boot], t0);
        let net = Net::default();
        let mut dials = Vec::new();
        let mut t = t0;
        while t < t0 + cfg.rejoin_interval * 7 {
            t += TICK;
            alone.tick(t, None, &net);
            for o in alone.take_outputs() {
                match o {
                    Output::Dial(a) => dials.push((a, t)),
                    Output::Sync { .. } => panic!("no member to sync with"),
                    _ => {}
                }
            }
        }
        // First 5 intervals after the first round found it alone, then every interval
        // (backing off from there).
        let at: Vec<Instant> = dials.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            at,
            vec![t0 + cfg.rejoin_interval * 6, t0 + cfg.rejoin_interval * 7]
        );
        assert!(dials.iter().all(|(a, _)| *a == boot));

        let (mut a, mut b) = (engine(1, &[boot], t0), engine(2, &[], t0));
        meet(&mut a, &mut b, t0);
        a.tick(t0 + cfg.full_sync_interval, None, &net);
        let out = a.take_outputs();
        let synced: Vec<NodeId> = out
            .iter()
            .filter_map(|o| match o {
                Output::Sync { to, ours } => {
                    assert_eq!(ours.len(), 1);
                    Some(*to)
                }
                _ => None,
            })
            .collect();
        assert_eq!(synced, vec![b.id()]);
        assert!(!out.iter().any(|o| matches!(o, Output::Dial(_))));
        assert!(net.learned.borrow().contains(&b.id()));
    }

    #[test]
    fn leaving_says_goodbye_then_reaches_out_no_more() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[addr(7)], t0), engine(2, &[], t0));
        meet(&mut a, &mut b, t0);
        a.leave(t0, &Net::default());
        assert!(a.has_left());
        let goodbye = sends(&a.take_outputs());
        assert!(goodbye.iter().any(|(to, _)| *to == b.id()), "{goodbye:?}");
        // Hearing it, `b` holds `a` as down.
        let net = Net::default();
        for (_, data) in goodbye {
            let packet = Packet::parse(data, a.id()).expect("a packet foca wrote");
            b.packet(&packet, t0, &net);
        }
        b.take_outputs();
        assert!(!b
            .states()
            .iter()
            .any(|m| m.id().id == a.id() && m.state() != State::Down));
        // Alone and gone: no announce, no bootstrap dial.
        let mut t = t0;
        for _ in 0..100 {
            t += TICK;
            a.tick(t, None, &net);
            let out = a.take_outputs();
            assert!(sends(&out).is_empty() && !out.iter().any(|o| matches!(o, Output::Dial(_))));
        }
    }

    #[test]
    fn a_quota_is_advertised_in_the_next_packets() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        let (out_a, _) = meet(&mut a, &mut b, t0);
        let probe = first_probe(out_a);
        let quota = FreeQuota {
            limit: 1 << 20,
            free: 1 << 19,
            disk_free: 1 << 30,
        };
        a.tick(t0 + TICK, Some(quota), &Net::default());
        a.take_outputs();
        // The advert rides on the next packet a sends: b's table has it.
        let net = Net::default();
        a.timer(probe, t0 + S, &net);
        for (_, data) in sends(&a.take_outputs()) {
            let packet = Packet::parse(data, a.id()).expect("a packet foca wrote");
            b.packet(&packet, t0 + S, &net);
        }
        let advert = b.adverts.get(&a.id()).expect("the advert arrived");
        assert_eq!(
            (advert.quota, advert.free, advert.disk_free),
            (quota.limit, quota.free, quota.disk_free)
        );
    }

    /// The probe timer among `outputs` (foca asks for one once it has a member).
    fn first_probe(outputs: Vec<Output>) -> Timer<MemberId> {
        outputs
            .into_iter()
            .find_map(|o| match o {
                Output::Timer {
                    timer: timer @ Timer::ProbeRandomMember(_),
                    ..
                } => Some(timer),
                _ => None,
            })
            .expect("foca probes once it has a member")
    }

    /// Sends every packet among `outputs` from `from` to `to`; returns `to`'s outputs.
    fn deliver(from: &Engine, to: &mut Engine, outputs: &[Output], now: Instant) -> Vec<Output> {
        let net = Net::default();
        for (dst, data) in sends(outputs) {
            assert_eq!(dst, to.id());
            let packet = Packet::parse(data, from.id()).expect("a packet foca wrote");
            to.packet(&packet, now, &net);
        }
        to.take_outputs()
    }

    #[test]
    fn a_node_declared_down_renews_its_identity_when_it_hears_so() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        let (out_a, _) = meet(&mut a, &mut b, t0);
        let probe = first_probe(out_a);
        // `b` hears (from a full-state sync) that `a` is down.
        let old = a.identity().clone();
        let net = Net::default();
        b.sync_reply(member(3, 1).id, vec![Member::down(old.clone())], t0, &net);
        b.take_outputs();
        assert!(b
            .states()
            .iter()
            .any(|m| m.id() == &old && m.state() == State::Down));
        // `a` probes `b`, `b` answers that `a` is down, `a` renews its identity.
        a.timer(probe, t0 + S, &net);
        let to_b = a.take_outputs();
        let to_a = deliver(&a, &mut b, &to_b, t0 + S);
        let renewed = deliver(&b, &mut a, &to_a, t0 + S);
        let generation = old.generation + 1;
        assert!(
            renewed
                .iter()
                .any(|o| matches!(o, Output::Rejoined { generation: g } if *g == generation)),
            "{renewed:?}"
        );
        assert_eq!(a.identity().generation, generation);
        assert_eq!(a.rejoins(), 1);
    }

    /// `b` restarted (same node, a higher generation) without `a` hearing of it.
    fn restarted(b: &Engine, now: Instant) -> Engine {
        let me = MemberId {
            generation: b.identity().generation + 10,
            ..b.identity().clone()
        };
        let view = View::new(me.id, MembershipConfig::default().down_grace);
        let start = Start {
            me,
            config: MembershipConfig::default(),
            bootstrap: Vec::new(),
            seed: 99,
            adverts: AdvertTable::default(),
        };
        Engine::new(start, view, now)
    }

    /// The generation `e` holds for `id`.
    fn held(e: &Engine, id: NodeId) -> Option<u64> {
        e.states()
            .iter()
            .find(|m| m.id().id == id && m.state() != State::Down)
            .map(|m| m.id().generation)
    }

    #[test]
    fn a_probe_of_an_old_identity_is_answered_with_the_current_one() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        let (out_a, _) = meet(&mut a, &mut b, t0);
        let probe = first_probe(out_a);
        let mut b2 = restarted(&b, t0);
        // `a` probes the identity it holds; the node now runs `b2`, which foca alone
        // would drop unanswered (and `a` would declare a live node down).
        let net = Net::default();
        a.timer(probe, t0 + S, &net);
        let pings = a.take_outputs();
        assert!(sends(&pings).iter().any(|(to, data)| *to == b.id()
            && Packet::parse(data.clone(), a.id()).unwrap().recipient() == b.identity()));
        let answer = deliver(&a, &mut b2, &pings, t0 + S);
        let told: Vec<Packet> = sends(&answer)
            .into_iter()
            .map(|(_, data)| Packet::parse(data, b2.id()).unwrap())
            .collect();
        assert!(told
            .iter()
            .any(|p| p.is_announce() && p.sender() == b2.identity()));
        deliver(&b2, &mut a, &answer, t0 + S);
        assert_eq!(held(&a, b.id()), Some(b2.identity().generation));
        // A burst of two, then once per second at most, however often it is addressed so.
        let second = deliver(&a, &mut b2, &pings, t0 + S);
        assert!(!sends(&second).is_empty());
        let third = deliver(&a, &mut b2, &pings, t0 + S);
        assert!(sends(&third).is_empty(), "{third:?}");
        let later = deliver(&a, &mut b2, &pings, t0 + S * 2);
        assert!(!sends(&later).is_empty());
    }

    #[test]
    fn hearsay_of_a_newer_generation_against_a_members_own_word_asks_the_member() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        meet(&mut a, &mut b, t0);
        let mut b2 = restarted(&b, t0);
        // A third member says `b` runs a newer generation: against `b`'s own recent word,
        // so not believed, but `b` is asked (an announce to the identity held).
        let net = Net::default();
        let claim = Member::alive(b2.identity().clone());
        a.sync_reply(member(3, 1).id, vec![claim], t0 + S, &net);
        let asked = a.take_outputs();
        assert_eq!(held(&a, b.id()), Some(b.identity().generation), "hearsay");
        let to_b: Vec<Packet> = sends(&asked)
            .into_iter()
            .map(|(_, data)| Packet::parse(data, a.id()).unwrap())
            .collect();
        assert!(
            to_b.iter()
                .any(|p| p.is_announce() && p.recipient() == b.identity()),
            "{asked:?}"
        );
        // The node, now `b2`, answers for itself: `a` holds the new generation.
        let answer = deliver(&a, &mut b2, &asked, t0 + S);
        deliver(&b2, &mut a, &answer, t0 + S);
        assert_eq!(held(&a, b.id()), Some(b2.identity().generation));
    }

    #[test]
    fn a_role_change_renews_the_identity_and_peers_learn_it() {
        let t0 = Instant::now();
        let (mut a, mut b) = (engine(1, &[], t0), engine(2, &[], t0));
        meet(&mut a, &mut b, t0);
        let old = a.identity().clone();
        let net = Net {
            conns: [a.id(), b.id()].into_iter().collect(),
            ..Net::default()
        };
        a.set_role(crate::peer::Role::Client, t0 + S, &net);
        assert_eq!(a.identity().generation, old.generation + 1);
        assert_eq!(a.identity().role, crate::peer::Role::Client);
        let to_b = a.take_outputs();
        deliver(&a, &mut b, &to_b, t0 + S);
        assert!(
            b.states().iter().any(|m| m.id().id == a.id()
                && m.id().role == crate::peer::Role::Client
                && m.state() != State::Down),
            "{:?}",
            b.states()
        );
        // A later renewal (a rejoin) keeps the role; setting it again changes nothing.
        let renewed = foca::Identity::renew(a.identity()).expect("renewable");
        assert_eq!(renewed.role, crate::peer::Role::Client);
        a.set_role(crate::peer::Role::Client, t0 + S, &net);
        assert_eq!(a.identity().generation, old.generation + 1);
    }
}
