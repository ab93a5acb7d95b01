//! The simulation: nodes ([`SimNode`]) on virtual time, an in-memory [`Network`], and
//! the faults a test injects (joins, leaves, crashes, restarts, splits, loss). One seed
//! drives every random choice, so the same seed replays the same run.
//!
//! Connections are modelled as a node sees them: the first message between two nodes (or
//! a dial) opens a connection, which reports `Connected` to both sides; a crash or a split
//! ends the connections it cuts (no goodbye), a leave says goodbye on each of them.
//! SWIM packets and syncs are lost with their link's loss probability (a memmesh node
//! sends them as QUIC calls, so this is the harsher model: a call that failed), handshakes
//! and goodbyes only by splits.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use foca::Timer;
use memmesh::identity::NodeId;
use memmesh::membership::{MemberId, MembershipConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::net::{Link, Network};
use crate::node::{Input, Output, SimNode};
use crate::queue::{Clock, Queue};

/// How often each node's membership engine ticks (as the membership actor does).
pub use memmesh::membership::engine::TICK;
/// Where simulated generations start (a plausible "milliseconds since the epoch", as a
/// node's first generation is).
const GENERATION_BASE: u64 = 1_700_000_000_000;
/// A restarted node's generation is above its last one by at least this much
/// (`RENEWAL_MARGIN` in `core/src/membership/member.rs`: renewals made while it ran).
const RENEWAL_MARGIN: u64 = 1 << 20;

/// How a simulation is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed of every random choice.
    pub seed: u64,
    /// The membership timings every node runs with (the node's defaults unless changed).
    pub membership: MembershipConfig,
    /// How every link behaves unless set otherwise.
    pub link: Link,
}

impl SimConfig {
    /// Default timings and a LAN, driven by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            membership: MembershipConfig::default(),
            link: Link::default(),
        }
    }
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handled.
    pub events: u64,
    /// SWIM packets and sync messages sent.
    pub sent: u64,
    /// Of those, lost (link loss, split, or a receiver gone).
    pub lost: u64,
    /// Connections opened.
    pub connections: u64,
}

#[derive(Debug)]
enum Msg {
    Packet(Bytes),
    Sync(Bytes),
    SyncReply(Bytes),
    Goodbye,
}

enum Ev {
    Deliver {
        from: usize,
        to: usize,
        life: u64,
        msg: Msg,
    },
    Connect {
        a: usize,
        a_life: u64,
        b: usize,
        b_life: u64,
    },
    Timer {
        node: usize,
        life: u64,
        timer: Timer<MemberId>,
    },
    Tick {
        node: usize,
        life: u64,
    },
}

struct Slot {
    id: NodeId,
    addr: SocketAddr,
    /// Incremented at every start: events for an earlier life are void.
    life: u64,
    generation: u64,
    node: Option<SimNode>,
}

/// A deterministic simulation of memmesh membership.
pub struct Sim {
    cfg: SimConfig,
    clock: Clock,
    queue: Queue<Ev>,
    net: Network,
    rng: StdRng,
    slots: Vec<Slot>,
    by_id: BTreeMap<NodeId, usize>,
    by_addr: BTreeMap<SocketAddr, usize>,
    stats: Stats,
    trace: u64,
}

/// FNV-1a step over `bytes`, for the run's trace digest.
fn fold(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Sim {
    /// An empty simulation.
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            net: Network::new(cfg.link),
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            clock: Clock::new(),
            queue: Queue::new(),
            slots: Vec::new(),
            by_id: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            stats: Stats::default(),
            trace: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The network, to set links.
    pub fn net_mut(&mut self) -> &mut Network {
        &mut self.net
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// A digest of everything that happened so far (each event, its time and the bytes
    /// of each message): two runs with the same digest ran alike.
    pub fn trace_digest(&self) -> u64 {
        self.trace
    }

    /// How many nodes were added (started or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no node was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The id of node `i`.
    pub fn id(&self, i: usize) -> NodeId {
        self.slots[i].id
    }

    /// Node `i`, if it runs.
    pub fn node(&self, i: usize) -> Option<&SimNode> {
        self.slots.get(i).and_then(|s| s.node.as_ref())
    }

    /// The nodes that run.
    pub fn live(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].node.is_some())
            .collect()
    }

    /// The ids of the nodes that run, sorted.
    pub fn live_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.live().into_iter().map(|i| self.slots[i].id).collect();
        ids.sort();
        ids
    }

    /// Adds a node (with a random id) without starting it; returns its index.
    pub fn add(&mut self) -> usize {
        let i = self.slots.len();
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes[..]);
        let id = NodeId::from_bytes(bytes);
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let [_, a, b, c] = n.to_be_bytes();
        let addr = SocketAddr::from((Ipv4Addr::new(10, a, b, c), 7400));
        self.slots.push(Slot {
            id,
            addr,
            life: 0,
            generation: 0,
            node: None,
        });
        self.by_id.insert(id, i);
        self.by_addr.insert(addr, i);
        i
    }

    /// Starts node `i` (again, after a crash or a leave: same id, a higher generation),
    /// dialling `via` (its bootstrap address) if given. A node already running is left as
    /// it is.
    pub fn start(&mut self, i: usize, via: Option<usize>) {
        if self.slots[i].node.is_some() {
            return;
        }
        let now = self.clock.now();
        let ms = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let slot = &mut self.slots[i];
        slot.life += 1;
        slot.generation = if slot.generation == 0 {
            GENERATION_BASE + ms
        } else {
            (GENERATION_BASE + ms).max(slot.generation + RENEWAL_MARGIN)
        };
        let me = MemberId::own(slot.id, slot.generation, &format!("n{i}"), &[slot.addr]);
        let bootstrap: Vec<String> = via
            .map(|v| vec![self.slots[v].addr.to_string()])
            .unwrap_or_default();
        let seed = self.rng.random::<u64>();
        self.slots[i].node = Some(SimNode::new(
            me,
            &self.cfg.membership,
            &bootstrap,
            seed,
            now,
        ));
        let life = self.slots[i].life;
        // The actor's interval starts at once; nodes start at different moments in life,
        // so each gets its own phase.
        let phase = Duration::from_micros(self.rng.random_range(0..100_000));
        self.queue
            .push(self.clock.elapsed() + phase, Ev::Tick { node: i, life });
        if let Some(v) = via {
            self.dial(i, v);
        }
    }

    /// Adds and starts a node joining through `via`; returns its index.
    pub fn join(&mut self, via: Option<usize>) -> usize {
        let i = self.add();
        self.start(i, via);
        i
    }

    /// Node `i` crashes: it stops at once, its connections end without a goodbye, and
    /// whatever was in flight to it is lost.
    pub fn crash(&mut self, i: usize) {
        let Some(node) = self.slots[i].node.take() else {
            return;
        };
        let me = self.slots[i].id;
        for peer in node.connections().clone() {
            self.close(peer, me, false);
        }
        self.mix(b"crash", i);
    }

    /// Node `i` leaves: SWIM's leave, then a goodbye on each of its connections, then it
    /// stops.
    pub fn leave(&mut self, i: usize) {
        if self.slots[i].node.is_none() {
            return;
        }
        self.feed(i, Input::Leave);
        let Some(node) = self.slots[i].node.take() else {
            return;
        };
        for peer in node.connections().clone() {
            if let Some(&j) = self.by_id.get(&peer) {
                let life = self.slots[j].life;
                match self.net.handshake(i, j, &mut self.rng) {
                    Some(rtt) => self.queue.push(
                        self.clock.elapsed() + rtt / 2,
                        Ev::Deliver {
                            from: i,
                            to: j,
                            life,
                            msg: Msg::Goodbye,
                        },
                    ),
                    None => self.close(peer, self.slots[i].id, false),
                }
            }
        }
        self.mix(b"leave", i);
    }

    /// Splits the network: `sides[i]` is node `i`'s side (nodes beyond the list are on
    /// side 0). Connections across the split end (without a goodbye).
    pub fn split(&mut self, sides: Vec<u32>) {
        self.net.split(sides);
        for i in 0..self.slots.len() {
            let Some(node) = &self.slots[i].node else {
                continue;
            };
            let cut: Vec<NodeId> = node
                .connections()
                .iter()
                .copied()
                .filter(|p| self.by_id.get(p).is_some_and(|&j| self.net.separated(i, j)))
                .collect();
            let me = self.slots[i].id;
            for p in cut {
                self.close(me, p, false);
            }
        }
        self.mix(b"split", 0);
    }

    /// Heals the split.
    pub fn heal(&mut self) {
        self.net.heal();
        self.mix(b"heal", 0);
    }

    /// Sets the loss probability of every link (keeping their delays).
    pub fn set_loss(&mut self, loss: f64) {
        let mut link = self.cfg.link;
        link.loss = loss;
        self.cfg.link = link;
        self.net.set_default(link);
    }

    /// Runs until `until` (virtual time since the start).
    pub fn run_until(&mut self, until: Duration) {
        while let Some(at) = self.queue.peek_time() {
            if at > until {
                break;
            }
            let Some((at, ev)) = self.queue.pop() else {
                break;
            };
            self.clock.advance_to(at);
            self.step(ev);
        }
        self.clock.advance_to(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.clock.elapsed() + d;
        self.run_until(until);
    }

    /// Runs until `done` holds (checked every `every` of virtual time) or `limit` has
    /// passed; returns how long it took, `None` if it never held.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        every: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.clock.elapsed();
        loop {
            if done(self) {
                return Some(self.clock.elapsed() - start);
            }
            if self.clock.elapsed() - start >= limit {
                return None;
            }
            self.run_for(every);
        }
    }

    /// Whether every running node sees exactly the running nodes as live members (so
    /// their cache routing tables are equal).
    pub fn converged(&self) -> bool {
        let live = self.live_ids();
        self.slots
            .iter()
            .filter_map(|s| s.node.as_ref())
            .all(|n| n.live_members() == live)
    }

    fn mix(&mut self, tag: &[u8], node: usize) {
        let at = self.clock.elapsed().as_nanos().to_le_bytes();
        self.trace = fold(self.trace, &at);
        self.trace = fold(self.trace, tag);
        self.trace = fold(self.trace, &(node as u64).to_le_bytes());
    }

    fn step(&mut self, ev: Ev) {
        self.stats.events += 1;
        match ev {
            Ev::Tick { node, life } => {
                if self.alive(node, life) {
                    self.feed(node, Input::Tick);
                    self.queue
                        .push(self.clock.elapsed() + TICK, Ev::Tick { node, life });
                }
            }
            Ev::Timer { node, life, timer } => {
                if self.alive(node, life) {
                    self.mix(b"timer", node);
                    self.feed(node, Input::Timer(timer));
                }
            }
            Ev::Connect {
                a,
                a_life,
                b,
                b_life,
            } => {
                if self.alive(a, a_life) && self.alive(b, b_life) {
                    self.connect(a, b);
                }
            }
            Ev::Deliver {
                from,
                to,
                life,
                msg,
            } => self.deliver(from, to, life, msg),
        }
    }

    fn deliver(&mut self, from: usize, to: usize, life: u64, msg: Msg) {
        if !self.alive(to, life) {
            if !matches!(msg, Msg::Goodbye) {
                self.stats.lost += 1;
            }
            return;
        }
        let from_id = self.slots[from].id;
        match msg {
            Msg::Goodbye => {
                self.mix(b"goodbye", to);
                self.close(self.slots[to].id, from_id, true);
            }
            msg => {
                // The sender's connection (a sender gone since opens none).
                if self.slots[from].node.is_some() {
                    self.connect(from, to);
                }
                let (tag, input) = match msg {
                    Msg::Packet(data) => {
                        self.trace = fold(self.trace, &data);
                        (
                            &b"packet"[..],
                            Input::Packet {
                                from: from_id,
                                data,
                            },
                        )
                    }
                    Msg::Sync(body) => (
                        &b"sync"[..],
                        Input::SyncIn {
                            from: from_id,
                            body,
                        },
                    ),
                    Msg::SyncReply(body) => (
                        &b"sync-reply"[..],
                        Input::SyncReply {
                            from: from_id,
                            body,
                        },
                    ),
                    Msg::Goodbye => return,
                };
                self.mix(tag, to);
                self.feed(to, input);
            }
        }
    }

    fn alive(&self, i: usize, life: u64) -> bool {
        self.slots
            .get(i)
            .is_some_and(|s| s.node.is_some() && s.life == life)
    }

    /// Opens the connection between `a` and `b` if there is none: each side learns of it.
    fn connect(&mut self, a: usize, b: usize) {
        let (ida, idb) = (self.slots[a].id, self.slots[b].id);
        let mut opened = false;
        for (x, peer) in [(a, idb), (b, ida)] {
            let Some(node) = &self.slots[x].node else {
                continue;
            };
            if node.connections().contains(&peer) {
                continue;
            }
            opened = true;
            let y = if x == a { b } else { a };
            // What the handshake tells: id, name and addresses, generation 0.
            let member = MemberId::own(peer, 0, &format!("n{y}"), &[self.slots[y].addr]);
            self.feed(x, Input::Connected(member));
        }
        if opened {
            self.stats.connections += 1;
            self.mix(b"connect", a);
        }
    }

    /// Node `id_at` learns its connection to `peer` ended.
    fn close(&mut self, id_at: NodeId, peer: NodeId, graceful: bool) {
        if let Some(&i) = self.by_id.get(&id_at) {
            if self.slots[i].node.is_some() {
                self.feed(i, Input::Closed { id: peer, graceful });
            }
        }
    }

    /// Dials from `i` to `j`: the handshake completes unless a split is in the way.
    fn dial(&mut self, i: usize, j: usize) {
        if let Some(rtt) = self.net.handshake(i, j, &mut self.rng) {
            let (a_life, b_life) = (self.slots[i].life, self.slots[j].life);
            self.queue.push(
                self.clock.elapsed() + rtt,
                Ev::Connect {
                    a: i,
                    a_life,
                    b: j,
                    b_life,
                },
            );
        }
    }

    /// Hands `input` to node `i` and carries out what it asks.
    fn feed(&mut self, i: usize, input: Input) {
        let now = self.clock.now();
        let Some(node) = self.slots[i].node.as_mut() else {
            return;
        };
        let outputs = node.handle(input, now);
        let life = self.slots[i].life;
        for out in outputs {
            match out {
                Output::Timer { after, timer } => self.queue.push(
                    self.clock.elapsed() + after,
                    Ev::Timer {
                        node: i,
                        life,
                        timer,
                    },
                ),
                Output::Packet { to, data } => self.send(i, to, Msg::Packet(data)),
                Output::Sync { to, body } => self.send(i, to, Msg::Sync(body)),
                Output::SyncReply { to, body } => self.send(i, to, Msg::SyncReply(body)),
                Output::Dial(addr) => {
                    if let Some(&j) = self.by_addr.get(&addr) {
                        if self.slots[j].node.is_some() {
                            self.dial(i, j);
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, from: usize, to: NodeId, msg: Msg) {
        self.stats.sent += 1;
        let Some(&j) = self.by_id.get(&to) else {
            self.stats.lost += 1;
            return;
        };
        match self.net.route(from, j, &mut self.rng) {
            Some(delay) => {
                let life = self.slots[j].life;
                self.queue.push(
                    self.clock.elapsed() + delay,
                    Ev::Deliver {
                        from,
                        to: j,
                        life,
                        msg,
                    },
                );
            }
            None => self.stats.lost += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_agree_after_a_leave_a_crash_and_a_restart() {
        let mut sim = Sim::new(SimConfig::new(1));
        let first = sim.join(None);
        for _ in 0..5 {
            sim.join(Some(first));
        }
        let limit = Duration::from_secs(60);
        let every = Duration::from_millis(100);
        assert!(sim.run_until_true(limit, every, Sim::converged).is_some());
        sim.leave(2);
        sim.crash(3);
        assert_eq!(sim.live().len(), 4);
        assert!(sim.run_until_true(limit, every, Sim::converged).is_some());
        sim.start(3, Some(first));
        assert!(sim.run_until_true(limit, every, Sim::converged).is_some());
        assert_eq!(sim.live_ids().len(), 5);
        let tables: Vec<u64> = sim
            .live()
            .into_iter()
            .filter_map(|i| sim.node(i).map(|n| n.table().digest))
            .collect();
        assert!(tables.windows(2).all(|w| w[0] == w[1]));
        assert!(sim.stats().sent > 0 && sim.trace_digest() != 0);
    }
}
