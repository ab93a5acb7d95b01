//! What the HTTP routes share: the node's services they read, the token, the metrics, the
//! transfers in progress and the live feed; and the JSON views of the node's state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::{broadcast, Semaphore};

use crate::cache::service::CacheService;
use crate::docs::DocsService;
use crate::files::Files;
use crate::http::active::ActiveTransfers;
use crate::http::limits;
use crate::http::metrics::{Metrics, Snapshot};
use crate::membership::Membership;
use crate::node::shared::Shared;
use crate::peer::{PeerInfo, PeerState};

/// The services of a node the HTTP front reads (given by the `Node` at start).
pub(crate) struct Sources {
    /// The membership service.
    pub membership: Arc<Membership>,
    /// The cache service.
    pub cache: Arc<CacheService>,
    /// The documents service.
    pub docs: Arc<DocsService>,
    /// The files store.
    pub files: Files,
    /// Draining the node (ADR 0025).
    pub drain: Arc<crate::node::drain::DrainService>,
}

/// The state every route shares.
pub(crate) struct Api {
    pub shared: Arc<Shared>,
    pub src: Sources,
    /// The BLAKE3 hash of the bearer token, when one is set (compared in constant time).
    pub token: Option<blake3::Hash>,
    pub metrics: Metrics,
    pub active: Mutex<ActiveTransfers>,
    /// The live feed: one JSON event per item (`{"type": ..., ...}`).
    pub feed: broadcast::Sender<Arc<str>>,
    /// Feeds open now.
    pub feeds: AtomicUsize,
    /// Requests served at once.
    pub slots: Semaphore,
    pub started: Instant,
}

impl Api {
    /// The state of the front of `shared` reading `src`.
    pub fn new(shared: Arc<Shared>, src: Sources) -> Arc<Api> {
        let token = shared
            .config
            .http_token
            .as_deref()
            .map(|t| blake3::hash(t.as_bytes()));
        Arc::new(Api {
            shared,
            src,
            token,
            metrics: Metrics::new(),
            active: Mutex::new(ActiveTransfers::default()),
            feed: broadcast::channel(limits::FEED_BACKLOG).0,
            feeds: AtomicUsize::new(0),
            slots: Semaphore::new(limits::MAX_IN_FLIGHT),
            started: Instant::now(),
        })
    }

    /// Whether `given` (the bearer token a client sent) is the token; always true when
    /// no token is set. Compares hashes in constant time.
    pub fn admits(&self, given: Option<&str>) -> bool {
        match (&self.token, given) {
            (None, _) => true,
            (Some(want), Some(got)) => *want == blake3::hash(got.as_bytes()),
            (Some(_), None) => false,
        }
    }

    /// Sends `event` to every open feed (nobody listening is fine).
    pub fn publish(&self, event: Value) {
        let _ = self.feed.send(Arc::from(event.to_string()));
    }

    /// Every peer this node knows (as `Node::peers`).
    pub fn peers(&self) -> Vec<PeerInfo> {
        let m = &self.src.membership;
        let states: HashMap<_, PeerState> =
            m.with_view(|v| v.members().map(|(m, s)| (m.id, s)).collect());
        crate::node::peers::merge(self.shared.pool.snapshot(), &states, |id| {
            m.advert(id).map(|a| a.free)
        })
    }

    /// The leader of the current view.
    pub fn leader(&self) -> crate::identity::NodeId {
        self.src.membership.with_view(|v| v.leader())
    }

    /// The transfers in progress.
    pub fn transfers(&self) -> Vec<crate::transfer::Progress> {
        lock(&self.active).list(Instant::now())
    }

    /// The number of documents held (`None` without a data dir or if the store is
    /// unavailable).
    pub async fn documents(&self) -> Option<u64> {
        self.src.docs.count().await
    }

    /// The node's state for a scrape.
    pub async fn snapshot(&self) -> Snapshot {
        let mut members: HashMap<&'static str, u64> = HashMap::new();
        for s in ["alive", "suspect", "down"] {
            members.insert(s, 0);
        }
        for p in self.peers() {
            *members.entry(p.state.as_str()).or_default() += 1;
        }
        let mut members: Vec<_> = members.into_iter().collect();
        members.sort();
        let mut transfers: Vec<(&'static str, u64, f64)> =
            vec![("receive", 0, 0.0), ("send", 0, 0.0)];
        for p in self.transfers() {
            if let Some(t) = transfers.iter_mut().find(|t| t.0 == p.direction.as_str()) {
                t.1 += 1;
                t.2 += p.rate;
            }
        }
        let mut frames: Vec<_> = self
            .shared
            .services
            .frame_counts()
            .into_iter()
            .map(|(k, c)| (format!("{k:?}").to_lowercase(), c.requests, c.errors))
            .collect();
        frames.sort();
        let mut peers: Vec<_> = self
            .shared
            .pool
            .byte_counts()
            .into_iter()
            .map(|(id, tx, rx)| (id.to_string(), tx, rx))
            .collect();
        peers.sort();
        let files = self.src.files.stats().ok();
        Snapshot {
            node: (self.shared.id.to_string(), self.shared.hello.name.clone()),
            frames,
            peers,
            buckets: self.buckets(),
            members,
            transfers,
            memory: (self.shared.budget.limit(), self.shared.budget.used()),
            files: files.as_ref().map(|f| f.files),
            files_bytes: files.as_ref().map(|f| f.disk_used),
            documents: self.documents().await,
        }
    }

    /// Each cache bucket's counters on this node, by name.
    pub fn buckets(&self) -> Vec<(String, crate::cache::CacheStats)> {
        let mut out: Vec<_> = self
            .src
            .cache
            .cache
            .buckets()
            .into_iter()
            .map(|b| (b.name.clone(), b.stats()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `GET /storage/stats`.
    pub async fn storage(&self) -> Value {
        let buckets: Vec<Value> = self
            .buckets()
            .into_iter()
            .map(|(name, s)| bucket_json(&name, &s))
            .collect();
        let files = match self.src.files.stats() {
            Ok(f) => json!({
                "files": f.files,
                "disk_used": f.disk_used,
                "disk_quota": f.disk_quota,
            }),
            Err(_) => Value::Null,
        };
        json!({
            "blocks": {
                "memory_quota": self.shared.budget.limit(),
                "memory_used": self.shared.budget.used(),
            },
            "buckets": buckets,
            "files": files,
            "documents": self.documents().await,
        })
    }
}

/// One bucket's counters as JSON (`hit_rate` is null before any read).
pub(crate) fn bucket_json(name: &str, s: &crate::cache::CacheStats) -> Value {
    let reads = s.hits + s.misses;
    let rate = if reads == 0 {
        Value::Null
    } else {
        json!(s.hits as f64 / reads as f64)
    };
    json!({
        "name": name,
        "entries": s.entries,
        "bytes": s.bytes,
        "hits": s.hits,
        "misses": s.misses,
        "evictions": s.evicted,
        "expirations": s.expired,
        "hit_rate": rate,
    })
}

/// One peer as JSON.
pub(crate) fn peer_json(p: &PeerInfo) -> Value {
    json!({
        "id": p.id.to_string(),
        "name": p.name,
        "addrs": p.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "state": p.state.as_str(),
        "connected": p.connected,
        "rtt_ms": p.rtt.map(|d| d.as_secs_f64() * 1000.0),
        "quota_free": p.quota_free,
    })
}

/// One transfer in progress as JSON.
pub(crate) fn transfer_json(p: &crate::transfer::Progress) -> Value {
    json!({
        "peer": p.peer.to_string(),
        "name": p.name,
        "direction": p.direction.as_str(),
        "done": p.done,
        "total": p.total,
        "rate": p.rate,
    })
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts an open feed; `None` when [`limits::MAX_FEEDS`] are open.
pub(crate) fn open_feed(api: &Arc<Api>) -> Option<FeedSlot> {
    if api.feeds.fetch_add(1, Ordering::AcqRel) >= limits::MAX_FEEDS {
        api.feeds.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    Some(FeedSlot(api.clone()))
}

/// An open feed; frees its place when dropped.
pub(crate) struct FeedSlot(Arc<Api>);

impl Drop for FeedSlot {
    fn drop(&mut self) {
        self.0.feeds.fetch_sub(1, Ordering::AcqRel);
    }
}
