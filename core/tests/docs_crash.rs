//! A node process SIGKILLed at random points while it edits a document, restarted on the
//! same data dir each time: after every restart the document opens, and every edit that
//! returned before the kill is there (at most the one edit in flight at the kill is
//! there too). The edits cross several log compactions.
//!
//! The child is this test binary run again with `--exact docs_crash_child` and
//! `MEMMESH_DOCS_CRASH_CHILD=<data dir>`; that test function returns at once without it.
//!
//! Also: an edit a node made while its peer was down, just before the node was
//! SIGKILLed, reaches the peer when both are back (after a crash the node's event log
//! starts a new epoch, and the node's own question to the peer syncs the document too;
//! ADR 0020, seventh slice). Its child is `docs_crash_peer_child`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::builder;
use memmesh::{DocId, Reach, Value};

const CHILD_ENV: &str = "MEMMESH_DOCS_CRASH_CHILD";
const PEER_CHILD_ENV: &str = "MEMMESH_DOCS_PEER_CHILD";
const PEER_ADDR_ENV: &str = "MEMMESH_DOCS_PEER_ADDR";
const PEER_GO_ENV: &str = "MEMMESH_DOCS_PEER_GO";
const ROUNDS: u64 = 5;
/// The child gives up by itself after this long (if the parent died).
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// The child: opens the one document (creating it on the first run), then increments its
/// counter and appends to its text until killed, printing `INC` after each returned edit.
#[test]
fn docs_crash_child() {
    let Some(data) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let data = PathBuf::from(data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let node = builder("crash").data_dir(&data).start().await.unwrap();
        let docs = node.docs().unwrap();
        let id = match docs.list().await.unwrap().first() {
            Some(info) => info.id,
            None => {
                let id = docs.create(Reach::Private).await.unwrap();
                let doc = docs.open(id).await.unwrap();
                doc.put("n", Value::Counter(0)).await.unwrap();
                doc.put("t", Value::Text(String::new())).await.unwrap();
                id
            }
        };
        let doc = docs.open(id).await.unwrap();
        println!("READY {id}");
        let end = tokio::time::Instant::now() + CHILD_LIFETIME;
        while tokio::time::Instant::now() < end {
            doc.increment("n", 1).await.unwrap();
            doc.splice_text("t", 0, 0, "x").await.unwrap();
            println!("INC");
        }
        eprintln!("docs_crash_child: not killed in time, exiting");
    });
}

/// Runs one child for `kill_after` once it is ready, SIGKILLs it, and returns how many
/// edits it acknowledged.
fn run_child(data: &Path, kill_after: Duration) -> u64 {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "docs_crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the child process");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = 0u64;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("READY") {
                let _ = tx.send(());
            } else if line.ends_with("INC") {
                acked += 1;
            }
        }
        acked
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the child node did not start within 60 s");
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reaping the child");
    assert!(!status.success(), "the child was killed: {status:?}");
    reader.join().expect("the reader thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_killed_at_random_points_keeps_every_acknowledged_edit() {
    let data = std::env::temp_dir().join(format!("memmesh-docs-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let seed = std::process::id() as u64;
    let mut acked = 0u64;
    for round in 0..ROUNDS {
        // 300..1500 ms of edits: kills land inside appends and compactions alike.
        let ms = 300 + (seed.wrapping_mul(2654435761).wrapping_add(round * 7919)) % 1200;
        let n = run_child(&data, Duration::from_millis(ms));
        acked += n;
        let node = builder("check").data_dir(&data).start().await.unwrap();
        let docs = node.docs().unwrap();
        let list = docs.list().await.unwrap();
        assert_eq!(list.len(), 1, "round {round}");
        let id: DocId = list[0].id;
        let doc = docs.open(id).await.unwrap();
        let Some(Value::Counter(count)) = doc.get("n").unwrap() else {
            panic!("round {round}: no counter: {}", doc.to_json().unwrap());
        };
        let Some(Value::Text(text)) = doc.get("t").unwrap() else {
            panic!("round {round}: no text");
        };
        let count = count as u64;
        // A round may add one edit that was durable but not yet acknowledged.
        assert!(
            count >= acked && count <= acked + 1,
            "round {round} (seed {seed}): counter {count}, acknowledged {acked}"
        );
        // A kill between an increment and its splice leaves the text one behind.
        let chars = text.chars().count() as u64;
        assert!(
            chars <= count && chars + round + 1 >= count,
            "round {round}: text of {chars} chars, counter {count}"
        );
        // What the checker saw is what the next round starts from.
        acked = count;
        node.shutdown().await.unwrap();
    }
    assert!(acked > 0, "the children made no edits");
    let _ = std::fs::remove_dir_all(&data);
}

/// The peer child: starts on its data dir, connects to the address it is given, opens its
/// one cluster document (creating it, with `n` = 1, on the first run) and prints `READY
/// <id>`. Given a go file, it waits for it, then edits the document (`after` = true) and
/// prints `EDITED`. Then it idles until killed.
#[test]
fn docs_crash_peer_child() {
    let Some(data) = std::env::var_os(PEER_CHILD_ENV) else {
        return;
    };
    let data = PathBuf::from(data);
    let addr = std::env::var(PEER_ADDR_ENV).unwrap();
    let go = std::env::var_os(PEER_GO_ENV).map(PathBuf::from);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let node = builder("crash-peer").data_dir(&data).start().await.unwrap();
        node.connect(&addr).await.unwrap();
        let docs = node.docs().unwrap();
        let id = match docs.list().await.unwrap().first() {
            Some(info) => info.id,
            None => {
                let id = docs.create(Reach::Cluster).await.unwrap();
                docs.open(id)
                    .await
                    .unwrap()
                    .put("n", Value::Int(1))
                    .await
                    .unwrap();
                id
            }
        };
        println!("READY {id}");
        if let Some(go) = go {
            let end = tokio::time::Instant::now() + CHILD_LIFETIME;
            while !go.exists() {
                if tokio::time::Instant::now() > end {
                    eprintln!("docs_crash_peer_child: no go in time, exiting");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            docs.open(id)
                .await
                .unwrap()
                .put("after", Value::Bool(true))
                .await
                .unwrap();
            println!("EDITED");
        }
        tokio::time::sleep(CHILD_LIFETIME).await;
        eprintln!("docs_crash_peer_child: not killed in time, exiting");
    });
}

/// Starts the peer child on `data`, connecting to `addr` (with a go file if `go`); a
/// channel of its stdout lines.
fn spawn_peer(
    data: &Path,
    addr: &str,
    go: Option<&Path>,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "docs_crash_peer_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(PEER_CHILD_ENV, data)
    .env(PEER_ADDR_ENV, addr)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(go) = go {
        cmd.env(PEER_GO_ENV, go);
    }
    let mut child = cmd.spawn().expect("starting the child process");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The first line from `rx` containing `what` (within 60 s).
fn line_with(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the child did not print {what} within 60 s"));
        if line.contains(what) {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_told_of_an_edit_made_just_before_a_sigkill() {
    let root = std::env::temp_dir().join(format!("memmesh-docs-crash-peer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (da, db) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let go = root.join("go");

    let mut b = builder("b").data_dir(&db).start().await.unwrap();
    let b_addr = b.addr().to_string();
    // a's first life: it makes the document, b gets it; a is killed.
    let (mut child, rx) = spawn_peer(&da, &b_addr, None);
    let ready = line_with(&rx, "READY");
    let id: DocId = ready
        .rsplit("READY ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        common::eventually(Duration::from_secs(30), || {
            futures::executor::block_on(async {
                match b.docs().unwrap().open(id).await {
                    Ok(doc) => doc.get("n").unwrap() == Some(Value::Int(1)),
                    Err(_) => false,
                }
            })
        })
        .await,
        "b got the document"
    );
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    // a's second life (a new epoch, saved at its start): b asks it what changed and moves
    // its position into that epoch.
    let (mut child, rx) = spawn_peer(&da, &b_addr, Some(&go));
    line_with(&rx, "READY");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // b stops (in order: its position in a's log is saved); a edits, then is killed.
    b.shutdown().await.unwrap();
    drop(b);
    std::fs::write(&go, b"go").unwrap();
    line_with(&rx, "EDITED");
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();

    // Both come back: a from its second crash, b in order. a's log saved at its second
    // start does not hold the edit; b must get it all the same.
    b = builder("b")
        .data_dir(&db)
        .listen(b_addr.clone())
        .start()
        .await
        .unwrap();
    let (mut child, rx) = spawn_peer(&da, &b_addr, None);
    line_with(&rx, "READY");
    let told = common::eventually(Duration::from_secs(30), || {
        futures::executor::block_on(async {
            match b.docs().unwrap().open(id).await {
                Ok(doc) => doc.get("after").unwrap() == Some(Value::Bool(true)),
                Err(_) => false,
            }
        })
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    b.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert!(told, "b never got the edit a made before its crash");
}
