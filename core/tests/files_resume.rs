//! Resume of an interrupted replica (issue 14 item 3, ADR 0018 "Resume of a replica"): a
//! put with replicas whose holder loses its connection to the origin mid-pull keeps the
//! verified part encrypted in a partial file; the repeated put resumes after it, sends
//! only the rest, and the holder stores the whole, verified. Real nodes over QUIC on
//! loopback; the cut is the origin closing the connection once it has streamed a given
//! number of bytes (a transfer test hook). And the same with the holder a separate
//! process SIGKILLed mid-pull and restarted: nothing is listed after the kill, and the
//! repeated put resumes from the last checkpoint made while the pull ran. No timing is
//! asserted.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{builder, eventually};
use memmesh::files::store::{OpenOptions, Store};
use memmesh::{Node, NodeId, PeerState, PutOptions, TransportTuning};

/// Set (to its data dir) for the child process: a holder node, killed by the parent.
const CHILD_ENV: &str = "MEMMESH_FILES_RESUME_CHILD";
/// The address of the node the child joins.
const SEED_ENV: &str = "MEMMESH_FILES_RESUME_SEED";
/// The child gives up by itself after this long (if the parent died).
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

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

/// The child: a holder node on the data dir it is given, joined to the parent's node,
/// until killed.
#[test]
fn files_resume_child() {
    let Some(data) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let seed = std::env::var(SEED_ENV).expect("the seed address");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _node = builder("holder")
            .data_dir(PathBuf::from(data))
            .bootstrap([seed])
            .start()
            .await
            .expect("child node start");
        println!("READY");
        tokio::time::sleep(CHILD_LIFETIME).await;
        eprintln!("files_resume_child: not killed in time, exiting");
        std::process::exit(3);
    });
}

/// Starts the child holder on `data`, joined to `seed`; returns once it started.
fn start_child(data: &Path, seed: &Node) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "files_resume_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, data)
        .env(SEED_ENV, seed.addr().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the child process");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the child node did not start within 60 s");
    child
}

/// Waits until `node` sees a member other than `not` alive, with an advert; returns it.
async fn member(node: &Node, not: Option<NodeId>) -> NodeId {
    let mut found = None;
    let seen = eventually(Duration::from_secs(30), || {
        found = node
            .peers()
            .into_iter()
            .find(|p| p.state == PeerState::Alive && p.quota_free.is_some() && Some(p.id) != not)
            .map(|p| p.id);
        found.is_some()
    })
    .await;
    assert!(seen, "no live member");
    found.expect("seen")
}

/// The store of a (killed) node's data dir, opened in this process.
fn open_store(data: &Path) -> Arc<Store> {
    let store = Store::open(OpenOptions {
        data_dir: data.to_path_buf(),
        passphrase: None,
        quota: None,
        node: NodeId::from_bytes([7; 32]),
    })
    .expect("open the killed holder's store");
    Arc::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_mid_pull_restarts_with_nothing_listed_and_the_repeat_resumes() {
    let base = dir("kill");
    let (da, db) = (base.join("a"), base.join("b"));
    // A short idle timeout: the put learns soon that the killed holder is gone.
    let tuning = TransportTuning {
        idle_timeout: Duration::from_secs(2),
        keep_alive: Duration::from_millis(500),
        ..TransportTuning::default()
    };
    let a = builder("a")
        .data_dir(&da)
        .tuning(tuning)
        .start()
        .await
        .unwrap();
    let mut child = start_child(&db, &a);
    let holder = member(&a, None).await;
    let size = (40 << 20) + 777;
    let data = pattern(size, 3);
    let two = PutOptions {
        replicas: 2,
        ..PutOptions::default()
    };
    let transfer = a.transfer().unwrap();
    let put = {
        let (files, data, two) = (a.files().unwrap(), data.clone(), two.clone());
        tokio::spawn(async move { files.put_bytes(data, two).await })
    };
    // Killed once the origin streamed 24 MiB: the holder, at most a stream window and
    // two chunks behind, has written at least 14 MiB and made its 8 MiB checkpoint.
    assert!(
        eventually(Duration::from_secs(120), || transfer
            .streamed_bytes_for_tests()
            > 24 << 20)
        .await,
        "the pull did not get going"
    );
    child.kill().expect("SIGKILL the holder");
    let _ = child.wait();
    let first = transfer.streamed_bytes_for_tests();
    let failed = tokio::time::timeout(Duration::from_secs(120), put)
        .await
        .expect("the put ends once the holder is gone")
        .unwrap();
    assert!(failed.is_err(), "the only holder was killed mid-pull");
    assert!(first < size as u64, "streamed {first} of {size}");

    // After the kill (and the start-up cleanup): nothing listed, the partial kept.
    let store = open_store(&db);
    assert_eq!(
        store.stats().files,
        0,
        "a partial replica was listed as a file"
    );
    assert!(
        !entries(&db, "partial-").is_empty(),
        "the partial replica was not kept"
    );
    assert!(
        entries(&db, "tmp-").is_empty(),
        "{:?}",
        entries(&db, "tmp-")
    );
    store.close();
    drop(store);

    // Restarted: the repeated put resumes after the checkpoint the pull made.
    let mut child = start_child(&db, &a);
    assert!(
        eventually(Duration::from_secs(30), || a
            .peers()
            .iter()
            .any(|p| p.id == holder && p.state == PeerState::Alive))
        .await,
        "the restarted holder did not come back"
    );
    let id = a
        .files()
        .unwrap()
        .put_bytes(data.clone(), two)
        .await
        .unwrap();
    let second = transfer.streamed_bytes_for_tests() - first;
    eprintln!("size {size}: streamed {first} before the kill, {second} after the restart");
    assert!(
        second + (4 << 20) <= size as u64,
        "sent {second} of {size} bytes again after the restart"
    );
    child.kill().expect("SIGKILL the holder");
    let _ = child.wait();
    let store = open_store(&db);
    assert_eq!(store.stats().files, 1);
    let got = store.clone().get_bytes(id).await.unwrap();
    assert!(got.as_ref() == &data[..], "the stored replica differs");
    assert!(
        entries(&db, "partial-").is_empty(),
        "{:?}",
        entries(&db, "partial-")
    );
    store.close();
    a.shutdown().await.unwrap();
    std::fs::remove_dir_all(&base).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_by_search_into_a_path_cut_mid_way_resumes_when_repeated() {
    let base = dir("get");
    let (da, dc) = (base.join("a"), base.join("c"));
    let a = start("a", &da, None).await;
    let c = start("c", &dc, Some(&a)).await;
    formed(&a, &c).await;
    let size = (24 << 20) + 4_321;
    let data = pattern(size, 11);
    let id = a
        .files()
        .unwrap()
        .put_bytes(data.clone(), PutOptions::default())
        .await
        .unwrap();
    let out = base.join("out").join("got.bin");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let transfer = a.transfer().unwrap();
    transfer.cut_connection_after_for_tests(16 << 20);
    c.files()
        .unwrap()
        .get_to_path(id, out.clone())
        .await
        .expect_err("the holder's connection was cut mid-get");
    let first = transfer.streamed_bytes_for_tests();
    assert!(
        !out.exists(),
        "nothing under the asked name before it is verified"
    );
    formed(&a, &c).await;
    c.files()
        .unwrap()
        .get_to_path(id, out.clone())
        .await
        .unwrap();
    let second = transfer.streamed_bytes_for_tests() - first;
    eprintln!("size {size}: the get streamed {first}, then {second} when repeated");
    assert!(
        second + (4 << 20) <= size as u64,
        "sent {second} of {size} bytes again"
    );
    assert!(std::fs::read(&out).unwrap() == data, "the file got differs");
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    for n in [a, c] {
        n.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&base).unwrap();
}
