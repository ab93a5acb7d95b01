//! Small files kept out of the contents directory (ADR 0016, amended): a file of at most
//! [`INLINE_MAX`] bytes is encrypted exactly as a content file would be (same header,
//! same per-file key wrapped by the storage key, same segments) and the ciphertext is
//! handed to the group committer with its row. Since schema 3 the committer appends it to
//! the value log (`valuelog.rs`), synced before the transaction holding the row (which
//! carries the pointer since schema 4); schema-2 stores keep their small files in the `inline` table of
//! `files.redb`, read here too. A put of a small file therefore costs no content file, no
//! rename and no directory sync: a whole batch shares one log write and one redb commit.
//!
//! Reads decrypt and verify the sealed bytes with the content files' code
//! ([`decrypt_stream`]); their `stored` length counts against the quota like a content
//! file's; a crash cannot leave a row without its contents (the log is synced first, and
//! its uncommitted tail is cut at open); a delete removes the row and its pointer in one
//! transaction. Files stored as content files before (schema 1) stay content files.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use redb::{ReadableTable, TableDefinition};

use super::contents::{decrypt_stream, read_decrypted};
use super::crypt::{Encryptor, SegmentKey, SEGMENT, TAG};
use super::db::{Db, Op, Record};
use super::error::FilesError;
use super::id::FileId;
use super::key::StorageKey;
use super::store::{blocking, now_ms, Store};
use super::PutOptions;

/// Files of at most this many plaintext bytes are inlined in the metadata.
pub const INLINE_MAX: u64 = 16 * 1024;

/// The `inline` table: file id (32 bytes) → its sealed contents (a content file's bytes).
pub(crate) const INLINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline");

/// Encrypts `data` in the content-file layout (header, then sealed segments); returns the
/// plaintext's BLAKE3 digest and the ciphertext.
///
/// A small file is one segment (the last, number 0), so it is sealed in one pass, exactly
/// as [`Encryptor`] would seal it, without the encryptor's segment buffer: the plaintext
/// is copied once, into the output, and sealed there in place.
pub fn seal(data: &[u8], key: &StorageKey) -> Result<([u8; 32], Vec<u8>), FilesError> {
    if data.len() > SEGMENT {
        let (mut enc, mut out) = Encryptor::new(key.aead())?;
        out.reserve(data.len() + 64);
        enc.update(data, &mut out)?;
        let (digest, _) = enc.finish(&mut out)?;
        return Ok((digest, out));
    }
    let (segment, header) = SegmentKey::new_file(key.aead())?;
    let mut out = Vec::with_capacity(header.len() + data.len() + TAG);
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    let tag = segment.seal(0, true, &mut out[header.len()..])?;
    out.extend_from_slice(&tag);
    Ok((*blake3::hash(data).as_bytes(), out))
}

impl Db {
    /// A file's inlined contents, if it is inlined.
    pub fn inline(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(INLINE)?;
        Ok(t.get(&id[..])?.map(|v| v.value().to_vec()))
    }

    /// The length of every inlined file's contents (recovery).
    pub fn inline_lengths(&self) -> Result<HashMap<[u8; 32], u64>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(INLINE)?;
        let mut out = HashMap::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            if let Ok(id) = <[u8; 32]>::try_from(k.value()) {
                out.insert(id, v.value().len() as u64);
            }
        }
        Ok(out)
    }
}

/// Reads a small file's plaintext from `path` (at most `size` bytes, as its metadata
/// said: more is `Invalid`, as for a streamed put).
fn read_small(path: &Path, size: u64) -> Result<Vec<u8>, FilesError> {
    let file = std::fs::File::open(path).map_err(FilesError::io("opening", path))?;
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(size + 1)
        .read_to_end(&mut data)
        .map_err(FilesError::io("reading", path))?;
    if data.len() as u64 > size {
        return Err(FilesError::Invalid(format!(
            "{} grew while it was being stored",
            path.display()
        )));
    }
    Ok(data)
}

impl Store {
    /// Puts a file of at most [`INLINE_MAX`] bytes from `path` (its size as found).
    pub(super) async fn put_small_path(
        self: Arc<Self>,
        path: PathBuf,
        size: u64,
        options: PutOptions,
    ) -> Result<FileId, FilesError> {
        let data = blocking(move || read_small(&path, size)).await?;
        self.put_inline(Bytes::from(data), options).await
    }

    /// Puts a file of at most [`INLINE_MAX`] bytes, inlined: one sealed row and its
    /// contents, committed together by the group committer.
    ///
    /// Bounded work (at most 16 KiB to encrypt and hash) and no blocking-pool hop: this
    /// future runs on any executor (no tokio context needed), so [`super::Files`] awaits
    /// it on the caller's task, without a task on the node's runtime. Whether the id is
    /// stored already is checked by the committer in its write transaction (no read
    /// transaction per put); only then does the put take the id's lock to update the name
    /// and content type.
    pub(super) async fn put_inline(
        self: Arc<Self>,
        data: Bytes,
        options: PutOptions,
    ) -> Result<FileId, FilesError> {
        // Counted until it returns: the committer's batch waits for puts on their way.
        let _entered = self.committer.enter();
        let size = data.len() as u64;
        let (digest, content) = seal(&data, &self.key)?;
        let content = Bytes::from(content);
        let id = FileId::from_digest(digest);
        let stored = content.len() as u64;
        loop {
            let reservation = match self.reserve(stored) {
                Ok(r) => r,
                // Content already stored costs no more room: not over the quota.
                Err(e) if self.db.get(&digest)?.is_some() => {
                    if self.put_existing(id, &options).await? {
                        return Ok(id);
                    }
                    // Deleted in between: the quota applies again.
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let row = Record {
                size,
                stored,
                created: now_ms(),
                name: options.name.clone(),
                content_type: options.content_type.clone(),
                loc: None,
            }
            .encode(&digest, &self.key)?;
            // No lock: the check, the row and its contents are one operation of the
            // committer, so a concurrent delete or put of the same id is ordered before or
            // after it as a whole.
            let op = Op::PutInline {
                id: digest,
                row,
                content: content.clone(),
            };
            let applied = self.committer.submit(op, stored).await?;
            drop(reservation);
            if !applied.kept || self.put_existing(id, &options).await? {
                return Ok(id);
            }
            // Deleted between the committer's check and the lock: store it again.
        }
    }

    /// A put of content found stored: updates its name and content type under the id's
    /// lock. `false` if it was deleted before the lock was taken.
    async fn put_existing(&self, id: FileId, options: &PutOptions) -> Result<bool, FilesError> {
        if options.name.is_none() && options.content_type.is_none() {
            // Nothing to change: it was stored (durably) when the committer found it.
            return Ok(true);
        }
        let _lock = self.lock_of(id.digest()).lock().await;
        // Read again under the lock: a delete may have run in between.
        match self.db.get(id.digest())? {
            Some(row) => {
                self.update_existing(id, row, options.clone()).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Decrypts and verifies the contents of `id` (inlined or in its content file),
    /// `stored` bytes of ciphertext as its record says, into `sink`.
    pub(super) fn read_contents(
        &self,
        id: &FileId,
        stored: u64,
        sink: impl FnMut(&[u8]) -> Result<(), FilesError>,
    ) -> Result<(), FilesError> {
        let what = id.to_string();
        match self.small_contents(id.digest())? {
            Some(content) => {
                let len = content.len() as u64;
                if len != stored {
                    return Err(FilesError::corrupted(format!(
                        "{what}: inlined contents are {len} bytes, expected {stored}"
                    )));
                }
                decrypt_stream(&content[..], len, &self.key, id.digest(), &what, sink)
            }
            None => read_decrypted(
                &self.path_of(id.digest()),
                &self.key,
                id.digest(),
                stored,
                &what,
                sink,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::crypt::stored_len;

    #[test]
    fn sealed_contents_have_the_content_file_layout_and_read_back() {
        let key = StorageKey::from_bytes(&[7; 32]).unwrap();
        for size in [0usize, 1, 4096, INLINE_MAX as usize] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let (digest, ct) = seal(&data, &key).unwrap();
            assert_eq!(digest, *blake3::hash(&data).as_bytes());
            assert_eq!(ct.len() as u64, stored_len(size as u64));
            let mut back = Vec::new();
            decrypt_stream(&ct[..], ct.len() as u64, &key, &digest, "x", |p| {
                back.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(back, data);
            let mut bad = ct.clone();
            let at = bad.len() - 1;
            bad[at] ^= 1;
            let e = decrypt_stream(&bad[..], bad.len() as u64, &key, &digest, "x", |_| Ok(()))
                .unwrap_err();
            assert_eq!(
                crate::error::Classify::kind(&e),
                crate::ErrorKind::Corrupted
            );
        }
    }
}
