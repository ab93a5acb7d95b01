//! The replicated cache: named buckets of string keys and byte values, with TTL and LRU.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::time::Duration;

use napi::bindgen_prelude::{
    panic_to_error, Buffer, BufferSlice, Either, Env, PromiseRaw, Uint8ArraySlice, Unknown,
};
use napi::{sys, JsError, JsValue};
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

/// Keys up to this many bytes of UTF-8 are read onto the stack by [`read_local`].
const KEY_ON_STACK: usize = 256;

/// A JS function bound to `cache` that calls [`read_local`]; the function owns its clone
/// of the handle and drops it when it is garbage collected.
fn local_reader(env: &Env, cache: memmesh::Cache) -> napi::Result<Unknown<'_>> {
    let raw_env = env.raw();
    let data = Box::into_raw(Box::new(cache)).cast::<c_void>();
    let name = c"readLocal";
    let mut function = ptr::null_mut();
    // Safety: `data` is a live `Box<memmesh::Cache>`; it is handed to the function's
    // finalizer, or freed here if the function could not be made.
    unsafe {
        let mut status = sys::napi_create_function(
            raw_env,
            name.as_ptr(),
            name.count_bytes() as isize,
            Some(read_local),
            data,
            &mut function,
        );
        if status == sys::Status::napi_ok {
            status = sys::napi_add_finalizer(
                raw_env,
                function,
                data,
                Some(drop_reader),
                ptr::null_mut(),
                ptr::null_mut(),
            );
            if status == sys::Status::napi_ok {
                return Ok(Unknown::from_raw_unchecked(raw_env, function));
            }
        }
        // The function, if made, is never handed out: it cannot run with `data` freed.
        drop(Box::from_raw(data.cast::<memmesh::Cache>()));
        Err(napi::Error::new(
            napi::Status::from(status),
            "could not create the cache's local reader",
        ))
    }
}

/// Finalizer of a [`local_reader`] function: drops its handle.
unsafe extern "C" fn drop_reader(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // Safety: `data` is the `Box<memmesh::Cache>` given to `napi_add_finalizer`, and the
    // finalizer runs once.
    drop(unsafe { Box::from_raw(data.cast::<memmesh::Cache>()) });
}

/// The body of a [`local_reader`] function, `read(key, pool, offset)`: a raw Node-API
/// callback, so a local hit costs one lookup, one copy and a few Node-API calls. A panic
/// is thrown as an `Error`, like any other call's.
unsafe extern "C" fn read_local(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let answer = std::panic::catch_unwind(|| {
        // Safety: called by Node-API with a live `env` and `info` on the JS thread.
        unsafe { read_local_inner(env, info) }
    });
    match answer {
        Ok(value) => value,
        Err(panic) => {
            // Safety: as above.
            unsafe { JsError::from(panic_to_error(panic)).throw_into(env) };
            ptr::null_mut()
        }
    }
}

/// See [`read_local`]. Returns a null value only when Node-API itself fails, with an
/// exception pending (thrown when the call returns).
unsafe fn read_local_inner(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    const CANNOT: f64 = -2.0;
    const ABSENT: f64 = -1.0;
    let mut argc = 3;
    let mut argv = [ptr::null_mut(); 3];
    let mut data = ptr::null_mut();
    // Safety (the whole function): `env` and `info` are live; every out-pointer points to
    // a local of the type Node-API writes; `data` is the function's `Box<memmesh::Cache>`,
    // alive while the function can be called.
    unsafe {
        let status = sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        );
        if status != sys::Status::napi_ok || data.is_null() {
            return number(env, CANNOT);
        }
        let cache = &*data.cast::<memmesh::Cache>();

        // The key, as napi-rs would read a `String` (invalid UTF-16 becomes U+FFFD), on
        // the stack when it is short. V8 writes whole characters only, so a key that
        // filled the buffer to within one character may have been cut: read it again.
        let mut stack = [0u8; KEY_ON_STACK];
        let mut heap = Vec::new();
        let mut len = 0;
        if sys::napi_get_value_string_utf8(
            env,
            argv[0],
            stack.as_mut_ptr().cast::<c_char>(),
            stack.len(),
            &mut len,
        ) != sys::Status::napi_ok
        {
            // Not a string (the wrapper checks first): `get` reports it.
            clear_exception(env);
            return number(env, CANNOT);
        }
        let key = if len + 4 < stack.len() {
            &stack[..len]
        } else {
            if sys::napi_get_value_string_utf8(env, argv[0], ptr::null_mut(), 0, &mut len)
                != sys::Status::napi_ok
            {
                return number(env, CANNOT);
            }
            heap.resize(len + 1, 0u8);
            if sys::napi_get_value_string_utf8(
                env,
                argv[0],
                heap.as_mut_ptr().cast::<c_char>(),
                heap.len(),
                &mut len,
            ) != sys::Status::napi_ok
            {
                return number(env, CANNOT);
            }
            &heap[..len]
        };
        let Ok(key) = std::str::from_utf8(key) else {
            return number(env, CANNOT);
        };

        let value = match cache.try_get_local(key) {
            None => return number(env, CANNOT),
            Some(None) => return number(env, ABSENT),
            Some(Some(value)) => value,
        };

        // The pool and the offset, read on every call: a pool that was detached meanwhile
        // reads as empty, and the value then comes back as its own Buffer.
        let mut pool = ptr::null_mut();
        let mut pool_len = 0usize;
        let mut offset = 0u32;
        let pooled = argc >= 3
            && sys::napi_get_buffer_info(env, argv[1], &mut pool, &mut pool_len)
                == sys::Status::napi_ok
            && sys::napi_get_value_uint32(env, argv[2], &mut offset) == sys::Status::napi_ok
            && !pool.is_null()
            && (offset as usize) <= pool_len
            && value.len() <= pool_len - offset as usize;
        if pooled {
            ptr::copy_nonoverlapping(
                value.as_ptr(),
                pool.cast::<u8>().add(offset as usize),
                value.len(),
            );
            return number(env, value.len() as f64);
        }
        clear_exception(env);
        let mut buffer = ptr::null_mut();
        let mut copied = ptr::null_mut();
        let status = sys::napi_create_buffer_copy(
            env,
            value.len(),
            value.as_ptr().cast::<c_void>(),
            &mut copied,
            &mut buffer,
        );
        if status != sys::Status::napi_ok {
            let error = napi::Error::new(napi::Status::from(status), "could not create a Buffer");
            JsError::from(error).throw_into(env);
            return ptr::null_mut();
        }
        buffer
    }
}

/// A JS number (a null value, with an exception pending, if Node-API fails).
unsafe fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut value = ptr::null_mut();
    // Safety: `env` is live and `value` is a local out-pointer.
    unsafe { sys::napi_create_double(env, n, &mut value) };
    value
}

/// Clears an exception a failed argument read may have left pending (Node-API's argument
/// readers do not throw, but an exception must never leak into the fallback's answer).
unsafe fn clear_exception(env: sys::napi_env) {
    let mut pending = false;
    // Safety: `env` is live and the out-pointers are locals.
    unsafe {
        if sys::napi_is_exception_pending(env, &mut pending) == sys::Status::napi_ok && pending {
            let mut error = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut error);
        }
    }
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

    /// The synchronous half of `get`, for the JS wrapper's fast path: a function
    /// `read(key, pool, offset)` that answers from this node's own replica without any I/O
    /// when it can. It returns `-2` when it cannot (use `get`; also for arguments it
    /// cannot read), `-1` when the key is absent, the value's length after copying it into
    /// `pool` at `offset` when it fits there, or the value as a new `Buffer` when it does
    /// not. The wrapper never passes an offset it has handed out, so a value copied into
    /// the pool is never overwritten.
    ///
    /// A plain Node-API function bound to this bucket (see [`read_local`]): a method of
    /// this class would pay, on every hit, for unwrapping `this` and napi-rs's borrow
    /// tracking of it, which together cost more than the lookup itself.
    #[napi(
        ts_return_type = "(key: string, pool: Uint8Array, offset: number) => number | Buffer",
        catch_unwind
    )]
    pub fn local_reader<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        local_reader(env, self.inner.clone())
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
