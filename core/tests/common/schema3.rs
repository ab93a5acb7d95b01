//! Turns a files store written by this build (metadata schema 4) back into what schema 3
//! wrote, byte for byte as `docs/storage-format.md` describes it, so that the tests can
//! open an old store with this build: records of version 1, the value log pointer of each
//! small file in a `logged` row, a `holders` row for this node beside every record, and
//! `schema_version` = 3, without schema 5's log checkpoint. The value log's segments stay
//! as this build wrote them (version 2; this build reads both versions the same way by
//! pointer). The node must be stopped.
#![allow(dead_code)]

use std::path::Path;

use redb::{
    MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
const LOGGED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("logged");
const HOLDERS: MultimapTableDefinition<&[u8], &[u8]> = MultimapTableDefinition::new("holders");

/// Rewrites the store in `data` as schema 3 wrote it; `local` is the node's id. Returns
/// how many records had a value log pointer.
pub fn to_schema_3(data: &Path, local: &[u8; 32]) -> usize {
    let db = redb::Database::create(data.join("files.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    let mut moved = 0;
    {
        let mut files = txn.open_table(FILES).unwrap();
        let mut logged = txn.open_table(LOGGED).unwrap();
        let mut holders = txn.open_multimap_table(HOLDERS).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = files
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect();
        for (id, row) in rows {
            match row[0] {
                1 => {}
                2 => {
                    // Version 2: version ‖ size ‖ stored ‖ created ‖ loc (20) ‖ box.
                    let mut v1 = vec![1u8];
                    v1.extend_from_slice(&row[1..25]);
                    v1.extend_from_slice(&row[45..]);
                    files.insert(&id[..], &v1[..]).unwrap();
                    logged.insert(&id[..], &row[25..45]).unwrap();
                    moved += 1;
                }
                v => panic!("a record of version {v}"),
            }
            holders.insert(&id[..], &local[..]).unwrap();
        }
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("schema_version", 3).unwrap();
        meta.remove("log_segment").unwrap();
        meta.remove("log_offset").unwrap();
    }
    txn.commit().unwrap();
    moved
}

/// What the metadata in `data` says: the schema version, how many `logged` rows, how
/// many `holders` rows, and each record's version byte by id.
pub fn inspect(data: &Path) -> (u64, usize, usize, Vec<(Vec<u8>, u8)>) {
    let db = redb::Database::create(data.join("files.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let schema = txn
        .open_table(META)
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap()
        .value();
    let logged = txn.open_table(LOGGED).unwrap().iter().unwrap().count();
    let holders = txn
        .open_multimap_table(HOLDERS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|e| e.unwrap().1.count())
        .sum();
    let versions = txn
        .open_table(FILES)
        .unwrap()
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_vec(), v.value()[0])
        })
        .collect();
    (schema, logged, holders, versions)
}
