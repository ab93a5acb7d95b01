//! The conversion of a schema-3 metadata database to schema 4 (ADR 0016, amendment "The
//! value log pointer in the record"): every `logged` pointer moves into its file's record
//! (record version 2) and the `logged` row goes, in the write transaction that opens the
//! database, so a crash leaves either the schema-3 store or the schema-4 one.
//!
//! What to do with each `logged` row is a pure decision ([`plan`]); [`migrate_logged`]
//! applies it. The sealed part of a record is not touched, so no key is needed.

use redb::{ReadableTable, WriteTransaction};

use super::db::{Record, FILES, HOLDERS, LOGGED};
use super::error::FilesError;
use super::id::FileId;
use super::logfmt::Loc;

/// What becomes of one `logged` row of a schema-3 store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The record of `id` is replaced by `row` (version 2, pointing at the value).
    Move {
        /// The file id.
        id: [u8; 32],
        /// The new record.
        row: Vec<u8>,
    },
    /// The pointer or the record is malformed: the file's contents cannot be found, so
    /// its record and holders go (what recovery did with such a row under schema 3).
    DropFile {
        /// The file id.
        id: [u8; 32],
    },
    /// A pointer with no record, or under a key that is not an id: only the pointer goes
    /// (recovery removed these under schema 3 too).
    DropPointer,
}

/// Decides what becomes of the `logged` row `(key, pointer)` given the record stored
/// under the same key (`None` if there is none).
pub fn plan(key: &[u8], pointer: &[u8], record: Option<&[u8]>) -> Step {
    let (Ok(id), Some(record)) = (<[u8; 32]>::try_from(key), record) else {
        return Step::DropPointer;
    };
    match Loc::decode(pointer).and_then(|loc| Record::with_loc(record, &loc)) {
        Some(row) => Step::Move { id, row },
        None => Step::DropFile { id },
    }
}

/// How many `logged` rows a conversion moved into their records, and how many files it
/// dropped because their pointer or record was malformed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Pointers moved into their record.
    pub moved: usize,
    /// Files removed (malformed pointer or record).
    pub dropped: usize,
    /// Pointers without a record, removed.
    pub orphans: usize,
}

/// Moves every `logged` pointer into its record and empties `logged`, in `txn`.
pub fn migrate_logged(txn: &WriteTransaction) -> Result<Migrated, FilesError> {
    let mut logged = txn.open_table(LOGGED)?;
    let mut files = txn.open_table(FILES)?;
    let mut holders = txn.open_multimap_table(HOLDERS)?;
    let mut entries = Vec::new();
    for entry in logged.iter()? {
        let (k, v) = entry?;
        entries.push((k.value().to_vec(), v.value().to_vec()));
    }
    let mut done = Migrated::default();
    for (key, pointer) in &entries {
        let record = files.get(&key[..])?.map(|r| r.value().to_vec());
        match plan(key, pointer, record.as_deref()) {
            Step::Move { id, row } => {
                files.insert(&id[..], &row[..])?;
                done.moved += 1;
            }
            Step::DropFile { id } => {
                tracing::warn!(
                    id = %FileId::from_digest(id),
                    "files: removing a record whose value log pointer is malformed"
                );
                files.remove(&id[..])?;
                holders.remove_all(&id[..])?;
                done.dropped += 1;
            }
            Step::DropPointer => done.orphans += 1,
        }
        logged.remove(&key[..])?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::key::StorageKey;

    fn record() -> Vec<u8> {
        Record {
            size: 3,
            stored: 90,
            created: 5,
            name: Some("a".into()),
            content_type: None,
            loc: None,
        }
        .encode(&[1; 32], &StorageKey::from_bytes(&[3u8; 32]).unwrap())
        .unwrap()
    }

    #[test]
    fn a_pointer_moves_into_its_record() {
        let loc = Loc {
            segment: 2,
            offset: 52,
            len: 90,
        };
        let Step::Move { id, row } = plan(&[1; 32], &loc.encode(), Some(&record())) else {
            panic!("not moved");
        };
        assert_eq!(id, [1; 32]);
        assert_eq!(Record::loc_of(&row), Some(Some(loc)));
        assert_eq!(Record::stored_of(&row), Some(90));
        let key = StorageKey::from_bytes(&[3u8; 32]).unwrap();
        let decoded = Record::decode(&[1; 32], &row, &key).unwrap();
        assert_eq!(decoded.name.as_deref(), Some("a"));
        assert_eq!(decoded.loc, Some(loc));
    }

    #[test]
    fn malformed_pointers_and_records_drop_the_file_and_orphans_only_the_pointer() {
        let good = Loc {
            segment: 1,
            offset: 52,
            len: 90,
        }
        .encode();
        // A pointer into the segment header, a short one, a record of an unknown version.
        let inside = Loc {
            segment: 1,
            offset: 3,
            len: 90,
        }
        .encode();
        assert_eq!(
            plan(&[1; 32], &inside, Some(&record())),
            Step::DropFile { id: [1; 32] }
        );
        assert_eq!(
            plan(&[1; 32], &good[..7], Some(&record())),
            Step::DropFile { id: [1; 32] }
        );
        let mut odd = record();
        odd[0] = 9;
        assert_eq!(
            plan(&[1; 32], &good, Some(&odd)),
            Step::DropFile { id: [1; 32] }
        );
        assert_eq!(plan(&[1; 32], &good, None), Step::DropPointer);
        assert_eq!(plan(&[1; 5], &good, Some(&record())), Step::DropPointer);
    }
}
