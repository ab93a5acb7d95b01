//! The state of a node's RESP front shared by its connections: the cache it serves, the
//! password, the limits, the buckets opened so far and the client budget.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::cache::bucket::Bucket;
use crate::cache::service::CacheService;
use crate::channel::service::ChannelService;
use crate::error::Result;
use crate::resp::limits::RespLimits;
use crate::resp::pubsub::Subscriptions;

/// How many Redis databases `SELECT` accepts (0..DATABASES), as Redis's default.
pub const DATABASES: u32 = 16;

/// The memmesh bucket Redis database `db` maps to (ADR 0021): `db0`, `db1`, ...
pub fn bucket_name(db: u32) -> String {
    format!("db{db}")
}

/// What the connections of one RESP listener share.
#[derive(Debug)]
pub struct Front {
    pub(crate) cache: Arc<CacheService>,
    pub(crate) channels: Arc<ChannelService>,
    pub(crate) subs: Subscriptions,
    password: Option<String>,
    pub(crate) limits: RespLimits,
    /// Whether `FLUSHDB`/`FLUSHALL` are served (`redis_allow_flush`).
    pub(crate) allow_flush: bool,
    /// By database number (a few at most: a small ordered map looks up faster than
    /// hashing the number on every command).
    buckets: Mutex<BTreeMap<u32, Arc<Bucket>>>,
    next_id: AtomicU64,
    clients: Mutex<HashMap<IpAddr, usize>>,
    connected: AtomicUsize,
    pub(crate) commands: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) addr: SocketAddr,
}

/// A connection counted against the budgets; uncounted when dropped.
#[derive(Debug)]
pub struct Admitted {
    front: Arc<Front>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut clients = self.front.clients();
        if let Some(n) = clients.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                clients.remove(&self.ip);
            }
        }
        self.front.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Front {
    /// The front of `cache`, listening on `addr`; `allow_flush` serves `FLUSHDB`.
    pub(crate) fn new(
        cache: Arc<CacheService>,
        channels: Arc<ChannelService>,
        password: Option<String>,
        limits: RespLimits,
        allow_flush: bool,
        addr: SocketAddr,
    ) -> Arc<Self> {
        Arc::new(Self {
            cache,
            channels,
            subs: Subscriptions::new(limits.max_output),
            password,
            limits,
            allow_flush,
            buckets: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            clients: Mutex::new(HashMap::new()),
            connected: AtomicUsize::new(0),
            commands: AtomicU64::new(0),
            started: Instant::now(),
            addr,
        })
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, or `None` if a budget is spent.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut clients = self.clients();
        let per_ip = clients.entry(ip).or_insert(0);
        if *per_ip >= self.limits.max_clients_per_ip
            || self.connected.load(Ordering::Relaxed) >= self.limits.max_clients
        {
            if *per_ip == 0 {
                clients.remove(&ip);
            }
            return None;
        }
        *per_ip += 1;
        self.connected.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            front: self.clone(),
            ip,
        })
    }

    /// Connections served now.
    pub(crate) fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// A fresh client id (`CLIENT ID`).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a password is set (clients must `AUTH` first).
    pub(crate) fn needs_auth(&self) -> bool {
        self.password.is_some()
    }

    /// Whether `given` is the password (compared in constant time).
    pub(crate) fn password_ok(&self, given: &[u8]) -> bool {
        match &self.password {
            Some(p) => blake3::hash(p.as_bytes()) == blake3::hash(given),
            None => false,
        }
    }

    /// The bucket of database `db`, opened (cluster-wide, default options unless it
    /// exists already) on first use.
    pub(crate) async fn bucket(&self, db: u32) -> Result<Arc<Bucket>> {
        if let Some(b) = self
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&db)
        {
            return Ok(b.clone());
        }
        let b = crate::cache::open(&self.cache, &bucket_name(db), None).await?;
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(db, b.clone());
        Ok(b)
    }
}
