//! The sync state of documents with peers (`Docs.sync_status()`) as records (core
//! `docs/status.rs`).

use crate::docs::Reach;

/// The sync state of one document with one peer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerSync {
    /// The peer's node id.
    pub peer: String,
    /// Whether the peer's last known heads are this node's (nothing left to exchange).
    pub in_sync: bool,
    /// Whether an exchange with the peer is under way.
    pub in_flight: bool,
    /// How many changes held here the peer's last known heads lack.
    pub behind: u64,
    /// When (unix ms) an exchange last left both sides at the same heads (`None`: never).
    pub last_synced: Option<u64>,
}

/// The sync state of one document on this node.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DocSync {
    /// The document's id.
    pub id: String,
    /// Its reach.
    pub reach: Reach,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
    /// The peers it was exchanged with since this node started (with a data dir, also
    /// before a restart), by id.
    pub peers: Vec<PeerSync>,
}

impl From<memmesh::docs::DocSync> for DocSync {
    fn from(d: memmesh::docs::DocSync) -> Self {
        DocSync {
            id: d.id.to_string(),
            reach: d.reach.into(),
            heads: d.heads,
            peers: d
                .peers
                .into_iter()
                .map(|p| PeerSync {
                    peer: p.peer.to_string(),
                    in_sync: p.in_sync,
                    in_flight: p.in_flight,
                    behind: p.behind,
                    last_synced: p.last_synced,
                })
                .collect(),
        }
    }
}
