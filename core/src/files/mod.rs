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
//! This version stores files on the local node only: replication, network search,
//! distributed delete and known peers come later (the metadata schema already has the
//! `holders` and `tombstones` tables they need).

pub mod commit;
pub mod contents;
pub mod crypt;
pub mod db;
pub mod error;
pub mod id;
pub mod inline;
pub mod key;
pub mod store;

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

pub use error::FilesError;
pub use id::FileId;
pub use store::{OpenOptions, MAX_NAME_LEN, MAX_PAGE};

use crate::error::Result;
use crate::identity::NodeId;
use store::Store;

/// Options of a put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    /// A name to remember with the file (stored encrypted).
    pub name: Option<String>,
    /// A content type to remember with the file (stored encrypted).
    pub content_type: Option<String>,
    /// How many nodes must hold the file before the put returns (this one included).
    /// Only 1 for now: more is `Unsupported` until replication arrives.
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
    /// The nodes holding it (this node, until replication arrives).
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
    pub async fn put_bytes(&self, data: impl Into<Bytes>, options: PutOptions) -> Result<FileId> {
        let data = data.into();
        self.run(move |s| s.put_bytes(data, options)).await
    }

    /// Stores the file at `path`, streaming it in bounded memory; returns its id.
    pub async fn put_path(&self, path: impl Into<PathBuf>, options: PutOptions) -> Result<FileId> {
        let path = path.into();
        self.run(move |s| s.put_path(path, options)).await
    }

    /// The contents of `id`, verified (`Corrupted` if the stored copy was damaged,
    /// `NotFound` if it is not stored here).
    pub async fn get_bytes(&self, id: FileId) -> Result<Bytes> {
        self.run(move |s| s.get_bytes(id)).await
    }

    /// Writes the contents of `id` to a new file at `path`, verified before it appears.
    /// Never replaces an existing file (`InvalidInput`).
    pub async fn get_to_path(&self, id: FileId, path: impl Into<PathBuf>) -> Result<()> {
        let path = path.into();
        self.run(move |s| s.get_to_path(id, path)).await
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

    /// Deletes `id` (`NotFound` if it is not stored here).
    pub async fn delete(&self, id: FileId) -> Result<()> {
        self.run(move |s| s.delete(id)).await
    }

    /// Disk used, quota and file count.
    pub fn stats(&self) -> Result<FilesStats> {
        Ok(self.store()?.stats())
    }
}

/// The node closes its store when it shuts down (after its tasks are cancelled).
impl crate::service::Shutdown for Files {
    fn stop(&self) {
        self.close();
    }
}
