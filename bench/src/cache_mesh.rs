//! The memmesh side of the cache benchmark: a client node and a server node on 127.0.0.1
//! (mDNS off) sharing one bucket with `replicas = 1`, keys sorted by the node that owns
//! them, and the calls the load loops issue.
//!
//! Cache placement is deterministic, so the keys are sorted by asking each node: a key
//! for which the server answers [`Cache::try_get_local`] and the client does not is owned
//! by the server alone, and every GET of it from the client crosses the network.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::executor::block_on;
use memmesh::{Cache, CacheOptions, Node, PeerState};
use tokio::runtime::Handle;

use crate::load::CallFuture;

/// The bucket every case uses.
pub const BUCKET: &str = "cache-bench";
/// Size of every value (as `redis-benchmark -d 100`).
pub const VALUE_SIZE: usize = 100;
/// Keys per `get_many` / `set_many` call (as `redis-benchmark -P 16`).
pub const BATCH: usize = 16;
/// Entries per `set_many` call when preloading.
const PRELOAD_CHUNK: usize = 256;
/// How long the two nodes may take to see each other and settle the bucket's routing.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keys probed (and consecutive agreeing probes required) before the routing counts as
/// settled.
const PROBE_KEYS: usize = 512;
const STABLE_PROBES: usize = 3;

/// The value stored under the `i`-th key: 100 bytes, the index in the first eight, so a
/// value returned for the wrong key is caught.
pub fn value_for(i: usize) -> Bytes {
    let mut v = crate::payload(VALUE_SIZE).to_vec();
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v.into()
}

/// The `i`-th candidate key of the throughput cases.
pub fn key_for(i: usize) -> String {
    format!("bench:{i:07}")
}

/// Which node answers a key from its own replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Client,
    Server,
}

/// A key with its value.
pub type Entry = (String, Bytes);
/// Keys with their values.
type Entries = Arc<Vec<Entry>>;
/// One `get_many` key list and the matching `set_many` entries.
type Batch = (Vec<String>, Vec<Entry>);

/// A client node and a server node sharing [`BUCKET`] (`replicas = 1`), preloaded with
/// `keys` entries owned by the server (remote from the client) and as many owned by the
/// client (local hits).
pub struct CachePair {
    client: Node,
    server: Node,
    cache: Cache,
    remote: Entries,
    local: Entries,
}

fn start_node(name: &str, threads: usize, seed: Option<&Node>) -> Result<Node> {
    let mut b = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(threads);
    if let Some(seed) = seed {
        b = b.bootstrap([seed.addr().to_string()]);
    }
    b.start_blocking()
        .with_context(|| format!("starting node {name}"))
}

fn sees_alive(node: &Node, other: &Node) -> bool {
    node.peers()
        .iter()
        .any(|p| p.id == other.id() && p.state == PeerState::Alive)
}

/// The options of the bench bucket: one owner per key, no TTL, no limits.
pub fn bucket_options() -> CacheOptions {
    CacheOptions {
        replicas: 1,
        ..CacheOptions::default()
    }
}

impl CachePair {
    /// Starts both nodes (each with `threads` runtime workers), opens the bucket on both,
    /// waits until the routing is settled, picks `keys` remote and `keys` local keys and
    /// stores their values. With `steady`, then waits out the write transition (see
    /// [`wait_for_steady_writes`]). Call from a thread without an async runtime.
    pub fn start(threads: usize, keys: usize, steady: bool) -> Result<Self> {
        ensure!(keys >= BATCH, "at least {BATCH} keys per side are needed");
        let server = start_node("cache-server", threads, None)?;
        let client = start_node("cache-client", threads, Some(&server))?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !(sees_alive(&client, &server) && sees_alive(&server, &client)) {
            ensure!(
                Instant::now() < deadline,
                "the client and server nodes did not see each other alive within {SETTLE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let server_cache =
            block_on(server.cache(BUCKET, Some(bucket_options()))).context("server: cache()")?;
        let cache =
            block_on(client.cache(BUCKET, Some(bucket_options()))).context("client: cache()")?;
        let (remote, local) = sort_keys(&cache, &server_cache, keys, deadline)?;
        let pair = Self {
            client,
            server,
            cache,
            remote: Arc::new(remote),
            local: Arc::new(local),
        };
        pair.preload()?;
        pair.verify(&server_cache)?;
        if steady {
            wait_for_steady_writes(&pair.cache, &server_cache)?;
        }
        Ok(pair)
    }

    fn preload(&self) -> Result<()> {
        for entries in [&self.remote, &self.local] {
            for chunk in entries.chunks(PRELOAD_CHUNK) {
                block_on(self.cache.set_many(chunk.to_vec(), None)).context("preload: set_many")?;
            }
        }
        Ok(())
    }

    /// Checks that the remote keys are answered by the server's replica only and the local
    /// keys by the client's, with the values just stored.
    fn verify(&self, server_cache: &Cache) -> Result<()> {
        for (key, value) in self.remote.iter() {
            ensure!(
                self.cache.try_get_local(key).is_none(),
                "key {key} was picked as remote but the client now answers it locally \
                 (the routing moved during the setup)"
            );
            ensure!(
                server_cache.try_get_local(key) == Some(Some(value.clone())),
                "key {key}: the server's replica does not hold the value just written"
            );
        }
        for (key, value) in self.local.iter() {
            ensure!(
                self.cache.try_get_local(key) == Some(Some(value.clone())),
                "key {key}: the client's replica does not hold the value just written"
            );
        }
        Ok(())
    }

    /// The client node's runtime, where the load tasks run.
    pub fn handle(&self) -> Handle {
        self.client.runtime_handle()
    }

    /// The client's handle to the bucket.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The keys owned by the server only, with their values.
    pub fn remote_entries(&self) -> &[Entry] {
        &self.remote
    }

    /// The keys owned by the client, with their values.
    pub fn local_entries(&self) -> &[Entry] {
        &self.local
    }

    /// `Cache::get` of remote keys in turn, from the client; fails unless each returns
    /// its value. Resolves to `token` (the load loop's echo check).
    pub fn remote_get(&self, token: Bytes) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync {
        let cache = self.cache.clone();
        let entries = self.remote.clone();
        let next = Arc::new(AtomicUsize::new(0));
        move |_| {
            let (cache, entries, token) = (cache.clone(), entries.clone(), token.clone());
            let i = next.fetch_add(1, Ordering::Relaxed) % entries.len();
            Box::pin(async move {
                let (key, value) = &entries[i];
                let got = cache.get(key).await?;
                check_value(key, value, got.as_ref())?;
                Ok(token)
            })
        }
    }

    /// `Cache::set` of remote keys in turn (each to its own value), from the client.
    pub fn remote_set(&self, token: Bytes) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync {
        let cache = self.cache.clone();
        let entries = self.remote.clone();
        let next = Arc::new(AtomicUsize::new(0));
        move |_| {
            let (cache, entries, token) = (cache.clone(), entries.clone(), token.clone());
            let i = next.fetch_add(1, Ordering::Relaxed) % entries.len();
            Box::pin(async move {
                let (key, value) = &entries[i];
                cache.set(key, value.clone(), None).await?;
                Ok(token)
            })
        }
    }

    /// `Cache::get_many` of [`BATCH`] remote keys per call; every value checked.
    pub fn remote_get_many(
        &self,
        token: Bytes,
    ) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync {
        let cache = self.cache.clone();
        let batches = Arc::new(batches(&self.remote));
        let next = Arc::new(AtomicUsize::new(0));
        move |_| {
            let (cache, batches, token) = (cache.clone(), batches.clone(), token.clone());
            let i = next.fetch_add(1, Ordering::Relaxed) % batches.len();
            Box::pin(async move {
                let (keys, entries) = &batches[i];
                let got = cache.get_many(keys).await?;
                ensure!(
                    got.len() == keys.len(),
                    "get_many of {} keys returned {} values",
                    keys.len(),
                    got.len()
                );
                for ((key, value), got) in entries.iter().zip(&got) {
                    check_value(key, value, got.as_ref())?;
                }
                Ok(token)
            })
        }
    }

    /// `Cache::set_many` of [`BATCH`] remote keys per call.
    pub fn remote_set_many(
        &self,
        token: Bytes,
    ) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync {
        let cache = self.cache.clone();
        let batches = Arc::new(batches(&self.remote));
        let next = Arc::new(AtomicUsize::new(0));
        move |_| {
            let (cache, batches, token) = (cache.clone(), batches.clone(), token.clone());
            let i = next.fetch_add(1, Ordering::Relaxed) % batches.len();
            Box::pin(async move {
                let (_, entries) = &batches[i];
                cache.set_many(entries.clone(), None).await?;
                Ok(token)
            })
        }
    }

    /// Shuts both nodes down.
    pub fn shutdown(self) -> Result<()> {
        self.client.shutdown_blocking()?;
        self.server.shutdown_blocking()?;
        Ok(())
    }
}

/// Consecutive groups of [`BATCH`] entries (the remainder is left out), as the key list
/// `get_many` takes and the entry list `set_many` takes.
fn batches(entries: &[Entry]) -> Vec<Batch> {
    entries
        .chunks_exact(BATCH)
        .map(|c| (c.iter().map(|(k, _)| k.clone()).collect(), c.to_vec()))
        .collect()
}

/// Fails unless `got` is `expected`.
pub fn check_value(key: &str, expected: &Bytes, got: Option<&Bytes>) -> Result<()> {
    match got {
        Some(v) if v == expected => Ok(()),
        Some(v) => bail!(
            "GET {key}: wrong value ({} bytes, expected {} bytes)",
            v.len(),
            expected.len()
        ),
        None => bail!("GET {key}: missing (it was stored before the run)"),
    }
}

fn owner(client: &Cache, server: &Cache, key: &str) -> Option<Owner> {
    match (
        client.try_get_local(key).is_some(),
        server.try_get_local(key).is_some(),
    ) {
        (true, false) => Some(Owner::Client),
        (false, true) => Some(Owner::Server),
        _ => None,
    }
}

/// Waits until neither node's routing has changed for [`memmesh::cache::WRITE_TRANSITION`]:
/// for that long after the server joined, every write also goes to its partition's
/// previous owner, the client (alone before), which is a rebalance, not the steady state
/// the anchor is measured in. A change of either node's epoch meanwhile starts the wait
/// again.
fn wait_for_steady_writes(client: &Cache, server: &Cache) -> Result<()> {
    let epochs = || (client.routing_epoch(), server.routing_epoch());
    let wait = memmesh::cache::WRITE_TRANSITION + Duration::from_millis(500);
    eprintln!(
        "waiting {:.0} s for the write transition after the join to end",
        wait.as_secs_f64()
    );
    let deadline = Instant::now() + wait * 4;
    let (mut seen, mut since) = (epochs(), Instant::now());
    while since.elapsed() < wait {
        ensure!(
            Instant::now() < deadline,
            "the routing kept changing for {:?}",
            wait * 4
        );
        std::thread::sleep(Duration::from_millis(200));
        if epochs() != seen {
            (seen, since) = (epochs(), Instant::now());
        }
    }
    Ok(())
}

/// Waits until the first [`PROBE_KEYS`] keys each have exactly one node answering them
/// locally, with the same answer [`STABLE_PROBES`] times in a row and both nodes owning
/// some; then sorts candidates until `want` keys of each owner are found.
fn sort_keys(
    client: &Cache,
    server: &Cache,
    want: usize,
    deadline: Instant,
) -> Result<(Vec<Entry>, Vec<Entry>)> {
    let probe = || -> Option<Vec<Owner>> {
        (0..PROBE_KEYS)
            .map(|i| owner(client, server, &key_for(i)))
            .collect()
    };
    let mut last: Option<Vec<Owner>> = None;
    let mut agreeing = 0;
    while agreeing < STABLE_PROBES {
        ensure!(
            Instant::now() < deadline,
            "the bucket's routing did not settle within {SETTLE_TIMEOUT:?}: some keys are \
             answered locally by both nodes or by neither"
        );
        let now = probe().filter(|o| o.contains(&Owner::Client) && o.contains(&Owner::Server));
        agreeing = match (&now, &last) {
            (Some(n), Some(l)) if n == l => agreeing + 1,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        last = now;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut remote, mut local) = (Vec::new(), Vec::new());
    for i in 0.. {
        if remote.len() >= want && local.len() >= want {
            break;
        }
        ensure!(
            i < want * 64,
            "{} candidate keys gave only {} remote and {} local keys",
            i,
            remote.len(),
            local.len()
        );
        let key = key_for(i);
        let Some(side) = owner(client, server, &key) else {
            bail!("key {key} has no single owner although the routing looked settled");
        };
        let list = if side == Owner::Server {
            &mut remote
        } else {
            &mut local
        };
        if list.len() < want {
            list.push((key, value_for(i)));
        }
    }
    Ok((remote, local))
}

/// Which local read API a local-hit loop calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalApi {
    /// `Cache::try_get_local`: the synchronous fast path bindings call first.
    TryGetLocal,
    /// `Cache::get` driven by `futures::executor::block_on` (it answers from the fast path
    /// without suspending).
    Get,
}

/// Reads `entries` in turn on the calling thread for `duration` with `api`, checking
/// every value; returns reads per second.
pub fn local_hits(
    cache: &Cache,
    entries: &[Entry],
    api: LocalApi,
    duration: Duration,
) -> Result<f64> {
    ensure!(!entries.is_empty(), "no local keys to read");
    let start = Instant::now();
    let mut ops: u64 = 0;
    'outer: loop {
        for (key, value) in entries {
            let got = match api {
                LocalApi::TryGetLocal => cache
                    .try_get_local(key)
                    .with_context(|| format!("key {key} is no longer answered locally"))?,
                LocalApi::Get => block_on(cache.get(key))?,
            };
            check_value(key, value, got.as_ref())?;
            ops += 1;
            if ops.is_multiple_of(1024) && start.elapsed() >= duration {
                break 'outer;
            }
        }
    }
    Ok(ops as f64 / start.elapsed().as_secs_f64())
}
