//! The replicated cache: named buckets of string keys and byte values, with TTL and LRU.

use std::time::Duration;

use napi::bindgen_prelude::{Buffer, BufferSlice, Either, Env, PromiseRaw, Uint8ArraySlice};
use napi::JsValue;
use napi_derive::napi;

use crate::bytes::{from_js, to_buffer};
use crate::config::{millis, signed, whole};
use crate::error::{invalid, to_js};
use crate::runtime::spawn_promise;

/// Options of `node.cache(name, options)`. Every field is optional; when none is given
/// the bucket's existing options (or the defaults, for a new bucket) apply.
#[napi(object)]
#[derive(Default)]
pub struct CacheOptions {
    /// Default time to live of an entry, in milliseconds (default: no expiry).
    pub ttl_ms: Option<f64>,
    /// Most entries each node keeps for this bucket (least recently used go first).
    pub max_entries: Option<f64>,
    /// Most bytes (keys, values, overhead) each node keeps for this bucket.
    pub max_bytes: Option<f64>,
    /// How many nodes hold each entry (default 2).
    pub replicas: Option<f64>,
}

impl CacheOptions {
    /// `None` when no option is given, else the core defaults overridden by the given
    /// options; the core validates them.
    pub fn into_core(self) -> memmesh::Result<Option<memmesh::CacheOptions>> {
        if self.ttl_ms.is_none()
            && self.max_entries.is_none()
            && self.max_bytes.is_none()
            && self.replicas.is_none()
        {
            return Ok(None);
        }
        let mut o = memmesh::CacheOptions::default();
        if let Some(ms) = self.ttl_ms {
            o.ttl = Some(millis("ttlMs", ms)?);
        }
        if let Some(n) = self.max_entries {
            o.max_entries = Some(whole("maxEntries", n)?);
        }
        if let Some(n) = self.max_bytes {
            o.max_bytes = Some(whole("maxBytes", n)?);
        }
        if let Some(n) = self.replicas {
            o.replicas = u32::try_from(whole("replicas", n)?)
                .map_err(|_| invalid(format!("replicas is too large: {n}")))?;
        }
        Ok(Some(o))
    }
}

/// A bucket's effective options (`cache.options`, `node.caches()`); `null` means unset.
#[napi(object, use_nullable = true)]
pub struct BucketOptions {
    /// Default time to live of an entry in milliseconds, `null` if entries do not expire.
    pub ttl_ms: Option<f64>,
    /// Most entries each node keeps, `null` if unlimited.
    pub max_entries: Option<f64>,
    /// Most bytes each node keeps, `null` if unlimited.
    pub max_bytes: Option<f64>,
    /// How many nodes hold each entry.
    pub replicas: u32,
}

impl From<memmesh::CacheOptions> for BucketOptions {
    fn from(o: memmesh::CacheOptions) -> Self {
        BucketOptions {
            ttl_ms: o.ttl.map(ms),
            max_entries: o.max_entries.map(|n| n as f64),
            max_bytes: o.max_bytes.map(|n| n as f64),
            replicas: o.replicas,
        }
    }
}

/// A bucket this node knows, as listed by `node.caches()`.
#[napi(object)]
pub struct BucketInfo {
    /// The bucket's name.
    pub name: String,
    /// Its options.
    pub options: BucketOptions,
}

/// Counters of one bucket on this node (`cache.stats()`).
#[napi(object)]
pub struct CacheStats {
    /// Live entries held here.
    pub entries: f64,
    /// Bytes held here (keys, values and per-entry overhead).
    pub bytes: f64,
    /// Reads answered with a value.
    pub hits: f64,
    /// Reads answered with no value.
    pub misses: f64,
    /// Entries removed because their TTL passed.
    pub expired: f64,
    /// Entries removed by LRU to respect `maxEntries` / `maxBytes`.
    pub evicted: f64,
}

impl From<memmesh::CacheStats> for CacheStats {
    fn from(s: memmesh::CacheStats) -> Self {
        CacheStats {
            entries: s.entries as f64,
            bytes: s.bytes as f64,
            hits: s.hits as f64,
            misses: s.misses as f64,
            expired: s.expired as f64,
            evicted: s.evicted as f64,
        }
    }
}

/// A duration as whole milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_millis() as f64
}

/// An optional `ttlMs` argument.
fn ttl(ttl_ms: Option<f64>) -> memmesh::Result<Option<Duration>> {
    ttl_ms.map(|n| millis("ttlMs", n)).transpose()
}

fn option_buffer(value: Option<memmesh::Bytes>) -> Option<Buffer> {
    value.as_ref().map(to_buffer)
}

/// A handle to a cache bucket (the native half of the `Cache` class).
#[napi(js_name = "NativeCache")]
pub struct Cache {
    inner: memmesh::Cache,
    node: memmesh::Node,
}

impl Cache {
    pub(crate) fn new(inner: memmesh::Cache, node: memmesh::Node) -> Self {
        Self { inner, node }
    }
}

#[napi]
impl Cache {
    /// The bucket's name.
    #[napi(getter, catch_unwind)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The bucket's options.
    #[napi(getter, catch_unwind)]
    pub fn options(&self) -> BucketOptions {
        self.inner.options().into()
    }

    /// Sets `key` to `value`, expiring after `ttlMs` (default: the bucket's TTL).
    /// Resolves once every current owner of the key has it.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        key: String,
        value: Either<Uint8ArraySlice<'_>, String>,
        ttl_ms: Option<f64>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let value = from_js(value);
        let ttl = to_js(env, ttl(ttl_ms))?;
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.set(&key, value, ttl).await },
            Ok,
        )
    }

    /// The value of `key`, or `null` if it is absent or expired. A local hit is answered
    /// on the JavaScript thread with an already resolved promise; anything else goes to
    /// the node's runtime.
    #[napi(ts_return_type = "Promise<Buffer | null>", catch_unwind)]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        if let Some(answer) = self.inner.try_get_local(&key) {
            let promise = match answer {
                Some(value) => {
                    let copy = BufferSlice::copy_from(env, &value)?;
                    PromiseRaw::resolve(env, Some(&copy))?.raw()
                }
                None => PromiseRaw::<Option<Buffer>>::resolve(env, None)?.raw(),
            };
            return Ok(PromiseRaw::new(env.raw(), promise));
        }
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.get(&key).await },
            |value| Ok(option_buffer(value)),
        )
    }

    /// The synchronous half of `get`, for the JS wrapper's fast path: answers from this
    /// node's own replica without any I/O when it can. Returns `-2` when it cannot (use
    /// `get`), `-1` when the key is absent, the value's length after copying it into
    /// `out` when it fits there, or the value as a new `Buffer` when it does not.
    ///
    /// Copying into a caller-owned buffer avoids creating a Buffer and a promise through
    /// Node-API for every hit, which costs more than the lookup itself.
    #[napi(ts_return_type = "number | Buffer", catch_unwind)]
    pub fn get_local(&self, key: String, mut out: Uint8ArraySlice<'_>) -> Either<f64, Buffer> {
        match self.inner.try_get_local(&key) {
            None => Either::A(-2.0),
            Some(None) => Either::A(-1.0),
            Some(Some(value)) if value.len() <= out.len() => {
                // Safety: the JS thread is inside this call, so nothing else reads or
                // writes `out` meanwhile.
                let out = unsafe { out.as_mut() };
                out[..value.len()].copy_from_slice(&value);
                Either::A(value.len() as f64)
            }
            Some(Some(value)) => Either::B(to_buffer(&value)),
        }
    }

    /// Deletes `key`; resolves with whether it existed.
    #[napi(ts_return_type = "Promise<boolean>", catch_unwind)]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.delete(&key).await },
            Ok,
        )
    }

    /// Sets the time to live of an existing `key` to `ttlMs`; resolves with whether it
    /// existed.
    #[napi(ts_return_type = "Promise<boolean>", catch_unwind)]
    pub fn expire<'env>(
        &self,
        env: &'env Env,
        key: String,
        ttl_ms: f64,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let ttl = to_js(env, millis("ttlMs", ttl_ms))?;
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.expire(&key, ttl).await },
            Ok,
        )
    }

    /// Resolves with the milliseconds `key` has left to live, `null` if it never
    /// expires; rejects with `NotFound` if it does not exist.
    #[napi(ts_return_type = "Promise<number | null>", catch_unwind)]
    pub fn ttl<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> napi::Result<PromiseRaw<'env, Option<f64>>> {
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.ttl(&key).await },
            |left| Ok(left.map(ms)),
        )
    }

    /// Resolves with the number of live entries in the bucket across the cluster.
    #[napi(ts_return_type = "Promise<number>", catch_unwind)]
    pub fn len<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, f64>> {
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.len().await },
            |n| Ok(n as f64),
        )
    }

    /// Adds `by` (default 1) to the integer stored at `key` (an absent key counts as 0)
    /// and resolves with the new value.
    #[napi(ts_return_type = "Promise<number>", catch_unwind)]
    pub fn incr<'env>(
        &self,
        env: &'env Env,
        key: String,
        by: Option<f64>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let by = to_js(env, by.map(|n| signed("by", n)).transpose())?.unwrap_or(1);
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.incr(&key, by).await },
            |n| Ok(n as f64),
        )
    }

    /// Resolves with the values of `keys`, in order (`null` for absent keys).
    #[napi(ts_return_type = "Promise<Array<Buffer | null>>", catch_unwind)]
    pub fn get_many<'env>(
        &self,
        env: &'env Env,
        keys: Vec<String>,
    ) -> napi::Result<PromiseRaw<'env, Vec<Option<Buffer>>>> {
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.get_many(&keys).await },
            |values| Ok(values.into_iter().map(option_buffer).collect()),
        )
    }

    /// Sets `keys[i]` to `values[i]` for every `i`, expiring after `ttlMs` (default: the
    /// bucket's TTL). Resolves once every owner has them all.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn set_many<'env>(
        &self,
        env: &'env Env,
        keys: Vec<String>,
        values: Vec<Either<Uint8ArraySlice<'_>, String>>,
        ttl_ms: Option<f64>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        if keys.len() != values.len() {
            return Err(crate::error::js_error(
                env,
                &invalid("setMany needs as many values as keys"),
            ));
        }
        let entries = keys
            .into_iter()
            .zip(values.into_iter().map(from_js))
            .collect();
        let ttl = to_js(env, ttl(ttl_ms))?;
        let cache = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { cache.set_many(entries, ttl).await },
            Ok,
        )
    }

    /// This node's counters for the bucket.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> CacheStats {
        self.inner.stats().into()
    }
}
