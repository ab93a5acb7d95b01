//! What the HTTP API shows of document sync: per document, its heads and, per peer this
//! node has exchanged with (since start, or before a restart with a data dir), whether the peer's last known heads are ours, how
//! many changes held here they lack, and when the two were last at the same heads.

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
    /// How many changes held here the peer's last known heads lack (all of them if it has
    /// not told its heads yet; 0 when in sync).
    pub behind: u64,
    /// When (unix ms) an exchange last left both sides at the same heads (`None`: never;
    /// kept across restarts with a data dir).
    pub last_synced: Option<u64>,
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
    /// The peers it was exchanged with since this node started (with a data dir, also
    /// before a restart), by id.
    pub peers: Vec<PeerSync>,
}

/// What a node holds of documents ([`super::Docs::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocsStats {
    /// The documents held.
    pub documents: u64,
    /// Their size in the Automerge format (each one's last snapshot plus the changes
    /// appended since, which is what its log holds with a data dir).
    pub bytes: u64,
    /// Whether they are kept in the data dir (false: in memory only, no data dir).
    pub persistent: bool,
    /// Sync exchanges under way with peers (driven by this node or served).
    pub syncing: u64,
}

impl DocsService {
    /// The sync state of every document, in id order.
    pub async fn sync_status(&self) -> Result<Vec<DocSync>> {
        let mut out = self
            .blocking(|store| {
                Ok(store
                    .all()
                    .into_iter()
                    .map(|e| {
                        let mut guard = e.lock();
                        let st = &mut *guard;
                        let own = st.doc.get_heads();
                        let heads = edit::heads(&mut st.doc);
                        // Every peer with a sync state has a book.
                        for p in st.peers.keys() {
                            st.books.of(*p);
                        }
                        let doc = st.doc.document();
                        let mut peers: Vec<PeerSync> = st
                            .books
                            .iter_mut()
                            .map(|(peer, book)| PeerSync {
                                peer: *peer,
                                in_sync: book.in_sync(&own),
                                in_flight: st.peers.get(peer).is_some_and(|s| s.in_flight),
                                // Counted again only when either side's heads moved.
                                behind: book
                                    .behind(&own, |have| doc.get_changes_meta(have).len() as u64),
                                last_synced: book.last_synced(),
                            })
                            .collect();
                        peers.sort_by_key(|p| p.peer);
                        DocSync {
                            id: e.id,
                            reach: st.reach,
                            heads,
                            peers,
                        }
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        out.sort_by_key(|d| d.id.0);
        Ok(out)
    }

    /// The number of documents held (`None` if the store could not be opened).
    pub async fn count(&self) -> Option<u64> {
        let store = self.store().await.ok()?;
        Some(store.all().len() as u64)
    }

    /// What the node holds: documents, their bytes, whether they are kept on disk, and
    /// the sync exchanges under way.
    pub async fn stats(&self) -> Result<DocsStats> {
        let syncing = self.active.load(std::sync::atomic::Ordering::Relaxed) as u64;
        self.blocking(move |store| {
            let all = store.all();
            let bytes = all.iter().map(|e| e.lock().size).sum();
            Ok(DocsStats {
                documents: all.len() as u64,
                bytes,
                persistent: store.persistent(),
                syncing,
            })
        })
        .await
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
