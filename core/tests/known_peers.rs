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

const SECRET_A: &str = "known-peers-cluster-a-secret-0123456789";
const SECRET_B: &str = "known-peers-cluster-b-secret-9876543210";

/// A node of the cluster `secret` on `listen` with its data dir, trusting `outsider`.
async fn trusting(name: &str, data: &Path, listen: &str, secret: &str, outsider: NodeId) -> Node {
    builder(name)
        .listen(listen)
        .data_dir(data)
        .cluster_secret(secret)
        .trusted_peers([outsider])
        .start()
        .await
        .expect("start node")
}

/// Edits the community document `id` on `from` and polls until `to` holds the same heads.
async fn reaches(from: &Node, to: &Node, id: memmesh::DocId, value: &str) -> bool {
    let doc = from.docs().unwrap().open(id).await.unwrap();
    doc.put("v", value.to_string()).await.unwrap();
    let heads = doc.heads().unwrap();
    let end = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < end {
        if let Ok(d) = to.docs().unwrap().open(id).await {
            if d.heads().unwrap() == heads {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_trusted_outsider_is_redialled_and_remembered_across_restarts() {
    use memmesh::{Keypair, Reach};
    let (da, db) = (dir("outsider-a"), dir("outsider-b"));
    let ida = Keypair::load_or_create(&da).unwrap().node_id();
    let idb = Keypair::load_or_create(&db).unwrap().node_id();
    // Two clusters (two secrets) that trust each other's node by its key.
    let a = trusting("a", &da, "127.0.0.1:0", SECRET_A, idb).await;
    let b = trusting("b", &db, "127.0.0.1:0", SECRET_B, ida).await;
    let b_addr = b.addr().to_string();
    a.connect_to(idb, &b_addr).await.unwrap();
    let doc = a.docs().unwrap().create(Reach::Community).await.unwrap();
    assert!(reaches(&a, &b, doc, "first").await, "the document synced");
    assert!(
        eventually(DEADLINE, || remembered(&da).contains(&idb)
            && remembered(&db).contains(&ida))
        .await,
        "each side remembers the outsider it talked to"
    );
    assert!(
        a.peers().iter().all(|p| p.id != idb),
        "an outsider is never a member"
    );

    // b goes away and comes back at the same address: nobody calls connect, yet the
    // connection comes back and the document flows again.
    b.shutdown().await.unwrap();
    drop(b);
    let b = trusting("b", &db, &b_addr, SECRET_B, ida).await;
    assert!(
        reaches(&a, &b, doc, "after b restarted").await,
        "the lost outsider was redialled"
    );

    // a restarts on a new port (so b cannot dial it) with no bootstrap address: it
    // redials b from its table alone.
    a.shutdown().await.unwrap();
    drop(a);
    let a = trusting("a", &da, "127.0.0.1:0", SECRET_A, idb).await;
    assert!(a.config().bootstrap.is_empty());
    assert!(
        reaches(&a, &b, doc, "after a restarted").await,
        "the restarted node redialled the outsider it remembered"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(da);
    let _ = std::fs::remove_dir_all(db);
}
