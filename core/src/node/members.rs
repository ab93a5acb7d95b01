//! The membership view as the runtime layer hands it out: who is alive, what each member
//! advertises, and what the connection layer tells membership. The membership service
//! publishes it ([`Members::install`]); the connection code and the other services read
//! it, without naming the membership service.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::peer::PeerState;

/// What the membership service answers and is told (implemented by
/// `membership::Membership`).
pub trait Liveness: Send + Sync + 'static {
    /// The state of `id` in the view, if it is a member.
    fn state(&self, id: &NodeId) -> Option<PeerState>;
    /// Every member of the view with its state.
    fn states(&self) -> Vec<(NodeId, PeerState)>;
    /// The members of the view whose role is [`Role::Client`](crate::peer::Role::Client): they own no partitions
    /// and hold nothing for others (ADR 0024).
    fn clients(&self) -> Vec<NodeId>;
    /// The free quota `id` last advertised (this node's own included).
    fn free(&self, id: &NodeId) -> Option<u64>;
    /// The disk for others' files `id` last advertised (this node's own included).
    fn disk_free(&self, id: &NodeId) -> Option<u64>;
    /// How many times this node rejoined after the cluster had declared it down.
    fn rejoins(&self) -> u64;
    /// A fresh authenticated connection to `id`, called `name`, reachable at `addrs`.
    fn connected(&self, id: NodeId, name: String, addrs: Vec<SocketAddr>);
    /// A connection to `id` ended (`graceful`: the peer said goodbye).
    fn closed(&self, id: NodeId, graceful: bool);
}

/// The node's handle on the membership view: empty until the membership service is
/// installed, so every reader copes with "no view" (as before start completes).
pub struct Members {
    source: OnceLock<Arc<dyn Liveness>>,
    changed: watch::Sender<u64>,
    /// This node is draining (ADR 0025): it holds data for no one from now on.
    draining: AtomicBool,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("installed", &self.source.get().is_some())
            .field("changes", &*self.changed.borrow())
            .finish()
    }
}

impl Default for Members {
    fn default() -> Self {
        Self {
            source: OnceLock::new(),
            changed: watch::Sender::new(0),
            draining: AtomicBool::new(false),
        }
    }
}

impl Members {
    /// Publishes the membership service's view (once, at start).
    pub fn install(&self, source: Arc<dyn Liveness>) {
        let _ = self.source.set(source);
    }

    /// The view, if membership runs.
    pub fn get(&self) -> Option<&dyn Liveness> {
        self.source.get().map(|s| &**s)
    }

    /// The state of `id` in the view.
    pub fn state(&self, id: &NodeId) -> Option<PeerState> {
        self.get()?.state(id)
    }

    /// The members that are not down (this node may be among them), or `None` without a
    /// view.
    pub fn live(&self) -> Option<Vec<NodeId>> {
        let view = self.get()?;
        Some(
            view.states()
                .into_iter()
                .filter(|(_, s)| *s != PeerState::Down)
                .map(|(id, _)| id)
                .collect(),
        )
    }

    /// The live members that hold data for others ([`Role::Member`](crate::peer::Role::Member); this node may be
    /// among them), or `None` without a view: [`Members::live`] without the clients.
    pub fn live_holders(&self) -> Option<Vec<NodeId>> {
        let view = self.get()?;
        let clients: BTreeSet<NodeId> = view.clients().into_iter().collect();
        Some(
            view.states()
                .into_iter()
                .filter(|(id, s)| *s != PeerState::Down && !clients.contains(id))
                .map(|(id, _)| id)
                .collect(),
        )
    }

    /// Whether `id` is a member whose role is [`Role::Client`](crate::peer::Role::Client).
    pub fn is_client(&self, id: &NodeId) -> bool {
        self.get().is_some_and(|v| v.clients().contains(id))
    }

    /// How many times this node rejoined (see [`Liveness::rejoins`]).
    pub fn rejoins(&self) -> Option<u64> {
        Some(self.get()?.rejoins())
    }

    /// Tells membership about a fresh authenticated connection.
    pub fn connected(&self, id: NodeId, name: String, addrs: Vec<SocketAddr>) {
        if let Some(view) = self.get() {
            view.connected(id, name, addrs);
        }
    }

    /// Tells membership a connection ended.
    pub fn closed(&self, id: NodeId, graceful: bool) {
        if let Some(view) = self.get() {
            view.closed(id, graceful);
        }
    }

    /// Marks this node as draining (for good: a drained node is stopped, not undrained).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether this node is draining ([`Members::set_draining`]).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Wakes the services following membership (a rejoin: what they hold may be stale).
    pub fn notify_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A subscription to [`Members::notify_changed`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Whether a peer is connected but not yet admitted by membership (a `connect` or a
/// dial that has not finished joining): its role and adverts are not known yet.
pub fn joining(shared: &Shared) -> bool {
    let live = shared.members.live().unwrap_or_default();
    shared
        .pool
        .connected()
        .iter()
        .any(|id| *id != shared.id && !live.contains(id))
}

/// Waits, up to `grace`, while a connected peer is still being admitted ([`joining`]), so a
/// placement right after `connect` sees it as the member (or client) it is. Must run on the
/// node's runtime.
pub async fn settle_joining(shared: &Shared, grace: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while joining(shared) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Peers that may take part in a service: live members of the view and connected peers
/// not confirmed by membership yet, this node excluded, sorted.
pub fn live_peers(shared: &Shared) -> Vec<NodeId> {
    let mut out: BTreeSet<NodeId> = shared
        .members
        .live()
        .unwrap_or_default()
        .into_iter()
        .collect();
    out.extend(
        shared
            .pool
            .snapshot()
            .into_iter()
            .filter(|(_, _, _, rtt)| rtt.is_some())
            .map(|(id, ..)| id),
    );
    out.remove(&shared.id);
    out.into_iter().collect()
}
