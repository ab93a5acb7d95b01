//! A node process SIGKILLed at random points while it edits a document, restarted on the
//! same data dir each time: after every restart the document opens, and every edit that
//! returned before the kill is there (at most the one edit in flight at the kill is
//! there too). The edits cross several log compactions.
//!
//! The child is this test binary run again with `--exact docs_crash_child` and
//! `MEMMESH_DOCS_CRASH_CHILD=<data dir>`; that test function returns at once without it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::builder;
use memmesh::{DocId, Reach, Value};

const CHILD_ENV: &str = "MEMMESH_DOCS_CRASH_CHILD";
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
