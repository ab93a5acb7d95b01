//! Persistent, encrypted files on this node (issue 14, ADR 0016): `node.files()`.
//!
//! A file is stored under its id, the BLAKE3 hash of its plaintext (`blake3:<hex>`, the
//! same id blocks and transfers use), encrypted at rest in 64 KiB AEAD segments under a
//! per-file key wrapped by the node's storage key (`crypt.rs`, `key.rs`). Its metadata
//! (size, created, and the name and content type, sealed) lives in a redb database
//! (`db.rs`), written by a group committer (`commit.rs`) only after the content file is
//! durable (`contents.rs`). At start, leftovers of a crash are cleaned (`store.rs`). The
//! on-disk format is in `docs/storage-format.md`.
//!
//! Across nodes (ADR 0018): a put with `replicas = N` has N-1 other live members hold
//! the file (chosen by rendezvous hashing, `holders.rs`; each pulls it through the
//! transfer engine into its own store, `service.rs`); a get of a file not stored here
//! searches the recorded holders, then every live member; a damaged local copy is set
//! aside and repaired from a replica; a delete leaves a tombstone until every holder
//! applied it.

pub mod blocks;
pub mod checkpoint;
pub mod commit;
pub mod contents;
pub mod crypt;
pub mod db;
pub mod direct;
pub mod error;
pub mod holders;
pub mod id;
pub mod inline;
pub mod key;
pub mod lend;
pub mod logfmt;
pub mod messages;
pub mod migrate;
pub mod parallel;
pub mod partial;
pub mod partials;
pub mod progress;
pub mod reader;
pub(crate) mod service;
pub mod store;
pub mod valuelog;
pub mod visible;

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use error::FilesError;
pub use id::FileId;
pub use store::{OpenOptions, MAX_NAME_LEN, MAX_PAGE};

use crate::error::Result;
use crate::identity::NodeId;
use crate::node::members;
use crate::service::Progress;
use crate::service::Subscription;
use store::Store;

/// How long a put asking for replicas waits for connected peers that membership is still
/// admitting before it counts the members it has.
pub const JOIN_GRACE: Duration = Duration::from_secs(3);

/// Options of a put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    /// A name to remember with the file (stored encrypted).
    pub name: Option<String>,
    /// A content type to remember with the file (stored encrypted).
    pub content_type: Option<String>,
    /// How many nodes must hold the file before the put returns (this one included),
    /// 1..=[`messages::MAX_REPLICAS`].
    pub replicas: u32,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            name: None,
            content_type: None,
            replicas: 1,
        }
    }
}

impl PutOptions {
    /// Options with a name.
    pub fn named(name: impl Into<String>) -> Self {
        PutOptions {
            name: Some(name.into()),
            ..PutOptions::default()
        }
    }
}

/// What is known of a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Its id.
    pub id: FileId,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The name given at put, if any.
    pub name: Option<String>,
    /// The content type given at put, if any.
    pub content_type: Option<String>,
    /// When it was first stored here (unix ms).
    pub created: u64,
    /// The nodes known to hold it: this node, and the holders it recorded (the ones it
    /// had hold the file, or the ones the node that asked it to hold the file named).
    pub holders: Vec<NodeId>,
}

/// One page of [`Files::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The files, in id order.
    pub files: Vec<FileInfo>,
    /// The cursor of the next page, or `None` if this is the last.
    pub next: Option<FileId>,
}

/// Usage of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesStats {
    /// Bytes of content files (ciphertext) stored.
    pub disk_used: u64,
    /// The disk quota, if one is set.
    pub disk_quota: Option<u64>,
    /// Files stored.
    pub files: u64,
}

enum Slot {
    NoDataDir,
    Open(Arc<Store>),
    Closed,
}

struct Inner {
    slot: RwLock<Slot>,
    runtime: Option<tokio::runtime::Handle>,
    /// The node's files service (replication, search, delete), once wired; dropped at
    /// close (it holds this store).
    net: RwLock<Option<Arc<service::FilesService>>>,
    /// Progress of files crossing the network ([`Files::progress`]).
    progress: broadcast::Sender<Progress>,
    /// Fired when the store closes: ends the progress subscriptions.
    closed: CancellationToken,
    /// The sources of the puts replicating now, which serve their holders' pulls.
    lending: Arc<lend::Lending>,
}

/// The files store of a node ([`crate::Node::files`]). Cheap to clone.
#[derive(Clone)]
pub struct Files {
    inner: Arc<Inner>,
    _keep: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*self.inner.slot.read().unwrap_or_else(|p| p.into_inner()) {
            Slot::NoDataDir => "no data dir",
            Slot::Open(_) => "open",
            Slot::Closed => "closed",
        };
        f.debug_struct("Files").field("state", &state).finish()
    }
}

impl Files {
    /// Opens the store (blocking: key derivation, metadata, recovery). Its operations run
    /// on `runtime`.
    pub fn open(options: OpenOptions, runtime: tokio::runtime::Handle) -> Result<Files> {
        let store = Store::open(options)?;
        Ok(Files::with_slot(Slot::Open(Arc::new(store)), Some(runtime)))
    }

    /// The store of a node without a data dir: every call fails with `Unsupported`.
    pub fn without_data_dir() -> Files {
        Files::with_slot(Slot::NoDataDir, None)
    }

    fn with_slot(slot: Slot, runtime: Option<tokio::runtime::Handle>) -> Files {
        Files {
            inner: Arc::new(Inner {
                slot: RwLock::new(slot),
                runtime,
                net: RwLock::new(None),
                progress: broadcast::channel(progress::CHANNEL).0,
                closed: CancellationToken::new(),
                lending: Arc::default(),
            }),
            _keep: None,
        }
    }

    /// The same store, holding `keep` alive as long as this handle (the node's guard).
    pub fn keeping(&self, keep: Arc<dyn Any + Send + Sync>) -> Files {
        Files {
            inner: self.inner.clone(),
            _keep: Some(keep),
        }
    }

    /// Closes the store: later calls fail with `Closed`. Waits for queued metadata to be
    /// written. Idempotent.
    pub fn close(&self) {
        let net = self
            .inner
            .net
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(net);
        self.inner.closed.cancel();
        let old = {
            let mut slot = self.inner.slot.write().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                Slot::Open(_) => std::mem::replace(&mut *slot, Slot::Closed),
                _ => return,
            }
        };
        if let Slot::Open(store) = old {
            store.close();
        }
    }

    /// Attaches the node's files service (once, while the store is open); returns whether
    /// it was attached.
    fn attach(&self, net: Arc<service::FilesService>) -> bool {
        if !matches!(
            &*self.inner.slot.read().unwrap_or_else(|p| p.into_inner()),
            Slot::Open(_)
        ) {
            return false;
        }
        let mut slot = self.inner.net.write().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(net);
        true
    }

    fn net(&self) -> Option<Arc<service::FilesService>> {
        self.inner
            .net
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs a network operation on the node's runtime.
    async fn run_net<T, Fut>(&self, op: Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let Some(runtime) = &self.inner.runtime else {
            return Err(FilesError::NoDataDir.into());
        };
        match runtime.spawn(op).await {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err(FilesError::Closed.into()),
            Err(e) => Err(crate::Error::from(crate::node::runtime::TaskPanicked(e))
                .context("a files operation")),
        }
    }

    /// Before a put stores anything: the options are valid and, for more than one
    /// replica, enough live members can hold the file.
    fn precheck(
        &self,
        options: &PutOptions,
        size: Option<u64>,
    ) -> std::result::Result<Option<Arc<service::FilesService>>, FilesError> {
        store::check(options)?;
        self.store()?;
        if options.replicas <= 1 {
            return Ok(None);
        }
        let net = self.net().ok_or(FilesError::TooFewMembers {
            replicas: options.replicas,
            available: 1,
        })?;
        net.check_replicas(options.replicas, size)?;
        Ok(Some(net))
    }

    /// [`Files::precheck`], waiting up to [`JOIN_GRACE`] while too few members are known
    /// but a connected peer is still being admitted (a put right after `connect`).
    async fn precheck_settled(
        &self,
        options: &PutOptions,
        size: Option<u64>,
    ) -> std::result::Result<Option<Arc<service::FilesService>>, FilesError> {
        let first = self.precheck(options, size);
        let (Err(FilesError::TooFewMembers { .. }), Some(net), Some(runtime)) =
            (&first, self.net(), &self.inner.runtime)
        else {
            return first;
        };
        if !members::joining(net.shared()) {
            return first;
        }
        let wait =
            runtime.spawn(async move { members::settle_joining(net.shared(), JOIN_GRACE).await });
        if wait.await.is_err() {
            return Err(FilesError::Closed);
        }
        self.precheck(options, size)
    }

    /// Has the other replicas hold `id` (after it was stored here).
    async fn replicate(
        &self,
        net: Option<Arc<service::FilesService>>,
        id: FileId,
        options: PutOptions,
    ) -> Result<()> {
        match net {
            Some(net) => self.run_net(net.replicate(id, options)).await,
            None => Ok(()),
        }
    }

    fn store(&self) -> std::result::Result<Arc<Store>, FilesError> {
        match &*self.inner.slot.read().unwrap_or_else(|p| p.into_inner()) {
            Slot::Open(s) => Ok(s.clone()),
            Slot::NoDataDir => Err(FilesError::NoDataDir),
            Slot::Closed => Err(FilesError::Closed),
        }
    }

    /// Runs an operation on the node's runtime (awaitable from any executor).
    async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Store>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, FilesError>> + Send + 'static,
    {
        let store = self.store()?;
        let Some(runtime) = &self.inner.runtime else {
            return Err(FilesError::NoDataDir.into());
        };
        let task = runtime.spawn(op(store));
        match task.await {
            Ok(r) => Ok(r?),
            Err(e) if e.is_cancelled() => Err(FilesError::Closed.into()),
            Err(e) => Err(crate::Error::from(crate::node::runtime::TaskPanicked(e))
                .context("a files operation")),
        }
    }

    /// Stores `data`; returns its id. Storing content that is already stored changes
    /// nothing but the name and content type, if given.
    /// With `replicas` N > 1, returns once N-1 other live members hold it durably too
    /// (`PeerUnavailable` saying "stored on k of N" otherwise, keeping the copies made).
    pub async fn put_bytes(&self, data: impl Into<Bytes>, options: PutOptions) -> Result<FileId> {
        let data = data.into();
        let net = self
            .precheck_settled(&options, Some(data.len() as u64))
            .await?;
        let local = options.clone();
        // The holders' pulls are served from these bytes (`lend.rs`), inlined or not.
        let source = net.as_ref().map(|_| data.clone());
        let id = if data.len() as u64 <= inline::INLINE_MAX {
            // Inlined: bounded work that runs on any executor (`Store::put_inline`), so it
            // is awaited here rather than on a task of the node's runtime (two thread
            // hand-offs fewer per small put).
            self.store()?.put_inline(data, local).await?
        } else {
            self.run(move |s| s.put_bytes(data, local)).await?
        };
        let _lent = source.map(|d| {
            self.inner
                .lending
                .lend(*id.digest(), lend::Origin::Bytes(d))
        });
        self.replicate(net, id, options).await?;
        Ok(id)
    }

    /// Stores the file at `path`, streaming it in bounded memory; returns its id.
    /// Replicated as [`Files::put_bytes`] is.
    pub async fn put_path(&self, path: impl Into<PathBuf>, options: PutOptions) -> Result<FileId> {
        let path = path.into();
        let size = std::fs::metadata(&path).ok().map(|m| m.len());
        let net = self.precheck_settled(&options, size).await?;
        // Taken before the store reads the file: lent to the holders only if it is
        // still the same file when they pull it (`lend.rs`).
        let source = net.as_ref().and_then(|_| lend::Origin::of_path(&path));
        let local = options.clone();
        let id = self.run(move |s| s.put_path(path, local)).await?;
        let _lent = source.map(|o| self.inner.lending.lend(*id.digest(), o));
        self.replicate(net, id, options).await?;
        Ok(id)
    }

    /// The contents of `id`, verified: from this node's store, else fetched from a live
    /// member holding it (`NotFound` if none does, or if it was deleted). A damaged local
    /// copy is set aside and repaired from another holder (`Corrupted` if none has a
    /// good copy): wrong bytes are never returned.
    pub async fn get_bytes(&self, id: FileId) -> Result<Bytes> {
        let local = self.run(move |s| s.get_bytes(id)).await;
        match (local, self.net()) {
            (Ok(data), _) => Ok(data),
            (Err(e), Some(net)) if e.kind() == crate::ErrorKind::NotFound => {
                self.run_net(net.fetch_bytes(id)).await.map_err(|found| {
                    if found.kind() == crate::ErrorKind::NotFound {
                        found
                    } else {
                        found.context(format!("{id} is not stored here"))
                    }
                })
            }
            (Err(e), Some(net)) if e.kind() == crate::ErrorKind::Corrupted => {
                self.run_net(net.repair(id, e)).await?;
                self.run(move |s| s.get_bytes(id)).await
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Writes the contents of `id` to a new file at `path`, verified before it appears
    /// (found and repaired as [`Files::get_bytes`] does). Never replaces an existing file
    /// (`InvalidInput`).
    pub async fn get_to_path(&self, id: FileId, path: impl Into<PathBuf>) -> Result<()> {
        let path = path.into();
        let target = path.clone();
        let local = self.run(move |s| s.get_to_path(id, target)).await;
        match (local, self.net()) {
            (Ok(()), _) => Ok(()),
            (Err(e), Some(net)) if e.kind() == crate::ErrorKind::NotFound => {
                self.run_net(net.fetch_to_path(id, path)).await
            }
            (Err(e), Some(net)) if e.kind() == crate::ErrorKind::Corrupted => {
                self.run_net(net.repair(id, e)).await?;
                self.run(move |s| s.get_to_path(id, path)).await
            }
            (Err(e), _) => Err(e),
        }
    }

    /// What is known of `id`.
    pub async fn stat(&self, id: FileId) -> Result<FileInfo> {
        self.run(move |s| s.stat(id)).await
    }

    /// Up to `limit` (1..=[`MAX_PAGE`]) files with ids after `cursor` (from the first if
    /// `None`), in id order; `next` is the cursor of the following page.
    pub async fn list(&self, cursor: Option<FileId>, limit: usize) -> Result<Page> {
        self.run(move |s| s.list(cursor, limit)).await
    }

    /// Deletes `id` here and on every holder recorded (`NotFound` if it is not stored
    /// here). Holders unreachable now apply it when they are back; until all did, a
    /// tombstone is kept, and the file never comes back (not through search, not through
    /// repair).
    pub async fn delete(&self, id: FileId) -> Result<()> {
        match self.net() {
            Some(net) => {
                self.store()?;
                self.run_net(net.delete(id)).await
            }
            None => self.run(move |s| s.delete(id)).await,
        }
    }

    /// Progress of the files this node moves across the network from now on: for each
    /// peer, the bytes of a put's replica it sent (`Sending`), of a replica it pulls as a
    /// holder or of a file a get fetched (`Receiving`), done out of the total. These are
    /// the transfer engine's events with `name` set to the file id (`blake3:<hex>`); the
    /// last one of each peer has everything done. Ends (`Closed`) when the store closes.
    pub fn progress(&self) -> Subscription<Progress> {
        Subscription::new(self.inner.progress.subscribe(), self.inner.closed.clone())
    }

    /// The sender of [`Files::progress`] events (the files service relays into it).
    fn progress_sender(&self) -> broadcast::Sender<Progress> {
        self.inner.progress.clone()
    }

    /// How many pulls of a replicating put were served from the put's source rather than
    /// from the stored copy. Only with the `test-hooks` feature.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn served_from_source_for_tests(&self) -> u64 {
        self.inner.lending.served()
    }

    /// Disk used, quota and file count.
    pub fn stats(&self) -> Result<FilesStats> {
        Ok(self.store()?.stats())
    }
}

/// The transfer engine serves stored files to fetches through this.
impl crate::service::StoredContent for Files {
    fn holds(&self, digest: &[u8; 32]) -> bool {
        self.store().is_ok_and(|s| s.holds(digest))
    }

    fn open_stored(&self, digest: &[u8; 32]) -> Option<(u64, Box<dyn std::io::Read + Send>)> {
        let store = self.store().ok()?;
        if self.inner.lending.has(digest) {
            // A put replicating: its source serves, not a decryption of the copy.
            if let Ok(Some(record)) = store.record_of(&FileId::from_digest(*digest)) {
                if let Some(read) = self.inner.lending.open(digest, record.size) {
                    return Some((record.size, read));
                }
            }
        }
        match store.open_plain(digest) {
            Ok(Some((size, reader))) => Some((size, Box::new(reader))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(id = %FileId::from_digest(*digest), error = %e, "files: not serving a damaged copy");
                None
            }
        }
    }
}

/// Membership advertises this.
impl crate::service::DiskFree for Files {
    fn disk_free(&self) -> u64 {
        self.store().map_or(0, |s| s.disk_free())
    }
}

/// The node closes its store when it shuts down (after its tasks are cancelled).
impl crate::service::Shutdown for Files {
    fn stop(&self) {
        self.close();
    }
}
