//! Blocks: immutable byte blobs in this node's or a peer's RAM, named by their content
//! hash (`"blake3:<hex>"`).

use memmesh::{BlockId, Placement};
use napi::bindgen_prelude::{Buffer, Either, Env, PromiseRaw, Uint8ArraySlice};
use napi_derive::napi;

use crate::bytes::{from_js, to_buffer};
use crate::error::to_js;
use crate::runtime::spawn_promise;

/// One node's memory use (`blocks.stats()`, `blocks.localStats()`).
#[napi(object)]
pub struct NodeUsage {
    /// The node's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its memory quota in bytes.
    pub quota: f64,
    /// Bytes of the quota in use (blocks and cache entries, overhead included).
    pub used: f64,
    /// Bytes of the quota still free.
    pub free: f64,
    /// Blocks it holds.
    pub blocks: f64,
    /// Content bytes of those blocks (without overhead).
    pub block_bytes: f64,
}

impl From<memmesh::NodeUsage> for NodeUsage {
    fn from(u: memmesh::NodeUsage) -> Self {
        NodeUsage {
            id: u.id.to_string(),
            name: u.name,
            quota: u.quota as f64,
            used: u.used as f64,
            free: u.free as f64,
            blocks: u.blocks as f64,
            block_bytes: u.block_bytes as f64,
        }
    }
}

/// The blocks API of a node (the native half of `node.blocks`).
#[napi(js_name = "NativeBlocks")]
pub struct Blocks {
    inner: memmesh::Blocks,
    node: memmesh::Node,
}

impl Blocks {
    pub(crate) fn new(inner: memmesh::Blocks, node: memmesh::Node) -> Self {
        Self { inner, node }
    }
}

#[napi]
impl Blocks {
    /// Stores `data` as a block and resolves with its id. `placement`: `"local"`
    /// (default), `"auto"` (the peer with the most free quota) or a peer's node id.
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        data: Either<Uint8ArraySlice<'_>, String>,
        placement: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let data = from_js(data);
        let placement = to_js(env, placement.map_or(Ok(Placement::Local), |p| p.parse()))?;
        let blocks = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { blocks.put(data, placement).await },
            |id| Ok(id.to_string()),
        )
    }

    /// Resolves with the block `id`, from local RAM or from the peer holding it.
    #[napi(ts_return_type = "Promise<Buffer>", catch_unwind)]
    pub fn get<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let id = to_js(env, BlockId::parse(&id))?;
        let blocks = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { blocks.get(&id).await },
            |data| Ok(to_buffer(&data)),
        )
    }

    /// Frees the block `id` wherever it lives; rejects with `NotFound` if no reachable
    /// node holds it.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn free<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, ()>> {
        let id = to_js(env, BlockId::parse(&id))?;
        let blocks = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { blocks.free(&id).await },
            Ok,
        )
    }

    /// Resolves with the memory use of this node and of every reachable live peer, this
    /// node first.
    #[napi(ts_return_type = "Promise<NodeUsage[]>", catch_unwind)]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<NodeUsage>>> {
        let blocks = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { blocks.stats().await },
            |all| Ok(all.into_iter().map(NodeUsage::from).collect()),
        )
    }

    /// This node's memory use.
    #[napi(catch_unwind)]
    pub fn local_stats(&self) -> NodeUsage {
        self.inner.local_stats().into()
    }
}
