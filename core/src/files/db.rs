//! The files metadata: a redb database at `<data_dir>/files.redb` with a schema version.
//!
//! Tables (schema 1):
//! - `meta` (`&str` → `u64`): `"schema_version"`.
//! - `files` (file id, 32 bytes → record): one row per stored file, see [`Record`].
//! - `holders` (multimap: file id → node id, 32 bytes each): who holds a copy (this node
//!   and the holders it knows of, ADR 0018).
//! - `tombstones` (file id → unix ms): deleted files. On the deleting node until every
//!   holder acknowledged; on a holder that applied a delete, kept for
//!   [`super::store::TOMBSTONE_RETENTION`] (30 days), then dropped ([`Op::Expire`]).
//! - `tombstone_pending` (multimap: file id → node id): holders that have yet to apply a
//!   delete (created on open when missing).
//!
//! Schema 2 adds `inline` (file id → ciphertext): the contents of files of at most
//! [`super::inline::INLINE_MAX`] bytes, written in the same transaction as their row
//! (`inline.rs`). A schema-1 database is upgraded in place when opened (nothing to
//! convert); a build that knows only schema 1 refuses a schema-2 one.
//!
//! Schema 3 adds `logged` (file id → [`Loc`], 20 bytes): where a small file's sealed
//! contents are in the value log (`valuelog.rs`), written in the same transaction as its
//! row, after the log bytes were fdatasynced. Small files are appended to the log since
//! schema 3; those of schema 2 stay in `inline` (readers look in `logged`, then `inline`).
//! Upgraded in place (nothing to convert); a schema-2 build refuses a schema-3 store.
//!
//! Schema 4 (ADR 0016, amendment "The value log pointer in the record") writes **record
//! version 2** for logged files: the [`Loc`] is in the record itself, so a small put
//! writes one b-tree row fewer, and `logged` stays empty. A schema-3 database is
//! converted when opened, in one write transaction ([`migrate_logged`]): each `logged`
//! pointer moves into its record (the sealed part of the record is not touched, so no key
//! is needed) and the `logged` row goes. Every record also **implies that this node holds
//! the file**: `holders` lists the other nodes (records written before schema 4 also list
//! this node; [`Db::holders`] merges both). A schema-3 build refuses a schema-4 store.
//!
//! Schema 5 (ADR 0016, amendment "One fsync per small put") adds the **log checkpoint** to
//! `meta` (`"log_segment"`, `"log_offset"`): where the value log ended at the last durable
//! commit. A batch of small puts only is committed without an fsync of its own (redb's
//! `Durability::None`): its records in the value log (segment version 2) carry their rows,
//! and at open the records after the checkpoint are written again ([`Op::PutLogged`]).
//! A schema-4 store is upgraded in place (no checkpoint: nothing to replay); a schema-4
//! build refuses a schema-5 store (it would not replay).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

use super::crypt::{open_box, seal_box};
use super::error::FilesError;
use super::inline::INLINE;
use super::key::StorageKey;
use super::logfmt::{Loc, LOC_LEN};
use super::migrate::migrate_logged;
use super::visible::Visibility;

/// The database file's name inside the data dir.
pub const DB_FILE: &str = "files.redb";
/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u64 = 5;
/// The key of the schema version in `meta`.
const SCHEMA_KEY: &str = "schema_version";
/// The keys of the log checkpoint in `meta` (schema 5).
const CHECKPOINT_SEGMENT_KEY: &str = "log_segment";
const CHECKPOINT_OFFSET_KEY: &str = "log_offset";
/// Version byte of a [`Record`] without a value log pointer (contents in a content file,
/// or, for stores written before schema 4, in `inline` or `logged`).
const RECORD_V1: u8 = 1;
/// Version byte of a [`Record`] with a value log pointer ([`Record::loc`]).
const RECORD_V2: u8 = 2;
/// Length of the unencrypted header of a record of version 1: version, size, stored,
/// created.
const HEADER_V1: usize = 25;
/// Length of the unencrypted header of a record of version 2: version 1's, then a [`Loc`].
const HEADER_V2: usize = HEADER_V1 + LOC_LEN;
/// Associated-data prefix of the sealed part of a record (the file id follows it).
const RECORD_AAD: &[u8] = b"memmesh files record v1";
/// "No value" in the sealed part of a record's length fields.
const ABSENT: u32 = u32::MAX;

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
pub(crate) const HOLDERS: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("holders");
pub(crate) const TOMBSTONES: TableDefinition<&[u8], u64> = TableDefinition::new("tombstones");
/// File id → where its sealed contents are in the value log ([`Loc::encode`]).
pub(crate) const LOGGED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("logged");
/// Multimap: file id → a holder that has yet to acknowledge its delete.
pub(crate) const TOMBSTONE_PENDING: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("tombstone_pending");

/// A file id and its encoded [`Record`].
pub type Row = ([u8; 32], Vec<u8>);
/// A file id and nodes: a tombstone's holders that have yet to acknowledge it, or a
/// file's holders.
pub type Pending = ([u8; 32], Vec<[u8; 32]>);
/// Every value log pointer, by file id.
pub type Logged = HashMap<[u8; 32], Loc>;
/// A file id and its record's content length (`None` if the record is unreadable).
pub type StoredLen = ([u8; 32], Option<u64>);

/// One stored file's metadata (a row of `files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Plaintext size in bytes.
    pub size: u64,
    /// Length of the content file (ciphertext) in bytes.
    pub stored: u64,
    /// When it was first stored (unix ms).
    pub created: u64,
    /// The name given at put, if any.
    pub name: Option<String>,
    /// The content type given at put, if any.
    pub content_type: Option<String>,
    /// Where the sealed contents are in the value log (record version 2), if they are
    /// there. The committer sets it ([`Record::with_loc`]): a caller encodes `None`.
    pub loc: Option<Loc>,
}

impl Record {
    /// The row's bytes: `version ‖ size (u64 LE) ‖ stored (u64 LE) ‖ created (u64 LE) ‖
    /// [loc (20 bytes, version 2 only)] ‖ box`, where the box seals the name and content
    /// type under the storage key with `RECORD_AAD ‖ id` as associated data. Version 1
    /// without a [`Record::loc`], 2 with one.
    pub fn encode(&self, id: &[u8; 32], key: &StorageKey) -> Result<Vec<u8>, FilesError> {
        let mut secret = Vec::new();
        for field in [&self.name, &self.content_type] {
            match field {
                Some(s) => {
                    let len = u32::try_from(s.len())
                        .ok()
                        .filter(|&n| n != ABSENT)
                        .ok_or_else(|| {
                            FilesError::Invalid("name or content type too long".into())
                        })?;
                    secret.extend_from_slice(&len.to_le_bytes());
                    secret.extend_from_slice(s.as_bytes());
                }
                None => secret.extend_from_slice(&ABSENT.to_le_bytes()),
            }
        }
        let mut out = Vec::with_capacity(HEADER_V2 + 12 + secret.len() + 16);
        out.push(if self.loc.is_some() {
            RECORD_V2
        } else {
            RECORD_V1
        });
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.stored.to_le_bytes());
        out.extend_from_slice(&self.created.to_le_bytes());
        if let Some(loc) = &self.loc {
            out.extend_from_slice(&loc.encode());
        }
        out.extend_from_slice(&seal_box(key.aead(), &aad(id), &secret)?);
        Ok(out)
    }

    /// Decodes a row; `None` if it is malformed (an unknown version, a short header, a
    /// malformed pointer) or fails authentication.
    pub fn decode(id: &[u8; 32], bytes: &[u8], key: &StorageKey) -> Option<Record> {
        let loc = Record::loc_of(bytes)?;
        let header = Record::header_len(bytes)?;
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let (size, stored, created) = (word(1)?, word(9)?, word(17)?);
        let secret = open_box(key.aead(), &aad(id), bytes.get(header..)?)?;
        let mut at = 0usize;
        let mut field = || -> Option<Option<String>> {
            let len = u32::from_le_bytes(secret.get(at..at + 4)?.try_into().ok()?);
            at += 4;
            if len == ABSENT {
                return Some(None);
            }
            let end = at.checked_add(len as usize)?;
            let s = String::from_utf8(secret.get(at..end)?.to_vec()).ok()?;
            at = end;
            Some(Some(s))
        };
        let name = field()?;
        let content_type = field()?;
        Some(Record {
            size,
            stored,
            created,
            name,
            content_type,
            loc,
        })
    }

    /// The length of a row's unencrypted header, `None` for an unknown version or a row
    /// shorter than its header.
    fn header_len(bytes: &[u8]) -> Option<usize> {
        let len = match *bytes.first()? {
            RECORD_V1 => HEADER_V1,
            RECORD_V2 => HEADER_V2,
            _ => return None,
        };
        (bytes.len() >= len).then_some(len)
    }

    /// Only the unencrypted sizes of a row (what recovery and the usage count need).
    pub fn stored_of(bytes: &[u8]) -> Option<u64> {
        Record::header_len(bytes)?;
        Some(u64::from_le_bytes(bytes.get(9..17)?.try_into().ok()?))
    }

    /// The value log pointer of a row, read without the key: `Some(None)` for a record of
    /// version 1, `Some(Some(loc))` for version 2, `None` if the row is malformed (an
    /// unknown version, a short header, a malformed pointer).
    pub fn loc_of(bytes: &[u8]) -> Option<Option<Loc>> {
        match Record::header_len(bytes)? {
            HEADER_V2 => Loc::decode(bytes.get(HEADER_V1..HEADER_V2)?).map(Some),
            _ => Some(None),
        }
    }

    /// The same row pointing at `loc` (version 2): the header is rewritten, the sealed
    /// part is kept byte for byte (its associated data does not cover the header), so no
    /// key is needed. `None` if the row is malformed.
    pub fn with_loc(bytes: &[u8], loc: &Loc) -> Option<Vec<u8>> {
        let header = Record::header_len(bytes)?;
        let sealed = bytes.get(header..)?;
        let mut out = Vec::with_capacity(HEADER_V2 + sealed.len());
        out.push(RECORD_V2);
        out.extend_from_slice(bytes.get(1..HEADER_V1)?);
        out.extend_from_slice(&loc.encode());
        out.extend_from_slice(sealed);
        Some(out)
    }
}

fn aad(id: &[u8; 32]) -> Vec<u8> {
    let mut a = RECORD_AAD.to_vec();
    a.extend_from_slice(id);
    a
}

/// A change to the metadata, applied by the committer in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Inserts or replaces a file's row (this node holds it: a record implies it). A row
    /// replacing one with a value log pointer keeps that pointer (the caller's copy of it
    /// may be stale: compaction moves values without the id's lock).
    Put {
        /// The file id.
        id: [u8; 32],
        /// The encoded [`Record`].
        row: Vec<u8>,
    },
    /// Like `Put`, with the file's contents (ciphertext) inlined in the `inline` table,
    /// unless a row for `id` exists: then nothing changes and the result is
    /// [`Applied::kept`] (the put of content already stored is the caller's to finish,
    /// under the id's lock). The check is in the write transaction, so a put needs no
    /// read transaction of its own. The committer turns it into `PutLogged` (schema 3 and
    /// later write no `inline` rows).
    PutInline {
        /// The file id.
        id: [u8; 32],
        /// The encoded [`Record`].
        row: Vec<u8>,
        /// The sealed contents (a content file's bytes; shared, so that a put retried
        /// after a concurrent delete queues them again without a copy).
        content: bytes::Bytes,
    },
    /// Like `PutInline`, with the contents already appended (and synced) to the value log
    /// at `loc`: the row is written pointing at them (record version 2). `kept` if a row
    /// for `id` exists (the appended bytes are then unused).
    PutLogged {
        /// The file id.
        id: [u8; 32],
        /// The encoded [`Record`] (its pointer, if any, is replaced by `loc`).
        row: Vec<u8>,
        /// Where the sealed contents are in the value log.
        loc: Loc,
    },
    /// Compaction moved a value: the record of `id` points at `to` instead of `from` (if
    /// it still points at `from`; else `kept` and nothing changes).
    Relocate {
        /// The file id.
        id: [u8; 32],
        /// The old place.
        from: Loc,
        /// The new place (appended and synced).
        to: Loc,
    },
    /// Removes a file's row, its holders and its inlined or logged contents.
    Delete {
        /// The file id.
        id: [u8; 32],
    },
    /// Records more holders of a file.
    Holders {
        /// The file id.
        id: [u8; 32],
        /// The nodes holding it.
        add: Vec<[u8; 32]>,
    },
    /// Deletes a file for good: removes its row and holders, and keeps a tombstone (time
    /// of the delete, and the holders that have yet to acknowledge it).
    Tombstone {
        /// The file id.
        id: [u8; 32],
        /// When it was deleted (unix ms).
        at: u64,
        /// The holders that must still apply the delete.
        pending: Vec<[u8; 32]>,
    },
    /// Drops the tombstones made before `before` (unix ms) that no holder is waiting
    /// for: past the retention a deleted id may be stored again from a stale copy.
    Expire {
        /// Tombstones older than this (unix ms) go.
        before: u64,
    },
    /// `node` applied the delete of `id`; the tombstone goes once no holder is pending.
    Ack {
        /// The file id.
        id: [u8; 32],
        /// The holder that acknowledged.
        node: [u8; 32],
    },
}

/// What an [`Op`] changed: the stored bytes of the row it replaced or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The `stored` of the previous row, if there was one.
    pub previous: Option<u64>,
    /// An `Op::PutInline` or `Op::PutLogged` found a row for its id and changed nothing
    /// (or an `Op::Relocate` found another pointer).
    pub kept: bool,
    /// A value log pointer this op removed or replaced (its bytes are no longer live).
    pub freed: Option<Loc>,
}

impl Applied {
    /// An op that changed the store; `previous` as in [`Applied::previous`].
    pub fn changed(previous: Option<u64>) -> Applied {
        Applied {
            previous,
            kept: false,
            freed: None,
        }
    }
}

/// How [`Db::apply_at`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Durable when the call returns (one fsync); records the value log checkpoint
    /// (segment, offset) if given: every record before it has its row in this commit or
    /// an earlier one.
    Durable(Option<(u64, u64)>),
    /// Not durable until a later durable commit (no fsync): only for rows whose value log
    /// records carry them and lie after the checkpoint, so that they are written again at
    /// open if a crash loses this commit.
    Deferred,
}

/// The opened metadata database.
#[derive(Debug)]
pub struct Db {
    db: Database,
    path: PathBuf,
    /// Batches answered before their commit, which readers wait for (`visible.rs`).
    visible: Visibility,
}

impl Db {
    /// Opens (or creates) `<dir>/files.redb`, creating the tables and checking the schema:
    /// a newer schema is refused; an older one is upgraded in the same write transaction
    /// (schema 3's `logged` pointers move into their records, [`migrate_logged`]).
    pub fn open(dir: &Path) -> Result<Db, FilesError> {
        let path = dir.join(DB_FILE);
        let db = Database::create(&path)?;
        let txn = db.begin_write()?;
        let found = {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(SCHEMA_KEY)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(FilesError::SchemaTooNew {
                        path,
                        found: v,
                        supported: SCHEMA_VERSION,
                    })
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(_) | None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                }
            }
            txn.open_table(FILES)?;
            txn.open_multimap_table(HOLDERS)?;
            txn.open_table(TOMBSTONES)?;
            txn.open_table(INLINE)?;
            txn.open_table(LOGGED)?;
            txn.open_multimap_table(TOMBSTONE_PENDING)?;
            found
        };
        if found.is_some_and(|v| v < SCHEMA_VERSION) {
            let done = migrate_logged(&txn)?;
            tracing::info!(
                from = found,
                to = SCHEMA_VERSION,
                moved = done.moved,
                dropped = done.dropped,
                orphans = done.orphans,
                "files: metadata schema upgraded"
            );
        }
        txn.commit()?;
        Ok(Db {
            db,
            path,
            visible: Visibility::default(),
        })
    }

    /// A read transaction that sees every batch answered so far (waits for a deferred
    /// commit whose callers were answered, `visible.rs`).
    pub(super) fn read(&self) -> Result<redb::ReadTransaction, FilesError> {
        self.visible.wait()?;
        Ok(self.db.begin_read()?)
    }

    /// The batches answered before their commit.
    pub(super) fn visibility(&self) -> &Visibility {
        &self.visible
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file's row.
    pub fn get(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        Ok(t.get(&id[..])?.map(|v| v.value().to_vec()))
    }

    /// Where a file's contents are in the value log (its record's pointer), if they are
    /// there (a malformed record is `Corrupted`).
    pub fn logged(&self, id: &[u8; 32]) -> Result<Option<Loc>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        match t.get(&id[..])? {
            None => Ok(None),
            Some(v) => Record::loc_of(v.value()).ok_or_else(|| {
                FilesError::corrupted(format!(
                    "metadata of {}",
                    super::id::FileId::from_digest(*id)
                ))
            }),
        }
    }

    /// Every value log pointer, and the ids whose record is malformed (recovery).
    pub fn all_logged(&self) -> Result<(Logged, Vec<[u8; 32]>), FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        let mut out = HashMap::new();
        let mut bad = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            let Ok(id) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            match Record::loc_of(v.value()) {
                Some(Some(loc)) => {
                    out.insert(id, loc);
                }
                Some(None) => {}
                None => bad.push(id),
            }
        }
        Ok((out, bad))
    }

    /// The values in value log segment `segment` (compaction).
    pub fn logged_in(&self, segment: u64) -> Result<Vec<([u8; 32], Loc)>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            if let (Ok(id), Some(Some(loc))) =
                (<[u8; 32]>::try_from(k.value()), Record::loc_of(v.value()))
            {
                if loc.segment == segment {
                    out.push((id, loc));
                }
            }
        }
        Ok(out)
    }

    /// The holders of a file: the nodes `holders` lists and, if the file has a record
    /// here, this node (`local`; a record implies it since schema 4), in node id order.
    pub fn holders(&self, id: &[u8; 32], local: &[u8; 32]) -> Result<Vec<[u8; 32]>, FilesError> {
        let txn = self.read()?;
        let mut out = BTreeSet::new();
        if txn.open_table(FILES)?.get(&id[..])?.is_some() {
            out.insert(*local);
        }
        let t = txn.open_multimap_table(HOLDERS)?;
        for v in t.get(&id[..])? {
            if let Ok(h) = <[u8; 32]>::try_from(v?.value()) {
                out.insert(h);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Whether a tombstone is kept for `id`.
    pub fn tombstoned(&self, id: &[u8; 32]) -> Result<bool, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(TOMBSTONES)?;
        Ok(t.get(&id[..])?.is_some())
    }

    /// Every file with holders, and those holders ([`Db::holders`]: `local` holds every
    /// file with a record), in id order.
    pub fn all_holders(&self, local: &[u8; 32]) -> Result<Vec<Pending>, FilesError> {
        let mut all: BTreeMap<[u8; 32], BTreeSet<[u8; 32]>> = BTreeMap::new();
        for (id, nodes) in self.all_of(HOLDERS)? {
            all.entry(id).or_default().extend(nodes);
        }
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        for entry in t.iter()? {
            let (k, _) = entry?;
            if let Ok(id) = <[u8; 32]>::try_from(k.value()) {
                all.entry(id).or_default().insert(*local);
            }
        }
        Ok(all
            .into_iter()
            .map(|(id, nodes)| (id, nodes.into_iter().collect()))
            .collect())
    }

    /// Every tombstone with holders that have yet to acknowledge it, and those holders.
    pub fn pending_tombstones(&self) -> Result<Vec<Pending>, FilesError> {
        self.all_of(TOMBSTONE_PENDING)
    }

    /// Every key of a multimap of file id → node id, with its nodes (malformed entries
    /// skipped).
    fn all_of(
        &self,
        table: MultimapTableDefinition<&[u8], &[u8]>,
    ) -> Result<Vec<Pending>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_multimap_table(table)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, values) = entry?;
            let Ok(id) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            let mut nodes = Vec::new();
            for v in values {
                if let Ok(n) = <[u8; 32]>::try_from(v?.value()) {
                    nodes.push(n);
                }
            }
            out.push((id, nodes));
        }
        Ok(out)
    }

    /// Up to `limit` rows with ids after `after` (all from the first if `None`), in id
    /// order, and whether more follow.
    pub fn page(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<(Vec<Row>, bool), FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        let start: Bound<&[u8]> = match after {
            Some(a) => Bound::Excluded(&a[..]),
            None => Bound::Unbounded,
        };
        let mut rows = Vec::new();
        let mut more = false;
        for entry in t.range::<&[u8]>((start, Bound::Unbounded))? {
            let (k, v) = entry?;
            let Ok(id) = <[u8; 32]>::try_from(k.value()) else {
                continue;
            };
            if rows.len() == limit {
                more = true;
                break;
            }
            rows.push((id, v.value().to_vec()));
        }
        Ok((rows, more))
    }

    /// Every row's id and stored length (recovery and the usage count).
    pub fn all_stored(&self) -> Result<Vec<StoredLen>, FilesError> {
        let txn = self.read()?;
        let t = txn.open_table(FILES)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, v) = entry?;
            let k = k.value();
            match <[u8; 32]>::try_from(k) {
                Ok(id) => out.push((id, Record::stored_of(v.value()))),
                Err(_) => tracing::warn!(len = k.len(), "files: a metadata key is not an id"),
            }
        }
        Ok(out)
    }

    /// Applies `ops` in one write transaction (one fsync), in order.
    pub fn apply<'a>(
        &self,
        ops: impl IntoIterator<Item = &'a Op>,
    ) -> Result<Vec<Applied>, FilesError> {
        self.apply_at(ops, Commit::Durable(None))
    }

    /// The value log checkpoint of the last durable commit that wrote one (schema 5), if
    /// any: the records after it may have no durable row.
    pub fn checkpoint(&self) -> Result<Option<(u64, u64)>, FilesError> {
        let txn = self.read()?;
        let meta = txn.open_table(META)?;
        let segment = meta.get(CHECKPOINT_SEGMENT_KEY)?.map(|v| v.value());
        let offset = meta.get(CHECKPOINT_OFFSET_KEY)?.map(|v| v.value());
        Ok(segment.zip(offset))
    }

    /// Writes again the rows of the value log records in `log_dir` after the checkpoint
    /// (commits deferred before a crash), in one durable transaction, in their order; a
    /// row already there is kept as it is. Returns how many records were found (rows
    /// written or kept). A store without a checkpoint (written before schema 5, or new)
    /// has nothing to replay. A record whose row is malformed is skipped (reported).
    pub fn replay(&self, log_dir: &Path) -> Result<usize, FilesError> {
        let Some(from) = self.checkpoint()? else {
            return Ok(0);
        };
        let found = super::valuelog::replay(log_dir, from)?;
        let mut ops = Vec::with_capacity(found.len());
        for (id, row, loc) in found {
            if Record::with_loc(&row, &loc).is_some() {
                ops.push(Op::PutLogged { id, row, loc });
            } else {
                tracing::warn!(
                    file = %super::id::FileId::from_digest(id),
                    "files: a value log record with a malformed row, not replayed"
                );
            }
        }
        if !ops.is_empty() {
            let applied = self.apply_at(&ops, Commit::Durable(None))?;
            tracing::info!(
                records = ops.len(),
                written = applied.iter().filter(|a| !a.kept).count(),
                "files: value log replayed"
            );
        }
        Ok(ops.len())
    }

    /// Applies `ops` in one write transaction, in order: durable when it returns, with
    /// the log checkpoint if one is given ([`Commit::Durable`]), or not until a later
    /// durable commit ([`Commit::Deferred`]: no fsync).
    pub fn apply_at<'a>(
        &self,
        ops: impl IntoIterator<Item = &'a Op>,
        commit: Commit,
    ) -> Result<Vec<Applied>, FilesError> {
        self.stage(ops, commit)?.commit()
    }

    /// Applies `ops` in one write transaction, in order, without committing it: what each
    /// did, and the transaction to commit ([`Staged::commit`]; dropped, it is aborted).
    /// Readers do not see it until it is committed.
    pub fn stage<'a>(
        &self,
        ops: impl IntoIterator<Item = &'a Op>,
        commit: Commit,
    ) -> Result<Staged, FilesError> {
        let ops = ops.into_iter();
        let mut txn = self.db.begin_write()?;
        match commit {
            Commit::Durable(checkpoint) => {
                if let Some((segment, offset)) = checkpoint {
                    let mut meta = txn.open_table(META)?;
                    meta.insert(CHECKPOINT_SEGMENT_KEY, segment)?;
                    meta.insert(CHECKPOINT_OFFSET_KEY, offset)?;
                }
            }
            Commit::Deferred => {
                txn.set_durability(redb::Durability::None)
                    .map_err(|e| FilesError::Commit(e.to_string()))?;
            }
        }
        let mut applied = Vec::with_capacity(ops.size_hint().0);
        {
            let mut files = txn.open_table(FILES)?;
            let mut holders = txn.open_multimap_table(HOLDERS)?;
            let mut inline = txn.open_table(INLINE)?;
            let mut tombstones = txn.open_table(TOMBSTONES)?;
            let mut pending = txn.open_multimap_table(TOMBSTONE_PENDING)?;
            for op in ops {
                match op {
                    Op::Put { id, row } => {
                        let old = files.get(&id[..])?.map(|v| v.value().to_vec());
                        let previous = old.as_deref().and_then(Record::stored_of);
                        // A value log pointer stays with the file: compaction may have
                        // moved it since the caller read the row.
                        let kept_loc = old.as_deref().and_then(Record::loc_of).flatten();
                        let row = match kept_loc {
                            Some(loc) => Record::with_loc(row, &loc)
                                .ok_or_else(|| FilesError::Invalid("a malformed record".into()))?,
                            None => row.clone(),
                        };
                        files.insert(&id[..], &row[..])?;
                        applied.push(Applied::changed(previous));
                    }
                    Op::PutInline { id, row, content } => {
                        let existing = files
                            .get(&id[..])?
                            .map(|old| Record::stored_of(old.value()).unwrap_or(0));
                        if let Some(stored) = existing {
                            applied.push(Applied {
                                previous: Some(stored),
                                kept: true,
                                freed: None,
                            });
                            continue;
                        }
                        files.insert(&id[..], &row[..])?;
                        inline.insert(&id[..], &content[..])?;
                        applied.push(Applied::changed(None));
                    }
                    Op::PutLogged { id, row, loc } => {
                        let existing = files
                            .get(&id[..])?
                            .map(|old| Record::stored_of(old.value()).unwrap_or(0));
                        if let Some(stored) = existing {
                            applied.push(Applied {
                                previous: Some(stored),
                                kept: true,
                                freed: None,
                            });
                            continue;
                        }
                        let row = Record::with_loc(row, loc)
                            .ok_or_else(|| FilesError::Invalid("a malformed record".into()))?;
                        files.insert(&id[..], &row[..])?;
                        applied.push(Applied::changed(None));
                    }
                    Op::Relocate { id, from, to } => {
                        let current = files.get(&id[..])?.map(|v| v.value().to_vec());
                        let moved = current
                            .as_deref()
                            .filter(|row| Record::loc_of(row) == Some(Some(*from)))
                            .and_then(|row| Record::with_loc(row, to));
                        let Some(row) = moved else {
                            applied.push(Applied {
                                previous: None,
                                kept: true,
                                freed: None,
                            });
                            continue;
                        };
                        files.insert(&id[..], &row[..])?;
                        applied.push(Applied {
                            previous: None,
                            kept: false,
                            freed: Some(*from),
                        });
                    }
                    Op::Delete { id } => {
                        inline.remove(&id[..])?;
                        let old = files.remove(&id[..])?.map(|v| v.value().to_vec());
                        let freed = old.as_deref().and_then(Record::loc_of).flatten();
                        let previous = old.map(|old| Record::stored_of(&old).unwrap_or(0));
                        holders.remove_all(&id[..])?;
                        applied.push(Applied {
                            freed,
                            ..Applied::changed(previous)
                        });
                    }
                    Op::Holders { id, add } => {
                        for h in add {
                            holders.insert(&id[..], &h[..])?;
                        }
                        applied.push(Applied::changed(None));
                    }
                    Op::Tombstone {
                        id,
                        at,
                        pending: waiting,
                    } => {
                        inline.remove(&id[..])?;
                        let old = files.remove(&id[..])?.map(|v| v.value().to_vec());
                        let freed = old.as_deref().and_then(Record::loc_of).flatten();
                        let previous = old.map(|old| Record::stored_of(&old).unwrap_or(0));
                        holders.remove_all(&id[..])?;
                        tombstones.insert(&id[..], *at)?;
                        pending.remove_all(&id[..])?;
                        for h in waiting {
                            pending.insert(&id[..], &h[..])?;
                        }
                        applied.push(Applied {
                            freed,
                            ..Applied::changed(previous)
                        });
                    }
                    Op::Expire { before } => {
                        let mut old = Vec::new();
                        for entry in tombstones.iter()? {
                            let (k, at) = entry?;
                            if at.value() < *before {
                                old.push(k.value().to_vec());
                            }
                        }
                        for id in old {
                            if pending.get(&id[..])?.next().is_none() {
                                tombstones.remove(&id[..])?;
                            }
                        }
                        applied.push(Applied::changed(None));
                    }
                    Op::Ack { id, node } => {
                        let was_pending = pending.remove(&id[..], &node[..])?;
                        if was_pending && pending.get(&id[..])?.next().is_none() {
                            tombstones.remove(&id[..])?;
                        }
                        applied.push(Applied::changed(None));
                    }
                }
            }
        }
        Ok(Staged { txn, applied })
    }
}

/// A write transaction applied but not yet committed ([`Db::stage`]).
pub struct Staged {
    txn: redb::WriteTransaction,
    /// What each op did, in order.
    pub applied: Vec<Applied>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("ops", &self.applied.len())
            .finish()
    }
}

impl Staged {
    /// Commits the transaction (durable when it returns if it was staged with
    /// [`Commit::Durable`]); what each op did.
    pub fn commit(self) -> Result<Vec<Applied>, FilesError> {
        self.txn.commit()?;
        Ok(self.applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("memmesh-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn key() -> StorageKey {
        StorageKey::from_bytes(&[3u8; 32]).unwrap()
    }

    #[test]
    fn records_round_trip_and_are_bound_to_their_id() {
        let r = Record {
            size: 5,
            stored: 106,
            created: 1_700_000_000_000,
            name: Some("notes.txt".into()),
            content_type: None,
            loc: None,
        };
        let bytes = r.encode(&[1; 32], &key()).unwrap();
        assert_eq!(Record::decode(&[1; 32], &bytes, &key()), Some(r));
        assert_eq!(Record::stored_of(&bytes), Some(106));
        assert_eq!(Record::decode(&[2; 32], &bytes, &key()), None);
        assert!(!bytes.windows(9).any(|w| w == b"notes.txt"));
    }

    #[test]
    fn a_record_of_version_2_carries_its_pointer_outside_the_sealed_part() {
        let loc = Loc {
            segment: 7,
            offset: 52,
            len: 106,
        };
        let mut r = Record {
            size: 5,
            stored: 106,
            created: 1_700_000_000_000,
            name: Some("notes.txt".into()),
            content_type: Some("text/plain".into()),
            loc: None,
        };
        let v1 = r.encode(&[1; 32], &key()).unwrap();
        assert_eq!((v1[0], Record::loc_of(&v1)), (1, Some(None)));
        // The committer's rewrite of a version-1 row equals the row encoded with the
        // pointer, apart from the random nonce, and decodes with the same fields.
        let v2 = Record::with_loc(&v1, &loc).unwrap();
        assert_eq!(v2.len(), v1.len() + 20);
        assert_eq!(&v2[..1], &[2]);
        assert_eq!(&v2[1..25], &v1[1..25]);
        assert_eq!(&v2[25..45], &loc.encode());
        assert_eq!(&v2[45..], &v1[25..]);
        assert_eq!(Record::loc_of(&v2), Some(Some(loc)));
        assert_eq!(Record::stored_of(&v2), Some(106));
        r.loc = Some(loc);
        assert_eq!(Record::decode(&[1; 32], &v2, &key()), Some(r.clone()));
        let direct = r.encode(&[1; 32], &key()).unwrap();
        assert_eq!(Record::decode(&[1; 32], &direct, &key()), Some(r.clone()));
        // Moving it again replaces the pointer only.
        let moved = Loc { segment: 8, ..loc };
        let v2b = Record::with_loc(&v2, &moved).unwrap();
        assert_eq!(v2b.len(), v2.len());
        assert_eq!(Record::loc_of(&v2b), Some(Some(moved)));
        // Hostile bytes: unknown versions, short headers, a pointer into the segment
        // header are malformed, never a panic.
        let mut odd = v2.clone();
        odd[0] = 3;
        assert_eq!(Record::loc_of(&odd), None);
        assert_eq!(Record::stored_of(&odd), None);
        assert_eq!(Record::decode(&[1; 32], &odd, &key()), None);
        assert_eq!(Record::with_loc(&odd, &loc), None);
        for cut in [0, 1, 24, 25, 44] {
            assert_eq!(Record::decode(&[1; 32], &v2[..cut], &key()), None);
            assert_eq!(Record::loc_of(&v2[..cut]), None);
            assert_eq!(Record::stored_of(&v2[..cut]), None);
        }
        let mut inside = v2.clone();
        inside[33..41].copy_from_slice(&3u64.to_le_bytes());
        assert_eq!(Record::loc_of(&inside), None);
        assert_eq!(Record::decode(&[1; 32], &inside, &key()), None);
    }

    #[test]
    fn a_tombstone_waits_for_every_holder_then_goes() {
        let d = dir("tomb");
        let db = Db::open(&d).unwrap();
        let row = Record {
            size: 1,
            stored: 7,
            created: 0,
            name: None,
            content_type: None,
            loc: None,
        }
        .encode(&[4; 32], &key())
        .unwrap();
        db.apply(&[
            Op::Put { id: [4; 32], row },
            Op::Holders {
                id: [4; 32],
                add: vec![[2; 32], [3; 32]],
            },
        ])
        .unwrap();
        assert_eq!(db.holders(&[4; 32], &[1; 32]).unwrap().len(), 3);
        assert_eq!(db.all_holders(&[1; 32]).unwrap().len(), 1);
        let applied = db
            .apply(&[Op::Tombstone {
                id: [4; 32],
                at: 99,
                pending: vec![[2; 32], [3; 32]],
            }])
            .unwrap();
        assert_eq!(applied[0].previous, Some(7));
        assert!(db.get(&[4; 32]).unwrap().is_none());
        assert!(db.holders(&[4; 32], &[1; 32]).unwrap().is_empty());
        assert!(db.tombstoned(&[4; 32]).unwrap());
        assert_eq!(
            db.pending_tombstones().unwrap(),
            vec![([4; 32], vec![[2; 32], [3; 32]])]
        );
        // An acknowledgement from a node that was not pending changes nothing.
        db.apply(&[Op::Ack {
            id: [4; 32],
            node: [9; 32],
        }])
        .unwrap();
        db.apply(&[Op::Ack {
            id: [4; 32],
            node: [2; 32],
        }])
        .unwrap();
        assert!(db.tombstoned(&[4; 32]).unwrap());
        db.apply(&[Op::Ack {
            id: [4; 32],
            node: [3; 32],
        }])
        .unwrap();
        assert!(!db.tombstoned(&[4; 32]).unwrap());
        assert!(db.pending_tombstones().unwrap().is_empty());
        // A holder's own tombstone (nobody pending) stays.
        db.apply(&[Op::Tombstone {
            id: [5; 32],
            at: 1,
            pending: vec![],
        }])
        .unwrap();
        assert!(db.tombstoned(&[5; 32]).unwrap());
        assert!(db.pending_tombstones().unwrap().is_empty());
        drop(db);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn old_tombstones_expire_unless_a_holder_is_still_waited_for() {
        let d = dir("expire");
        let db = Db::open(&d).unwrap();
        db.apply(&[
            Op::Tombstone {
                id: [6; 32],
                at: 100,
                pending: vec![],
            },
            Op::Tombstone {
                id: [7; 32],
                at: 100,
                pending: vec![[9; 32]],
            },
            Op::Tombstone {
                id: [8; 32],
                at: 300,
                pending: vec![],
            },
        ])
        .unwrap();
        db.apply(&[Op::Expire { before: 100 }]).unwrap();
        assert!(db.tombstoned(&[6; 32]).unwrap(), "not older than the cut");
        db.apply(&[Op::Expire { before: 200 }]).unwrap();
        assert!(!db.tombstoned(&[6; 32]).unwrap());
        assert!(
            db.tombstoned(&[7; 32]).unwrap(),
            "a holder is still waited for"
        );
        assert!(db.tombstoned(&[8; 32]).unwrap(), "younger than the cut");
        assert_eq!(db.pending_tombstones().unwrap().len(), 1);
        drop(db);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rows_are_applied_paged_and_a_newer_schema_is_refused() {
        let d = dir("rows");
        let db = Db::open(&d).unwrap();
        let ops: Vec<Op> = (0u8..5)
            .map(|i| Op::Put {
                id: [i; 32],
                row: Record {
                    size: 0,
                    stored: u64::from(i),
                    created: 0,
                    name: None,
                    content_type: None,
                    loc: None,
                }
                .encode(&[i; 32], &key())
                .unwrap(),
            })
            .collect();
        let applied = db.apply(&ops).unwrap();
        assert!(applied.iter().all(|a| a.previous.is_none()));
        let (first, more) = db.page(None, 3).unwrap();
        assert_eq!(first.len(), 3);
        assert!(more);
        let (rest, more) = db.page(Some(&first[2].0), 3).unwrap();
        assert_eq!(rest.len(), 2);
        assert!(!more);
        assert_eq!(db.holders(&[1; 32], &[9; 32]).unwrap(), vec![[9; 32]]);
        let applied = db
            .apply(&[Op::Delete { id: [1; 32] }, Op::Delete { id: [1; 32] }])
            .unwrap();
        assert_eq!(applied[0].previous, Some(1));
        assert_eq!(applied[1].previous, None);
        assert!(db.holders(&[1; 32], &[9; 32]).unwrap().is_empty());
        assert_eq!(db.all_stored().unwrap().len(), 4);
        drop(db);
        {
            let raw = Database::create(d.join(DB_FILE)).unwrap();
            let txn = raw.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let e = Db::open(&d).unwrap_err();
        assert!(
            matches!(e, FilesError::SchemaTooNew { found: 6, .. }),
            "{e}"
        );
        assert_eq!(
            crate::error::Classify::kind(&e),
            crate::ErrorKind::Unsupported
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_inlined_put_of_a_stored_id_changes_nothing_and_says_kept() {
        let d = dir("kept");
        let db = Db::open(&d).unwrap();
        let row = |name: &str| {
            Record {
                size: 1,
                stored: 7,
                created: 0,
                name: Some(name.into()),
                content_type: None,
                loc: None,
            }
            .encode(&[4; 32], &key())
            .unwrap()
        };
        let put = |name: &str, content: u8| Op::PutInline {
            id: [4; 32],
            row: row(name),
            content: vec![content; 7].into(),
        };
        // Twice in one transaction (two concurrent puts of one content): the first counts.
        let applied = db.apply(&[put("a", 1), put("b", 2)]).unwrap();
        assert_eq!(applied[0], Applied::changed(None));
        assert_eq!(
            applied[1],
            Applied {
                previous: Some(7),
                kept: true,
                freed: None
            }
        );
        // And in a later one.
        let applied = db.apply(&[put("c", 3)]).unwrap();
        assert!(applied[0].kept);
        let stored = Record::decode(&[4; 32], &db.get(&[4; 32]).unwrap().unwrap(), &key()).unwrap();
        assert_eq!(stored.name.as_deref(), Some("a"));
        assert_eq!(db.inline(&[4; 32]).unwrap(), Some(vec![1; 7]));
        // Once deleted, it is stored again.
        db.apply(&[Op::Delete { id: [4; 32] }]).unwrap();
        assert_eq!(db.apply(&[put("d", 4)]).unwrap()[0], Applied::changed(None));
        assert_eq!(db.inline(&[4; 32]).unwrap(), Some(vec![4; 7]));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn logged_values_are_pointed_at_moved_and_freed() {
        let d = dir("logged");
        let db = Db::open(&d).unwrap();
        let row = Record {
            size: 1,
            stored: 7,
            created: 0,
            name: None,
            content_type: None,
            loc: None,
        }
        .encode(&[4; 32], &key())
        .unwrap();
        let at = |segment: u64, offset: u64| Loc {
            segment,
            offset,
            len: 7,
        };
        let put = |loc: Loc| Op::PutLogged {
            id: [4; 32],
            row: row.clone(),
            loc,
        };
        // A second put of the same id keeps the first pointer.
        let applied = db.apply(&[put(at(1, 52)), put(at(1, 95))]).unwrap();
        assert_eq!(applied[0], Applied::changed(None));
        assert!(applied[1].kept);
        assert_eq!(db.logged(&[4; 32]).unwrap(), Some(at(1, 52)));
        // A relocation from a stale place changes nothing; from the current one, it moves.
        let applied = db
            .apply(&[
                Op::Relocate {
                    id: [4; 32],
                    from: at(1, 95),
                    to: at(2, 52),
                },
                Op::Relocate {
                    id: [4; 32],
                    from: at(1, 52),
                    to: at(2, 52),
                },
            ])
            .unwrap();
        assert!(applied[0].kept && applied[0].freed.is_none());
        assert_eq!(applied[1].freed, Some(at(1, 52)));
        assert_eq!(db.logged_in(2).unwrap(), vec![([4; 32], at(2, 52))]);
        assert!(db.logged_in(1).unwrap().is_empty());
        // A rewrite of the record (a new name) made from a copy read before the move keeps
        // the stored pointer; the record implies this node as its only holder.
        let stale = Record::with_loc(&row, &at(1, 52)).unwrap();
        db.apply(&[Op::Put {
            id: [4; 32],
            row: stale,
        }])
        .unwrap();
        assert_eq!(db.logged(&[4; 32]).unwrap(), Some(at(2, 52)));
        assert_eq!(db.holders(&[4; 32], &[9; 32]).unwrap(), vec![[9; 32]]);
        assert_eq!(
            db.all_holders(&[9; 32]).unwrap(),
            vec![([4; 32], vec![[9; 32]])]
        );
        // A delete frees the value with the row.
        let applied = db.apply(&[Op::Delete { id: [4; 32] }]).unwrap();
        assert_eq!(applied[0].previous, Some(7));
        assert_eq!(applied[0].freed, Some(at(2, 52)));
        assert_eq!(db.logged(&[4; 32]).unwrap(), None);
        let (all, bad) = db.all_logged().unwrap();
        assert!(all.is_empty() && bad.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
