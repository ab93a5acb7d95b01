//! The store on one node: opening (key, metadata, recovery), and each operation's disk
//! work. Blocking work runs on tokio's blocking pool; metadata goes through the
//! group committer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tracing::{info, warn};

use super::commit::{Committer, Usage};
use super::contents::{self, write_encrypted, TempFile, CONTENTS_DIR};
use super::crypt::stored_len;
use super::db::{Commit, Db, Op, Record, DB_FILE};
use super::error::FilesError;
use super::id::FileId;
use super::inline::INLINE_MAX;
use super::key::{StorageKey, KEY_FILE};
use super::logfmt::Loc;
use super::partials::Partials;
use super::reader::PlainReader;
use super::valuelog::{ValueLog, LOG_DIR};
use super::{FileInfo, FilesStats, Page, PutOptions};
use crate::identity::NodeId;

/// Longest name or content type accepted at put, in bytes.
pub const MAX_NAME_LEN: usize = 4096;
/// Most files one `list` call returns.
pub const MAX_PAGE: usize = 1000;
/// Per-id locks (striped): a put and a delete of one id never interleave.
const LOCK_STRIPES: usize = 64;

/// A file id and nodes: a deleted file's holders that have yet to apply the delete, or a
/// file's holders.
pub type PendingDelete = ([u8; 32], Vec<NodeId>);

/// What a store is opened with.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The node's data dir.
    pub data_dir: PathBuf,
    /// The storage passphrase, if the key is (to be) protected by one.
    pub passphrase: Option<String>,
    /// Most ciphertext bytes stored, if limited.
    pub quota: Option<u64>,
    /// This node (the holder recorded for each file).
    pub node: NodeId,
}

/// An open store.
pub struct Store {
    contents: PathBuf,
    pub(super) key: StorageKey,
    pub(super) db: Arc<Db>,
    /// Small files' sealed contents (schema 3).
    pub(super) log: Arc<ValueLog>,
    pub(super) committer: Committer,
    usage: Arc<Mutex<Usage>>,
    reserved: Mutex<u64>,
    quota: Option<u64>,
    pub(super) node: NodeId,
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Partial replicas (resumable pulls, ADR 0018).
    partials: Arc<Partials>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("contents", &self.contents)
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

/// Bytes reserved against the quota by a put in progress; released on drop.
pub(crate) struct Reservation<'a> {
    store: &'a Store,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut r = self
            .store
            .reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *r = r.saturating_sub(self.bytes);
    }
}

/// How long a holder keeps the tombstone of a file deleted elsewhere (it answers "deleted"
/// and refuses to hold the id meanwhile). A tombstone still waiting for a holder's
/// acknowledgement is kept until it comes.
pub const TOMBSTONE_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs blocking disk work on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_cancelled() {
            FilesError::Closed
        } else {
            FilesError::Internal("a files task panicked")
        }
    })?
}

impl Store {
    /// Opens the store in `options.data_dir` (blocking: key derivation, metadata,
    /// recovery). Creates what is missing on first use.
    pub fn open(options: OpenOptions) -> Result<Store, FilesError> {
        let dir = &options.data_dir;
        let contents = dir.join(CONTENTS_DIR);
        crate::durable::create_dir_all(&contents).map_err(FilesError::io("creating", &contents))?;
        let db_path = dir.join(DB_FILE);
        let key_path = dir.join(KEY_FILE);
        let fresh = !db_path.exists();
        if !fresh && !key_path.exists() {
            return Err(FilesError::KeyMissing {
                db: db_path,
                key: key_path,
            });
        }
        let key = StorageKey::load_or_create(dir, options.passphrase.as_deref(), true)?;
        let db = Arc::new(Db::open(dir)?);
        restrict(&contents, 0o700)?;
        restrict(&db_path, 0o600)?;
        // Rows of small puts whose deferred commit a crash lost: written again from their
        // value log records (ADR 0016, amendment "One fsync per small put").
        db.replay(&dir.join(LOG_DIR))?;
        let (logged, malformed) = db.all_logged()?;
        let (log, unusable) = ValueLog::open(&dir.join(LOG_DIR), &logged)?;
        restrict(&dir.join(LOG_DIR), 0o700)?;
        // Recovery may have cut the log below the old checkpoint: appends start from here.
        db.apply_at(std::iter::empty(), Commit::Durable(Some(log.end())))?;
        let log = Arc::new(log);
        let mut lost: std::collections::HashSet<[u8; 32]> = unusable.into_iter().collect();
        lost.extend(malformed);
        let (usage, partial_names) = recover(&db, &contents, &log, &logged, &lost)?;
        // A partial of a file stored (or deleted) here is of no use any more.
        let stored =
            |id: &[u8; 32]| matches!(db.get(id), Ok(Some(_))) || db.tombstoned(id).unwrap_or(false);
        let partials = Arc::new(Partials::recover(&contents, &partial_names, &key, &stored));
        let usage = Arc::new(Mutex::new(usage));
        let committer = Committer::start(db.clone(), contents.clone(), log.clone(), usage.clone())?;
        Ok(Store {
            contents,
            key,
            db,
            log,
            committer,
            usage,
            reserved: Mutex::new(0),
            quota: options.quota,
            node: options.node,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            partials,
        })
    }

    /// Stops the committer (after the queued rows are written).
    pub fn close(&self) {
        self.committer.stop();
    }

    pub(super) fn lock_of(&self, id: &[u8; 32]) -> &tokio::sync::Mutex<()> {
        &self.locks[id[0] as usize % LOCK_STRIPES]
    }

    pub(super) fn path_of(&self, id: &[u8; 32]) -> PathBuf {
        self.contents.join(contents::file_name(id))
    }

    /// The partial replicas kept here.
    pub(crate) fn partials(&self) -> &Arc<Partials> {
        &self.partials
    }

    /// Reserves `bytes` against the quota, which partial replicas at rest count against
    /// too: the oldest of them are removed to make room before a reservation fails.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<Reservation<'_>, FilesError> {
        let used = self.usage.lock().unwrap_or_else(|p| p.into_inner()).used;
        let mut r = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(quota) = self.quota {
            let over = |r: u64| {
                used.saturating_add(r)
                    .saturating_add(self.partials.resting_bytes())
                    .saturating_add(bytes)
                    > quota
            };
            while over(*r) && self.partials.evict_oldest().is_some() {}
            if over(*r) {
                return Err(FilesError::QuotaExceeded {
                    needed: bytes,
                    quota,
                    used,
                    reserved: *r,
                });
            }
        }
        *r += bytes;
        Ok(Reservation { store: self, bytes })
    }

    fn row(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, FilesError> {
        self.db.get(id)
    }

    fn record(&self, id: &FileId) -> Result<Record, FilesError> {
        let row = self.row(id.digest())?.ok_or_else(|| not_found(id))?;
        Record::decode(id.digest(), &row, &self.key)
            .ok_or_else(|| FilesError::corrupted(format!("metadata of {id}")))
    }

    /// Stores `bytes`.
    pub async fn put_bytes(
        self: Arc<Self>,
        data: Bytes,
        options: PutOptions,
    ) -> Result<FileId, FilesError> {
        check(&options)?;
        if data.len() as u64 <= INLINE_MAX {
            return self.put_inline(data, options).await;
        }
        let store = self.clone();
        let probe = data.clone();
        let id = blocking(move || Ok(FileId::of(&probe))).await?;
        let stored_already = blocking({
            let store = store.clone();
            move || store.row(id.digest())
        })
        .await?
        .is_some();
        if stored_already {
            let _lock = self.lock_of(id.digest()).lock().await;
            // Read again under the lock: a delete may have run in between.
            let row = blocking({
                let store = store.clone();
                move || store.row(id.digest())
            })
            .await?;
            if let Some(row) = row {
                self.update_existing(id, row, options).await?;
                return Ok(id);
            }
        }
        let size = data.len() as u64;
        let reservation = self.reserve(stored_len(size))?;
        let dir = self.contents.clone();
        let key_store = self.clone();
        let (tmp, digest, written) = blocking(move || {
            let mut tmp = TempFile::create(&dir)?;
            let (digest, written) = write_encrypted(
                &data[..],
                &key_store.key,
                &mut tmp,
                size,
                Path::new("bytes"),
            )?;
            tmp.sync()?;
            Ok((tmp, digest, written))
        })
        .await?;
        self.finish_put(tmp, digest, written, options, reservation, false)
            .await
    }

    /// Stores the file at `path`, streaming.
    pub async fn put_path(
        self: Arc<Self>,
        path: PathBuf,
        options: PutOptions,
    ) -> Result<FileId, FilesError> {
        check(&options)?;
        let size = blocking({
            let path = path.clone();
            move || {
                let m = std::fs::metadata(&path).map_err(FilesError::io("reading", &path))?;
                if !m.is_file() {
                    return Err(FilesError::Invalid(format!(
                        "{} is not a file",
                        path.display()
                    )));
                }
                Ok(m.len())
            }
        })
        .await?;
        if size <= INLINE_MAX {
            return self.put_small_path(path, size, options).await;
        }
        let reservation = self.reserve(stored_len(size))?;
        let dir = self.contents.clone();
        let key_store = self.clone();
        let (tmp, digest, written) = blocking(move || {
            let file = std::fs::File::open(&path).map_err(FilesError::io("opening", &path))?;
            let mut tmp = TempFile::create(&dir)?;
            let (digest, written) = write_encrypted(file, &key_store.key, &mut tmp, size, &path)?;
            tmp.sync()?;
            Ok((tmp, digest, written))
        })
        .await?;
        self.finish_put(tmp, digest, written, options, reservation, false)
            .await
    }

    /// Renames a written content file into place and commits its row, unless the same
    /// content is already stored.
    pub(crate) async fn finish_put(
        self: &Arc<Self>,
        tmp: TempFile,
        digest: [u8; 32],
        size: u64,
        options: PutOptions,
        reservation: Reservation<'_>,
        refuse_tombstoned: bool,
    ) -> Result<FileId, FilesError> {
        let id = FileId::from_digest(digest);
        let _lock = self.lock_of(&digest).lock().await;
        // A copy received for another node never brings a deleted file back.
        if refuse_tombstoned && self.db.tombstoned(&digest)? {
            return Err(FilesError::Tombstoned { id: id.to_string() });
        }
        let existing = blocking({
            let store = self.clone();
            move || store.row(&digest)
        })
        .await?;
        if let Some(row) = existing {
            drop(tmp);
            self.update_existing(id, row, options).await?;
            return Ok(id);
        }
        let stored = stored_len(size);
        let target = self.path_of(&digest);
        let row = Record {
            size,
            stored,
            created: now_ms(),
            name: options.name,
            content_type: options.content_type,
            loc: None,
        }
        .encode(&digest, &self.key)?;
        blocking({
            let target = target.clone();
            move || tmp.rename_to(&target)
        })
        .await?;
        let op = Op::Put { id: digest, row };
        if let Err(e) = self.committer.submit(op, stored).await {
            // Not listed: take the content file back out (a restart would too).
            let _ = std::fs::remove_file(&target);
            return Err(e);
        }
        drop(reservation);
        Ok(id)
    }

    /// A put of content already stored: updates the name and content type if given.
    pub(super) async fn update_existing(
        &self,
        id: FileId,
        row: Vec<u8>,
        options: PutOptions,
    ) -> Result<(), FilesError> {
        if options.name.is_none() && options.content_type.is_none() {
            return Ok(());
        }
        let mut record = Record::decode(id.digest(), &row, &self.key)
            .ok_or_else(|| FilesError::corrupted(format!("metadata of {id}")))?;
        if options.name.is_some() {
            record.name = options.name;
        }
        if options.content_type.is_some() {
            record.content_type = options.content_type;
        }
        let stored = record.stored;
        // The committer keeps the stored value log pointer (this copy may be stale).
        let op = Op::Put {
            id: *id.digest(),
            row: record.encode(id.digest(), &self.key)?,
        };
        self.committer.submit(op, stored).await?;
        Ok(())
    }

    /// The contents directory (where received content files are written).
    pub fn contents_dir(&self) -> &Path {
        &self.contents
    }

    /// The storage key.
    pub(crate) fn key(&self) -> &StorageKey {
        &self.key
    }

    /// This node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Whether `id` is stored here (a metadata read).
    pub fn holds(&self, id: &[u8; 32]) -> bool {
        matches!(self.row(id), Ok(Some(_)))
    }

    /// Whether `id` was deleted (a tombstone is kept).
    pub fn tombstoned(&self, id: &[u8; 32]) -> Result<bool, FilesError> {
        self.db.tombstoned(id)
    }

    /// The holders recorded for `id` (this node included if it holds it: a record implies
    /// it).
    pub fn holders(&self, id: &[u8; 32]) -> Result<Vec<NodeId>, FilesError> {
        Ok(self
            .db
            .holders(id, self.node.as_bytes())?
            .into_iter()
            .map(NodeId::from_bytes)
            .collect())
    }

    /// The metadata of `id`, if it is stored here.
    pub fn record_of(&self, id: &FileId) -> Result<Option<Record>, FilesError> {
        match self.record(id) {
            Ok(r) => Ok(Some(r)),
            Err(FilesError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A reader of the verified plaintext of `id` and its size, if it is stored here.
    pub fn open_plain(&self, id: &[u8; 32]) -> Result<Option<(u64, PlainReader)>, FilesError> {
        let file = FileId::from_digest(*id);
        let Some(record) = self.record_of(&file)? else {
            return Ok(None);
        };
        let reader = match self.small_contents(id)? {
            Some(content) => {
                PlainReader::inlined(content, &self.key, *id, record.stored, file.to_string())?
            }
            None => PlainReader::open(
                &self.path_of(id),
                &self.key,
                *id,
                record.stored,
                file.to_string(),
            )?,
        };
        Ok(Some((record.size, reader)))
    }

    /// The sealed contents of a small file, from the value log or (schema 2) the `inline`
    /// table; `None` if it has a content file. A pointer read just before compaction
    /// moved the value is looked up again.
    pub(super) fn small_contents(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, FilesError> {
        for _ in 0..8 {
            match self.db.logged(id)? {
                Some(loc) => {
                    if let Some(sealed) = self.log.read(id, &loc)? {
                        return Ok(Some(sealed));
                    }
                }
                None => return self.db.inline(id),
            }
        }
        Err(FilesError::corrupted(format!(
            "{}: its value log pointer keeps moving",
            FileId::from_digest(*id)
        )))
    }

    /// Records `add` as holders of `id`.
    pub async fn add_holders(&self, id: [u8; 32], add: Vec<NodeId>) -> Result<(), FilesError> {
        if add.is_empty() {
            return Ok(());
        }
        let add = add.iter().map(|n| *n.as_bytes()).collect();
        self.committer.submit(Op::Holders { id, add }, 0).await?;
        Ok(())
    }

    /// Deletes `id` for good: a tombstone waiting for `pending` to acknowledge (none is
    /// kept when nobody is pending, unless `keep`), then the content file. Returns
    /// whether it was stored here.
    pub async fn tombstone(
        self: Arc<Self>,
        id: [u8; 32],
        pending: Vec<NodeId>,
        keep: bool,
    ) -> Result<bool, FilesError> {
        let _lock = self.lock_of(&id).lock().await;
        let op = if pending.is_empty() && !keep {
            Op::Delete { id }
        } else {
            Op::Tombstone {
                id,
                at: now_ms(),
                pending: pending.iter().map(|n| *n.as_bytes()).collect(),
            }
        };
        let applied = self.committer.submit(op, 0).await?;
        let path = self.path_of(&id);
        let dir = self.contents.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FilesError::io("removing", &path)(e)),
            }
            crate::durable::sync_dir(&dir).map_err(FilesError::io("syncing", &dir))
        })
        .await?;
        Ok(applied.previous.is_some())
    }

    /// Drops the tombstones older than [`TOMBSTONE_RETENTION`] that no holder is waiting for.
    pub async fn expire_tombstones(&self) -> Result<(), FilesError> {
        let cut = now_ms().saturating_sub(TOMBSTONE_RETENTION.as_millis() as u64);
        self.committer.submit(Op::Expire { before: cut }, 0).await?;
        Ok(())
    }

    /// `node` applied the delete of `id`.
    pub async fn ack(&self, id: [u8; 32], node: NodeId) -> Result<(), FilesError> {
        self.committer
            .submit(
                Op::Ack {
                    id,
                    node: *node.as_bytes(),
                },
                0,
            )
            .await?;
        Ok(())
    }

    /// Every file with recorded holders, and those holders.
    pub fn all_holders(&self) -> Result<Vec<PendingDelete>, FilesError> {
        Ok(self
            .db
            .all_holders(self.node.as_bytes())?
            .into_iter()
            .map(|(id, nodes)| (id, nodes.into_iter().map(NodeId::from_bytes).collect()))
            .collect())
    }

    /// Deletes acknowledged by some holders only.
    pub fn pending_tombstones(&self) -> Result<Vec<PendingDelete>, FilesError> {
        Ok(self
            .db
            .pending_tombstones()?
            .into_iter()
            .map(|(id, nodes)| (id, nodes.into_iter().map(NodeId::from_bytes).collect()))
            .collect())
    }

    /// Sets a damaged copy of `id` aside: its row goes (durably), and its content file is
    /// renamed out of the store into `<data_dir>/files-damaged/`. Returns its holders.
    pub async fn set_aside(self: Arc<Self>, id: [u8; 32]) -> Result<Vec<NodeId>, FilesError> {
        let holders = self.holders(&id)?;
        let _lock = self.lock_of(&id).lock().await;
        self.committer.submit(Op::Delete { id }, 0).await?;
        let path = self.path_of(&id);
        let aside = self
            .contents
            .parent()
            .map(|p| p.join("files-damaged"))
            .unwrap_or_else(|| self.contents.join("..").join("files-damaged"));
        blocking(move || {
            crate::durable::create_dir_all(&aside).map_err(FilesError::io("creating", &aside))?;
            let suffix: [u8; 4] = super::crypt::random()?;
            let target = aside.join(format!(
                "{}-{}",
                contents::file_name(&id),
                data_encoding::HEXLOWER.encode(&suffix)
            ));
            match std::fs::rename(&path, &target) {
                Ok(()) => warn!(from = %path.display(), to = %target.display(), "files: a damaged copy was set aside"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FilesError::io("setting aside", &path)(e)),
            }
            Ok(())
        })
        .await?;
        Ok(holders)
    }

    /// The plaintext of `id`, verified.
    pub async fn get_bytes(self: Arc<Self>, id: FileId) -> Result<Bytes, FilesError> {
        blocking(move || {
            let record = self.record(&id)?;
            let cap = usize::try_from(record.size)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            let mut out = Vec::with_capacity(cap);
            self.read_contents(&id, record.stored, |p| {
                out.extend_from_slice(p);
                Ok(())
            })?;
            Ok(Bytes::from(out))
        })
        .await
    }

    /// Writes the plaintext of `id` to a new file at `path` (never replacing one).
    pub async fn get_to_path(self: Arc<Self>, id: FileId, path: PathBuf) -> Result<(), FilesError> {
        blocking(move || {
            if path.symlink_metadata().is_ok() {
                return Err(FilesError::Invalid(format!(
                    "{} already exists",
                    path.display()
                )));
            }
            let record = self.record(&id)?;
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut tmp = TempFile::create_in(&parent, ".memmesh-get-")?;
            self.read_contents(&id, record.stored, |p| tmp.write(p))?;
            tmp.link_to_new(&path)?;
            crate::durable::sync_dir(&parent).map_err(FilesError::io("syncing", &parent))?;
            Ok(())
        })
        .await
    }

    /// What is known of `id`.
    pub async fn stat(self: Arc<Self>, id: FileId) -> Result<FileInfo, FilesError> {
        blocking(move || {
            let record = self.record(&id)?;
            let holders = self.db.holders(id.digest(), self.node.as_bytes())?;
            Ok(info(id, record, holders))
        })
        .await
    }

    /// A page of the stored files, in id order, after `cursor`.
    pub async fn list(
        self: Arc<Self>,
        cursor: Option<FileId>,
        limit: usize,
    ) -> Result<Page, FilesError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(FilesError::Invalid(format!(
                "limit must be 1..={MAX_PAGE}, got {limit}"
            )));
        }
        blocking(move || {
            let (rows, more) = self.db.page(cursor.as_ref().map(|c| c.digest()), limit)?;
            let mut files = Vec::with_capacity(rows.len());
            for (digest, row) in rows {
                let id = FileId::from_digest(digest);
                let record = Record::decode(&digest, &row, &self.key)
                    .ok_or_else(|| FilesError::corrupted(format!("metadata of {id}")))?;
                let holders = self.db.holders(&digest, self.node.as_bytes())?;
                files.push(info(id, record, holders));
            }
            let next = if more {
                files.last().map(|f| f.id)
            } else {
                None
            };
            Ok(Page { files, next })
        })
        .await
    }

    /// Deletes `id`: its row first (durably), then its content file.
    pub async fn delete(self: Arc<Self>, id: FileId) -> Result<(), FilesError> {
        let _lock = self.lock_of(id.digest()).lock().await;
        let applied = self
            .committer
            .submit(Op::Delete { id: *id.digest() }, 0)
            .await?;
        if applied.previous.is_none() {
            return Err(not_found(&id));
        }
        let path = self.path_of(id.digest());
        let dir = self.contents.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FilesError::io("removing", &path)(e)),
            }
            crate::durable::sync_dir(&dir).map_err(FilesError::io("syncing", &dir))
        })
        .await
    }

    /// Bytes of ciphertext this store accepts now: the quota minus what is used and
    /// reserved, bounded by the filesystem's free space minus [`DISK_RESERVE`].
    pub fn disk_free(&self) -> u64 {
        let used = self.usage.lock().unwrap_or_else(|p| p.into_inner()).used;
        let reserved = *self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let by_quota = self.quota.map_or(u64::MAX, |q| {
            q.saturating_sub(used).saturating_sub(reserved)
        });
        let by_disk = fs_free(&self.contents).map_or(u64::MAX, |f| f.saturating_sub(DISK_RESERVE));
        by_quota.min(by_disk)
    }

    /// Disk use, quota and file count.
    pub fn stats(&self) -> FilesStats {
        let u = *self.usage.lock().unwrap_or_else(|p| p.into_inner());
        FilesStats {
            disk_used: u.used,
            disk_quota: self.quota,
            files: u.files,
        }
    }
}

/// Space left free on the filesystem for everything else: never offered to others' files.
pub const DISK_RESERVE: u64 = 256 << 20;

/// Bytes available to this user on the filesystem holding `path` (`statvfs`), if known.
fn fs_free(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory
        // of the right type; statvfs fills it on success (checked before it is read).
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it initialised `st`.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::unnecessary_cast)]
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Makes `path` accessible to its owner only (a no-op where there are no Unix modes).
fn restrict(path: &Path, mode: u32) -> Result<(), FilesError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(FilesError::io("restricting", path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn not_found(id: &FileId) -> FilesError {
    FilesError::NotFound { id: id.to_string() }
}

fn info(id: FileId, record: Record, holders: Vec<[u8; 32]>) -> FileInfo {
    FileInfo {
        id,
        size: record.size,
        name: record.name,
        content_type: record.content_type,
        created: record.created,
        holders: holders.into_iter().map(NodeId::from_bytes).collect(),
    }
}

pub(crate) fn check(options: &PutOptions) -> Result<(), FilesError> {
    if options.replicas == 0 {
        return Err(FilesError::Invalid("replicas must be at least 1".into()));
    }
    if options.replicas > super::messages::MAX_REPLICAS {
        return Err(FilesError::Invalid(format!(
            "replicas must be at most {}",
            super::messages::MAX_REPLICAS
        )));
    }
    for (what, v) in [
        ("name", &options.name),
        ("content_type", &options.content_type),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > MAX_NAME_LEN) {
            return Err(FilesError::Invalid(format!(
                "{what} must be at most {MAX_NAME_LEN} bytes"
            )));
        }
    }
    Ok(())
}

/// Makes the contents directory and the metadata agree after a crash: removes temporary
/// files, rows whose content file (or inlined contents) is missing or of the wrong length,
/// and content files without a row. Returns the usage of what remains.
/// Also returns the names of partial replicas, for `Partials::recover`.
/// `logged` are the value log's pointers and `lost` the files whose pointer is malformed
/// or points past its segment's end (their rows go).
fn recover(
    db: &Db,
    contents: &Path,
    log: &ValueLog,
    logged: &std::collections::HashMap<[u8; 32], Loc>,
    lost: &std::collections::HashSet<[u8; 32]>,
) -> Result<(Usage, Vec<String>), FilesError> {
    let scan = contents::scan(contents)?;
    let mut removed = 0usize;
    for tmp in &scan.temps {
        match std::fs::remove_file(tmp) {
            Ok(()) => removed += 1,
            Err(e) => warn!(path = %tmp.display(), error = %e, "files: removing a temporary file"),
        }
    }
    let rows = db.all_stored()?;
    let inline = db.inline_lengths()?;
    let rows_ids: std::collections::HashSet<[u8; 32]> = rows.iter().map(|(id, _)| *id).collect();
    let mut usage = Usage::default();
    let mut bad_rows = Vec::new();
    let mut listed = std::collections::HashSet::with_capacity(rows.len());
    for (id, stored) in rows {
        // Logged or inlined contents first: a content file of the same id is then an
        // orphan. A lost pointer makes the row's contents missing.
        let inlined = if lost.contains(&id) {
            Some(u64::MAX)
        } else {
            logged
                .get(&id)
                .map(|l| u64::from(l.len))
                .or_else(|| inline.get(&id).copied())
        };
        let on_disk = inlined.or_else(|| scan.contents.get(&id).copied());
        match (stored, on_disk) {
            (Some(s), Some(len)) if s == len => {
                usage.used += s;
                usage.files += 1;
                if inlined.is_none() {
                    listed.insert(id);
                }
            }
            _ => {
                warn!(
                    id = %FileId::from_digest(id),
                    expected = ?stored,
                    found = ?on_disk,
                    "files: removing a metadata row whose content file is missing or damaged"
                );
                bad_rows.push(Op::Delete { id });
            }
        }
    }
    // Inlined contents without a row (not written by this build: row and contents
    // commit together) are dropped too.
    for id in inline.keys().chain(logged.keys()).chain(lost.iter()) {
        if !rows_ids.contains(id) {
            bad_rows.push(Op::Delete { id: *id });
        }
    }
    if !bad_rows.is_empty() {
        let applied = db.apply(&bad_rows)?;
        // Values the log counted as live that no row points at any more (a lost pointer
        // was never counted).
        let freed: Vec<Loc> = bad_rows
            .iter()
            .zip(&applied)
            .filter(|(op, _)| !matches!(op, Op::Delete { id } if lost.contains(id)))
            .filter_map(|(_, a)| a.freed)
            .collect();
        log.committed(&[], &freed);
    }
    for id in scan.contents.keys() {
        if !listed.contains(id) {
            let path = contents.join(contents::file_name(id));
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "files: removing an orphan content file")
                }
            }
        }
    }
    if removed > 0 {
        crate::durable::sync_dir(contents).map_err(FilesError::io("syncing", contents))?;
    }
    if removed > 0 || !bad_rows.is_empty() {
        info!(
            leftovers = removed,
            rows = bad_rows.len(),
            "files: cleaned up after an interrupted run"
        );
    }
    Ok((usage, scan.partials))
}
