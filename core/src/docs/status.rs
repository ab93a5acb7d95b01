//! What the HTTP API shows of document sync: per document, its heads and, per peer this
//! node has exchanged with since start, whether the peer's last known heads are ours.

use std::sync::Arc;

use super::{edit, DocId, DocsService, Reach};
use crate::error::Result;
use crate::identity::NodeId;

/// The sync state of one document with one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSync {
    /// The peer.
    pub peer: NodeId,
    /// Whether the peer's last heads are this node's heads (nothing left to exchange).
    pub in_sync: bool,
    /// Whether an exchange with the peer is under way.
    pub in_flight: bool,
}

/// The sync state of one document on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSync {
    /// The document.
    pub id: DocId,
    /// Its reach.
    pub reach: Reach,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
    /// The peers it was exchanged with since this node started, by id.
    pub peers: Vec<PeerSync>,
}

impl DocsService {
    /// The sync state of every document (empty without a data dir), in id order.
    pub async fn sync_status(&self) -> Result<Vec<DocSync>> {
        if self.node.config.data_dir.is_none() {
            return Ok(Vec::new());
        }
        let mut out = self
            .blocking(|store| {
                Ok(store
                    .all()
                    .into_iter()
                    .map(|e| {
                        let mut st = e.lock();
                        let own = st.doc.get_heads();
                        let mut peers: Vec<PeerSync> = st
                            .peers
                            .iter()
                            .map(|(peer, s)| PeerSync {
                                peer: *peer,
                                in_sync: s.their_heads.as_deref() == Some(own.as_slice()),
                                in_flight: s.in_flight,
                            })
                            .collect();
                        peers.sort_by_key(|p| p.peer);
                        DocSync {
                            id: e.id,
                            reach: st.reach,
                            heads: edit::heads(&mut st.doc),
                            peers,
                        }
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        out.sort_by_key(|d| d.id.0);
        Ok(out)
    }

    /// The number of documents held (`None` without a data dir or an open store).
    pub async fn count(&self) -> Option<u64> {
        self.node.config.data_dir.as_ref()?;
        let store = self.store().await.ok()?;
        Some(store.all().len() as u64)
    }

    /// Offers the document `id` to every connected peer at once (`NotFound` if it is not
    /// on this node).
    pub async fn force_sync(self: &Arc<Self>, id: DocId) -> Result<()> {
        let store = self.store().await?;
        store.get(id)?;
        self.mark(id);
        Ok(())
    }
}
