//! One simulated node's membership: the pieces a memmesh node's membership actor runs
//! (`core/src/membership/service.rs`): foca with memmesh's identity ([`MemberId`]), codec
//! ([`SwimCodec`]), broadcast handler and configuration ([`MembershipConfig::foca`]); packet
//! checks ([`Packet`]) and admission ([`Admission`]); the [`View`]; the rejoin and
//! bootstrap schedules; rate-limited full-state syncs. The simulator feeds it inputs at
//! virtual instants instead of QUIC streams and tokio timers, and carries its outputs.
//!
//! What the actor does and this does not: free-quota adverts, the connection pool's dial
//! budget for SWIM packets to unconnected members, and the per-peer packet queues (the
//! simulator delivers every packet the network does not lose).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use foca::{AccumulatingRuntime, Foca, Member, OwnedNotification, State, Timer};
use memmesh::cache::routing::Table;
use memmesh::identity::NodeId;
use memmesh::membership::admission::{Admission, Census, Seat};
use memmesh::membership::adverts::{AdvertHandler, AdvertTable};
use memmesh::membership::codec::{decode_sync, SwimCodec};
use memmesh::membership::limits::{MAX_MEMBERS, SYNCS_PER_PEER_PER_SECOND, SYNC_BURST};
use memmesh::membership::packet::Packet;
use memmesh::membership::rate::PeerBuckets;
use memmesh::membership::rejoin::{Bootstrap, RejoinSchedule};
use memmesh::membership::{Event, MemberId, MembershipConfig, View};
use memmesh::wire::codec::encode_bulk;
use memmesh::PeerState;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, trace};

/// Down members announced to on each rejoin round (`REJOIN_FANOUT` in the actor).
const REJOIN_FANOUT: usize = 2;

/// What a simulated node is given.
#[derive(Debug, Clone)]
pub enum Input {
    /// A SWIM packet from the authenticated peer `from`.
    Packet {
        /// The sender (the connection's peer).
        from: NodeId,
        /// The packet.
        data: Bytes,
    },
    /// A foca timer is due.
    Timer(Timer<MemberId>),
    /// A new authenticated connection with this peer (as the node's handshake reports it:
    /// generation 0).
    Connected(MemberId),
    /// A connection ended (`graceful`: the peer said goodbye).
    Closed {
        /// The peer.
        id: NodeId,
        /// Whether it said goodbye.
        graceful: bool,
    },
    /// A peer's full state (a sync request).
    SyncIn {
        /// The peer.
        from: NodeId,
        /// Its encoded member list.
        body: Bytes,
    },
    /// The answer to this node's sync request.
    SyncReply {
        /// The peer.
        from: NodeId,
        /// Its encoded member list.
        body: Bytes,
    },
    /// The actor's periodic tick (every 100 ms in a node).
    Tick,
    /// Leave the cluster.
    Leave,
}

/// What a simulated node asks the simulator to do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send a SWIM packet.
    Packet {
        /// The member to send to.
        to: NodeId,
        /// The packet.
        data: Bytes,
    },
    /// Start a full-state sync with `to`.
    Sync {
        /// The peer.
        to: NodeId,
        /// This node's encoded member list.
        body: Bytes,
    },
    /// Answer a sync from `to`.
    SyncReply {
        /// The peer.
        to: NodeId,
        /// This node's encoded member list.
        body: Bytes,
    },
    /// Give `timer` back after `after`.
    Timer {
        /// The delay.
        after: Duration,
        /// The timer.
        timer: Timer<MemberId>,
    },
    /// Dial a bootstrap address.
    Dial(SocketAddr),
}

type Swim = Foca<MemberId, SwimCodec, StdRng, AdvertHandler>;

/// A simulated node's membership state.
pub struct SimNode {
    me: NodeId,
    cfg: MembershipConfig,
    foca: Swim,
    rt: AccumulatingRuntime<MemberId>,
    view: View,
    rng: StdRng,
    rejoins: u64,
    bootstrap: Bootstrap,
    rejoin: RejoinSchedule,
    left: bool,
    admission: Admission,
    syncs: PeerBuckets,
    conns: BTreeSet<NodeId>,
    next_sync: Instant,
    next_rejoin: Instant,
    out: Vec<Output>,
    events: u64,
}

fn member_state(s: State) -> PeerState {
    match s {
        State::Alive => PeerState::Alive,
        State::Suspect => PeerState::Suspect,
        State::Down => PeerState::Down,
    }
}

impl SimNode {
    /// A node started at `now` as `me`, configured by `cfg`, with `bootstrap` addresses to
    /// re-dial while alone and a seed for its random choices.
    pub fn new(
        me: MemberId,
        cfg: &MembershipConfig,
        bootstrap: &[String],
        seed: u64,
        now: Instant,
    ) -> Self {
        let handler = AdvertHandler::new(AdvertTable::default(), me.id, me.generation);
        let id = me.id;
        let foca = Foca::with_custom_broadcast(
            me,
            cfg.foca_config(),
            StdRng::seed_from_u64(seed),
            SwimCodec,
            handler,
        );
        Self {
            me: id,
            cfg: cfg.clone(),
            foca,
            rt: AccumulatingRuntime::new(),
            view: View::new(id, cfg.down_grace),
            rng: StdRng::seed_from_u64(seed.rotate_left(17)),
            rejoins: 0,
            bootstrap: Bootstrap::new(bootstrap),
            rejoin: RejoinSchedule::new(cfg.rejoin_interval),
            left: false,
            admission: Admission::new(id, MAX_MEMBERS),
            syncs: PeerBuckets::new(SYNCS_PER_PEER_PER_SECOND, SYNC_BURST, MAX_MEMBERS),
            conns: BTreeSet::new(),
            next_sync: now + cfg.full_sync_interval,
            next_rejoin: now + cfg.rejoin_interval,
            out: Vec::new(),
            events: 0,
        }
    }

    /// The node's id.
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

    /// How many membership events its view published.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Its view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The members its cache places data on: the view's live members and itself, sorted
    /// (as `cache::maintain::follow_membership` computes them).
    pub fn live_members(&self) -> Vec<NodeId> {
        let mut members: Vec<NodeId> = self
            .view
            .members()
            .filter(|(_, s)| *s != PeerState::Down)
            .map(|(m, _)| m.id)
            .collect();
        members.push(self.me);
        members.sort();
        members.dedup();
        members
    }

    /// Its cache routing table.
    pub fn table(&self) -> Table {
        Table::new(0, self.live_members()).after_rejoins(self.rejoins)
    }

    /// Peers with a connection to this node.
    pub fn connections(&self) -> &BTreeSet<NodeId> {
        &self.conns
    }

    /// Handles one input at virtual instant `now` and returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let result = match input {
            Input::Packet { from, data } => match Packet::parse(data, from) {
                Ok(packet) => self.on_packet(&packet, now),
                Err(e) => {
                    debug!(error = %e, "SWIM packet refused");
                    Ok(())
                }
            },
            Input::Timer(timer) => self.foca.handle_timer(timer, &mut self.rt),
            Input::Connected(member) => {
                self.conns.insert(member.id);
                self.view.connected(&member.id);
                let known = self.foca.iter_members().any(|m| m.id().id == member.id);
                if known {
                    Ok(())
                } else {
                    self.foca.announce(member, &mut self.rt)
                }
            }
            Input::Closed { id, graceful } => {
                self.conns.remove(&id);
                if graceful {
                    let events = self.view.left(&id, now);
                    self.events += events.len() as u64;
                }
                Ok(())
            }
            Input::SyncIn { from, body } => {
                if self.syncs.try_take(from, now) {
                    let ours = self.states();
                    match encode_bulk(&ours) {
                        Ok(body) => self.out.push(Output::SyncReply {
                            to: from,
                            body: Bytes::from(body),
                        }),
                        Err(e) => debug!(error = %e, "sync reply not encoded"),
                    }
                    self.apply_sync(from, &body, now)
                } else {
                    trace!("full-state sync refused: too many");
                    Ok(())
                }
            }
            Input::SyncReply { from, body } => self.apply_sync(from, &body, now),
            Input::Tick => {
                if now >= self.next_sync {
                    self.next_sync = now + self.cfg.full_sync_interval;
                    self.start_sync();
                }
                if now >= self.next_rejoin {
                    self.next_rejoin = now + self.cfg.rejoin_interval;
                    self.reach_across(now);
                }
                self.forget(now);
                Ok(())
            }
            Input::Leave => {
                self.left = true;
                self.foca.leave_cluster(&mut self.rt)
            }
        };
        if let Err(e) = result {
            debug!(error = %e, "membership input rejected");
        }
        self.drain(now);
        std::mem::take(&mut self.out)
    }

    /// The actor's `on_packet`: the sender speaks for itself, its updates are sifted.
    fn on_packet(&mut self, packet: &Packet, now: Instant) -> Result<(), foca::Error> {
        let sender = packet.sender().clone();
        let mut census = self.census();
        if let Some(hearsay) = census.hearsay_above(&sender) {
            self.purge(hearsay)?;
            self.view.recant(&sender);
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
            Seat::Full => return Ok(()),
        }
        self.admission.heard_from(&sender, now);
        let sifted = self
            .admission
            .sift(&census, &packet.updates(), Some(sender.id), now);
        let data = packet.rebuild(&sifted.keep);
        self.foca.handle_data(&data, &mut self.rt)
    }

    /// A sync body from `from`, decoded and checked as a node does, applied as admission
    /// allows (the actor's `apply_hearsay`).
    fn apply_sync(&mut self, from: NodeId, body: &[u8], now: Instant) -> Result<(), foca::Error> {
        let theirs = match decode_sync(body) {
            Ok(t) => t,
            Err(e) => {
                debug!(error = %e, "sync refused");
                return Ok(());
            }
        };
        let census = self.census();
        let refs: Vec<&Member<MemberId>> = theirs.iter().collect();
        let sifted = self.admission.sift(&census, &refs, Some(from), now);
        let kept = theirs
            .into_iter()
            .zip(sifted.keep)
            .filter_map(|(m, keep)| keep.then_some(m));
        self.foca.apply_many(kept, false, &mut self.rt)
    }

    fn census(&self) -> Census {
        Census::new(self.foca.iter_membership_state())
    }

    fn purge(&mut self, held: MemberId) -> Result<(), foca::Error> {
        self.foca.apply_many(
            std::iter::once(Member::down(held.clone())),
            false,
            &mut self.rt,
        )?;
        self.foca
            .handle_timer(Timer::RemoveDown(held), &mut self.rt)
    }

    fn evict(&mut self, out: MemberId) -> Result<(), foca::Error> {
        self.purge(out.clone())?;
        let events = self.view.remove(&out.id);
        self.events += events.len() as u64;
        self.admission.forget(&out.id);
        Ok(())
    }

    fn states(&self) -> Vec<Member<MemberId>> {
        self.foca.iter_membership_state().cloned().collect()
    }

    /// The actor's `drain`: what foca asked for, then the view refreshed.
    fn drain(&mut self, now: Instant) {
        let states: Vec<(MemberId, PeerState)> = self
            .foca
            .iter_membership_state()
            .map(|m| (m.id().clone(), member_state(m.state())))
            .collect();
        while let Some((to, data)) = self.rt.to_send() {
            self.out.push(Output::Packet { to: to.id, data });
        }
        while let Some((after, timer)) = self.rt.to_schedule() {
            self.out.push(Output::Timer { after, timer });
        }
        while let Some(n) = self.rt.to_notify() {
            if let OwnedNotification::Rejoin(me) = n {
                self.rejoins += 1;
                trace!(
                    generation = me.generation,
                    "rejoined under a renewed identity"
                );
            }
        }
        if states.iter().any(|(m, _)| !self.admission.proved(&m.id)) {
            let held: BTreeSet<NodeId> = states.iter().map(|(m, _)| m.id).collect();
            for id in &self.conns {
                if held.contains(id) {
                    self.admission.connected(*id);
                }
            }
        }
        let states = states
            .into_iter()
            .filter(|(m, _)| self.admission.proved(&m.id));
        let events: Vec<Event> = self.view.observe(states, now);
        self.events += events.len() as u64;
    }

    /// The actor's `forget`.
    fn forget(&mut self, now: Instant) {
        let events = self.view.tick(now);
        self.events += events.len() as u64;
        self.view.forget(now, self.cfg.forget_after);
        let census = self.census();
        self.admission.retain(&census);
    }

    /// The actor's `reach_across`: announce to members held as down, re-dial the
    /// bootstrap addresses while alone.
    fn reach_across(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let live: BTreeSet<NodeId> = self.foca.iter_members().map(|m| m.id().id).collect();
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
            if let Err(e) = self.foca.announce(member, &mut self.rt) {
                debug!(error = %e, "announce to a down member");
            }
        }
        let alone = !live.iter().any(|id| self.admission.proved(id));
        for addr in self.bootstrap.due(alone, now, self.cfg.rejoin_interval) {
            self.out.push(Output::Dial(addr));
        }
    }

    /// The actor's `start_sync`: full states with a random live member that proved itself.
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
        match encode_bulk(&self.states()) {
            Ok(body) => self.out.push(Output::Sync {
                to: peer,
                body: Bytes::from(body),
            }),
            Err(e) => debug!(error = %e, "sync not encoded"),
        }
    }
}
