//! The replicated cache: named buckets of key/value entries (string keys, byte values)
//! with TTL and LRU, spread over the cluster. Durations are whole milliseconds.

use std::time::Duration;

use crate::error::MemmeshError;

/// The options of a cache bucket; every node uses the same options for a bucket
/// (Swift: `CacheOptions(ttlMs: 60_000, replicas: 2)`). The record's defaults are the
/// core's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CacheOptions {
    /// Default time to live of an entry in milliseconds (`None`: no expiry by default).
    #[uniffi(default = None)]
    pub ttl_ms: Option<u64>,
    /// Most entries each node keeps for this bucket; the least recently used go first.
    #[uniffi(default = None)]
    pub max_entries: Option<u64>,
    /// Most bytes (keys, values and per-entry overhead) each node keeps for this bucket.
    #[uniffi(default = None)]
    pub max_bytes: Option<u64>,
    /// How many nodes hold each entry (1..=16).
    #[uniffi(default = 2)]
    pub replicas: u32,
}

impl From<memmesh::CacheOptions> for CacheOptions {
    fn from(o: memmesh::CacheOptions) -> Self {
        Self {
            ttl_ms: o.ttl.map(millis),
            max_entries: o.max_entries,
            max_bytes: o.max_bytes,
            replicas: o.replicas,
        }
    }
}

impl From<CacheOptions> for memmesh::CacheOptions {
    fn from(o: CacheOptions) -> Self {
        Self {
            ttl: o.ttl_ms.map(Duration::from_millis),
            max_entries: o.max_entries,
            max_bytes: o.max_bytes,
            replicas: o.replicas,
        }
    }
}

/// The core's default bucket options (the same values as `CacheOptions()` with no
/// arguments).
#[uniffi::export]
pub fn default_cache_options() -> CacheOptions {
    memmesh::CacheOptions::default().into()
}

/// A bucket this node knows (from `Node.caches()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CacheInfo {
    /// The bucket's name.
    pub name: String,
    /// Its options.
    pub options: CacheOptions,
}

impl From<(String, memmesh::CacheOptions)> for CacheInfo {
    fn from((name, options): (String, memmesh::CacheOptions)) -> Self {
        Self {
            name,
            options: options.into(),
        }
    }
}

/// One entry for `Cache.set_many`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CacheEntry {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Vec<u8>,
}

/// The core's bucket counters, crossing as they are (`uniffi::remote` below mirrors
/// their definition for the interface).
pub use memmesh::CacheStats;

/// Counters of one bucket on this node (from `Cache.stats()`).
#[uniffi::remote(Record)]
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

/// What [`Cache::try_get_local`] found on this node's own replica.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LocalRead {
    /// The key's value, read from this node's replica.
    Hit {
        /// The value.
        value: Vec<u8>,
    },
    /// An authoritative miss: the key is absent or expired.
    Miss,
    /// This node cannot answer alone (it does not own the key's partition, or does not
    /// hold it fully yet): use `get`.
    NotHere,
}

/// A handle to a cache bucket (from `Node.cache(name, options)`). Keeps its node alive.
#[derive(Debug, uniffi::Object)]
pub struct Cache {
    inner: memmesh::Cache,
}

impl Cache {
    pub(crate) fn new(inner: memmesh::Cache) -> Self {
        Self { inner }
    }
}

// `len` is a cluster-wide count (an async call across the mesh), not a collection's
// size: the bucket's API has no `is_empty`, in every language.
#[allow(clippy::len_without_is_empty)]
#[uniffi::export]
impl Cache {
    /// The bucket's name.
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The bucket's options.
    pub fn options(&self) -> CacheOptions {
        self.inner.options().into()
    }

    /// Sets `key` to `value`, expiring after `ttl_ms` milliseconds (default: the
    /// bucket's TTL). Returns once every current owner of the key has it.
    #[uniffi::method(default(ttl_ms = None))]
    pub async fn set(
        &self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), MemmeshError> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(self.inner.set(&key, value, ttl).await?)
    }

    /// The value of `key`, or `None` if it is absent or expired. A hit on this node's
    /// own replica is answered at once, without any I/O, on the first poll.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, MemmeshError> {
        if let Some(local) = self.inner.try_get_local(&key) {
            return Ok(local.map(|v| v.to_vec()));
        }
        Ok(self.inner.get(&key).await?.map(|v| v.to_vec()))
    }

    /// The value of `key` if this node can answer from its own replica, without any I/O
    /// and without the async machinery (a plain synchronous call: the fast path for
    /// local hits); else [`LocalRead::NotHere`], and `get` is the call to make.
    pub fn try_get_local(&self, key: String) -> LocalRead {
        match self.inner.try_get_local(&key) {
            Some(Some(v)) => LocalRead::Hit { value: v.to_vec() },
            Some(None) => LocalRead::Miss,
            None => LocalRead::NotHere,
        }
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: String) -> Result<bool, MemmeshError> {
        Ok(self.inner.delete(&key).await?)
    }

    /// Sets the time to live of an existing `key` to `ttl_ms` milliseconds; returns
    /// whether it existed.
    pub async fn expire(&self, key: String, ttl_ms: u64) -> Result<bool, MemmeshError> {
        Ok(self
            .inner
            .expire(&key, Duration::from_millis(ttl_ms))
            .await?)
    }

    /// The milliseconds `key` has left to live: `None` if it never expires. Throws
    /// `NotFound` if the key does not exist.
    pub async fn ttl(&self, key: String) -> Result<Option<u64>, MemmeshError> {
        Ok(self.inner.ttl(&key).await?.map(millis))
    }

    /// The number of live entries in the bucket across the cluster (each counted once;
    /// approximate while partitions move).
    pub async fn len(&self) -> Result<u64, MemmeshError> {
        Ok(self.inner.len().await?)
    }

    /// Adds `by` (default 1) to the integer stored at `key` (ASCII decimal; an absent key
    /// counts as 0) and returns the new value. Throws `InvalidInput` if the value is not
    /// an integer or the result overflows.
    #[uniffi::method(default(by = 1))]
    pub async fn incr(&self, key: String, by: i64) -> Result<i64, MemmeshError> {
        Ok(self.inner.incr(&key, by).await?)
    }

    /// The values of `keys`, in order (`None` for absent keys), one round trip per owner.
    pub async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, MemmeshError> {
        Ok(self
            .inner
            .get_many(&keys)
            .await?
            .into_iter()
            .map(|v| v.map(|v| v.to_vec()))
            .collect())
    }

    /// Sets every entry, expiring after `ttl_ms` milliseconds (default: the bucket's
    /// TTL), one round trip per owner. Returns once every owner has them all.
    #[uniffi::method(default(ttl_ms = None))]
    pub async fn set_many(
        &self,
        entries: Vec<CacheEntry>,
        ttl_ms: Option<u64>,
    ) -> Result<(), MemmeshError> {
        let entries = entries
            .into_iter()
            .map(|e| (e.key, memmesh::Bytes::from(e.value)))
            .collect();
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(self.inner.set_many(entries, ttl).await?)
    }

    /// This node's counters for the bucket.
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::literal_defaults;

    #[test]
    fn options_convert_to_core_and_back() {
        let ffi = CacheOptions {
            ttl_ms: Some(1500),
            max_entries: Some(10),
            max_bytes: None,
            replicas: 3,
        };
        let core = memmesh::CacheOptions::from(ffi);
        assert_eq!(core.ttl, Some(Duration::from_millis(1500)));
        assert_eq!(CacheOptions::from(core), ffi);
        assert_eq!(default_cache_options().replicas, 2);
    }

    #[test]
    fn literal_defaults_are_the_core_defaults() {
        // `CacheOptions()` in Swift takes these literals; `default_cache_options()` is
        // built from the core's `CacheOptions::default()`. They must not drift.
        let d = default_cache_options();
        let none = |v: Option<u64>| match v {
            None => "None".to_string(),
            Some(v) => format!("Some({v}) (no UniFFI literal)"),
        };
        let expected = [
            ("ttl_ms", none(d.ttl_ms)),
            ("max_entries", none(d.max_entries)),
            ("max_bytes", none(d.max_bytes)),
            ("replicas", d.replicas.to_string()),
        ]
        .map(|(f, v)| (f.to_string(), v));
        assert_eq!(
            literal_defaults(include_str!("cache.rs"), "CacheOptions"),
            expected
        );
    }
}
