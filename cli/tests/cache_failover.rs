//! A cache node killed without a goodbye (SIGKILL of a real process) loses no
//! acknowledged write at `replicas = 2`: every key stays readable from the survivors,
//! during failure detection and after the partitions moved.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memmesh::{Bytes, CacheOptions, Node, NodeId, PeerState};

const KEYS: usize = 10_000;

async fn member(name: &str, seed: Option<&Node>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(2);
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    b.start().await.unwrap()
}

fn value(i: usize) -> Bytes {
    Bytes::from(format!("value-{i}-{}", "x".repeat(64)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_no_acknowledged_write_at_two_replicas() {
    let a = member("a", None).await;
    let b = member("b", Some(&a)).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_memmesh"))
        .args([
            "node",
            "--name",
            "victim",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
        ])
        .arg(a.addr().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the CLI node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let victim: NodeId = line
        .split(['(', ')'])
        .nth(1)
        .expect("id in the banner")
        .parse()
        .unwrap();
    let alive = |n: &Node| {
        n.peers()
            .iter()
            .filter(|p| p.state == PeerState::Alive)
            .count()
            == 2
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(alive(&a) && alive(&b)) {
        assert!(Instant::now() < deadline, "the cluster did not form");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opts = CacheOptions {
        replicas: 2,
        ..CacheOptions::default()
    };
    let ca = a.cache("durable", Some(opts)).await.unwrap();
    let cb = b.cache("durable", None).await.unwrap();
    let entries: Vec<(String, Bytes)> = (0..KEYS)
        .map(|i| (format!("key:{i:05}"), value(i)))
        .collect();
    for chunk in entries.chunks(250) {
        ca.set_many(chunk.to_vec(), None).await.unwrap();
    }
    // The victim holds its share (about two thirds of the keys, as one of two owners).
    let mut killed = false;
    for _ in 0..100 {
        if a.blocks()
            .unwrap()
            .stats()
            .await
            .unwrap()
            .iter()
            .any(|u| u.id == victim && u.used > 0)
        {
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(killed, "the victim never held any entry");
    child.kill().unwrap(); // SIGKILL: no goodbye
    let _ = child.wait();
    // Right away, while the victim is only suspected: every key is still readable.
    let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    for (reader, name) in [(&ca, "a"), (&cb, "b")] {
        for (chunk_keys, chunk) in keys.chunks(500).zip(entries.chunks(500)) {
            let got = reader.get_many(chunk_keys).await.unwrap();
            for ((k, v), g) in chunk.iter().zip(got) {
                assert_eq!(
                    g.as_ref(),
                    Some(v),
                    "{name} lost {k} during failure detection"
                );
            }
        }
    }
    // Once the victim is declared down, its partitions move to the survivors, and every
    // key is still there, now held by both.
    let deadline = Instant::now() + Duration::from_secs(30);
    while a
        .peers()
        .iter()
        .any(|p| p.id == victim && p.state != PeerState::Down)
    {
        assert!(
            Instant::now() < deadline,
            "the victim was never declared down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ca.stats().entries < KEYS as u64 || cb.stats().entries < KEYS as u64 {
        assert!(
            Instant::now() < deadline,
            "partitions did not move: {:?} {:?}",
            ca.stats(),
            cb.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (k, v) in &entries {
        assert_eq!(cb.get(k).await.unwrap().as_ref(), Some(v), "b lost {k}");
    }
    // Both survivors now own every partition; once their pulls settle, a answers every
    // key from its own RAM.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing = entries
            .iter()
            .filter(|(k, v)| ca.try_get_local(k) != Some(Some(v.clone())))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} keys are still not local to a"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ca.len().await.unwrap(), KEYS as u64);
}
