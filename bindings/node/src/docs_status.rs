//! The sync state of documents with peers (`docs.syncStatus()`) as plain objects (core
//! `docs/status.rs`).

use napi_derive::napi;

/// The sync state of one document with one peer (`lastSynced` is `null` if never).
#[napi(object, use_nullable = true)]
pub struct PeerSync {
    /// The peer's node id.
    pub peer: String,
    /// Whether the peer's last known heads are this node's (nothing left to exchange).
    pub in_sync: bool,
    /// Whether an exchange with the peer is under way.
    pub in_flight: bool,
    /// How many changes held here the peer's last known heads lack.
    pub behind: f64,
    /// When (unix ms) an exchange last left both sides at the same heads (`null`: never).
    pub last_synced: Option<f64>,
}

/// The sync state of one document on this node.
#[napi(object)]
pub struct DocSync {
    /// The document's id.
    pub id: String,
    /// Its reach.
    pub reach: String,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
    /// The peers it was exchanged with since this node started, by id.
    pub peers: Vec<PeerSync>,
}

impl From<memmesh::docs::DocSync> for DocSync {
    fn from(d: memmesh::docs::DocSync) -> Self {
        DocSync {
            id: d.id.to_string(),
            reach: d.reach.as_str().to_string(),
            heads: d.heads,
            peers: d
                .peers
                .into_iter()
                .map(|p| PeerSync {
                    peer: p.peer.to_string(),
                    in_sync: p.in_sync,
                    in_flight: p.in_flight,
                    behind: p.behind as f64,
                    last_synced: p.last_synced.map(|t| t as f64),
                })
                .collect(),
        }
    }
}
