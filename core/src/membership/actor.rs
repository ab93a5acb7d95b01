//! The membership actor: the I/O shell of the membership [`Engine`], one task per node.
//!
//! The engine (`engine.rs`, sans-I/O) makes every decision: foca (SWIM), admission, the
//! [`View`], healing splits, full-state syncs, the dial budget, free-quota adverts. The
//! actor feeds it what arrives (checked packets, timers, connections, syncs, its
//! [`TICK`], leaving) at `Instant::now()`, and carries out what it asks: QUIC calls for
//! packets and syncs, tokio sleeps for timers, bootstrap dials, events on the broadcast
//! channel, the rejoin counter the cache reads. It reads the connection pool for the
//! engine through [`Peers`]. Limits: [`crate::membership::limits`]; reasons: ADR 0008.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use foca::{Member, Timer};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, trace};

use crate::error::Result;
use crate::identity::NodeId;
use crate::membership::adverts::AdvertTable;
use crate::membership::engine::{Engine, FreeQuota, Output, Peers, Reach, Start, TICK};
use crate::membership::member::MemberId;
use crate::membership::packet::Packet;
use crate::membership::rate::Ticket;
use crate::membership::service::{send_packet, sync_with};
use crate::membership::view::{Event, View};
use crate::node::shared::Shared;
use crate::service::DiskFree;
use crate::transport::pool::Pool;

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
    /// Advertise another role from now on (draining), then answer.
    SetRole(crate::peer::Role, oneshot::Sender<()>),
    /// The addresses the bootstrap DNS names give now (ADR 0027).
    BootstrapNamed(Vec<std::net::SocketAddr>),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

/// The connection pool, as the engine reads it.
struct PoolPeers<'a>(&'a Pool);

impl Peers for PoolPeers<'_> {
    fn connected(&self) -> Vec<NodeId> {
        self.0.connected()
    }

    fn reach(&self, id: &NodeId) -> Reach {
        if self.0.live(id).is_some() {
            Reach::Live
        } else if self.0.is_dialling(id) {
            Reach::Dialling
        } else {
            Reach::Unconnected {
                addrs: self.0.addrs(id).len(),
            }
        }
    }

    fn learn(&self, member: &MemberId) {
        self.0
            .learn(&member.id, &member.name, &member.dialable_addrs());
    }

    fn forget(&self, id: &NodeId) {
        self.0.forget(id);
    }

    fn live_at(&self, addr: std::net::SocketAddr) -> bool {
        self.0.live_at(addr).is_some()
    }
}

/// The actor: drives the engine; one task per node.
pub(crate) struct Actor {
    shared: Arc<Shared>,
    engine: Engine<Arc<RwLock<View>>>,
    tx: mpsc::UnboundedSender<Input>,
    events: broadcast::Sender<Event>,
    /// Identity renewals after being declared down (shared with the handle).
    rejoins: Arc<AtomicU64>,
    /// How much disk this node accepts for others' files (lent by the files store).
    disk: Arc<OnceLock<Arc<dyn DiskFree>>>,
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
    /// What says how much disk this node accepts for others' files, once lent.
    pub disk: Arc<OnceLock<Arc<dyn DiskFree>>>,
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
            disk,
        } = setup;
        let me = MemberId::own(
            shared.id,
            generation,
            &shared.hello.name,
            &shared.hello.addrs,
        )
        .with_role(shared.config.role);
        let start = Start {
            me,
            config: shared.config.membership.clone(),
            bootstrap: shared.config.bootstrap.clone(),
            seed,
            adverts,
        };
        Actor {
            shared: shared.clone(),
            engine: Engine::new(start, view, Instant::now()),
            tx,
            events,
            rejoins,
            disk,
        }
    }

    /// Runs until the node shuts down or the handle goes away.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shared.cancel.cancelled() => break,
                input = rx.recv() => match input {
                    None => break,
                    Some(Input::Leave(done)) => {
                        self.engine.leave(Instant::now(), &PoolPeers(&self.shared.pool));
                        let sends = self.carry_out();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(
                                Duration::from_millis(500),
                                futures::future::join_all(sends),
                            )
                            .await;
                            let _ = done.send(());
                        });
                    }
                    Some(input) => {
                        self.handle(input);
                        self.carry_out();
                    }
                },
                _ = tick.tick() => {
                    let budget = &self.shared.budget;
                    let disk_free = self.disk.get().map_or(0, |d| d.disk_free());
                    let quota = FreeQuota { limit: budget.limit(), free: budget.free(), disk_free };
                    self.engine.tick(Instant::now(), Some(quota), &PoolPeers(&self.shared.pool));
                    self.carry_out();
                }
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        let peers = PoolPeers(&self.shared.pool);
        match input {
            Input::Packet(packet, _ticket) => self.engine.packet(&packet, now, &peers),
            Input::Timer(timer) => self.engine.timer(timer, now, &peers),
            Input::Connected(member) => self.engine.connected(member, now, &peers),
            Input::Closed { id, graceful } => self.engine.closed(id, graceful, now, &peers),
            Input::SyncIn {
                from,
                theirs,
                reply,
            } => {
                let answer = self.engine.sync_in(from, theirs, now, &peers);
                let _ = reply.send(answer.map_err(Into::into));
            }
            Input::SyncReply { from, theirs } => self.engine.sync_reply(from, theirs, now, &peers),
            Input::BootstrapNamed(addrs) => self.engine.set_bootstrap_named(addrs),
            Input::Leave(_) => {}
            Input::SetRole(role, done) => {
                self.engine.set_role(role, now, &peers);
                let _ = done.send(());
            }
        }
    }

    /// Carries out what the engine asked for. Returns the send tasks.
    fn carry_out(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut sends = Vec::new();
        for output in self.engine.take_outputs() {
            match output {
                Output::Send { to, data } => {
                    sends.push(tokio::spawn(send_packet(self.shared.clone(), to, data)));
                }
                Output::Timer { after, timer } => {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = tx.send(Input::Timer(timer));
                    });
                }
                Output::Sync { to, ours } => self.start_sync(to, ours),
                Output::Dial(addr) => {
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        match crate::node::connect::dial(&shared, addr, None).await {
                            Ok((id, _)) => {
                                debug!(%addr, peer = %id.short(), "bootstrap peer reached again")
                            }
                            Err(e) => {
                                trace!(%addr, error = %e, "bootstrap dial failed")
                            }
                        }
                    });
                }
                Output::Event(e) => {
                    debug!(event = ?e, "membership");
                    let _ = self.events.send(e);
                }
                Output::Rejoined { .. } => {
                    self.rejoins.fetch_add(1, Ordering::AcqRel);
                    // The cache answers from no replica alone until it has caught up.
                    self.shared.members.notify_changed();
                }
            }
        }
        sends
    }

    /// Exchanges full states with `peer`; its answer comes back as an input.
    fn start_sync(&self, peer: NodeId, ours: Vec<Member<MemberId>>) {
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
