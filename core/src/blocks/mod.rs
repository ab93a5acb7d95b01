//! Blocks: immutable byte blobs kept in a node's RAM, lent to the mesh. A block's id is
//! its BLAKE3 content hash, so puts deduplicate and every get is verified.
//!
//! `put` stores locally, on a chosen peer, or (`Auto`) on the peer advertising the most
//! free quota through membership. `get` reads local RAM first, then the peer this node
//! placed the block on, then asks every live peer. Each node's `memory_quota` is enforced
//! in bytes, overhead included: a put that does not fit fails with `QuotaExceeded` and
//! nothing is evicted to make room.
//!
//! A held block has owners: the nodes that put it (the same content is stored and
//! charged once). `free` drops the caller's own reference, only an owner can free, and
//! the block goes with its last reference (ADR 0011).

pub mod error;
pub mod id;
pub mod placement;
pub(crate) mod serve;
pub(crate) mod service;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::StreamExt;
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::call::call_peer;
use crate::node::guard::Guard;
use crate::node::members;
use crate::wire::codec::decode_bulk;
use crate::wire::messages::BlockOp;
use crate::wire::Service;
pub use error::BlocksError;
pub use id::BlockId;
pub use placement::Placement;
use service::BlocksService;
use store::Freed;

/// How long an `Auto` put waits for connected peers that membership is still admitting.
const JOIN_GRACE: Duration = Duration::from_secs(3);

/// Most peers asked at once when a block is searched for, freed or stats are gathered.
pub const FANOUT: usize = 32;

/// One node's memory use, as reported by `Blocks::stats`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeUsage {
    /// The node.
    pub id: NodeId,
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

/// Longest node name a peer's usage report may carry, in bytes (as `NodeConfig::name`).
pub const MAX_REPORTED_NAME: usize = 255;

impl NodeUsage {
    /// This report as received from `peer`: it speaks for `peer` only (whatever id it
    /// names), its name is cut to [`MAX_REPORTED_NAME`] bytes, and it cannot claim more
    /// free or used bytes than its quota.
    pub fn reported_by(mut self, peer: NodeId) -> NodeUsage {
        self.id = peer;
        if self.name.len() > MAX_REPORTED_NAME {
            let mut end = MAX_REPORTED_NAME;
            while !self.name.is_char_boundary(end) {
                end -= 1;
            }
            self.name.truncate(end);
        }
        self.used = self.used.min(self.quota);
        self.free = self.free.min(self.quota - self.used);
        self
    }
}

/// The blocks API of a node (`node.blocks()`).
#[derive(Clone)]
pub struct Blocks {
    shared: Arc<BlocksService>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("node", &self.shared.id)
            .finish()
    }
}

impl Blocks {
    pub(crate) fn new(shared: Arc<BlocksService>, guard: Arc<Guard>) -> Self {
        Self {
            shared,
            _guard: guard,
        }
    }

    /// Stores `data` as a block and returns its id.
    pub async fn put(&self, data: impl Into<Bytes>, placement: Placement) -> Result<BlockId> {
        let data = data.into();
        let shared = self.shared.clone();
        self.shared.run(put(shared, data, placement)).await
    }

    /// The block `id`: from local RAM, else from the peer holding it (verified).
    pub async fn get(&self, id: &BlockId) -> Result<Bytes> {
        let shared = self.shared.clone();
        let id = *id;
        self.shared.run(async move { get(&shared, id).await }).await
    }

    /// Frees this node's reference to the block `id`: the one it holds itself if it put
    /// the block locally, else the one on the peer it put the block on (or, if unknown,
    /// on any live peer). The block is dropped with its last reference. `Unauthorized`
    /// if the block is held but this node never put it (only a node that put a block can
    /// free it); `NotFound` if no reachable node holds it.
    pub async fn free(&self, id: &BlockId) -> Result<()> {
        let shared = self.shared.clone();
        let id = *id;
        self.shared
            .run(async move { free(&shared, id).await })
            .await
    }

    /// Memory use of this node and of every reachable live peer, this node first.
    pub async fn stats(&self) -> Result<Vec<NodeUsage>> {
        let shared = self.shared.clone();
        self.shared.run(async move { stats(&shared).await }).await
    }

    /// This node's memory use.
    pub fn local_stats(&self) -> NodeUsage {
        serve::usage(&self.shared)
    }
}

fn check_open(shared: &BlocksService) -> Result<()> {
    if shared.is_closed() {
        Err(Error::closed())
    } else {
        Ok(())
    }
}

fn check_size(shared: &BlocksService, len: usize) -> Result<()> {
    if len > shared.config.max_message_size {
        return Err(BlocksError::TooLarge {
            len,
            max: shared.config.max_message_size,
        }
        .into());
    }
    Ok(())
}

/// Peers that may hold or take blocks: live members and connected peers not confirmed by
/// membership yet, this node excluded.
fn live_peers(shared: &BlocksService) -> Vec<NodeId> {
    members::live_peers(shared)
}

async fn put(shared: Arc<BlocksService>, data: Bytes, placement: Placement) -> Result<BlockId> {
    check_open(&shared)?;
    check_size(&shared, data.len())?;
    let target = match placement {
        Placement::Local => None,
        Placement::Peer(id) if id == shared.id => None,
        Placement::Peer(id) => Some(id),
        Placement::Auto => auto_target(&shared, data.len()).await,
    };
    let Some(peer) = target else {
        return serve::put_local(&shared, data);
    };
    let id = BlockId::of(&data);
    let reply = call_peer(
        &shared.node,
        peer,
        Service::Blocks { op: BlockOp::Put },
        &data,
    )
    .await?;
    if reply.as_ref() != id.digest() {
        return Err(BlocksError::WrongId { peer: peer.short() }.into());
    }
    shared.placed_blocks().insert(id, peer);
    Ok(id)
}

/// The live member with the most free quota, by adverts, clients excepted; members not
/// advertising yet are asked directly. `None` when there is no such member (store
/// locally). Only members membership has admitted are candidates: a peer that is
/// connected but still joining may be a client (the short-lived node of the CLI asking
/// for this very put), so a put waits up to [`JOIN_GRACE`] for joining peers first.
async fn auto_target(shared: &Arc<BlocksService>, len: usize) -> Option<NodeId> {
    shared.members.get()?;
    members::settle_joining(shared, JOIN_GRACE).await;
    let m = shared.members.get()?;
    // Clients are never chosen (ADR 0024); `live_holders` leaves them out.
    let peers: Vec<NodeId> = shared
        .members
        .live_holders()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| *p != shared.id)
        .collect();
    let mut best: Option<(u64, NodeId)> = None;
    let mut unknown = Vec::new();
    for p in peers {
        match m.free(&p) {
            Some(free) => best = best.max(Some((free, p))),
            None => unknown.push(p),
        }
    }
    if !unknown.is_empty() {
        let found: Vec<(u64, NodeId)> = futures::stream::iter(unknown)
            .map(|p| async move {
                let reply =
                    call_peer(&shared.node, p, Service::Blocks { op: BlockOp::Stats }, &[]).await;
                reply
                    .ok()
                    .and_then(|b| decode_bulk::<NodeUsage>(&b).ok())
                    .map(|u| (u.reported_by(p).free, p))
            })
            .buffer_unordered(FANOUT)
            .filter_map(|f| async move { f })
            .collect()
            .await;
        for f in found {
            best = best.max(Some(f));
        }
    }
    debug!(len, best = ?best.map(|(f, p)| (f, p.short())), "auto placement");
    best.map(|(_, p)| p)
}

async fn get(shared: &Arc<BlocksService>, id: BlockId) -> Result<Bytes> {
    check_open(shared)?;
    if let Some(data) = shared.blocks().get(&id) {
        return Ok(data);
    }
    let known = shared.placed_blocks().get(&id).copied();
    if let Some(holder) = known {
        return match get_from(shared, holder, id).await {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                shared.placed_blocks().remove(&id);
                Err(e)
            }
            Err(e) if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::PeerUnavailable) => {
                Err(BlocksError::HolderUnavailable {
                    id,
                    holder: holder.short(),
                    source: e,
                }
                .into())
            }
            Err(e) => Err(e),
        };
    }
    search(shared, id).await
}

async fn get_from(shared: &Arc<BlocksService>, peer: NodeId, id: BlockId) -> Result<Bytes> {
    let op = BlockOp::Get { id: *id.digest() };
    let data = call_peer(&shared.node, peer, Service::Blocks { op }, &[]).await?;
    if !id.verifies(&data) {
        return Err(BlocksError::BadData {
            id,
            peer: peer.short(),
        }
        .into());
    }
    Ok(data)
}

/// Asks every live peer for `id`; the first verified answer wins.
async fn search(shared: &Arc<BlocksService>, id: BlockId) -> Result<Bytes> {
    let peers = live_peers(shared);
    let mut asks = futures::stream::iter(peers.iter().copied())
        .map(|p| async move { (p, get_from(shared, p, id).await) })
        .buffer_unordered(FANOUT);
    let mut unreachable = 0usize;
    let mut last_failure = None;
    let mut corrupted = None;
    while let Some((peer, result)) = asks.next().await {
        match result {
            Ok(data) => {
                shared.placed_blocks().insert(id, peer);
                return Ok(data);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) if e.kind() == ErrorKind::Corrupted => corrupted = Some(e),
            Err(e) => {
                unreachable += 1;
                last_failure = Some(e);
            }
        }
    }
    if let Some(e) = corrupted {
        return Err(e);
    }
    if unreachable > 0 {
        return Err(BlocksError::Unreachable {
            id,
            unreachable,
            source: last_failure,
        }
        .into());
    }
    Err(BlocksError::NotFound {
        id,
        peers: peers.len(),
    }
    .into())
}

async fn free(shared: &Arc<BlocksService>, id: BlockId) -> Result<()> {
    check_open(shared)?;
    let local = shared.blocks().free(&id, &shared.id);
    if matches!(local, Freed::Released { .. }) {
        return Ok(());
    }
    let op = BlockOp::Free { id: *id.digest() };
    let known = shared.placed_blocks().get(&id).copied();
    let targets = match known {
        Some(holder) => vec![holder],
        None => live_peers(shared),
    };
    let results: Vec<(NodeId, Result<Bytes>)> = futures::stream::iter(targets)
        .map(|p| async move {
            (
                p,
                call_peer(&shared.node, p, Service::Blocks { op }, &[]).await,
            )
        })
        .buffer_unordered(FANOUT)
        .collect()
        .await;
    let mut last_err = None;
    let mut not_ours = (local == Freed::NotOwner).then(|| serve::not_yours(&id, &shared.id));
    let mut freed = false;
    for (peer, r) in results {
        match r {
            Ok(_) => freed = true,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if known == Some(peer) {
                    shared.placed_blocks().remove(&id);
                }
            }
            Err(e) if e.kind() == ErrorKind::Unauthorized => not_ours = Some(e),
            Err(e) => last_err = Some(e),
        }
    }
    if freed {
        shared.placed_blocks().remove(&id);
        return Ok(());
    }
    match (not_ours, last_err, known) {
        (Some(e), _, _) => Err(e),
        (None, Some(e), Some(holder)) => Err(BlocksError::HolderUnavailable {
            id,
            holder: holder.short(),
            source: e,
        }
        .into()),
        (None, Some(e), None) => Err(BlocksError::FreeUnreachable { id, source: e }.into()),
        (None, None, _) => Err(BlocksError::NotHeld { id }.into()),
    }
}

async fn stats(shared: &Arc<BlocksService>) -> Result<Vec<NodeUsage>> {
    check_open(shared)?;
    let mut out = vec![serve::usage(shared)];
    let asked = futures::stream::iter(live_peers(shared)).map(|p| async move {
        let reply = call_peer(&shared.node, p, Service::Blocks { op: BlockOp::Stats }, &[]).await;
        match reply.and_then(|b| decode_bulk::<NodeUsage>(&b).map_err(Error::from)) {
            Ok(u) => Some(u.reported_by(p)),
            Err(e) => {
                debug!(peer = %p.short(), error = %e, "no stats from peer");
                None
            }
        }
    });
    let mut peers: Vec<NodeUsage> = asked
        .buffer_unordered(FANOUT)
        .filter_map(|u| async move { u })
        .collect()
        .await;
    peers.sort_by_key(|u| u.id);
    out.extend(peers);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn a_usage_report_speaks_only_for_its_sender_within_bounds() {
        let (peer, victim) = (
            Keypair::generate().unwrap().node_id(),
            Keypair::generate().unwrap().node_id(),
        );
        let forged = NodeUsage {
            id: victim,
            name: "é".repeat(1000),
            quota: 100,
            used: 40,
            free: u64::MAX,
            blocks: 1,
            block_bytes: 1,
        };
        let u = forged.reported_by(peer);
        assert_eq!(u.id, peer);
        assert!(u.name.len() <= MAX_REPORTED_NAME && u.name.starts_with('é'));
        assert_eq!((u.used, u.free), (40, 60));
        let over = NodeUsage {
            used: u64::MAX,
            ..u.clone()
        }
        .reported_by(peer);
        assert_eq!((over.used, over.free), (100, 0));
    }
}
