//! The node handle: start, identity, peers, channels, blocks, caches, shutdown.

use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;

use crate::blocks::Blocks;
use crate::cache::{BucketInfo, Cache, CacheOptions};
use crate::channel::Channel;
use crate::config::NodeOptions;
use crate::docs::Docs;
use crate::error::to_js;
use crate::files::Files;
use crate::membership::Events;
use crate::peer::PeerInfo;
use crate::runtime::{spawn_promise, thread_promise};
use crate::transfer::Transfer;

/// A running memmesh node (the native half of the `Node` class of the `memmesh` package).
#[napi(js_name = "NativeNode")]
pub struct Node {
    inner: memmesh::Node,
}

#[napi]
impl Node {
    /// Starts a node. Resolves once it is listening; rejects with `InvalidInput` for bad
    /// options or `Io` when the address cannot be bound.
    #[napi(ts_return_type = "Promise<NativeNode>", catch_unwind)]
    pub fn start<'env>(
        env: &'env Env,
        options: Option<NodeOptions>,
    ) -> napi::Result<PromiseRaw<'env, Node>> {
        let config = to_js(env, options.unwrap_or_default().into_config())?;
        // Starting creates the node's runtime, so it runs on a thread of its own.
        thread_promise(
            env,
            "memmesh-start",
            move || memmesh::Node::start_blocking(config),
            |inner| Ok(Node { inner }),
        )
    }

    /// This node's id (52-character base32 text).
    #[napi(getter, catch_unwind)]
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// This node's name.
    #[napi(getter, catch_unwind)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The address the node is bound to, `"ip:port"`.
    #[napi(getter, catch_unwind)]
    pub fn addr(&self) -> String {
        self.inner.addr().to_string()
    }

    /// A public tag naming this node's cluster (derived from the secret, not revealing it).
    #[napi(getter, catch_unwind)]
    pub fn cluster_tag(&self) -> String {
        self.inner.cluster_tag().to_string()
    }

    /// Whether `shutdown` has been called.
    #[napi(getter, catch_unwind)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Connects to the node at `addr` (`"ip:port"`) and resolves with its id.
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn connect<'env>(
        &self,
        env: &'env Env,
        addr: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let node = self.inner.clone();
        spawn_promise(
            env,
            &self.inner.runtime_handle(),
            async move { node.connect(&addr).await },
            |id| Ok(id.to_string()),
        )
    }

    /// Every peer this node knows, with its state.
    #[napi(catch_unwind)]
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.peers().into_iter().map(PeerInfo::from).collect()
    }

    /// Membership events (PeerUp, PeerSuspect, PeerDown, LeaderChanged) from now on.
    #[napi(catch_unwind)]
    pub fn events(&self, env: &Env) -> napi::Result<Events> {
        let inner = to_js(env, self.inner.events())?;
        Ok(Events::new(inner, self.inner.clone()))
    }

    /// The leader of the current membership view: the lowest id among live members,
    /// this node included.
    #[napi(getter, catch_unwind)]
    pub fn leader(&self) -> String {
        self.inner.leader().to_string()
    }

    /// The channel called `name` (created on first use).
    #[napi(catch_unwind)]
    pub fn channel(&self, env: &Env, name: String) -> napi::Result<Channel> {
        let inner = to_js(env, self.inner.channel(&name))?;
        Ok(Channel::new(inner, self.inner.clone()))
    }

    /// The blocks API: put bytes into this node's or a peer's RAM, get and free them.
    #[napi(catch_unwind)]
    pub fn blocks(&self, env: &Env) -> napi::Result<Blocks> {
        let inner = to_js(env, self.inner.blocks())?;
        Ok(Blocks::new(inner, self.inner.clone()))
    }

    /// The transfer API: send files and bytes to peers, publish and fetch, offers.
    #[napi(catch_unwind)]
    pub fn transfer(&self, env: &Env) -> napi::Result<Transfer> {
        let inner = to_js(env, self.inner.transfer())?;
        Ok(Transfer::new(inner, self.inner.clone()))
    }

    /// The files store: persistent, encrypted files on this node's disk.
    #[napi(catch_unwind)]
    pub fn files(&self, env: &Env) -> napi::Result<Files> {
        let inner = to_js(env, self.inner.files())?;
        Ok(Files::new(inner, self.inner.clone()))
    }

    /// The documents: Automerge documents synced with peers as each one's reach allows.
    #[napi(catch_unwind)]
    pub fn docs(&self, env: &Env) -> napi::Result<Docs> {
        let inner = to_js(env, self.inner.docs())?;
        Ok(Docs::new(inner, self.inner.clone()))
    }

    /// Resolves with the cache bucket `name`, created cluster-wide with `options` on
    /// first use. Without options, the bucket's existing options (or the defaults) apply;
    /// options that differ from an existing bucket's are refused with `InvalidInput`.
    #[napi(ts_return_type = "Promise<NativeCache>", catch_unwind)]
    pub fn cache<'env>(
        &self,
        env: &'env Env,
        name: String,
        options: Option<CacheOptions>,
    ) -> napi::Result<PromiseRaw<'env, Cache>> {
        let options = to_js(env, options.unwrap_or_default().into_core())?;
        let node = self.inner.clone();
        let owner = self.inner.clone();
        spawn_promise(
            env,
            &self.inner.runtime_handle(),
            async move { node.cache(&name, options).await },
            move |inner| Ok(Cache::new(inner, owner)),
        )
    }

    /// The cache buckets this node knows (its own and those learned from peers), by name.
    #[napi(catch_unwind)]
    pub fn caches(&self) -> Vec<BucketInfo> {
        self.inner
            .caches()
            .into_iter()
            .map(|(name, options)| BucketInfo {
                name,
                options: options.into(),
            })
            .collect()
    }

    /// Shuts the node down: closes every connection, drops every handler and joins the
    /// node's threads. Idempotent; later calls on this node fail with `Closed`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn shutdown<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let node = self.inner.clone();
        // The core keeps an offer handler past shutdown; a JS one would keep the process
        // alive, so it is removed once the node is closed (when no other handler can be
        // set: `onOffer` on a closed node refuses).
        let transfer = self.inner.transfer().ok();
        // Shutting down joins the node's runtime, so it cannot run on that runtime.
        thread_promise(
            env,
            "memmesh-shutdown",
            move || {
                let done = node.shutdown_blocking();
                if let Some(t) = transfer {
                    t.clear_offer_handler();
                }
                done
            },
            Ok,
        )
    }
}
