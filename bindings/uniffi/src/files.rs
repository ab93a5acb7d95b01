//! Files: persistent, encrypted files on this node's disk (its data dir), named by their
//! content hash (`"blake3:<64 hex digits>"`) and kept across restarts (from
//! `Node.files()`). Paths are strings; the creation time is unix milliseconds.

use std::path::PathBuf;
use std::sync::Arc;

use memmesh::files::FileId;

use crate::error::MemmeshError;
use crate::transfer::{ProgressEvents, Source};

/// Options of `Files.put`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PutOptions {
    /// A name kept with the file (stored encrypted).
    #[uniffi(default = None)]
    pub name: Option<String>,
    /// A content type kept with the file (stored encrypted).
    #[uniffi(default = None)]
    pub content_type: Option<String>,
    /// How many nodes must hold the file before the put returns (this one included).
    /// Only 1 for now: more throws `Unsupported` until replication arrives.
    #[uniffi(default = 1)]
    pub replicas: u32,
}

impl From<PutOptions> for memmesh::PutOptions {
    fn from(o: PutOptions) -> Self {
        memmesh::PutOptions {
            name: o.name,
            content_type: o.content_type,
            replicas: o.replicas,
        }
    }
}

/// What is known of a stored file (from `Files.stat()` and `Files.list()`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileInfo {
    /// Its id, `"blake3:<64 hex digits>"`.
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// The name given at put, if any.
    pub name: Option<String>,
    /// The content type given at put, if any.
    pub content_type: Option<String>,
    /// When it was first stored on this node, in unix milliseconds.
    pub created_ms: u64,
    /// The ids of the nodes holding it.
    pub holders: Vec<String>,
}

impl From<memmesh::FileInfo> for FileInfo {
    fn from(f: memmesh::FileInfo) -> Self {
        Self {
            id: f.id.to_string(),
            size: f.size,
            name: f.name,
            content_type: f.content_type,
            created_ms: f.created,
            holders: f.holders.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One page of `Files.list()`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FilesPage {
    /// The files of this page, in id order.
    pub files: Vec<FileInfo>,
    /// The cursor of the next page (pass it to `list`), or `None` after the last.
    pub next: Option<String>,
}

impl From<memmesh::files::Page> for FilesPage {
    fn from(p: memmesh::files::Page) -> Self {
        Self {
            files: p.files.into_iter().map(FileInfo::from).collect(),
            next: p.next.map(|id| id.to_string()),
        }
    }
}

/// The core's files usage, crossing as it is (`uniffi::remote` below mirrors its
/// definition for the interface).
pub use memmesh::FilesStats;

/// Usage of the files store (from `Files.stats()`).
#[uniffi::remote(Record)]
pub struct FilesStats {
    /// Bytes of stored content on disk (ciphertext).
    pub disk_used: u64,
    /// The disk quota in bytes, or `None` for no limit.
    pub disk_quota: Option<u64>,
    /// Files stored.
    pub files: u64,
}

/// The files store of a node (from `Node.files()`). Keeps its node alive. Without a
/// data dir every call throws `Unsupported`, saying why.
#[derive(Debug, uniffi::Object)]
pub struct Files {
    inner: memmesh::Files,
}

impl Files {
    pub(crate) fn new(inner: memmesh::Files) -> Self {
        Self { inner }
    }
}

/// Parses a file id given as text (`"blake3:<64 hex digits>"`); `InvalidInput` if bad.
fn parse_file_id(id: &str) -> Result<FileId, MemmeshError> {
    FileId::parse(id).map_err(MemmeshError::from)
}

#[uniffi::export]
impl Files {
    /// Stores `source` (a file, streamed from disk, or bytes) durably and returns its id.
    /// Throws `QuotaExceeded` over the disk quota (leaving nothing behind).
    #[uniffi::method(default(options = None))]
    pub async fn put(
        &self,
        source: Source,
        options: Option<PutOptions>,
    ) -> Result<String, MemmeshError> {
        let options = options.map(Into::into).unwrap_or_default();
        let id = match source {
            Source::Path { path } => self.inner.put_path(PathBuf::from(path), options).await?,
            Source::Bytes { data } => self.inner.put_bytes(data, options).await?,
        };
        Ok(id.to_string())
    }

    /// The contents of `id`, verified. Throws `NotFound` if it is not stored here,
    /// `Corrupted` if the stored copy was damaged.
    pub async fn get(&self, id: String) -> Result<Vec<u8>, MemmeshError> {
        let id = parse_file_id(&id)?;
        Ok(self.inner.get_bytes(id).await?.to_vec())
    }

    /// Writes the contents of `id`, verified, to the new file `path` (never replacing an
    /// existing one: `InvalidInput`).
    pub async fn get_to_path(&self, id: String, path: String) -> Result<(), MemmeshError> {
        let id = parse_file_id(&id)?;
        Ok(self.inner.get_to_path(id, PathBuf::from(path)).await?)
    }

    /// What is known of `id`.
    pub async fn stat(&self, id: String) -> Result<FileInfo, MemmeshError> {
        let id = parse_file_id(&id)?;
        Ok(self.inner.stat(id).await?.into())
    }

    /// Up to `limit` (1..1000) files with ids after `cursor` (from the first if `None`),
    /// in id order; the page's `next` is the cursor of the following page.
    #[uniffi::method(default(cursor = None, limit = 100))]
    pub async fn list(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<FilesPage, MemmeshError> {
        let cursor = cursor.map(|c| parse_file_id(&c)).transpose()?;
        Ok(self.inner.list(cursor, limit as usize).await?.into())
    }

    /// Deletes `id` from this node. Throws `NotFound` if it is not stored here.
    pub async fn delete(&self, id: String) -> Result<(), MemmeshError> {
        let id = parse_file_id(&id)?;
        Ok(self.inner.delete(id).await?)
    }

    /// Disk used, quota and file count.
    pub fn stats(&self) -> Result<FilesStats, MemmeshError> {
        Ok(self.inner.stats()?)
    }

    /// Progress of the files this node moves across the network from now on (a put's
    /// replicas sent, a replica pulled, a get fetched from another node): transfer
    /// progress reports whose `name` is the file id; the last one of each peer has
    /// `done == total`. `next()` throws `Closed` once the node shuts down.
    pub fn progress(&self) -> Arc<ProgressEvents> {
        Arc::new(ProgressEvents::of(self.inner.progress()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_option_literal_defaults_are_the_core_defaults() {
        let core = memmesh::PutOptions::default();
        let ffi = PutOptions {
            name: None,
            content_type: None,
            replicas: 1,
        };
        assert_eq!(memmesh::PutOptions::from(ffi), core);
    }
}
