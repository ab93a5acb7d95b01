//! The connection pool: one authenticated connection per peer, reused by every service,
//! plus the address book used to re-dial a peer after its connection is lost.
//!
//! This is bookkeeping only; dialling and serving live in `node::connect`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::identity::NodeId;
use crate::transport::duplicate::{keep, Held, Keep};
use crate::transport::handshake::{truncate, PeerHello, MAX_HELLO_ADDRS, MAX_NAME_LEN};
use crate::transport::trust::Trust;

/// Most addresses the pool keeps for one peer: those of its latest handshake (plus the
/// address we dialled), then what gossip adds, up to this bound.
pub const MAX_PEER_ADDRS: usize = MAX_HELLO_ADDRS + 1;

/// Most peers the pool remembers that are neither connected nor members membership told
/// it about (identities that connected once and left). Each connection from a fresh
/// identity leaves such an entry behind; without a bound, a member minting identities
/// grew the pool for ever (issue 12, same class as defect 2). Past this bound the oldest
/// are forgotten; members and connected peers never are.
pub const MAX_IDLE_STRANGERS: usize = 1024;

#[derive(Debug)]
struct Entry {
    conn: Option<quinn::Connection>,
    /// What the duplicate tie-break needs of `conn` (set with it).
    held: Option<Held>,
    name: String,
    addrs: Vec<SocketAddr>,
    dial: Arc<tokio::sync::Mutex<()>>,
    /// Membership named this peer (its entry is membership's to forget).
    member: bool,
    /// The trust level of its latest connection (ADR 0028).
    trust: Trust,
    /// When the entry last changed (a connection, a loss, gossip).
    touched: Instant,
}

impl Entry {
    fn new() -> Self {
        Entry {
            conn: None,
            held: None,
            name: String::new(),
            addrs: Vec::new(),
            dial: Arc::new(tokio::sync::Mutex::new(())),
            member: false,
            trust: Trust::Member,
            touched: Instant::now(),
        }
    }

    fn connected(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.close_reason().is_none())
    }

    /// Whether it is an outsider or a commons peer (not a member: no membership, gossip,
    /// cache, blocks, channels, files or transfers).
    fn outsider(&self) -> bool {
        !self.trust.is_member()
    }

    /// Whether the entry may be forgotten to bound the pool: not connected, not named by
    /// membership, and no dial under way or waiting for its lock.
    fn idle_stranger(&self) -> bool {
        !self.member && !self.connected() && Arc::strong_count(&self.dial) == 1
    }
}

/// Forgets the oldest idle strangers past [`MAX_IDLE_STRANGERS`].
fn trim_strangers(peers: &mut HashMap<NodeId, Entry>) {
    let mut idle: Vec<(Instant, NodeId)> = peers
        .iter()
        .filter(|(_, e)| e.idle_stranger())
        .map(|(id, e)| (e.touched, *id))
        .collect();
    if idle.len() <= MAX_IDLE_STRANGERS {
        return;
    }
    idle.sort_unstable();
    let excess = idle.len() - MAX_IDLE_STRANGERS;
    for (_, id) in idle.into_iter().take(excess) {
        peers.remove(&id);
    }
}

/// Peers by NodeId.
#[derive(Debug)]
pub struct Pool {
    peers: Mutex<HashMap<NodeId, Entry>>,
    /// Counts the connections registered, for those who act on a new one at once
    /// ([`Pool::registrations`]).
    registered: tokio::sync::watch::Sender<u64>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            peers: Mutex::default(),
            registered: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// Replaces unspecified advertised IPs (`0.0.0.0`, `::`) by the IP the peer was seen at,
/// keeps the observed address, and removes duplicates.
pub fn normalize_addrs(advertised: &[SocketAddr], observed: Option<SocketAddr>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in advertised {
        let mut a = *a;
        if a.ip().is_unspecified() {
            match observed {
                Some(o) => a.set_ip(o.ip()),
                None => continue,
            }
        }
        if a.port() != 0 && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// `first`, then the items of `then` not in it, at most `max` in all.
fn merge_bounded(first: Vec<SocketAddr>, then: Vec<SocketAddr>, max: usize) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(max);
    for a in first.into_iter().chain(then) {
        if out.len() >= max {
            break;
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Entry>> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live pooled connection to `id`, if any.
    pub fn live(&self, id: &NodeId) -> Option<quinn::Connection> {
        self.lock()
            .get(id)
            .and_then(|e| e.conn.clone())
            .filter(|c| c.close_reason().is_none())
    }

    /// Records a freshly authenticated connection. It becomes the pooled one, unless it
    /// duplicates the pooled one from a simultaneous dial and loses the tie-break both
    /// sides agree on (`transport::duplicate`; `window`: a handshake's time). Returns the
    /// connection to retire, if it is open: the replaced one, or this one.
    pub fn register(
        &self,
        hello: &PeerHello,
        conn: &quinn::Connection,
        dialled: Option<SocketAddr>,
        window: Duration,
    ) -> Option<quinn::Connection> {
        let observed = Some(dialled.unwrap_or_else(|| conn.remote_address()));
        let mut addrs = normalize_addrs(&hello.addrs, observed);
        if let Some(d) = dialled {
            if !addrs.contains(&d) {
                addrs.insert(0, d);
            }
        }
        addrs.truncate(MAX_PEER_ADDRS);
        let now = Instant::now();
        let newer = Held {
            boot: hello.boot,
            rank: hello.rank,
            since: now,
        };
        let mut peers = self.lock();
        let entry = peers.entry(hello.id).or_insert_with(Entry::new);
        entry.name = truncate(&hello.name, MAX_NAME_LEN).to_string();
        // The authenticated handshake says where the peer is now: replace, never
        // accumulate across reconnects.
        entry.addrs = addrs;
        entry.touched = now;
        let pooled = entry
            .conn
            .clone()
            .filter(|old| old.close_reason().is_none() && old.stable_id() != conn.stable_id());
        let retired = match (&pooled, entry.held) {
            (Some(_), Some(held)) if keep(&held, &newer, now, window) == Keep::Pooled => {
                Some(conn.clone())
            }
            _ => {
                entry.conn = Some(conn.clone());
                entry.held = Some(newer);
                entry.trust = hello.trust;
                pooled
            }
        };
        trim_strangers(&mut peers);
        drop(peers);
        self.registered.send_modify(|n| *n = n.wrapping_add(1));
        retired
    }

    /// A receiver that changes each time a connection is registered (a peer connected,
    /// reconnected, or came back at another trust level).
    pub fn registrations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.registered.subscribe()
    }

    /// The peer with a live connection that is known at `addr`, if any.
    pub fn live_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.lock()
            .iter()
            .find(|(_, e)| {
                e.addrs.contains(&addr)
                    && e.conn.as_ref().is_some_and(|c| c.close_reason().is_none())
            })
            .map(|(id, _)| *id)
    }

    /// Forgets `conn` as the connection to `id` (if it still is).
    pub fn lost(&self, id: &NodeId, conn: &quinn::Connection) -> bool {
        let mut peers = self.lock();
        match peers.get_mut(id) {
            Some(e) if e.conn.as_ref().map(|c| c.stable_id()) == Some(conn.stable_id()) => {
                e.conn = None;
                e.held = None;
                e.touched = Instant::now();
                trim_strangers(&mut peers);
                true
            }
            _ => false,
        }
    }

    /// Records what membership gossip says about `id` (name and addresses), so that it
    /// can be dialled later. Does not touch its connection. A connected peer keeps the
    /// addresses of its handshake first; otherwise the gossiped ones come first. Either
    /// way at most [`MAX_PEER_ADDRS`] are kept.
    pub fn learn(&self, id: &NodeId, name: &str, addrs: &[SocketAddr]) {
        let mut peers = self.lock();
        let entry = peers.entry(*id).or_insert_with(Entry::new);
        entry.member = true;
        entry.touched = Instant::now();
        if entry.name.is_empty() {
            entry.name = truncate(name, MAX_NAME_LEN).to_string();
        }
        let learned = normalize_addrs(addrs, None);
        let connected = entry
            .conn
            .as_ref()
            .is_some_and(|c| c.close_reason().is_none());
        let (first, then) = if connected {
            (std::mem::take(&mut entry.addrs), learned)
        } else {
            (learned, std::mem::take(&mut entry.addrs))
        };
        entry.addrs = merge_bounded(first, then, MAX_PEER_ADDRS);
    }

    /// Forgets a peer entirely (a long-dead member), unless it is connected: then it is no
    /// longer a member for the pool, and goes with the other idle strangers once its
    /// connection ends.
    pub fn forget(&self, id: &NodeId) {
        let mut peers = self.lock();
        match peers.get_mut(id) {
            Some(e) if e.connected() => e.member = false,
            Some(_) => {
                peers.remove(id);
            }
            None => {}
        }
    }

    /// Whether a dial to `id` is under way.
    pub fn is_dialling(&self, id: &NodeId) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|e| e.dial.try_lock().is_err())
    }

    /// Known addresses of `id` (empty if unknown).
    pub fn addrs(&self, id: &NodeId) -> Vec<SocketAddr> {
        self.lock()
            .get(id)
            .map(|e| e.addrs.clone())
            .unwrap_or_default()
    }

    /// Whether `id` is known at all.
    pub fn knows(&self, id: &NodeId) -> bool {
        self.lock().contains_key(id)
    }

    /// The lock that serialises dials to `id`.
    pub fn dial_lock(&self, id: &NodeId) -> Arc<tokio::sync::Mutex<()>> {
        let mut peers = self.lock();
        peers.entry(*id).or_insert_with(Entry::new).dial.clone()
    }

    /// Every member with a live connection (outsiders are not listed).
    pub fn connected(&self) -> Vec<NodeId> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.connected() && !e.outsider())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every trusted outsider (trust [`Trust::Outsider`], not commons peers) with a live
    /// connection: its id, name and the address that connection reached (ADR 0028: what
    /// the known-peers table remembers of outsiders).
    pub fn live_outsiders(&self) -> Vec<(NodeId, String, SocketAddr)> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.trust == Trust::Outsider)
            .filter_map(|(id, e)| {
                let conn = e.conn.as_ref().filter(|c| c.close_reason().is_none())?;
                Some((*id, e.name.clone(), conn.remote_address()))
            })
            .collect()
    }

    /// Every peer with a live connection, members and outsiders, with its trust level
    /// and the connection's stable id (what the documents service offers documents to;
    /// a new id means the peer reconnected, however briefly it was away).
    pub fn connected_trust(&self) -> Vec<(NodeId, (Trust, usize))> {
        self.lock()
            .iter()
            .filter_map(|(id, e)| {
                let conn = e.conn.as_ref().filter(|c| c.close_reason().is_none())?;
                Some((*id, (e.trust, conn.stable_id())))
            })
            .collect()
    }

    /// A snapshot of every known member: id, name, addresses, and the RTT of a live
    /// connection (`None` when not connected). Outsiders are not listed.
    pub fn snapshot(&self) -> Vec<(NodeId, String, Vec<SocketAddr>, Option<std::time::Duration>)> {
        self.lock()
            .iter()
            .filter(|(_, e)| !e.outsider())
            .map(|(id, e)| {
                let rtt = e
                    .conn
                    .as_ref()
                    .filter(|c| c.close_reason().is_none())
                    .map(|c| c.rtt());
                (*id, e.name.clone(), e.addrs.clone(), rtt)
            })
            .collect()
    }

    /// Bytes sent and received (UDP payloads) on each open connection since it opened, by
    /// peer (the HTTP API's `/metrics`).
    pub fn byte_counts(&self) -> Vec<(NodeId, u64, u64)> {
        self.lock()
            .iter()
            .filter_map(|(id, e)| {
                let s = e.conn.as_ref()?.stats();
                Some((*id, s.udp_tx.bytes, s.udp_rx.bytes))
            })
            .collect()
    }

    /// Drops every connection (used at shutdown, after the endpoint is closed).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_take_the_observed_ip() {
        let adv: Vec<SocketAddr> = vec![
            "0.0.0.0:7400".parse().unwrap(),
            "10.1.2.3:7400".parse().unwrap(),
        ];
        let got = normalize_addrs(&adv, Some("192.168.1.9:5555".parse().unwrap()));
        assert_eq!(
            got,
            vec![
                "192.168.1.9:7400".parse().unwrap(),
                "10.1.2.3:7400".parse().unwrap()
            ]
        );
        let none = normalize_addrs(&adv, None);
        assert_eq!(none, vec!["10.1.2.3:7400".parse::<SocketAddr>().unwrap()]);
        let dup = normalize_addrs(
            &["1.2.3.4:1".parse().unwrap(), "1.2.3.4:1".parse().unwrap()],
            None,
        );
        assert_eq!(dup.len(), 1);
    }

    fn id(n: u32) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        NodeId::from_bytes(bytes)
    }

    /// Same class as issue 12's defect 2: every identity that connected once left an entry
    /// behind for good (only membership forgot entries, and only of its members), so a
    /// member minting identities grew the pool without bound. Idle strangers are bounded;
    /// members, connected peers and peers being dialled are kept.
    #[test]
    fn identities_that_connected_once_do_not_grow_the_pool_without_bound() {
        let pool = Pool::default();
        let members: Vec<NodeId> = (0..100).map(|i| id(1_000_000 + i)).collect();
        for m in &members {
            pool.learn(m, "member", &[SocketAddr::from(([10, 0, 0, 1], 7000))]);
        }
        let dialling = id(2_000_000);
        let held = pool.dial_lock(&dialling);
        let t0 = Instant::now();
        {
            let mut peers = pool.lock();
            for i in 0..5_000u32 {
                // What `lost` leaves of a connection from a fresh identity.
                let mut e = Entry::new();
                e.touched = t0 + std::time::Duration::from_millis(u64::from(i));
                peers.insert(id(i), e);
                trim_strangers(&mut peers);
            }
        }
        let peers = pool.lock();
        let strangers = peers.values().filter(|e| e.idle_stranger()).count();
        assert_eq!(strangers, MAX_IDLE_STRANGERS);
        assert_eq!(peers.len(), MAX_IDLE_STRANGERS + members.len() + 1);
        // The newest strangers are the ones kept; members and the dial in progress too.
        assert!(peers.contains_key(&id(4_999)) && !peers.contains_key(&id(0)));
        assert!(members.iter().all(|m| peers.contains_key(m)));
        assert!(peers.contains_key(&dialling));
        drop(peers);
        drop(held);
        // A member membership forgets is a stranger from then on.
        pool.forget(&members[0]);
        let peers = pool.lock();
        assert!(!peers.contains_key(&members[0]));
    }

    #[test]
    fn gossip_never_grows_a_peer_past_the_bound() {
        let pool = Pool::default();
        let id = crate::identity::Keypair::generate().unwrap().node_id();
        for round in 0..10u16 {
            let addrs: Vec<SocketAddr> = (1..=40u16)
                .map(|p| SocketAddr::from(([10, 0, 0, 1], round * 100 + p)))
                .collect();
            pool.learn(&id, &"n".repeat(1000), &addrs);
            assert!(pool.addrs(&id).len() <= MAX_PEER_ADDRS);
        }
        // Not connected: the freshest gossip comes first.
        assert_eq!(pool.addrs(&id)[0], SocketAddr::from(([10, 0, 0, 1], 901)));
        assert!(pool.snapshot()[0].1.len() <= MAX_NAME_LEN);
    }
}
