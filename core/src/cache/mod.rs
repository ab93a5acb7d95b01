//! The replicated cache: named buckets of key/value entries with TTL and LRU, spread over
//! the cluster.
//!
//! Keys map to one of [`partition::PARTITIONS`] partitions; each partition is owned by
//! `replicas` nodes chosen by rendezvous hashing over the live members. A write is
//! acknowledged once every current owner has applied it; versions are hybrid-logical-clock
//! stamps and the newest write wins (last-writer-wins). Reads prefer a local replica.
//! When members join or leave, partitions move in the background and their previous
//! owners keep answering until the move completes. See `docs/adr/0010-cache.md`.

pub(crate) mod batch;
pub(crate) mod bucket;
pub(crate) mod clear;
pub(crate) mod client;
pub(crate) mod coalesce;
pub mod error;
pub mod hlc;
pub(crate) mod join;
pub mod limits;
pub(crate) mod local_write;
pub(crate) mod lru;
pub(crate) mod maintain;
pub mod messages;
pub(crate) mod outbox;
pub(crate) mod outgoing;
pub mod partition;
pub(crate) mod partition_state;
pub(crate) mod plan;
pub(crate) mod pull;
pub(crate) mod pull_schedule;
pub(crate) mod readbox;
pub(crate) mod retry;
pub mod routing;
pub(crate) mod serve;
pub(crate) mod service;
pub(crate) mod state;
pub mod store;
pub(crate) mod time;
pub(crate) mod tombstones;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cache::service::CacheService;
use crate::error::Result;
use crate::node::guard::Guard;
use bucket::Bucket;

pub use error::CacheError;

pub use limits::{MAX_BUCKET_NAME_LEN, MAX_KEY_LEN};
/// How long after a change of the nodes that own partitions (a new
/// [`Cache::routing_epoch`]) every write also goes to the partitions' previous owners
/// still alive, so that a reader whose routing table lags behind still finds it (ADR
/// 0010): for that long a write costs up to twice the requests and the work.
pub use state::TRANSITION as WRITE_TRANSITION;

/// The options of a cache bucket. Every node uses the same options for a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheOptions {
    /// Default time to live of an entry (`None`: entries do not expire by default).
    pub ttl: Option<Duration>,
    /// Most entries each node keeps for this bucket; the least recently used go first.
    pub max_entries: Option<u64>,
    /// Most bytes (keys, values and per-entry overhead) each node keeps for this bucket.
    pub max_bytes: Option<u64>,
    /// How many nodes hold each entry (at least 1).
    pub replicas: u32,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            max_entries: None,
            max_bytes: None,
            replicas: 2,
        }
    }
}

impl CacheOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<()> {
        if self.replicas == 0 || self.replicas > 16 {
            return Err(CacheError::Replicas(self.replicas).into());
        }
        if self.ttl.is_some_and(|t| t.is_zero()) {
            return Err(CacheError::ZeroTtl.into());
        }
        if self.max_entries == Some(0) || self.max_bytes == Some(0) {
            return Err(CacheError::ZeroLimit.into());
        }
        Ok(())
    }
}

/// Counters of one bucket on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Live entries held here.
    pub entries: u64,
    /// Bytes held here (keys, values and per-entry overhead).
    pub bytes: u64,
    /// Reads answered with a value.
    pub hits: u64,
    /// Reads answered with no value.
    pub misses: u64,
    /// Entries removed because their TTL passed.
    pub expired: u64,
    /// Entries removed by LRU to respect `max_entries` / `max_bytes`.
    pub evicted: u64,
}

/// A handle to a cache bucket (`node.cache(name, options)`). Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    shared: Arc<CacheService>,
    bucket: Arc<Bucket>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.bucket.name)
            .field("options", &self.bucket.options)
            .finish()
    }
}

/// Opens (or defines) the bucket `name` on this node (see `Node::cache`).
pub(crate) async fn open(
    shared: &Arc<CacheService>,
    name: &str,
    options: Option<CacheOptions>,
) -> Result<Arc<Bucket>> {
    client::open(shared, name, options).await
}

/// The buckets this node knows.
pub(crate) fn known(shared: &CacheService) -> Vec<(String, CacheOptions)> {
    let mut out: Vec<_> = shared
        .cache
        .buckets()
        .into_iter()
        .map(|b| (b.name.clone(), b.options))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

macro_rules! on_node {
    ($self:ident, |$shared:ident, $bucket:ident| $body:expr) => {{
        let $shared = $self.shared.clone();
        let $bucket = $self.bucket.clone();
        $self.shared.run(async move { $body }).await
    }};
}

impl Cache {
    pub(crate) fn new(shared: Arc<CacheService>, bucket: Arc<Bucket>, guard: Arc<Guard>) -> Self {
        Self {
            shared,
            bucket,
            _guard: guard,
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.bucket.name
    }

    /// The bucket's options.
    pub fn options(&self) -> CacheOptions {
        self.bucket.options
    }

    /// Sets `key` to `value`, expiring after `ttl` (default: the bucket's TTL). Returns
    /// once every current owner of the key has it.
    pub async fn set(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let key = key.to_string();
        let value = value.into();
        on_node!(self, |s, b| client::set_many(
            &s,
            &b,
            vec![(key, value)],
            ttl
        )
        .await)
    }

    /// The value of `key`, or `None` if it is absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(answer) = self.try_get_local(key) {
            return Ok(answer);
        }
        let key = key.to_string();
        on_node!(self, |s, b| client::get(&s, &b, &key).await)
    }

    /// Answers a read from this node's own replica without any I/O when this node can
    /// answer authoritatively (it owns the key's partition and holds it fully);
    /// otherwise `None` (use [`Cache::get`]). Bindings use it to serve local hits on the
    /// caller's thread.
    pub fn try_get_local(&self, key: &str) -> Option<Option<Bytes>> {
        if self.shared.is_closed() {
            return None;
        }
        client::try_get_local(&self.shared, &self.bucket, key)
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        on_node!(self, |s, b| client::delete(&s, &b, &key).await)
    }

    /// Sets the time to live of an existing `key`; returns whether it existed.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = key.to_string();
        on_node!(self, |s, b| client::expire(&s, &b, &key, ttl).await)
    }

    /// The time `key` has left to live: `None` if it never expires; `NotFound` if it does
    /// not exist.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let key = key.to_string();
        on_node!(self, |s, b| client::ttl(&s, &b, &key).await)
    }

    /// The number of live entries in the bucket across the cluster (each counted once;
    /// approximate while partitions move).
    pub async fn len(&self) -> Result<u64> {
        on_node!(self, |s, b| client::len(&s, &b).await)
    }

    /// Adds `by` to the integer stored at `key` (ASCII decimal, as in Redis; an absent key
    /// counts as 0) and returns the new value. `InvalidInput` if the value is not an
    /// integer or the result overflows.
    pub async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        let key = key.to_string();
        on_node!(self, |s, b| client::incr(&s, &b, &key, by).await)
    }

    /// The values of `keys`, in order (`None` for absent keys), one round trip per owner.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let keys = keys.to_vec();
        on_node!(self, |s, b| client::get_many(&s, &b, keys).await)
    }

    /// Sets every `(key, value)` of `entries`, expiring after `ttl` (default: the
    /// bucket's), one round trip per owner. Returns once every owner has them all.
    pub async fn set_many(
        &self,
        entries: Vec<(String, Bytes)>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        on_node!(self, |s, b| client::set_many(&s, &b, entries, ttl).await)
    }

    /// This node's counters for the bucket.
    pub fn stats(&self) -> CacheStats {
        self.bucket.stats()
    }

    /// The nodes that own `key`'s partition in this node's routing table, primary first.
    /// Clients are never among them (ADR 0024).
    pub fn owners(&self, key: &str) -> Vec<crate::identity::NodeId> {
        let p = partition::partition_of(key);
        client::owners_now(&self.shared, &self.bucket, p)
    }

    /// The epoch of this node's routing table: it increases with every change of the
    /// nodes that own partitions, so while it stays the same no partition moves (a
    /// client joining or leaving leaves it as it is).
    pub fn routing_epoch(&self) -> u64 {
        self.shared.cache.table().epoch
    }
}
