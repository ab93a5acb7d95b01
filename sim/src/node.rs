//! One simulated node's membership: memmesh's own membership [`Engine`] (the very struct a
//! node's membership actor drives: foca with memmesh's identity, codec, broadcast handler
//! and configuration, admission, the [`View`], the rejoin and bootstrap schedules,
//! rate-limited full-state syncs), fed at virtual instants instead of QUIC streams and
//! tokio timers. This file only converts: it checks packets ([`Packet::parse`]) and decodes
//! syncs ([`decode_sync`]) as the node's membership handle does before the actor sees
//! them, keeps the node's connections for the engine ([`Peers`]), and turns the engine's
//! outputs into the simulator's.
//!
//! What a node does and this does not: free-quota adverts (no quota is given to the
//! engine), the connection pool's dial budget for SWIM packets to unconnected members (a
//! packet opens its connection when it arrives: every peer is [`Reach::Live`]), and the
//! per-peer packet queues (the simulator delivers every packet the network does not lose).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use foca::Timer;
use memmesh::cache::routing::Table;
use memmesh::identity::NodeId;
use memmesh::membership::codec::decode_sync;
use memmesh::membership::engine::{Engine, Output as Do, Peers, Reach, Start};
use memmesh::membership::packet::Packet;
use memmesh::membership::{MemberId, MembershipConfig, View};
use memmesh::wire::codec::encode_bulk;
use memmesh::PeerState;
use tracing::debug;

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

/// The node's connections, as its engine reads them.
struct Conns<'a>(&'a BTreeSet<NodeId>);

impl Peers for Conns<'_> {
    fn connected(&self) -> Vec<NodeId> {
        self.0.iter().copied().collect()
    }

    fn reach(&self, _id: &NodeId) -> Reach {
        // The simulator opens a connection with the first message; no dial budget.
        Reach::Live
    }

    fn learn(&self, _member: &MemberId) {}

    fn forget(&self, _id: &NodeId) {}

    fn live_at(&self, _addr: SocketAddr) -> bool {
        // A simulated member advertises the very address it is dialled at, which the
        // engine checks first.
        false
    }
}

/// A simulated node's membership state.
pub struct SimNode {
    engine: Engine,
    conns: BTreeSet<NodeId>,
    events: u64,
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
        let view = View::new(me.id, cfg.down_grace);
        let start = Start {
            me,
            config: cfg.clone(),
            bootstrap: bootstrap.to_vec(),
            seed,
            adverts: Default::default(),
        };
        Self {
            engine: Engine::new(start, view, now),
            conns: BTreeSet::new(),
            events: 0,
        }
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.engine.id()
    }

    /// Its current SWIM identity (the generation grows with each rejoin).
    pub fn identity(&self) -> &MemberId {
        self.engine.identity()
    }

    /// How many times it rejoined under a renewed identity.
    pub fn rejoins(&self) -> u64 {
        self.engine.rejoins()
    }

    /// How many membership events its view published.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Its view.
    pub fn view(&self) -> &View {
        self.engine.view()
    }

    /// The members its cache places data on: the view's live members and itself, sorted
    /// (as `cache::maintain::follow_membership` computes them).
    pub fn live_members(&self) -> Vec<NodeId> {
        let mut members: Vec<NodeId> = self
            .view()
            .members()
            .filter(|(_, s)| *s != PeerState::Down)
            .map(|(m, _)| m.id)
            .collect();
        members.push(self.id());
        members.sort();
        members.dedup();
        members
    }

    /// Its cache routing table.
    pub fn table(&self) -> Table {
        Table::new(0, self.live_members()).after_rejoins(self.rejoins())
    }

    /// Peers with a connection to this node.
    pub fn connections(&self) -> &BTreeSet<NodeId> {
        &self.conns
    }

    /// Handles one input at virtual instant `now` and returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let peers = Conns(&self.conns);
        match input {
            // Checked as the node's membership handle checks it before the actor.
            Input::Packet { from, data } => match Packet::parse(data, from) {
                Ok(packet) => self.engine.packet(&packet, now, &peers),
                Err(e) => debug!(error = %e, "SWIM packet refused"),
            },
            Input::Timer(timer) => self.engine.timer(timer, now, &peers),
            Input::Connected(member) => {
                self.conns.insert(member.id);
                self.engine.connected(member, now, &Conns(&self.conns));
            }
            Input::Closed { id, graceful } => {
                self.conns.remove(&id);
                self.engine.closed(id, graceful, now, &Conns(&self.conns));
            }
            Input::SyncIn { from, body } => match decode_sync(&body) {
                Ok(theirs) => match self.engine.sync_in(from, theirs, now, &peers) {
                    Ok(ours) => match encode_bulk(&ours) {
                        Ok(body) => out.push(Output::SyncReply {
                            to: from,
                            body: Bytes::from(body),
                        }),
                        Err(e) => debug!(error = %e, "sync reply not encoded"),
                    },
                    Err(e) => debug!(error = %e, "full-state sync refused"),
                },
                Err(e) => debug!(error = %e, "sync refused"),
            },
            Input::SyncReply { from, body } => match decode_sync(&body) {
                Ok(theirs) => self.engine.sync_reply(from, theirs, now, &peers),
                Err(e) => debug!(error = %e, "sync reply refused"),
            },
            Input::Tick => self.engine.tick(now, None, &peers),
            Input::Leave => self.engine.leave(now, &peers),
        }
        for output in self.engine.take_outputs() {
            match output {
                Do::Send { to, data } => out.push(Output::Packet { to: to.id, data }),
                Do::Timer { after, timer } => out.push(Output::Timer { after, timer }),
                Do::Sync { to, ours } => match encode_bulk(&ours) {
                    Ok(body) => out.push(Output::Sync {
                        to,
                        body: Bytes::from(body),
                    }),
                    Err(e) => debug!(error = %e, "sync not encoded"),
                },
                Do::Dial(addr) => out.push(Output::Dial(addr)),
                Do::Event(_) => self.events += 1,
                Do::Rejoined { .. } => {}
            }
        }
        out
    }
}
