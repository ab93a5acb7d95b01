//! The membership actor: drives foca (SWIM) with our authenticated transport and timers,
//! keeps the [`View`], and publishes [`Event`]s.
//!
//! foca is sans-IO: every call leaves packets to send, timers to schedule and
//! notifications in an `AccumulatingRuntime`, which [`drain`] turns into QUIC calls and
//! tokio sleeps. foca does not resynchronise full state by itself, so every
//! `full_sync_interval` the actor exchanges its whole member list with one random member.
//!
//! Healing a split: SWIM never probes a member it declared down, so after a partition both
//! sides would stay apart for good. Every `rejoin_interval` the actor announces itself to
//! a few members it holds as down (through the addresses it knows, even when it has no
//! live member left), and re-dials the bootstrap addresses while it is alone. A member
//! that hears from a node it declared down answers `TurnUndead`; a node that learns it
//! was declared down renews its identity (`generation + 1`) and rejoins, as foca intends.
//! Each such renewal is counted ([`Membership::rejoins`](crate::membership::handle::Membership::rejoins)) so the cache can treat every
//! replica it holds as possibly stale until it has caught up.
//!
//! Hostile members: every packet is checked before foca sees it ([`Packet::parse`]: its
//! sender must be the authenticated peer, its metadata within the limits), then admission
//! ([`Admission`]) decides which members it may add (at most [`MAX_MEMBERS`]) and whose
//! word counts; syncs are bounded by count and rate, packets waiting for the actor per
//! peer and in total, and dials to unconnected members by a token bucket. Limits:
//! [`crate::membership::limits`]; reasons: ADR 0008.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Foca, Member, OwnedNotification, State, Timer};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use crate::error::Result;
use crate::identity::NodeId;
use crate::membership::admission::{Admission, Census, Seat, Sifted};
use crate::membership::adverts::{Advert, AdvertHandler, AdvertTable};
use crate::membership::codec::SwimCodec;
use crate::membership::error::MembershipError;
use crate::membership::limits::{
    MAX_MEMBERS, SWIM_DIALS_PER_SECOND, SWIM_DIAL_BURST, SYNCS_PER_PEER_PER_SECOND, SYNC_BURST,
    WARN_INTERVAL,
};
use crate::membership::member::MemberId;
use crate::membership::packet::Packet;
use crate::membership::rate::{PeerBuckets, Throttle, Ticket, TokenBucket};
use crate::membership::rejoin::{Bootstrap, RejoinSchedule};
use crate::membership::service::{send_packet, sync_with};
use crate::membership::view::{Event, View};
use crate::node::shared::Shared;
use crate::peer::PeerState;

/// How often the actor checks grace periods, forgets the dead and syncs.
const TICK: Duration = Duration::from_millis(100);
/// Shortest interval between two free-quota adverts of this node.
const ADVERT_MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Down members announced to on each rejoin round.
const REJOIN_FANOUT: usize = 2;

/// Inputs of the actor.
pub(crate) enum Input {
    /// A checked packet; its ticket holds its place in the queue until it is handled.
    Packet(Box<Packet>, Ticket),
    Timer(Timer<MemberId>),
    Connected(MemberId),
    Closed {
        id: NodeId,
        graceful: bool,
    },
    SyncIn {
        from: NodeId,
        theirs: Vec<Member<MemberId>>,
        reply: oneshot::Sender<Result<Vec<Member<MemberId>>>>,
    },
    SyncReply {
        from: NodeId,
        theirs: Vec<Member<MemberId>>,
    },
    Leave(oneshot::Sender<()>),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

/// The actor: owns foca and everything it decides with; one task per node.
pub(crate) struct Actor {
    shared: Arc<Shared>,
    foca: Foca<MemberId, SwimCodec, StdRng, AdvertHandler>,
    rt: AccumulatingRuntime<MemberId>,
    tx: mpsc::UnboundedSender<Input>,
    view: Arc<RwLock<View>>,
    events: broadcast::Sender<Event>,
    rng: StdRng,
    advert_seq: u64,
    /// What was last advertised, and when.
    advertised: Option<(u64, Instant)>,
    /// Identity renewals after being declared down (shared with the handle).
    rejoins: Arc<AtomicU64>,
    /// Re-dialling the bootstrap addresses while alone.
    bootstrap: Bootstrap,
    /// Announcing to members held as down.
    rejoin: RejoinSchedule,
    /// This node said goodbye: it stops reaching out.
    left: bool,
    /// The free-quota adverts (shared with the handle).
    adverts: AdvertTable,
    /// Who gets in, and whose word counts.
    admission: Admission,
    /// Dials SWIM may start to members with no live connection.
    dials: TokenBucket,
    /// Full-state syncs each peer may start.
    syncs: PeerBuckets,
    /// Warnings about refused input, at most one of each kind per [`WARN_INTERVAL`].
    warnings: Warnings,
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

/// What the actor shares with the [`Membership`](crate::membership::handle::Membership)
/// handle, and how it starts.
pub(crate) struct Setup {
    /// This node's generation (see [`starting_generation`](crate::membership::member::starting_generation)).
    pub generation: u64,
    /// Seeds the actor's random choices (and foca's).
    pub seed: u64,
    /// The actor's own input queue (timers and sync replies come back through it).
    pub tx: mpsc::UnboundedSender<Input>,
    /// The view the actor keeps.
    pub view: Arc<RwLock<View>>,
    /// Where the actor publishes events.
    pub events: broadcast::Sender<Event>,
    /// Identity renewals after being declared down.
    pub rejoins: Arc<AtomicU64>,
    /// The free-quota adverts.
    pub adverts: AdvertTable,
}

impl Actor {
    /// The actor of `shared`'s node (run it with [`Actor::run`]).
    pub(crate) fn new(shared: &Arc<Shared>, setup: Setup) -> Actor {
        let Setup {
            generation,
            seed,
            tx,
            view,
            events,
            rejoins,
            adverts,
        } = setup;
        let cfg = &shared.config.membership;
        let me = MemberId::own(
            shared.id,
            generation,
            &shared.hello.name,
            &shared.hello.addrs,
        );
        let rng = StdRng::seed_from_u64(seed);
        let handler = AdvertHandler::new(adverts.clone(), shared.id, generation);
        let foca = Foca::with_custom_broadcast(me, cfg.foca_config(), rng, SwimCodec, handler);
        Actor {
            shared: shared.clone(),
            foca,
            rt: AccumulatingRuntime::new(),
            tx,
            view,
            events,
            rng: StdRng::seed_from_u64(seed.rotate_left(17)),
            advert_seq: generation,
            advertised: None,
            rejoins,
            bootstrap: Bootstrap::new(&shared.config.bootstrap),
            rejoin: RejoinSchedule::new(cfg.rejoin_interval),
            left: false,
            adverts,
            admission: Admission::new(shared.id, MAX_MEMBERS),
            dials: TokenBucket::new(SWIM_DIALS_PER_SECOND, SWIM_DIAL_BURST),
            syncs: PeerBuckets::new(SYNCS_PER_PEER_PER_SECOND, SYNC_BURST, MAX_MEMBERS),
            warnings: Warnings::default(),
        }
    }

    /// Runs until the node shuts down or the handle goes away.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_sync = Instant::now() + self.shared.config.membership.full_sync_interval;
        let mut next_rejoin = Instant::now() + self.shared.config.membership.rejoin_interval;
        loop {
            let mut leaving = None;
            tokio::select! {
                _ = self.shared.cancel.cancelled() => break,
                input = rx.recv() => match input {
                    None => break,
                    Some(Input::Leave(done)) => leaving = Some(done),
                    Some(input) => self.handle(input),
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now >= next_sync {
                        next_sync = now + self.shared.config.membership.full_sync_interval;
                        self.start_sync();
                        self.advertised = None; // re-advertise for members that joined since
                    }
                    if now >= next_rejoin {
                        next_rejoin = now + self.shared.config.membership.rejoin_interval;
                        self.reach_across(now);
                    }
                    self.forget(now);
                    self.advertise(now);
                }
            }
            let sends = self.drain();
            if let Some(done) = leaving {
                self.left = true;
                if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
                    debug!(error = %e, "leaving the cluster");
                }
                let mut sends = sends;
                sends.extend(self.drain());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        futures::future::join_all(sends),
                    )
                    .await;
                    let _ = done.send(());
                });
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let result = match input {
            Input::Packet(packet, _ticket) => self.on_packet(&packet),
            Input::Timer(timer) => self.foca.handle_timer(timer, &mut self.rt),
            Input::Connected(member) => {
                self.view_mut().connected(&member.id);
                let known = self.foca.iter_members().any(|m| m.id().id == member.id);
                if known {
                    Ok(())
                } else {
                    self.foca.announce(member, &mut self.rt)
                }
            }
            Input::Closed { id, graceful } => {
                if graceful {
                    let events = self.view_mut().left(&id, Instant::now());
                    self.publish(events);
                }
                Ok(())
            }
            Input::SyncIn {
                from,
                theirs,
                reply,
            } => {
                let now = Instant::now();
                if self.syncs.try_take(from, now) {
                    let ours = self.states();
                    let r = self.apply_hearsay(from, theirs, now);
                    let _ = reply.send(Ok(ours));
                    r
                } else {
                    if let Some(n) = self.warnings.syncs.note(1, now) {
                        warn!(
                            refused = n,
                            "full-state syncs refused: a peer sent too many"
                        );
                    }
                    let _ = reply.send(Err(MembershipError::SyncRate.into()));
                    Ok(())
                }
            }
            Input::SyncReply { from, theirs } => self.apply_hearsay(from, theirs, Instant::now()),
            Input::Leave(_) => Ok(()),
        };
        if let Err(e) = result {
            // Bad packets from peers end up here: log and carry on.
            debug!(error = %e, "membership input rejected");
        }
    }

    /// A checked packet: its sender speaks for itself (its own generation outweighs
    /// hearsay, and it gets a seat if one can be made), its updates are hearsay (sifted by
    /// admission); foca then sees the packet without what was dropped.
    fn on_packet(&mut self, packet: &Packet) -> std::result::Result<(), foca::Error> {
        let now = Instant::now();
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
            self.view_mut().recant(&sender);
            census.remove(&sender.id);
        }
        match self.admission.seat(&census, &sender) {
            Seat::Held => {}
            Seat::Free => census.insert(sender.clone()),
            Seat::Evict(out) => {
                self.evict(out.clone())?;
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
        self.foca.handle_data(&data, &mut self.rt)
    }

    /// Applies members heard from `from` (a full-state sync), as admission allows.
    fn apply_hearsay(
        &mut self,
        from: NodeId,
        theirs: Vec<Member<MemberId>>,
        now: Instant,
    ) -> std::result::Result<(), foca::Error> {
        let census = self.census();
        let refs: Vec<&Member<MemberId>> = theirs.iter().collect();
        let sifted = self.admission.sift(&census, &refs, Some(from), now);
        self.report(&sifted, now);
        let kept = theirs
            .into_iter()
            .zip(sifted.keep)
            .filter_map(|(m, keep)| keep.then_some(m));
        self.foca.apply_many(kept, false, &mut self.rt)
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
        let hearsay = u64::try_from(sifted.hearsay).unwrap_or(u64::MAX);
        if let Some(n) = self.warnings.hearsay.note(hearsay, now) {
            warn!(
                dropped = n,
                "updates claiming a new generation for a member that says otherwise were ignored"
            );
        }
    }

    /// What foca holds now.
    fn census(&self) -> Census {
        Census::new(self.foca.iter_membership_state())
    }

    /// Removes `held` from foca at once, telling no one.
    fn purge(&mut self, held: MemberId) -> std::result::Result<(), foca::Error> {
        self.foca.apply_many(
            std::iter::once(Member::down(held.clone())),
            false,
            &mut self.rt,
        )?;
        self.foca
            .handle_timer(Timer::RemoveDown(held), &mut self.rt)
    }

    /// Makes room: removes `out` from foca, the view, the pool and the adverts.
    fn evict(&mut self, out: MemberId) -> std::result::Result<(), foca::Error> {
        debug!(peer = %out.id.short(), "removed to make room for a member speaking for itself");
        self.purge(out.clone())?;
        let events = self.view_mut().remove(&out.id);
        self.publish(events);
        self.shared.pool.forget(&out.id);
        self.adverts.forget(&out.id);
        self.admission.forget(&out.id);
        Ok(())
    }

    /// Whether a packet to `id` may go: at once on a live connection; otherwise it needs
    /// a dial, which the dial budget must allow (one token per address to try, at least
    /// one).
    fn may_send(&mut self, id: &NodeId, now: Instant) -> bool {
        let pool = &self.shared.pool;
        if pool.live(id).is_some() {
            return true;
        }
        if pool.is_dialling(id) {
            return false; // a dial is under way; SWIM tolerates a lost packet
        }
        let cost = pool.addrs(id).len().clamp(1, SWIM_DIAL_BURST as usize);
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

    fn view_mut(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|p| p.into_inner())
    }

    fn states(&self) -> Vec<Member<MemberId>> {
        self.foca.iter_membership_state().cloned().collect()
    }

    fn publish(&self, events: Vec<Event>) {
        for e in events {
            debug!(event = ?e, "membership");
            let _ = self.events.send(e);
        }
    }

    /// Executes what foca asked for, then refreshes the view. Returns the send tasks.
    fn drain(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        // Learn the addresses of live members first: a packet to one needs them to dial.
        let states: Vec<(MemberId, PeerState)> = self
            .foca
            .iter_membership_state()
            .map(|m| (m.id().clone(), member_state(m.state())))
            .collect();
        for (m, s) in &states {
            if *s != PeerState::Down {
                self.shared.pool.learn(&m.id, &m.name, &m.dialable_addrs());
            }
        }
        let mut sends = Vec::new();
        let now = Instant::now();
        while let Some((to, data)) = self.rt.to_send() {
            if !self.may_send(&to.id, now) {
                continue;
            }
            let shared = self.shared.clone();
            sends.push(tokio::spawn(send_packet(shared, to, data)));
        }
        while let Some((after, timer)) = self.rt.to_schedule() {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = tx.send(Input::Timer(timer));
            });
        }
        while let Some(n) = self.rt.to_notify() {
            match n {
                OwnedNotification::Rejoin(me) => {
                    self.rejoins.fetch_add(1, Ordering::AcqRel);
                    // The cache answers from no replica alone until it has caught up.
                    self.shared.members.notify_changed();
                    info!(
                        generation = me.generation,
                        "the cluster had declared this node down: rejoined under a renewed identity"
                    );
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
            let held: std::collections::HashSet<NodeId> =
                states.iter().map(|(m, _)| m.id).collect();
            for id in self.shared.pool.connected() {
                if held.contains(&id) {
                    self.admission.connected(id);
                }
            }
        }
        let states = states
            .into_iter()
            .filter(|(m, _)| self.admission.proved(&m.id));
        let events = self.view_mut().observe(states, Instant::now());
        self.publish(events);
        sends
    }

    fn forget(&mut self, now: Instant) {
        let after = self.shared.config.membership.forget_after;
        let events = self.view_mut().tick(now);
        self.publish(events);
        for id in self.view_mut().forget(now, after) {
            self.shared.pool.forget(&id);
            self.adverts.forget(&id);
        }
        let census = self.census();
        self.admission.retain(&census);
    }

    /// Gossips this node's free quota when it changed (at most every
    /// `ADVERT_MIN_INTERVAL`) or when a periodic refresh is due.
    fn advertise(&mut self, now: Instant) {
        let budget = &self.shared.budget;
        let free = budget.free();
        if let Some((last, at)) = self.advertised {
            if last == free || now.duration_since(at) < ADVERT_MIN_INTERVAL {
                return;
            }
        }
        self.advert_seq = self.advert_seq.saturating_add(1);
        let advert = Advert {
            id: self.shared.id,
            seq: self.advert_seq,
            quota: budget.limit(),
            free,
        };
        match advert.encode() {
            Ok(data) => {
                if let Err(e) = self.foca.add_broadcast(&data) {
                    debug!(error = %e, "free-quota advert not queued");
                }
            }
            Err(e) => debug!(error = %e, "free-quota advert not encoded"),
        }
        self.advertised = Some((free, now));
    }

    /// Reaches across a healed split: announces this node to a few members held as down
    /// (their addresses are still known), and re-dials the bootstrap addresses while no
    /// member is live. Whoever answers brings the two sides back together.
    fn reach_across(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let live: std::collections::HashSet<NodeId> =
            self.foca.iter_members().map(|m| m.id().id).collect();
        // The newest identity of each node held as down (a renewed one may be live), among
        // those that proved who they are (announcing to a member only heard of would dial
        // wherever whoever mentioned it said).
        let mut newest: std::collections::HashMap<NodeId, MemberId> = Default::default();
        for m in self.foca.iter_membership_state() {
            let id = m.id();
            if m.state() == State::Down
                && id.id != self.shared.id
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
        let interval = self.shared.config.membership.rejoin_interval;
        let alone = !live.iter().any(|id| self.admission.proved(id));
        for addr in self.bootstrap.due(alone, now, interval) {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                match crate::node::connect::dial(&shared, addr, None).await {
                    Ok((id, _)) => {
                        debug!(%addr, peer = %id.short(), "bootstrap peer reached again")
                    }
                    Err(e) => trace!(%addr, error = %e, "bootstrap dial while alone failed"),
                }
            });
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
        let ours = self.states();
        let shared = self.shared.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            match sync_with(&shared, peer, &ours).await {
                Ok(theirs) => {
                    let _ = tx.send(Input::SyncReply { from: peer, theirs });
                }
                Err(e) => debug!(peer = %peer.short(), error = %e, "full-state sync failed"),
            }
        });
    }
}
