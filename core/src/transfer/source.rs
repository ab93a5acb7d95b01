//! What a transfer sends: a source prepared once (bytes hashed up front, or a file named),
//! opened per attempt, and read as chunks with their BLAKE3 hashes (a file is read and
//! hashed ahead of the network on a blocking thread).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::service::StoredContent;
use crate::transfer::error::TransferError;
use crate::transfer::tree::{chunk_count, chunk_hash, chunk_len, ContentTree};
use crate::transfer::verify::DEFAULT_CHUNK_SIZE;
use crate::transfer::Source;

/// A source ready to stream to any number of peers: bytes with their BLAKE3 tree computed
/// once (shared by every peer and every fetch), or a file, read and hashed as it streams.
#[derive(Debug, Clone)]
pub(crate) enum Prepared {
    Bytes {
        data: Bytes,
        tree: Arc<ContentTree>,
    },
    Path(PathBuf),
    /// A file of the files store, by its digest (decrypted as it streams).
    Stored {
        digest: [u8; 32],
        store: Arc<dyn StoredContent>,
    },
}

impl std::fmt::Debug for dyn StoredContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredContent")
    }
}

/// Content up to this size is hashed on the calling task; larger off the runtime.
const HASH_INLINE_MAX: usize = 1 << 20;

impl Prepared {
    /// Prepares `source` (hashes bytes once; a file is only named).
    pub(crate) async fn new(source: &Source) -> Result<Prepared> {
        match source {
            Source::Bytes(data) => {
                let data = data.clone();
                let tree = if data.len() <= HASH_INLINE_MAX {
                    ContentTree::of(&data, DEFAULT_CHUNK_SIZE)?
                } else {
                    let d = data.clone();
                    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                    tokio::task::spawn_blocking(move || {
                        ContentTree::of_parallel(&d, DEFAULT_CHUNK_SIZE, threads)
                    })
                    .await
                    .map_err(|e| TransferError::task("hashing", e))??
                };
                Ok(Prepared::Bytes {
                    data,
                    tree: Arc::new(tree),
                })
            }
            Source::Path(path) => Ok(Prepared::Path(path.clone())),
        }
    }
}

/// Where the bytes come from, opened.
pub(crate) enum Reader {
    File {
        path: PathBuf,
        file: std::fs::File,
        len: u64,
        modified: Option<SystemTime>,
    },
    Bytes {
        data: Bytes,
        tree: Arc<ContentTree>,
    },
    /// A stored file's plaintext, read through its store.
    Stored {
        read: Box<dyn std::io::Read + Send>,
        len: u64,
        digest: [u8; 32],
    },
}

impl Reader {
    /// Opens `source`; returns it with the name it is offered under and its size.
    pub(crate) async fn open(source: &Prepared) -> Result<(Reader, String, u64)> {
        match source {
            Prepared::Bytes { data, tree } => {
                // Named after the content, so two byte sends never share a file name.
                let hex = data_encoding::HEXLOWER.encode(&tree.root[..6]);
                Ok((
                    Reader::Bytes {
                        data: data.clone(),
                        tree: tree.clone(),
                    },
                    format!("data-{hex}"),
                    data.len() as u64,
                ))
            }
            Prepared::Path(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| TransferError::file(format!("opening {}", path.display()), e))?;
                let meta = file.metadata().await?;
                if !meta.is_file() {
                    return Err(TransferError::NotAFile(path.clone()).into());
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "data".to_string());
                Ok((
                    Reader::File {
                        path: path.clone(),
                        file: file.into_std().await,
                        len: meta.len(),
                        modified: meta.modified().ok(),
                    },
                    name,
                    meta.len(),
                ))
            }
            Prepared::Stored { digest, store } => {
                let (len, read) = store.open_stored(digest).ok_or_else(|| {
                    TransferError::NotPublished(data_encoding::HEXLOWER.encode(digest))
                })?;
                let name = format!("file-{}", &data_encoding::HEXLOWER.encode(digest)[..12]);
                Ok((
                    Reader::Stored {
                        read,
                        len,
                        digest: *digest,
                    },
                    name,
                    len,
                ))
            }
        }
    }

    /// The id naming this content across attempts: the content hash for bytes; for a file
    /// a hash of the sender, name, size and modification time (known without reading it).
    pub(crate) fn id(&self, sender: &NodeId, name: &str) -> [u8; 32] {
        match self {
            Reader::Bytes { tree, .. } => tree.root,
            Reader::Stored { digest, .. } => *digest,
            Reader::File { len, modified, .. } => {
                let mut h = blake3::Hasher::new();
                h.update(sender.as_bytes());
                h.update(name.as_bytes());
                h.update(&len.to_le_bytes());
                let nanos = modified
                    .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                h.update(&nanos.to_le_bytes());
                *h.finalize().as_bytes()
            }
        }
    }

    /// The chunks of the content with their hashes, in order. A file is read and hashed
    /// ahead (at most [`READ_AHEAD`] chunks) on a blocking thread while earlier chunks are
    /// on the wire; it fails clearly if the file changes meanwhile.
    pub(crate) fn chunks(self, chunk_size: u32) -> Chunks {
        match self {
            Reader::Bytes { data, tree } => Chunks::Bytes {
                data,
                tree,
                next: 0,
            },
            Reader::File {
                path,
                file,
                len,
                modified,
            } => {
                let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
                tokio::task::spawn_blocking(move || {
                    read_file_chunks(path, file, len, modified, chunk_size, tx)
                });
                Chunks::File(rx)
            }
            Reader::Stored { read, len, .. } => {
                let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
                tokio::task::spawn_blocking(move || read_stored_chunks(read, len, chunk_size, tx));
                Chunks::File(rx)
            }
        }
    }
}

/// Chunks of a file read and hashed ahead of the network.
const READ_AHEAD: usize = 2;

/// One chunk and its hash.
pub(crate) type Hashed = (Bytes, [u8; 32]);

/// The chunks of an opened source with their hashes, in order ([`Reader::chunks`]).
pub(crate) enum Chunks {
    Bytes {
        data: Bytes,
        tree: Arc<ContentTree>,
        next: usize,
    },
    File(tokio::sync::mpsc::Receiver<Result<Hashed>>),
}

impl Chunks {
    /// The next chunk and its hash; `None` after the last one.
    pub(crate) async fn next(&mut self) -> Option<Result<Hashed>> {
        match self {
            Chunks::Bytes { data, tree, next } => {
                let hash = *tree.chunk_hashes.get(*next)?;
                let size = tree.chunk_size as usize;
                let start = *next * size;
                let end = (start + size).min(data.len());
                *next += 1;
                Some(Ok((data.slice(start..end), hash)))
            }
            Chunks::File(rx) => rx.recv().await,
        }
    }
}

/// Reads `file` chunk by chunk, hashing each, and hands them to `tx` until the end, an
/// error, or the streaming side going away.
fn read_file_chunks(
    path: PathBuf,
    file: std::fs::File,
    len: u64,
    modified: Option<SystemTime>,
    chunk_size: u32,
    tx: tokio::sync::mpsc::Sender<Result<Hashed>>,
) {
    use std::io::Read;
    let count = chunk_count(len, chunk_size);
    let changed = || Error::from(TransferError::SourceChanged(path.clone()));
    let mut file = file;
    for index in 0..count {
        let want = chunk_len(len, chunk_size, index) as usize;
        let read = (|| {
            let mut buf = Vec::with_capacity(want);
            (&mut file).take(want as u64).read_to_end(&mut buf)?;
            let meta = file.metadata()?;
            if buf.len() != want || meta.len() != len || meta.modified().ok() != modified {
                return Err(changed());
            }
            let hash = chunk_hash(index, count, chunk_size, &buf);
            Ok((Bytes::from(buf), hash))
        })();
        let failed = read.is_err();
        if tx.blocking_send(read).is_err() || failed {
            return;
        }
    }
}

/// Reads a stored file's plaintext chunk by chunk, hashing each, and hands them to `tx`
/// until the end, an error (a damaged stored copy), or the streaming side going away.
fn read_stored_chunks(
    mut read: Box<dyn std::io::Read + Send>,
    len: u64,
    chunk_size: u32,
    tx: tokio::sync::mpsc::Sender<Result<Hashed>>,
) {
    use std::io::Read;
    let count = chunk_count(len, chunk_size);
    for index in 0..count {
        let want = chunk_len(len, chunk_size, index) as usize;
        let chunk = (|| {
            let mut buf = Vec::with_capacity(want);
            (&mut read).take(want as u64).read_to_end(&mut buf)?;
            if buf.len() != want {
                return Err(Error::from(TransferError::Bug("a stored file ended early")));
            }
            let hash = chunk_hash(index, count, chunk_size, &buf);
            Ok((Bytes::from(buf), hash))
        })();
        let failed = chunk.is_err();
        if tx.blocking_send(chunk).is_err() || failed {
            return;
        }
    }
}
