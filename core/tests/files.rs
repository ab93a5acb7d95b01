//! The files store on one node: round trips of every size class, restarts, no plaintext
//! on disk, tampering and truncation detected, passphrases, quota, paging, delete, and
//! 10,000 small files across a restart.

mod common;
#[path = "common/schema3.rs"]
mod schema3;

use std::path::{Path, PathBuf};

use common::builder;
use futures::StreamExt;
use memmesh::files::crypt::stored_len;
use memmesh::files::FileId;
use memmesh::{ErrorKind, Node, PutOptions};

const SEG: usize = 64 * 1024;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn start(data: &Path) -> Node {
    builder("f")
        .data_dir(data)
        .start()
        .await
        .expect("start node")
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn content_files(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_size_round_trips_through_bytes_and_paths() {
    let data = dir("sizes");
    let work = dir("sizes-work");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let sizes = [
        0,
        1,
        SEG - 1,
        SEG,
        SEG + 1,
        2 * SEG - 1,
        2 * SEG,
        2 * SEG + 1,
        5 * 1024 * 1024,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let bytes = pattern(size, i as u8);
        let id = files
            .put_bytes(bytes.clone(), PutOptions::named(format!("f{i}")))
            .await
            .unwrap();
        assert_eq!(id, FileId::of(&bytes));
        assert_eq!(
            &files.get_bytes(id).await.unwrap()[..],
            &bytes[..],
            "size {size}"
        );
        let info = files.stat(id).await.unwrap();
        assert_eq!(info.size, size as u64);
        assert_eq!(info.name.as_deref(), Some(format!("f{i}").as_str()));
        assert_eq!(info.holders, vec![node.id()]);
        let out = work.join(format!("out{i}"));
        files.get_to_path(id, &out).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        // Never replaces an existing file.
        let e = files.get_to_path(id, &out).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        // And through a path, streaming.
        let src = work.join(format!("src{i}"));
        std::fs::write(&src, pattern(size, i as u8 + 100)).unwrap();
        let id2 = files.put_path(&src, PutOptions::default()).await.unwrap();
        assert_eq!(id2, FileId::of(&std::fs::read(&src).unwrap()));
        assert_eq!(
            &files.get_bytes(id2).await.unwrap()[..],
            &std::fs::read(&src).unwrap()[..]
        );
    }
    let stats = files.stats().unwrap();
    assert_eq!(
        stats.files,
        2 * sizes.len() as u64 - 1,
        "the two empty files are one"
    );
    // Only content files and no temporary files in the contents dir; the target dir has
    // no leftovers of get_to_path either.
    assert!(content_files(&data)
        .iter()
        .all(|p| p.file_name().unwrap().len() == 64));
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_files_and_metadata_and_a_second_put_is_idempotent() {
    let data = dir("restart");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let bytes = pattern(300_000, 7);
    let id = files
        .put_bytes(
            bytes.clone(),
            PutOptions {
                name: Some("report.pdf".into()),
                content_type: Some("application/pdf".into()),
                replicas: 1,
            },
        )
        .await
        .unwrap();
    let created = files.stat(id).await.unwrap().created;
    // The same content again: same id, one file; a new name replaces the old one.
    let again = files
        .put_bytes(bytes.clone(), PutOptions::named("renamed.pdf"))
        .await
        .unwrap();
    assert_eq!(again, id);
    assert_eq!(files.stats().unwrap().files, 1);
    node.shutdown().await.unwrap();
    // A closed node's store refuses calls.
    assert_eq!(
        files.get_bytes(id).await.unwrap_err().kind(),
        ErrorKind::Closed
    );

    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(&files.get_bytes(id).await.unwrap()[..], &bytes[..]);
    let info = files.stat(id).await.unwrap();
    assert_eq!(info.name.as_deref(), Some("renamed.pdf"));
    assert_eq!(info.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(info.created, created);
    let stats = files.stats().unwrap();
    assert_eq!(stats.files, 1);
    assert_eq!(stats.disk_used, stored_len(bytes.len() as u64));
    assert_eq!(stats.disk_quota, None);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_reaches_the_disk() {
    let data = dir("plaintext");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let marker = b"MEMMESH-PLAINTEXT-MARKER-4f1c";
    let name_marker = "MEMMESH-NAME-MARKER-9b2e.txt";
    let mut content = Vec::new();
    for _ in 0..5000 {
        content.extend_from_slice(marker);
    }
    let id = files
        .put_bytes(content.clone(), PutOptions::named(name_marker))
        .await
        .unwrap();
    let small = files
        .put_bytes(
            &marker[..],
            PutOptions {
                content_type: Some("text/MEMMESH-TYPE-MARKER".into()),
                ..PutOptions::named(name_marker)
            },
        )
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    let mut all = Vec::new();
    walk(&data, &mut all);
    assert!(all.len() >= 4, "{all:?}");
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        for needle in [&marker[..], name_marker.as_bytes(), b"MEMMESH-TYPE-MARKER"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                path.display()
            );
        }
    }
    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(&files.get_bytes(id).await.unwrap()[..], &content[..]);
    assert_eq!(&files.get_bytes(small).await.unwrap()[..], &marker[..]);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_or_truncated_ciphertext_is_corrupted_never_returned() {
    let data = dir("tamper");
    let work = dir("tamper-work");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let bytes = pattern(3 * SEG + 10, 3);
    let id = files
        .put_bytes(bytes.clone(), PutOptions::default())
        .await
        .unwrap();
    let path = data.join("files").join(&id.to_string()["blake3:".len()..]);
    let original = std::fs::read(&path).unwrap();
    for at in [5, 100, original.len() / 2, original.len() - 1] {
        let mut bad = original.clone();
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let e = files.get_bytes(id).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "byte {at}: {e}");
        let out = work.join(format!("out{at}"));
        let e = files.get_to_path(id, &out).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "byte {at}: {e}");
        assert!(!out.exists(), "nothing is written on corruption");
    }
    // Truncated at a segment boundary and inside a segment.
    for len in [
        original.len() - (SEG + 16) + 10 - 10,
        original.len() - 1,
        50,
    ] {
        std::fs::write(&path, &original[..len]).unwrap();
        let e = files.get_bytes(id).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "len {len}: {e}");
    }
    std::fs::write(&path, &original).unwrap();
    assert_eq!(&files.get_bytes(id).await.unwrap()[..], &bytes[..]);
    assert!(std::fs::read_dir(&work).unwrap().next().is_none());
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_protected_dir_needs_the_right_passphrase() {
    let data = dir("pass");
    let node = builder("p")
        .data_dir(&data)
        .storage_passphrase("correct horse battery")
        .start()
        .await
        .unwrap();
    let id = node
        .files()
        .unwrap()
        .put_bytes(&b"guarded"[..], PutOptions::default())
        .await
        .unwrap();
    node.shutdown().await.unwrap();

    let e = builder("p")
        .data_dir(&data)
        .storage_passphrase("wrong")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.message().contains("wrong storage passphrase"), "{e}");
    let e = builder("p").data_dir(&data).start().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.message().contains("storage_passphrase"), "{e}");

    let node = builder("p")
        .data_dir(&data)
        .storage_passphrase("correct horse battery")
        .start()
        .await
        .unwrap();
    assert_eq!(
        &node.files().unwrap().get_bytes(id).await.unwrap()[..],
        b"guarded"
    );
    node.shutdown().await.unwrap();

    // A dir made without a passphrase refuses one.
    let plain = dir("pass-plain");
    start(&plain).await.shutdown().await.unwrap();
    let e = builder("p")
        .data_dir(&plain)
        .storage_passphrase("x")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&plain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_data_dir_every_call_is_unsupported_and_says_why() {
    let node = builder("n").start().await.unwrap();
    let files = node.files().unwrap();
    let id = FileId::of(b"x");
    let errors = [
        files
            .put_bytes(&b"x"[..], PutOptions::default())
            .await
            .unwrap_err(),
        files
            .put_path("/etc/hostname", PutOptions::default())
            .await
            .unwrap_err(),
        files.get_bytes(id).await.unwrap_err(),
        files.get_to_path(id, "/tmp/never").await.unwrap_err(),
        files.stat(id).await.unwrap_err(),
        files.list(None, 10).await.unwrap_err(),
        files.delete(id).await.unwrap_err(),
        files.stats().unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.message().contains("data_dir"), "{e}");
    }
    // The options that need a data dir are refused without one.
    let e = builder("n")
        .storage_passphrase("pw")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = builder("n").disk_quota(1000).start().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    node.shutdown().await.unwrap();
    assert_eq!(node.files().unwrap_err().kind(), ErrorKind::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_replicas_than_live_members_is_refused_not_pretended() {
    let data = dir("replicas");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let e = files
        .put_bytes(
            &b"x"[..],
            PutOptions {
                replicas: 3,
                ..PutOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerUnavailable);
    assert!(
        e.message().contains("replicas 3 asked, but only 1 node(s)"),
        "{e}"
    );
    let e = files
        .put_bytes(
            &b"x"[..],
            PutOptions {
                replicas: 0,
                ..PutOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(files.stats().unwrap().files, 0);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_over_the_quota_fails_and_leaves_nothing_behind() {
    let data = dir("quota");
    let work = dir("quota-work");
    let quota = 2 * stored_len(100_000) + 50;
    let node = builder("q")
        .data_dir(&data)
        .disk_quota(quota)
        .start()
        .await
        .unwrap();
    let files = node.files().unwrap();
    let a = files
        .put_bytes(pattern(100_000, 1), PutOptions::default())
        .await
        .unwrap();
    files
        .put_bytes(pattern(100_000, 2), PutOptions::default())
        .await
        .unwrap();
    let e = files
        .put_bytes(pattern(100, 3), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    let src = work.join("big");
    std::fs::write(&src, pattern(1000, 4)).unwrap();
    let e = files
        .put_path(&src, PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert_eq!(content_files(&data).len(), 2, "no partial file left");
    let stats = files.stats().unwrap();
    assert_eq!(stats.disk_used, 2 * stored_len(100_000));
    assert_eq!(stats.disk_quota, Some(quota));
    // Content already stored needs no room; a delete makes room.
    files
        .put_bytes(pattern(100_000, 1), PutOptions::named("again"))
        .await
        .unwrap();
    files.delete(a).await.unwrap();
    files
        .put_bytes(pattern(100, 3), PutOptions::default())
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_every_file_in_id_order() {
    let data = dir("list");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let mut ids = Vec::new();
    for i in 0..25u32 {
        ids.push(
            files
                .put_bytes(i.to_le_bytes().to_vec(), PutOptions::named(format!("n{i}")))
                .await
                .unwrap(),
        );
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = files.list(cursor, 10).await.unwrap();
        pages += 1;
        assert!(page.files.len() <= 10);
        seen.extend(page.files.iter().map(|f| f.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);
    assert_eq!(
        files.list(None, 0).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_gone_from_the_store_and_the_disk() {
    let data = dir("delete");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let id = files
        .put_bytes(pattern(70_000, 9), PutOptions::named("gone"))
        .await
        .unwrap();
    assert_eq!(content_files(&data).len(), 1);
    files.delete(id).await.unwrap();
    assert_eq!(
        files.get_bytes(id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        files.stat(id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        files.delete(id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(content_files(&data).is_empty());
    assert_eq!(files.stats().unwrap().files, 0);
    assert_eq!(files.stats().unwrap().disk_used, 0);
    node.shutdown().await.unwrap();
    let node = start(&data).await;
    assert_eq!(
        node.files()
            .unwrap()
            .get_bytes(id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_files_survive_a_restart() {
    const N: u32 = 10_000;
    let data = dir("many");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let puts = futures::stream::iter(0..N)
        .map(|i| {
            let files = files.clone();
            async move {
                let mut body = format!("small file {i} ").into_bytes();
                body.resize(4096, b'.');
                files.put_bytes(body, PutOptions::default()).await.unwrap()
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(puts.len(), N as usize);
    assert_eq!(files.stats().unwrap().files, u64::from(N));
    node.shutdown().await.unwrap();

    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(files.stats().unwrap().files, u64::from(N));
    let mut listed = 0;
    let mut cursor = None;
    loop {
        let page = files.list(cursor, 1000).await.unwrap();
        listed += page.files.len();
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(listed, N as usize);
    for id in puts.iter().step_by(997) {
        let got = files.get_bytes(*id).await.unwrap();
        assert_eq!(FileId::of(&got), *id);
    }
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_cleans_leftovers_and_drops_rows_without_their_content() {
    let data = dir("recover");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let kept = files
        .put_bytes(pattern(20_000, 1), PutOptions::default())
        .await
        .unwrap();
    let lost = files
        .put_bytes(pattern(20_000, 2), PutOptions::default())
        .await
        .unwrap();
    let short = files
        .put_bytes(pattern(20_000, 3), PutOptions::default())
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    let hex = |id: FileId| id.to_string()["blake3:".len()..].to_string();
    let contents = data.join("files");
    std::fs::remove_file(contents.join(hex(lost))).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(contents.join(hex(short)))
        .unwrap();
    f.set_len(500).unwrap();
    drop(f);
    std::fs::write(contents.join("tmp-0123456789abcdef"), b"partial").unwrap();
    let orphan = FileId::of(b"orphan");
    std::fs::write(contents.join(hex(orphan)), b"no row").unwrap();

    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(files.get_bytes(kept).await.unwrap().len(), 20_000);
    for gone in [lost, short, orphan] {
        assert_eq!(
            files.stat(gone).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    assert_eq!(files.stats().unwrap().files, 1);
    assert_eq!(content_files(&data), vec![contents.join(hex(kept))]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&contents), 0o700);
        assert_eq!(mode(&data.join("files.redb")), 0o600);
        assert_eq!(mode(&data.join("storage.key")), 0o600);
        assert_eq!(mode(&contents.join(hex(kept))), 0o600);
    }
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_puts_and_deletes_of_one_file_leave_row_and_content_together() {
    let data = dir("race");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let bytes = pattern(20_000, 5);
    let id = FileId::of(&bytes);
    for round in 0..40 {
        let put = files.put_bytes(bytes.clone(), PutOptions::named(format!("r{round}")));
        let del = files.delete(id);
        let (p, d) = futures::join!(put, del);
        assert_eq!(p.unwrap(), id);
        if let Err(e) = d {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        }
        let listed = files.stats().unwrap().files;
        let on_disk = content_files(&data).len() as u64;
        assert_eq!(listed, on_disk, "round {round}");
        match files.get_bytes(id).await {
            Ok(got) => assert_eq!(&got[..], &bytes[..]),
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "round {round}: {e}"),
        }
    }
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_store_is_usable_from_threads_without_an_async_runtime() {
    let data = dir("blocking");
    let node = builder("b").data_dir(&data).start_blocking().unwrap();
    let files = node.files().unwrap();
    let id = futures::executor::block_on(
        files.put_bytes(&b"from a plain thread"[..], PutOptions::default()),
    )
    .unwrap();
    let got = std::thread::spawn({
        let files = files.clone();
        move || futures::executor::block_on(files.get_bytes(id)).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(&got[..], b"from a plain thread");
    node.shutdown_blocking().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

/// Where `id`'s sealed contents are in the value log: the pointer in its record
/// (`<data>/files.redb`, the node stopped).
fn loc_of(data: &Path, id: FileId) -> memmesh::files::logfmt::Loc {
    use memmesh::files::db::Record;
    use redb::{ReadableDatabase, TableDefinition};
    let table: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
    let db = redb::Database::create(data.join("files.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(table).unwrap();
    let v = t.get(&id.digest()[..]).unwrap().expect("a record");
    Record::loc_of(v.value())
        .expect("a well-formed record")
        .expect("a value log pointer")
}

/// Flips one byte of `id`'s sealed contents in the value log (`<data>/files-log/`, where
/// its record in `<data>/files.redb` points; the node stopped).
fn flip_inlined_byte(data: &Path, id: FileId) {
    use memmesh::files::logfmt::segment_name;
    let loc = loc_of(data, id);
    let path = data.join("files-log").join(segment_name(loc.segment));
    let mut log = std::fs::read(&path).unwrap();
    let at = (loc.offset + u64::from(loc.len) / 2) as usize;
    log[at] ^= 0x40;
    std::fs::write(&path, &log).unwrap();
}

/// A schema-2 store (small files in the `inline` table) opened by this build: upgraded to
/// schema 5 in place, its small file read from `inline`, new small files logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_2_store_is_upgraded_and_its_inlined_files_still_read() {
    use memmesh::files::logfmt::segment_name;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    let data = dir("schema2");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let old = pattern(3000, 11);
    let id = files
        .put_bytes(old.clone(), PutOptions::named("old"))
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    // Make it what schema 2 wrote: the sealed bytes in `inline`, a record of version 1
    // without a pointer, no log.
    let meta: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let records: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
    let inline: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline");
    {
        let loc = loc_of(&data, id);
        let db = redb::Database::create(data.join("files.redb")).unwrap();
        let log = std::fs::read(data.join("files-log").join(segment_name(loc.segment))).unwrap();
        let sealed = &log[loc.offset as usize..loc.end() as usize];
        let txn = db.begin_write().unwrap();
        txn.open_table(meta)
            .unwrap()
            .insert("schema_version", 2)
            .unwrap();
        {
            let mut t = txn.open_table(records).unwrap();
            let row = t.get(&id.digest()[..]).unwrap().unwrap().value().to_vec();
            assert_eq!(row[0], 2, "a logged file's record is of version 2");
            let mut v1 = vec![1u8];
            v1.extend_from_slice(&row[1..25]);
            v1.extend_from_slice(&row[45..]);
            t.insert(&id.digest()[..], &v1[..]).unwrap();
        }
        txn.open_table(inline)
            .unwrap()
            .insert(&id.digest()[..], sealed)
            .unwrap();
        txn.commit().unwrap();
    }
    std::fs::remove_dir_all(data.join("files-log")).unwrap();
    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(&files.get_bytes(id).await.unwrap()[..], &old[..]);
    assert_eq!(files.stat(id).await.unwrap().name.as_deref(), Some("old"));
    let new = pattern(3000, 12);
    let id2 = files
        .put_bytes(new.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(files.stats().unwrap().files, 2);
    node.shutdown().await.unwrap();
    let (schema, logged, _, versions) = schema3::inspect(&data);
    assert_eq!((schema, logged), (5, 0));
    let version = |id: FileId| {
        versions
            .iter()
            .find(|(k, _)| k[..] == id.digest()[..])
            .map(|(_, v)| *v)
    };
    assert_eq!(version(id), Some(1), "still inlined");
    assert_eq!(version(id2), Some(2), "logged, the pointer in its record");
    let db = redb::Database::create(data.join("files.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(inline).unwrap().iter().unwrap().count(), 1);
    drop(txn);
    drop(db);
    let _ = std::fs::remove_dir_all(&data);
}

/// A schema-3 store (small files' value log pointers in `logged`, records of version 1,
/// a `holders` row for this node beside each record) opened by this build: converted to
/// schema 5 when opened (pointers moved into the records, `logged` emptied), every file
/// read back, this node listed once as a holder; new puts write no `holders` row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_3_store_is_converted_and_its_logged_files_still_read() {
    let data = dir("schema3");
    let node = start(&data).await;
    let me = node.id();
    let files = node.files().unwrap();
    let mut old = Vec::new();
    for i in 0..20u8 {
        let bytes = pattern(1000 + usize::from(i) * 700, 30 + i);
        let id = files
            .put_bytes(bytes.clone(), PutOptions::named(format!("old{i}")))
            .await
            .unwrap();
        old.push((id, bytes));
    }
    let big = pattern(100_000, 77);
    let big_id = files
        .put_bytes(big.clone(), PutOptions::named("big"))
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    assert_eq!(schema3::to_schema_3(&data, me.as_bytes()), 20);
    let (schema, logged, holders, _) = schema3::inspect(&data);
    assert_eq!((schema, logged, holders), (3, 20, 21));

    let node = start(&data).await;
    assert_eq!(node.id(), me);
    let files = node.files().unwrap();
    for (i, (id, bytes)) in old.iter().enumerate() {
        assert_eq!(&files.get_bytes(*id).await.unwrap()[..], &bytes[..]);
        let info = files.stat(*id).await.unwrap();
        assert_eq!(info.name, Some(format!("old{i}")));
        assert_eq!(info.holders, vec![me], "this node, once");
    }
    assert_eq!(&files.get_bytes(big_id).await.unwrap()[..], &big[..]);
    assert_eq!(files.stat(big_id).await.unwrap().holders, vec![me]);
    assert_eq!(files.stats().unwrap().files, 21);
    // A renamed old file keeps its pointer; new puts and deletes work on converted rows.
    files
        .put_bytes(old[0].1.clone(), PutOptions::named("renamed"))
        .await
        .unwrap();
    files.delete(old[1].0).await.unwrap();
    let fresh = pattern(4096, 99);
    let fresh_id = files
        .put_bytes(fresh.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(files.stat(fresh_id).await.unwrap().holders, vec![me]);
    node.shutdown().await.unwrap();
    let (schema, logged, holders, versions) = schema3::inspect(&data);
    assert_eq!((schema, logged), (5, 0), "converted, `logged` emptied");
    assert_eq!(holders, 20, "the old rows stay; the new put wrote none");
    assert_eq!(
        versions.iter().filter(|(_, v)| *v == 2).count(),
        20,
        "19 old small files and the new one point into the log"
    );

    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(
        files.stat(old[0].0).await.unwrap().name.as_deref(),
        Some("renamed")
    );
    assert_eq!(&files.get_bytes(old[0].0).await.unwrap()[..], &old[0].1[..]);
    assert_eq!(
        files.get_bytes(old[1].0).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    for (id, bytes) in &old[2..] {
        assert_eq!(&files.get_bytes(*id).await.unwrap()[..], &bytes[..]);
    }
    assert_eq!(&files.get_bytes(fresh_id).await.unwrap()[..], &fresh[..]);
    assert_eq!(files.stats().unwrap().files, 21);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_up_to_16_kib_are_inlined_and_survive_a_restart() {
    use memmesh::files::inline::INLINE_MAX;
    let data = dir("inline");
    let work = dir("inline-work");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let max = INLINE_MAX as usize;
    assert_eq!(max, 16 * 1024);
    let small = pattern(max, 1);
    let big = pattern(max + 1, 2);
    let empty = Vec::new();
    let a = files
        .put_bytes(small.clone(), PutOptions::named("small"))
        .await
        .unwrap();
    assert!(content_files(&data).is_empty(), "16 KiB is inlined");
    let b = files
        .put_bytes(big.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        content_files(&data).len(),
        1,
        "16 KiB + 1 is a content file"
    );
    let e = files
        .put_bytes(empty.clone(), PutOptions::default())
        .await
        .unwrap();
    // Through a path too.
    let src = work.join("small-src");
    let from_path = pattern(max - 7, 3);
    std::fs::write(&src, &from_path).unwrap();
    let c = files.put_path(&src, PutOptions::default()).await.unwrap();
    assert_eq!(c, FileId::of(&from_path));
    assert_eq!(content_files(&data).len(), 1);
    // The same content again: no new row, the name updated.
    assert_eq!(
        files
            .put_bytes(small.clone(), PutOptions::named("renamed"))
            .await
            .unwrap(),
        a
    );
    let stats = files.stats().unwrap();
    assert_eq!(stats.files, 4);
    let expected_used = stored_len(max as u64)
        + stored_len(max as u64 + 1)
        + stored_len(0)
        + stored_len(max as u64 - 7);
    assert_eq!(stats.disk_used, expected_used, "inlined bytes count");
    node.shutdown().await.unwrap();

    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(&files.get_bytes(a).await.unwrap()[..], &small[..]);
    assert_eq!(&files.get_bytes(b).await.unwrap()[..], &big[..]);
    assert!(files.get_bytes(e).await.unwrap().is_empty());
    let out = work.join("c-out");
    files.get_to_path(c, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), from_path);
    let info = files.stat(a).await.unwrap();
    assert_eq!(info.size, max as u64);
    assert_eq!(info.name.as_deref(), Some("renamed"));
    let stats = files.stats().unwrap();
    assert_eq!((stats.files, stats.disk_used), (4, expected_used));
    // A delete of an inlined file frees its bytes; it stays deleted across a restart.
    files.delete(a).await.unwrap();
    assert_eq!(
        files.get_bytes(a).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        files.stats().unwrap().disk_used,
        expected_used - stored_len(max as u64)
    );
    node.shutdown().await.unwrap();
    let node = start(&data).await;
    let files = node.files().unwrap();
    assert_eq!(files.stat(a).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(files.stats().unwrap().files, 3);
    // No plaintext of the inlined files in the database or the value log.
    let db = std::fs::read(data.join("files.redb")).unwrap();
    assert!(!db.windows(64).any(|w| w == &from_path[..64]));
    for segment in std::fs::read_dir(data.join("files-log")).unwrap() {
        let log = std::fs::read(segment.unwrap().path()).unwrap();
        assert!(!log.windows(64).any(|w| w == &from_path[..64]));
    }
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_of_inlined_contents_is_corrupted_never_returned() {
    let data = dir("inline-flip");
    let work = dir("inline-flip-work");
    let node = start(&data).await;
    let files = node.files().unwrap();
    let bytes = pattern(4096, 9);
    let id = files
        .put_bytes(bytes.clone(), PutOptions::default())
        .await
        .unwrap();
    node.shutdown().await.unwrap();
    flip_inlined_byte(&data, id);
    let node = start(&data).await;
    let files = node.files().unwrap();
    let e = files.get_bytes(id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    let out = work.join("out");
    let e = files.get_to_path(id, &out).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(!out.exists(), "nothing written from a corrupted file");
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inlined_files_count_against_the_quota() {
    let data = dir("inline-quota");
    let quota = stored_len(10_000) + 50;
    let node = builder("q")
        .data_dir(&data)
        .disk_quota(quota)
        .start()
        .await
        .unwrap();
    let files = node.files().unwrap();
    let a = files
        .put_bytes(pattern(10_000, 1), PutOptions::default())
        .await
        .unwrap();
    let e = files
        .put_bytes(pattern(100, 2), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    let stats = files.stats().unwrap();
    assert_eq!((stats.files, stats.disk_used), (1, stored_len(10_000)));
    // Content already stored needs no room; a delete makes room.
    files
        .put_bytes(pattern(10_000, 1), PutOptions::named("again"))
        .await
        .unwrap();
    files.delete(a).await.unwrap();
    files
        .put_bytes(pattern(100, 2), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(files.stats().unwrap().disk_used, stored_len(100));
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
