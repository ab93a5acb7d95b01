//! Known peers across restarts: the I/O shell around
//! [`KnownPeers`](crate::discovery::known::KnownPeers) (ADR 0019).
//!
//! With a data dir and a nonzero `known_peers_ttl`, the node loads
//! `<data_dir>/known-peers` at start (a corrupt file, or one from a newer memmesh, is
//! logged and set aside, never a failed start), redials the peers it lists, records the
//! members membership admits (their id, name and the address their authenticated
//! connection actually reached, never what one member says about another), and saves the
//! table durably (temp file, fsync, rename, directory fsync): soon after it changes, now
//! and then as members stay up, and at shutdown.
//!
//! It also remembers the trusted outsiders (ADR 0028) this node has had a connection
//! with, at the address that connection reached, and keeps them connected: membership
//! never watches outsiders, so a lost one is redialled here (`node::outsiders`, on the
//! schedule of [`OutsiderRedial`]). Without a data dir but with `trusted_peers`, the
//! table lives in memory only, for that.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use crate::discovery::known::{KnownPeers, Recorded, FILE_NAME};
use crate::discovery::outsider_redial::OutsiderRedial;
use crate::error::Error;
use crate::identity::NodeId;
use crate::membership::member::dialable;
use crate::membership::{Event, Membership};
use crate::node::connect;
use crate::node::outsiders;
use crate::node::shared::Shared;
use crate::peer::PeerState;
use crate::service::Shutdown;

/// How often the live members are recorded (their last-seen time refreshed) and the
/// table expired.
const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// The shortest time between a change (a new peer or address) and its save.
const SAVE_DEBOUNCE: Duration = Duration::from_secs(1);
/// The longest time between saves of mere last-seen refreshes (shorter for short ttls).
const TOUCH_SAVE_EVERY: Duration = Duration::from_secs(10 * 60);
/// Rounds of redials of a remembered peer at start (backoff between them: about a
/// minute in all, so nodes of a cluster restarted one after the other find each other).
const REDIAL_ROUNDS: u32 = 16;
/// Remembered peers redialled at once.
const REDIAL_CONCURRENCY: usize = 8;

/// Milliseconds since the Unix epoch now (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What is unsaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dirty {
    Clean,
    Touched,
    Changed,
}

#[derive(Debug)]
struct State {
    table: KnownPeers,
    /// The file was read (or found absent): saving before would erase it.
    loaded: bool,
    dirty: Dirty,
    last_save: Instant,
}

/// The known-peers service of one node.
#[derive(Debug)]
pub(crate) struct KnownPeersService {
    shared: Arc<Shared>,
    /// `<data_dir>/known-peers`; `None` without a data dir (outsiders in memory only).
    path: Option<PathBuf>,
    state: Mutex<State>,
    /// Serialises writes of the file (the task's and the shutdown's).
    writing: Mutex<()>,
}

impl KnownPeersService {
    /// Starts remembering (and redials the peers remembered), or returns `None` when
    /// `known_peers_ttl` is zero (then a file left from before is removed) or the node
    /// has neither a data dir nor `trusted_peers`.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        membership: &Arc<Membership>,
    ) -> Option<Arc<KnownPeersService>> {
        let ttl = shared.config.known_peers_ttl;
        let path = shared.config.data_dir.as_deref().map(|d| d.join(FILE_NAME));
        if ttl.is_zero() {
            if let Some(path) = &path {
                match std::fs::remove_file(path) {
                    Ok(()) => info!("known_peers_ttl is 0: forgot the remembered peers"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        warn!(path = %path.display(), error = %e, "could not remove the known-peers file")
                    }
                }
            }
            return None;
        }
        if path.is_none() && shared.hello.trust.trusted_peers.is_empty() {
            return None;
        }
        let service = Arc::new(KnownPeersService {
            shared: shared.clone(),
            path,
            state: Mutex::new(State {
                table: KnownPeers::new(ttl),
                loaded: false,
                dirty: Dirty::Clean,
                last_save: Instant::now(),
            }),
            writing: Mutex::new(()),
        });
        // Subscribed before any dial, so no PeerUp is missed.
        let events = membership.subscribe();
        shared
            .runtime
            .handle()
            .spawn(service.clone().run(membership.clone(), events));
        Some(service)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the table, redials it, then records members and saves until shutdown.
    async fn run(
        self: Arc<Self>,
        membership: Arc<Membership>,
        mut events: tokio::sync::broadcast::Receiver<Event>,
    ) {
        let ttl = self.shared.config.known_peers_ttl;
        let table = match self.path.clone() {
            None => KnownPeers::new(ttl),
            Some(path) => match tokio::task::spawn_blocking(move || load(&path, ttl)).await {
                Ok(t) => t,
                Err(e) => {
                    warn!(error = %e, "loading the known peers panicked; starting with none");
                    KnownPeers::new(ttl)
                }
            },
        };
        let now = now_ms();
        let dials = {
            let mut s = self.lock();
            s.table = table;
            s.loaded = true;
            let expired = s.table.expire(now);
            if expired > 0 {
                debug!(
                    expired,
                    "known peers unseen for longer than known_peers_ttl forgotten"
                );
                s.dirty = Dirty::Changed;
            }
            // Outsiders are kept connected by the loop below, from its first tick.
            let trusted = &self.shared.hello.trust.trusted_peers;
            let mut dials = s.table.to_dial(&self.shared.id, now, dialable);
            dials.retain(|(id, _)| !trusted.contains(id));
            dials
        };
        if !dials.is_empty() {
            info!(
                peers = dials.len(),
                "redialling the peers known from before the restart"
            );
            let shared = self.shared.clone();
            self.shared
                .runtime
                .handle()
                .spawn(redial_all(shared, dials));
        }
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut redial = OutsiderRedial::new();
        let dialling = outsiders::Dialling::default();
        loop {
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return,
                ev = events.recv() => match ev {
                    Ok(Event::PeerUp { id, name, .. }) => self.observe(id, &name),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => self.refresh(&membership),
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    self.refresh(&membership);
                    self.keep_outsiders(&mut redial, &dialling);
                    self.save_if_due().await;
                }
            }
        }
    }

    /// Records `id` if it is connected: at the address its connection reached.
    fn observe(&self, id: NodeId, name: &str) {
        if id == self.shared.id {
            return;
        }
        let Some(conn) = self.shared.pool.live(&id) else {
            return; // recorded by a later refresh, once connected
        };
        let addr = conn.remote_address();
        let mut s = self.lock();
        let outcome = s.table.record(id, name, Some(addr), now_ms());
        mark(&mut s, outcome);
    }

    /// Records every live member that has an authenticated connection, and expires the
    /// table.
    fn refresh(&self, membership: &Membership) {
        let alive: Vec<(NodeId, String)> = membership.with_view(|v| {
            v.members()
                .filter(|(_, state)| *state == PeerState::Alive)
                .map(|(m, _)| (m.id, m.name.clone()))
                .collect()
        });
        let reached: Vec<(NodeId, String, SocketAddr)> = alive
            .into_iter()
            .filter(|(id, _)| *id != self.shared.id)
            .filter_map(|(id, name)| {
                let conn = self.shared.pool.live(&id)?;
                Some((id, name, conn.remote_address()))
            })
            .collect();
        // Trusted outsiders, at the address their authenticated connection reached.
        let trusted = &self.shared.hello.trust.trusted_peers;
        let outsiders = self
            .shared
            .pool
            .live_outsiders()
            .into_iter()
            .filter(|(id, _, _)| trusted.contains(id));
        let now = now_ms();
        let mut s = self.lock();
        for (id, name, addr) in reached.into_iter().chain(outsiders) {
            let outcome = s.table.record(id, &name, Some(addr), now);
            mark(&mut s, outcome);
        }
        if s.table.expire(now) > 0 {
            s.dirty = Dirty::Changed;
        }
    }

    /// Redials the remembered trusted outsiders whose connection is lost, when their
    /// schedule says so.
    fn keep_outsiders(&self, redial: &mut OutsiderRedial, dialling: &outsiders::Dialling) {
        let trusted = &self.shared.hello.trust.trusted_peers;
        if trusted.is_empty() {
            return;
        }
        let remembered = {
            let s = self.lock();
            s.table.to_dial(&self.shared.id, now_ms(), dialable)
        };
        let remembered: Vec<(NodeId, Vec<SocketAddr>)> = remembered
            .into_iter()
            .filter(|(id, _)| trusted.contains(id))
            .collect();
        let status = remembered
            .iter()
            .map(|(id, _)| (*id, self.shared.pool.live(id).is_some()));
        let due = redial.due(Instant::now(), status);
        for (id, addrs) in remembered {
            if due.contains(&id) {
                outsiders::dial(&self.shared, dialling, id, addrs);
            }
        }
    }

    /// Saves when a change has waited [`SAVE_DEBOUNCE`], or refreshes have waited long
    /// enough for the ttl in force.
    async fn save_if_due(self: &Arc<Self>) {
        let due = {
            let s = self.lock();
            let since = s.last_save.elapsed();
            let touch_every = TOUCH_SAVE_EVERY
                .min(self.shared.config.known_peers_ttl / 8)
                .max(SAVE_DEBOUNCE);
            match s.dirty {
                Dirty::Changed => since >= SAVE_DEBOUNCE,
                Dirty::Touched => since >= touch_every,
                Dirty::Clean => false,
            }
        };
        if due {
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.save()).await;
        }
    }

    /// Writes the table if anything is unsaved (blocking: file I/O and fsyncs).
    fn save(&self) {
        let Some(path) = &self.path else {
            return; // no data dir: the table lives in memory only
        };
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = {
            let mut s = self.lock();
            if !s.loaded || s.dirty == Dirty::Clean {
                return;
            }
            s.dirty = Dirty::Clean;
            s.last_save = Instant::now();
            s.table.encode()
        };
        match crate::durable::write_atomic(path, &bytes, true) {
            Ok(()) => debug!(path = %path.display(), "known peers saved"),
            Err(e) => {
                warn!(error = %e.chain(), "could not save the known peers");
                let mut s = self.lock();
                s.dirty = s.dirty.max(Dirty::Changed);
            }
        }
    }
}

/// Notes what a record changed.
fn mark(s: &mut State, outcome: Recorded) {
    let now = match outcome {
        Recorded::Changed => Dirty::Changed,
        Recorded::Touched => Dirty::Touched,
        Recorded::Ignored => Dirty::Clean,
    };
    s.dirty = s.dirty.max(now);
}

impl Shutdown for KnownPeersService {
    /// Saves what is unsaved (the last-seen times of the members up to now).
    fn stop(&self) {
        self.save();
    }
}

/// The table in the file at `path`: empty if there is none; a file that cannot be read
/// is logged and set aside (renamed `<name>.bad-<ms>`) so the node starts anyway.
fn load(path: &Path, ttl: Duration) -> KnownPeers {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return KnownPeers::new(ttl),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "could not read the known peers; starting with none");
            return KnownPeers::new(ttl);
        }
    };
    match KnownPeers::decode(&bytes, ttl) {
        Ok(t) => {
            debug!(peers = t.len(), "known peers loaded");
            t
        }
        Err(e) => {
            let mut aside = path.as_os_str().to_os_string();
            aside.push(format!(".bad-{}", now_ms()));
            let aside = PathBuf::from(aside);
            let moved = std::fs::rename(path, &aside);
            let e = Error::from(e);
            match moved {
                Ok(()) => warn!(
                    path = %path.display(), set_aside = %aside.display(), error = %e.chain(),
                    "the known-peers file cannot be read; set aside, starting with no known peers"
                ),
                Err(mv) => warn!(
                    path = %path.display(), error = %e.chain(), rename_error = %mv,
                    "the known-peers file cannot be read (nor set aside); starting with no known peers"
                ),
            }
            KnownPeers::new(ttl)
        }
    }
}

/// Redials the remembered peers, a few at a time.
async fn redial_all(shared: Arc<Shared>, dials: Vec<(NodeId, Vec<SocketAddr>)>) {
    futures::stream::iter(dials)
        .for_each_concurrent(REDIAL_CONCURRENCY, |(id, addrs)| {
            redial(shared.clone(), id, addrs)
        })
        .await;
}

/// Dials `id` (pinned: only that node may answer) at its remembered addresses, in a few
/// rounds with backoff, until it is connected, membership knows it (and takes over: it
/// learned of it from another member), or the node shuts down.
async fn redial(shared: Arc<Shared>, id: NodeId, addrs: Vec<SocketAddr>) {
    let mut delay = Duration::from_millis(200);
    for round in 1..=REDIAL_ROUNDS {
        for addr in &addrs {
            if shared.is_closed()
                || shared.pool.live(&id).is_some()
                || shared.members.state(&id).is_some()
            {
                return;
            }
            if let Some(why) = shared.hello.key.refusal(addr.ip()) {
                debug!(%addr, peer = %id.short(), "not redialling a known peer: {why}");
                continue;
            }
            match connect::dial(&shared, *addr, Some(id)).await {
                Ok(_) => {
                    info!(%addr, peer = %id.short(), "reconnected to a known peer");
                    return;
                }
                Err(e) => {
                    debug!(%addr, peer = %id.short(), round, error = %e.chain(), "known peer redial failed")
                }
            }
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    debug!(peer = %id.short(), "could not reach a known peer");
}
