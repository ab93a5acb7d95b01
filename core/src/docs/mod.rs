//! Documents (issue 15, ADR 0020): Automerge CRDT documents on this node, persisted
//! encrypted in the data dir (in memory only without one) and synced with peers as their
//! reach allows: `node.docs()`.
//!
//! A document is an [`automerge::AutoCommit`] edited through a small path API
//! ([`Doc::put`], [`Doc::get`], [`Doc::insert`], [`Doc::splice_text`], ...) with plain
//! [`Value`]s; [`Doc::save`] gives the standard Automerge bytes and [`Docs::import`] /
//! [`Doc::merge`] take them, so any Automerge implementation interoperates. Every change
//! is appended to the document's encrypted log (`log.rs`) before the edit returns, and
//! offered to peers at once by the `Service::Docs` service (`sync.rs`).

pub mod book;
pub mod changes;
pub mod delta;
pub mod dirty;
pub mod edit;
pub mod error;
pub mod events;
pub mod log;
pub mod messages;
pub mod path;
pub mod peer_states;
pub(crate) mod pull;
pub mod reach;
pub(crate) mod restart;
pub mod sealed_file;
pub mod status;
pub(crate) mod store;
pub(crate) mod stream;
pub mod stream_file;
pub mod sync;
pub mod traffic;
pub mod value;

use std::any::Any;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use automerge::AutoCommit;

pub use changes::{ChangeEvent, ChangeOrigin, DocChange, DocChanges};
pub use delta::MAX_PATHS;
pub use error::DocsError;
pub use log::Sealer;
pub use path::{Path, Seg};
pub use reach::Reach;
pub use status::{DocSync, DocsStats, PeerSync};
pub use sync::{DocsService, KeyOpener};
pub use traffic::DocsTraffic;
pub use value::Value;

use crate::error::Result;
use store::Entry;

/// A document's id: 16 random bytes, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub [u8; 16]);

impl DocId {
    /// A new random id.
    pub fn random() -> Result<DocId> {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| crate::Error::internal("the system random generator failed"))?;
        Ok(DocId(b))
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl FromStr for DocId {
    type Err = DocsError;

    fn from_str(s: &str) -> std::result::Result<DocId, DocsError> {
        let bad = || DocsError::Invalid(format!("not a document id: {s:?} (32 hex digits)"));
        if s.len() != 32 {
            return Err(bad());
        }
        let v = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| bad())?;
        let b: [u8; 16] = v.try_into().map_err(|_| bad())?;
        Ok(DocId(b))
    }
}

/// What the size cap counts for an edit that adds no value (a delete, an increment).
const SMALL_EDIT: u64 = 16;

/// What a path argument may be: a string (parsed, see [`Path`]) or a [`Path`].
pub trait IntoPath {
    /// The path.
    fn into_path(self) -> std::result::Result<Path, DocsError>;
}

impl IntoPath for &str {
    fn into_path(self) -> std::result::Result<Path, DocsError> {
        Path::parse(self)
    }
}

impl IntoPath for &String {
    fn into_path(self) -> std::result::Result<Path, DocsError> {
        Path::parse(self)
    }
}

impl IntoPath for Path {
    fn into_path(self) -> std::result::Result<Path, DocsError> {
        Ok(self)
    }
}

impl IntoPath for &Path {
    fn into_path(self) -> std::result::Result<Path, DocsError> {
        Ok(self.clone())
    }
}

/// What is known of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocInfo {
    /// Its id.
    pub id: DocId,
    /// Its reach.
    pub reach: Reach,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
}

/// The documents of a node ([`crate::Node::docs`]). Cheap to clone.
#[derive(Clone)]
pub struct Docs {
    svc: Arc<DocsService>,
    _keep: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Docs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Docs").field("service", &self.svc).finish()
    }
}

impl Docs {
    /// The documents of the service `svc`, keeping `keep` (the node's guard) alive.
    pub(crate) fn new(svc: Arc<DocsService>, keep: Arc<dyn Any + Send + Sync>) -> Docs {
        Docs { svc, _keep: keep }
    }

    fn handle(&self, entry: Arc<Entry>) -> Doc {
        Doc {
            svc: self.svc.clone(),
            entry,
            _keep: self._keep.clone(),
        }
    }

    /// Creates an empty document of `reach`.
    pub async fn create(&self, reach: Reach) -> Result<DocId> {
        let id = DocId::random()?;
        self.svc
            .blocking(move |s| s.create(id, reach, AutoCommit::new(), u64::MAX).map(|_| ()))
            .await?;
        Ok(id)
    }

    /// Imports a document saved by any Automerge implementation, as a new document of
    /// `reach` (`InvalidInput` if the bytes are not an Automerge document).
    pub async fn import(&self, bytes: &[u8], reach: Reach) -> Result<DocId> {
        let cap = self.svc.cap();
        if bytes.len() as u64 > cap.saturating_mul(4) {
            // Far over even before loading (Automerge compresses at most ~4x here).
            return Err(crate::Error::from(DocsError::DocTooLarge {
                id: "(import)".to_string(),
                size: bytes.len() as u64,
                limit: cap,
            }));
        }
        let bytes = bytes.to_vec();
        let id = DocId::random()?;
        let want = self.svc.watched();
        let delta = self
            .svc
            .blocking(move |s| {
                let mut doc = AutoCommit::load(&bytes).map_err(|e| DocsError::NotAutomerge {
                    what: "a document",
                    why: e.to_string(),
                })?;
                let delta = delta::Before::empty(want).delta(&mut doc);
                s.create(id, reach, doc, cap).map(|_| delta)
            })
            .await?;
        self.svc.changed(id, ChangeOrigin::Local, delta);
        Ok(id)
    }

    /// Opens the document `id` (`NotFound` if it is not on this node).
    pub async fn open(&self, id: DocId) -> Result<Doc> {
        let store = self.svc.store().await?;
        Ok(self.handle(store.get(id)?))
    }

    /// Every document on this node, in id order.
    pub async fn list(&self) -> Result<Vec<DocInfo>> {
        self.svc
            .blocking(|s| {
                Ok(s.all()
                    .into_iter()
                    .map(|e| {
                        let mut st = e.lock();
                        DocInfo {
                            id: e.id,
                            reach: st.reach,
                            heads: edit::heads(&mut st.doc),
                        }
                    })
                    .collect())
            })
            .await
    }

    /// A subscription to every change of every document on this node from now on: the
    /// document, its heads after the change, the paths it touched (see [`DocChange`]),
    /// and whether it was local or which peer's sync brought it. Bounded: a slow subscriber loses events (told by
    /// [`ChangeEvent::Lagged`]) and never blocks the node.
    pub fn changes(&self) -> DocChanges {
        DocChanges::new(
            self.svc.changes.subscribe(),
            self.svc.node.cancel.clone(),
            None,
        )
    }

    /// What this node holds: documents, their bytes, whether they are kept on disk
    /// (false without a data dir: in memory only), and the sync exchanges under way.
    pub async fn stats(&self) -> Result<DocsStats> {
        self.svc.stats().await
    }

    /// The sync state of every document with the peers it was exchanged with since this
    /// node started (what `GET /sync/status` shows), in id order: per peer whether it is
    /// in sync, how many changes it lacks and when the two were last at the same heads.
    pub async fn sync_status(&self) -> Result<Vec<DocSync>> {
        self.svc.sync_status().await
    }

    /// Changes the reach of the document `id` (see [`Doc::set_reach`]).
    pub async fn set_reach(&self, id: DocId, reach: Reach) -> Result<()> {
        self.open(id).await?.set_reach(reach).await
    }

    /// Deletes the document `id` from this node (peers keep their copies; a peer's sync
    /// does not bring it back here).
    pub async fn delete(&self, id: DocId) -> Result<()> {
        self.svc.blocking(move |s| s.delete(id)).await
    }
}

/// One document ([`Docs::open`]). Cheap to clone; edits are durable when they return
/// and are offered to peers at once.
#[derive(Clone)]
pub struct Doc {
    svc: Arc<DocsService>,
    entry: Arc<Entry>,
    _keep: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doc").field("id", &self.entry.id).finish()
    }
}

impl Doc {
    /// Its id.
    pub fn id(&self) -> DocId {
        self.entry.id
    }

    /// Its reach.
    pub fn reach(&self) -> Reach {
        self.entry.lock().reach
    }

    /// Changes its reach, durably (it survives a restart). Narrowing takes effect at
    /// once: from when this returns, the document is no longer offered to, served to or
    /// accepted from the peers the new reach excludes (an exchange already under way
    /// stops at its next round). Widening offers it to the peers it now reaches at once.
    /// Its sync states with peers start afresh either way. Copies peers already hold stay
    /// theirs.
    pub async fn set_reach(&self, reach: Reach) -> Result<()> {
        let entry = self.entry.clone();
        let changed = self
            .svc
            .blocking(move |store| store.set_reach(&entry, reach))
            .await?;
        if changed {
            self.svc.mark(self.entry.id);
        }
        Ok(())
    }

    /// A subscription to this document's changes from now on (local, or brought by a
    /// peer's sync), as [`Docs::changes`] gives them for every document. Ends (`None`)
    /// when the node shuts down.
    pub fn changes(&self) -> DocChanges {
        DocChanges::new(
            self.svc.changes.subscribe(),
            self.svc.node.cancel.clone(),
            Some(self.entry.id),
        )
    }

    fn live(&self) -> std::result::Result<(), DocsError> {
        if !self.entry.lock().live {
            return Err(DocsError::NotFound {
                id: self.entry.id.to_string(),
            });
        }
        Ok(())
    }

    /// The value at `path` (`None` if nothing is there; `""` is the whole document).
    pub fn get(&self, path: impl IntoPath) -> Result<Option<Value>> {
        self.live()?;
        let path = path.into_path()?;
        let st = self.entry.lock();
        Ok(edit::get(&st.doc, &self.entry.id.to_string(), &path)?)
    }

    /// The whole document as JSON (see [`Value::to_json`]).
    pub fn to_json(&self) -> Result<String> {
        Ok(self.get("")?.unwrap_or(Value::Null).to_json())
    }

    /// Its heads (hex change hashes, sorted).
    pub fn heads(&self) -> Result<Vec<String>> {
        self.live()?;
        Ok(edit::heads(&mut self.entry.lock().doc))
    }

    /// The whole document in the standard Automerge binary format.
    pub fn save(&self) -> Result<Vec<u8>> {
        self.live()?;
        Ok(self.entry.lock().doc.save())
    }

    /// Runs an edit adding about `add` bytes (refused past the size cap), persists it,
    /// and offers it to peers.
    async fn edit<F>(&self, add: u64, f: F) -> Result<()>
    where
        F: FnOnce(&mut AutoCommit, &str) -> std::result::Result<(), DocsError> + Send + 'static,
    {
        let entry = self.entry.clone();
        let cap = self.svc.cap();
        let want = self.svc.watched();
        let changed = self
            .svc
            .blocking(move |store| {
                let mut st = entry.lock();
                if !st.live {
                    return Err(DocsError::NotFound {
                        id: entry.id.to_string(),
                    });
                }
                store.check_room(entry.id, &mut st, add, cap)?;
                let before = delta::Before::of(&mut st.doc, want);
                f(&mut st.doc, &entry.id.to_string())?;
                let changed = store.persist(entry.id, &mut st)?;
                Ok(changed.then(|| before.delta(&mut st.doc)))
            })
            .await?;
        if let Some(delta) = changed {
            self.svc.changed(self.entry.id, ChangeOrigin::Local, delta);
        }
        Ok(())
    }

    /// Sets the value at `path` (a map key, or an existing list index).
    pub async fn put(&self, path: impl IntoPath, value: impl Into<Value>) -> Result<()> {
        let path = path.into_path()?;
        let value = value.into();
        let add = value.approx_size();
        self.edit(add, move |d, id| edit::put(d, id, &path, &value))
            .await
    }

    /// Deletes the map key or list element at `path`.
    pub async fn delete(&self, path: impl IntoPath) -> Result<()> {
        let path = path.into_path()?;
        self.edit(SMALL_EDIT, move |d, id| edit::delete(d, id, &path))
            .await
    }

    /// Inserts `value` at `index` in the list at `list_path`.
    pub async fn insert(
        &self,
        list_path: impl IntoPath,
        index: usize,
        value: impl Into<Value>,
    ) -> Result<()> {
        let path = list_path.into_path()?;
        let value = value.into();
        let add = value.approx_size();
        self.edit(add, move |d, id| edit::insert(d, id, &path, index, &value))
            .await
    }

    /// In the text at `path`, deletes `delete` characters at `pos` and inserts `text`.
    pub async fn splice_text(
        &self,
        path: impl IntoPath,
        pos: usize,
        delete: usize,
        text: &str,
    ) -> Result<()> {
        let path = path.into_path()?;
        let text = text.to_string();
        let add = SMALL_EDIT + text.len() as u64;
        self.edit(add, move |d, id| {
            edit::splice_text(d, id, &path, pos, delete, &text)
        })
        .await
    }

    /// Adds `by` to the counter at `counter_path`.
    pub async fn increment(&self, counter_path: impl IntoPath, by: i64) -> Result<()> {
        let path = counter_path.into_path()?;
        self.edit(SMALL_EDIT, move |d, id| edit::increment(d, id, &path, by))
            .await
    }

    /// Merges Automerge bytes (a saved document or changes, from any implementation)
    /// into this document (`InvalidInput` if they are not Automerge data).
    pub async fn merge(&self, bytes: &[u8]) -> Result<()> {
        let bytes = bytes.to_vec();
        let entry = self.entry.clone();
        let cap = self.svc.cap();
        let want = self.svc.watched();
        let changed = self
            .svc
            .blocking(move |store| {
                // Load a copy first, so that bad bytes leave the document untouched.
                let mut probe = AutoCommit::load(&bytes).map_err(|e| DocsError::NotAutomerge {
                    what: "a document",
                    why: e.to_string(),
                })?;
                let mut st = entry.lock();
                if !st.live {
                    return Err(DocsError::NotFound {
                        id: entry.id.to_string(),
                    });
                }
                // What the merge adds: the changes this document lacks.
                let have = st.doc.get_heads();
                let add: u64 = probe
                    .get_changes(&have)
                    .iter()
                    .map(|c| c.raw_bytes().len() as u64)
                    .sum();
                store.check_room(entry.id, &mut st, add, cap)?;
                let before = delta::Before::of(&mut st.doc, want);
                st.doc
                    .merge(&mut probe)
                    .map_err(|e| DocsError::Automerge(e.to_string()))?;
                let changed = store.persist(entry.id, &mut st)?;
                Ok(changed.then(|| before.delta(&mut st.doc)))
            })
            .await?;
        if let Some(delta) = changed {
            self.svc.changed(self.entry.id, ChangeOrigin::Local, delta);
        }
        Ok(())
    }
}
