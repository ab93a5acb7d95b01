//! Document change subscriptions (`Docs.changes()`, `Doc.changes()`), read with
//! `await changes.next()` until it returns nothing (core `docs/changes.rs`).

use futures::lock::Mutex;

use memmesh::docs::{ChangeEvent, ChangeOrigin};

/// One event of a document change subscription.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DocChangeEvent {
    /// A document changed.
    Change {
        /// The document.
        id: String,
        /// Its heads after the change (hex change hashes, sorted).
        heads: Vec<String>,
        /// The paths the change touched, in the string form `get` takes (sorted).
        paths: Vec<String>,
        /// Whether it touched more paths than `paths` lists.
        paths_truncated: bool,
        /// `"local"` (an edit, import or merge on this node), or the node id of the peer
        /// whose sync brought the change.
        origin: String,
    },
    /// The reader fell behind and `missed` events were dropped for it.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

impl From<ChangeEvent> for DocChangeEvent {
    fn from(e: ChangeEvent) -> Self {
        match e {
            ChangeEvent::Change(c) => DocChangeEvent::Change {
                id: c.id.to_string(),
                heads: c.heads,
                paths: c.paths,
                paths_truncated: c.paths_truncated,
                origin: match c.origin {
                    ChangeOrigin::Local => "local".to_string(),
                    ChangeOrigin::Peer(p) => p.to_string(),
                },
            },
            ChangeEvent::Lagged(missed) => DocChangeEvent::Lagged { missed },
        }
    }
}

/// Changes of documents from the moment `Docs.changes()` or `Doc.changes()` was called.
#[derive(Debug, uniffi::Object)]
pub struct DocChanges {
    inner: Mutex<memmesh::docs::DocChanges>,
}

impl DocChanges {
    pub(crate) fn new(inner: memmesh::docs::DocChanges) -> Self {
        Self {
            inner: Mutex::new(inner),
        }
    }
}

#[uniffi::export]
impl DocChanges {
    /// The next event, or nothing once the node has shut down. Cancelling the call
    /// loses no event.
    pub async fn next(&self) -> Option<DocChangeEvent> {
        let mut inner = self.inner.lock().await;
        inner.next().await.map(DocChangeEvent::from)
    }
}
