//! Blocks: immutable byte blobs kept in a node's RAM (this node's or a peer's), named by
//! their content hash (`"blake3:<64 hex digits>"`).

use crate::error::MemmeshError;
use crate::parse_node_id;

/// Where `Blocks.put` stores a block.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Placement {
    /// In this node's RAM.
    Local,
    /// On the live peer advertising the most free quota (this node if it has no peers).
    Auto,
    /// In the RAM of the peer `id` (a node id, 52 base32 characters).
    Peer {
        /// The peer's node id.
        id: String,
    },
}

impl TryFrom<Placement> for memmesh::Placement {
    type Error = MemmeshError;

    fn try_from(p: Placement) -> Result<Self, MemmeshError> {
        Ok(match p {
            Placement::Local => memmesh::Placement::Local,
            Placement::Auto => memmesh::Placement::Auto,
            Placement::Peer { id } => memmesh::Placement::Peer(parse_node_id(&id)?),
        })
    }
}

/// One node's memory use (from `Blocks.stats()` / `Blocks.local_stats()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NodeUsage {
    /// The node's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its memory quota in bytes.
    pub quota: u64,
    /// Bytes of the quota in use (blocks and cache entries, overhead included).
    pub used: u64,
    /// Bytes of the quota still free.
    pub free: u64,
    /// Blocks it holds.
    pub blocks: u64,
    /// Content bytes of those blocks (without overhead).
    pub block_bytes: u64,
}

impl From<memmesh::NodeUsage> for NodeUsage {
    fn from(u: memmesh::NodeUsage) -> Self {
        Self {
            id: u.id.to_string(),
            name: u.name,
            quota: u.quota,
            used: u.used,
            free: u.free,
            blocks: u.blocks,
            block_bytes: u.block_bytes,
        }
    }
}

/// The blocks API of a node (from `Node.blocks()`). Keeps its node alive.
#[derive(Debug, uniffi::Object)]
pub struct Blocks {
    inner: memmesh::Blocks,
}

impl Blocks {
    pub(crate) fn new(inner: memmesh::Blocks) -> Self {
        Self { inner }
    }
}

/// Parses a block id given as text (`"blake3:<64 hex digits>"`); `InvalidInput` if bad.
fn parse_block_id(id: &str) -> Result<memmesh::BlockId, MemmeshError> {
    memmesh::BlockId::parse(id).map_err(MemmeshError::from)
}

#[uniffi::export]
impl Blocks {
    /// Stores `data` as a block and returns its id (`"blake3:<hex>"`). `placement`
    /// defaults to `Local`. Throws `QuotaExceeded` if the chosen node's quota cannot
    /// hold it (nothing is evicted to make room).
    #[uniffi::method(default(placement = None))]
    pub async fn put(
        &self,
        data: Vec<u8>,
        placement: Option<Placement>,
    ) -> Result<String, MemmeshError> {
        let placement = placement.unwrap_or(Placement::Local).try_into()?;
        Ok(self.inner.put(data, placement).await?.to_string())
    }

    /// The block `id`: from local RAM, else from the peer holding it (verified).
    /// Throws `NotFound` if no reachable node holds it, `InvalidInput` for a malformed id.
    pub async fn get(&self, id: String) -> Result<Vec<u8>, MemmeshError> {
        let id = parse_block_id(&id)?;
        Ok(self.inner.get(&id).await?.to_vec())
    }

    /// Frees the block `id` wherever it lives. Throws `NotFound` if no reachable node
    /// holds it.
    pub async fn free(&self, id: String) -> Result<(), MemmeshError> {
        let id = parse_block_id(&id)?;
        Ok(self.inner.free(&id).await?)
    }

    /// Memory use of this node and of every reachable live peer, this node first.
    pub async fn stats(&self) -> Result<Vec<NodeUsage>, MemmeshError> {
        Ok(self
            .inner
            .stats()
            .await?
            .into_iter()
            .map(NodeUsage::from)
            .collect())
    }

    /// This node's memory use.
    pub fn local_stats(&self) -> NodeUsage {
        self.inner.local_stats().into()
    }
}
