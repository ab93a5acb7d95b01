//! Files: persistent, encrypted files on this node's disk (its data dir), named by the
//! content hash (`"blake3:<hex>"`). Sizes and counts cross as numbers, the creation time
//! as unix milliseconds.

use std::path::PathBuf;

use memmesh::files::{FileId, PutOptions};
use napi::bindgen_prelude::{Buffer, Either, Env, PromiseRaw, Uint8ArraySlice};
use napi_derive::napi;

use crate::bytes::to_buffer;
use crate::config::whole;
use crate::error::{invalid, to_js};
use crate::runtime::spawn_promise;
use crate::transfer::ProgressStream;

/// What is known of a stored file (`files.stat(id)`, `files.list()`).
#[napi(object)]
pub struct FileInfo {
    /// Its id, `"blake3:<64 hex digits>"`.
    pub id: String,
    /// Its size in bytes.
    pub size: f64,
    /// The name given at put, or `null`.
    pub name: Option<String>,
    /// The content type given at put, or `null`.
    pub content_type: Option<String>,
    /// When it was first stored on this node, in unix milliseconds.
    pub created_ms: f64,
    /// The ids of the nodes holding it.
    pub holders: Vec<String>,
}

impl From<memmesh::FileInfo> for FileInfo {
    fn from(f: memmesh::FileInfo) -> Self {
        FileInfo {
            id: f.id.to_string(),
            size: f.size as f64,
            name: f.name,
            content_type: f.content_type,
            created_ms: f.created as f64,
            holders: f.holders.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One page of `files.list()`.
#[napi(object)]
pub struct FilesPage {
    /// The files of this page, in id order.
    pub files: Vec<FileInfo>,
    /// The cursor of the next page, or `null` after the last.
    pub next: Option<String>,
}

/// Usage of the files store (`files.stats()`).
#[napi(object)]
pub struct FilesStats {
    /// Bytes of stored content on disk (ciphertext).
    pub disk_used: f64,
    /// The disk quota in bytes, or `null` for no limit.
    pub disk_quota: Option<f64>,
    /// Files stored.
    pub files: f64,
}

/// Options of `files.put`.
#[napi(object)]
#[derive(Default)]
pub struct PutFileOptions {
    /// A name kept with the file (encrypted).
    pub name: Option<String>,
    /// A content type kept with the file (encrypted).
    pub content_type: Option<String>,
    /// How many nodes must hold the file (only 1 for now).
    pub replicas: Option<f64>,
}

/// The files store of a node (the native half of `node.files`).
#[napi(js_name = "NativeFiles")]
pub struct Files {
    inner: memmesh::Files,
    node: memmesh::Node,
}

impl Files {
    pub(crate) fn new(inner: memmesh::Files, node: memmesh::Node) -> Self {
        Self { inner, node }
    }
}

fn file_id(id: &str) -> memmesh::Result<FileId> {
    FileId::parse(id)
}

/// The core's put options from the JS ones.
fn put_options(o: Option<PutFileOptions>) -> memmesh::Result<PutOptions> {
    let o = o.unwrap_or_default();
    let replicas = match o.replicas {
        None => 1,
        Some(n) => u32::try_from(whole("replicas", n)?)
            .map_err(|_| invalid(format!("replicas is too large: {n}")))?,
    };
    Ok(PutOptions {
        name: o.name,
        content_type: o.content_type,
        replicas,
    })
}

#[napi]
impl Files {
    /// Stores `source` (a file path, streamed from disk, or bytes) and resolves with its
    /// id once it is durable.
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        source: Either<String, Uint8ArraySlice<'_>>,
        options: Option<PutFileOptions>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let options = to_js(env, put_options(options))?;
        let files = self.inner.clone();
        match source {
            Either::A(path) => spawn_promise(
                env,
                &self.node.runtime_handle(),
                async move { files.put_path(PathBuf::from(path), options).await },
                |id| Ok(id.to_string()),
            ),
            Either::B(bytes) => {
                let bytes = memmesh::Bytes::copy_from_slice(&bytes);
                spawn_promise(
                    env,
                    &self.node.runtime_handle(),
                    async move { files.put_bytes(bytes, options).await },
                    |id| Ok(id.to_string()),
                )
            }
        }
    }

    /// Resolves with the contents of `id` (verified).
    #[napi(ts_return_type = "Promise<Buffer>", catch_unwind)]
    pub fn get<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, Buffer>> {
        let id = to_js(env, file_id(&id))?;
        let files = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { files.get_bytes(id).await },
            |data| Ok(to_buffer(&data)),
        )
    }

    /// Writes the contents of `id` (verified) to the new file `path`.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn get_to_path<'env>(
        &self,
        env: &'env Env,
        id: String,
        path: String,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let id = to_js(env, file_id(&id))?;
        let files = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { files.get_to_path(id, PathBuf::from(path)).await },
            Ok,
        )
    }

    /// Resolves with what is known of `id`.
    #[napi(ts_return_type = "Promise<FileInfo>", catch_unwind)]
    pub fn stat<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, FileInfo>> {
        let id = to_js(env, file_id(&id))?;
        let files = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { files.stat(id).await },
            |info| Ok(FileInfo::from(info)),
        )
    }

    /// Resolves with up to `limit` files with ids after `cursor` (from the first if
    /// missing), in id order.
    #[napi(ts_return_type = "Promise<FilesPage>", catch_unwind)]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        cursor: Option<String>,
        limit: f64,
    ) -> napi::Result<PromiseRaw<'env, FilesPage>> {
        let cursor = to_js(env, cursor.map(|c| file_id(&c)).transpose())?;
        let limit = to_js(
            env,
            whole("limit", limit).and_then(|n| {
                usize::try_from(n).map_err(|_| invalid(format!("limit is too large: {n}")))
            }),
        )?;
        let files = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { files.list(cursor, limit).await },
            |page| {
                Ok(FilesPage {
                    files: page.files.into_iter().map(FileInfo::from).collect(),
                    next: page.next.map(|id| id.to_string()),
                })
            },
        )
    }

    /// Deletes `id`; rejects with `NotFound` if it is not stored here.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn delete<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, ()>> {
        let id = to_js(env, file_id(&id))?;
        let files = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { files.delete(id).await },
            Ok,
        )
    }

    /// Progress of the files this node moves across the network from now on (a put's
    /// replicas sent, a replica pulled, a get fetched from another node): transfer
    /// progress events whose `name` is the file id.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> ProgressStream {
        ProgressStream::of(self.inner.progress(), self.node.clone())
    }

    /// Disk used, quota and file count.
    #[napi(catch_unwind)]
    pub fn stats(&self, env: &Env) -> napi::Result<FilesStats> {
        let s = to_js(env, self.inner.stats())?;
        Ok(FilesStats {
            disk_used: s.disk_used as f64,
            disk_quota: s.disk_quota.map(|q| q as f64),
            files: s.files as f64,
        })
    }
}
