//! Resume of an interrupted replica (issue 14 item 3, ADR 0018 "Resume of a replica"): a
//! put with replicas whose holder loses its connection to the origin mid-pull keeps the
//! verified part encrypted in a partial file; the repeated put resumes after it, sends
//! only the rest, and the holder stores the whole, verified. Real nodes over QUIC on
//! loopback; the cut is the origin closing the connection once it has streamed a given
//! number of bytes (a transfer test hook). No timing is asserted.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{builder, eventually};
use memmesh::{Node, PeerState, PutOptions};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-fres-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i / 7) as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn start(name: &str, data: &Path, seed: Option<&Node>) -> Node {
    let mut b = builder(name).data_dir(data);
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    b.start().await.expect("start node")
}

async fn formed(a: &Node, b: &Node) {
    let sees = |x: &Node, y: &Node| {
        x.peers()
            .iter()
            .any(|p| p.id == y.id() && p.state == PeerState::Alive && p.quota_free.is_some())
    };
    assert!(
        eventually(Duration::from_secs(30), || sees(a, b) && sees(b, a)).await,
        "the two nodes did not see each other alive"
    );
}

/// Entries of a node's contents dir whose name starts with `prefix`.
fn entries(data: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(data.join("files"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_mid_pull_resumes_from_its_kept_part_and_is_stored_verified() {
    let base = dir("cut");
    let (da, db) = (base.join("a"), base.join("b"));
    let a = start("a", &da, None).await;
    let b = start("b", &db, Some(&a)).await;
    formed(&a, &b).await;
    let size = (24 << 20) + 12_345;
    let data = pattern(size, 7);
    let two = PutOptions {
        replicas: 2,
        ..PutOptions::default()
    };
    let transfer = a.transfer().unwrap();
    // The holder reads what the origin streams at most a stream window (8 MiB) and two
    // chunks behind, so at the cut it has verified and written at least 6 MiB.
    let cut_at = 16u64 << 20;
    transfer.cut_connection_after_for_tests(cut_at);
    let e = a
        .files()
        .unwrap()
        .put_bytes(data.clone(), two.clone())
        .await
        .expect_err("the holder's connection was cut mid-pull");
    let first = transfer.streamed_bytes_for_tests();
    assert!(
        first > cut_at && first < size as u64,
        "streamed {first} bytes the first time ({e})"
    );
    // The holder lists nothing, and keeps the verified part in a partial file.
    assert!(b
        .files()
        .unwrap()
        .list(None, 10)
        .await
        .unwrap()
        .files
        .is_empty());
    assert!(
        eventually(Duration::from_secs(20), || !entries(&db, "partial-")
            .is_empty())
        .await,
        "no partial replica kept"
    );

    // The same put again: the holder resumes after what it kept.
    formed(&a, &b).await;
    let id = a
        .files()
        .unwrap()
        .put_bytes(data.clone(), two)
        .await
        .unwrap();
    let second = transfer.streamed_bytes_for_tests() - first;
    eprintln!("size {size}: first attempt streamed {first}, the resumed one {second}");
    assert!(
        second + (4 << 20) <= size as u64,
        "sent {second} of {size} bytes again (the first attempt got {first} through)"
    );
    // Stored on the holder, whole and verified, listed once; no partial left.
    let info = b.files().unwrap().stat(id).await.unwrap();
    assert_eq!(info.size, size as u64);
    let got = b.files().unwrap().get_bytes(id).await.unwrap();
    assert!(got.as_ref() == &data[..], "the stored replica differs");
    assert_eq!(
        b.files().unwrap().list(None, 10).await.unwrap().files.len(),
        1
    );
    assert!(
        entries(&db, "partial-").is_empty(),
        "{:?}",
        entries(&db, "partial-")
    );
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&base).unwrap();
}
