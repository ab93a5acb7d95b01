//! Known peers persist (issue 14, item 7; ADR 0019): a node with a data dir remembers
//! the members it has seen and, restarted with no bootstrap address and mDNS off, redials
//! them; a peer unseen past `known_peers_ttl` is forgotten, and a damaged peers file is
//! set aside without failing the start.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{builder, eventually};
use memmesh::discovery::known::{KnownPeers, FILE_NAME};
use memmesh::{Node, NodeId, PeerState};

/// Generous: the test asserts membership, not timing.
const DEADLINE: Duration = Duration::from_secs(60);

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-known-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts a node on `listen` with its data dir, `ttl`, and the bootstrap addresses.
async fn start(name: &str, data: &Path, listen: &str, ttl: Duration, bootstrap: &[String]) -> Node {
    builder(name)
        .listen(listen)
        .data_dir(data)
        .known_peers_ttl(ttl)
        .bootstrap(bootstrap.iter().cloned())
        .start()
        .await
        .expect("start node")
}

/// The ids in `data`'s peers file (empty if there is none or it cannot be read).
fn remembered(data: &Path) -> Vec<NodeId> {
    std::fs::read(data.join(FILE_NAME))
        .ok()
        .and_then(|b| KnownPeers::decode(&b, Duration::from_secs(3600)).ok())
        .map(|t| t.iter().map(|p| p.id).collect())
        .unwrap_or_default()
}

fn alive(node: &Node) -> Vec<NodeId> {
    node.peers()
        .into_iter()
        .filter(|p| p.state == PeerState::Alive)
        .map(|p| p.id)
        .collect()
}

fn knows_all(node: &Node, others: &[NodeId]) -> bool {
    let a = alive(node);
    others.iter().all(|id| a.contains(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_finds_itself_without_bootstrap_or_mdns() {
    let ttl = Duration::from_secs(3600);
    let dirs: Vec<PathBuf> = (0..3).map(|i| dir(&format!("cluster-{i}"))).collect();
    let a = start("a", &dirs[0], "127.0.0.1:0", ttl, &[]).await;
    let seed = vec![a.addr().to_string()];
    let b = start("b", &dirs[1], "127.0.0.1:0", ttl, &seed).await;
    let c = start("c", &dirs[2], "127.0.0.1:0", ttl, &seed).await;
    let nodes = [a, b, c];
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.id()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    for (i, n) in nodes.iter().enumerate() {
        let others: Vec<NodeId> = ids.iter().copied().filter(|x| *x != ids[i]).collect();
        assert!(
            eventually(DEADLINE, || knows_all(n, &others)).await,
            "the first cluster formed ({i})"
        );
    }
    // Each node remembers both others, durably, while it runs.
    for (i, d) in dirs.iter().enumerate() {
        let others: Vec<NodeId> = ids.iter().copied().filter(|x| *x != ids[i]).collect();
        assert!(
            eventually(DEADLINE, || {
                let r = remembered(d);
                others.iter().all(|o| r.contains(o))
            })
            .await,
            "node {i} saved its peers"
        );
    }
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    drop(nodes);

    // Same addresses and data dirs, no bootstrap, mDNS off (the test builder's default).
    let mut again = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        again.push(start(name, &dirs[i], &addrs[i], ttl, &[]).await);
    }
    for (i, n) in again.iter().enumerate() {
        assert_eq!(n.id(), ids[i], "the identity persisted");
        assert!(n.config().bootstrap.is_empty() && !n.config().mdns);
        let others: Vec<NodeId> = ids.iter().copied().filter(|x| *x != ids[i]).collect();
        assert!(
            eventually(DEADLINE, || knows_all(n, &others)).await,
            "node {i} rejoined its cluster from its known peers: {:?}",
            n.peers()
        );
    }
    for n in &again {
        n.shutdown().await.unwrap();
    }
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_unseen_past_the_ttl_is_forgotten_not_redialled() {
    let ttl = Duration::from_secs(1);
    let da = dir("ttl-a");
    let db = dir("ttl-b");
    let a = start("a", &da, "127.0.0.1:0", ttl, &[]).await;
    let b = start("b", &db, "127.0.0.1:0", ttl, &[a.addr().to_string()]).await;
    let a_addr = a.addr().to_string();
    assert!(eventually(DEADLINE, || remembered(&da).contains(&b.id())).await);
    let b_id = b.id();
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    drop((a, b));
    // Right after shutdown the table on disk still lists b (saved at shutdown)...
    let stored = std::fs::read(da.join(FILE_NAME)).unwrap();
    let table = KnownPeers::decode(&stored, Duration::from_secs(3600)).unwrap();
    let seen = table.get(&b_id).expect("b was remembered").last_seen_ms;
    // ...and once more than the ttl has passed since b was last seen, it is expired:
    // a restarted a does not plan to dial it, and rewrites its table without it.
    tokio::time::sleep(ttl * 2).await;
    let mut expiring = KnownPeers::decode(&stored, ttl).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now > seen + 1000);
    assert!(expiring
        .to_dial(&NodeId::from_bytes([0; 32]), now, |_| true)
        .is_empty());
    assert_eq!(expiring.expire(now), 1);
    let a = start("a", &da, &a_addr, ttl, &[]).await;
    assert!(
        eventually(DEADLINE, || {
            std::fs::read(da.join(FILE_NAME))
                .ok()
                .and_then(|b| KnownPeers::decode(&b, Duration::from_secs(3600)).ok())
                .is_some_and(|t| t.get(&b_id).is_none())
        })
        .await,
        "the restarted node rewrote its table without the expired peer"
    );
    assert!(alive(&a).is_empty());
    a.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(da);
    let _ = std::fs::remove_dir_all(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_peers_file_is_set_aside_and_the_node_works() {
    let da = dir("corrupt-a");
    let other = common::node("other").await;
    std::fs::write(da.join(FILE_NAME), b"MMPEERS\0\x01\x00 not a table at all").unwrap();
    let a = start(
        "a",
        &da,
        "127.0.0.1:0",
        Duration::from_secs(3600),
        &[other.addr().to_string()],
    )
    .await;
    assert!(
        eventually(DEADLINE, || knows_all(&a, &[other.id()])).await,
        "the node works"
    );
    let aside = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("known-peers.bad-")
            })
    };
    assert!(aside(&da), "the damaged file was set aside");
    // A fresh table replaces it, with the peer the node has met since.
    assert!(eventually(DEADLINE, || remembered(&da).contains(&other.id())).await);
    a.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(da);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_ttl_remembers_nothing_and_forgets_the_file() {
    let da = dir("zero-a");
    let other = common::node("other").await;
    let a = start(
        "a",
        &da,
        "127.0.0.1:0",
        Duration::from_secs(3600),
        &[other.addr().to_string()],
    )
    .await;
    assert!(eventually(DEADLINE, || remembered(&da).contains(&other.id())).await);
    a.shutdown().await.unwrap();
    drop(a);
    let a = start(
        "a",
        &da,
        "127.0.0.1:0",
        Duration::ZERO,
        &[other.addr().to_string()],
    )
    .await;
    assert!(
        !da.join(FILE_NAME).exists(),
        "a ttl of 0 forgets what was remembered"
    );
    assert!(eventually(DEADLINE, || knows_all(&a, &[other.id()])).await);
    a.shutdown().await.unwrap();
    assert!(!da.join(FILE_NAME).exists(), "and remembers nothing");
    other.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(da);
}
