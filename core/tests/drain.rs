//! Draining a node (issue 18, ADR 0025), on real nodes over real QUIC on loopback: three
//! members hold cache entries (buckets with 1 and 2 replicas) and files (1 and 2
//! replicas); one is drained, its drain status reaches zero, it is stopped, and every
//! entry and file is still readable from the other two. With one replica, nothing but the
//! drain's hand-off keeps the data. No timing is asserted: waits poll with generous
//! deadlines.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{builder, eventually};
use memmesh::membership::MembershipConfig;
use memmesh::{CacheOptions, Node, NodeId, PeerState, PutOptions, Role};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-drain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Failure detection patient enough for a loaded test machine: a member falsely
/// declared down would move partitions for reasons this test is not about.
fn patient() -> MembershipConfig {
    MembershipConfig {
        probe_period: Duration::from_secs(1),
        probe_rtt: Duration::from_millis(500),
        suspect_timeout: Duration::from_secs(10),
        ..MembershipConfig::default()
    }
}

fn replicas(n: u32) -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas: n,
        ..CacheOptions::default()
    })
}

fn put(n: u32) -> PutOptions {
    PutOptions {
        replicas: n,
        ..PutOptions::default()
    }
}

async fn start(name: &str, data: PathBuf, seed: Option<&Node>) -> Node {
    let mut b = builder(name).membership(patient()).data_dir(data);
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    b.start().await.expect("start a member")
}

/// Waits until each of `nodes` sees every other one alive with its advert.
async fn formed(nodes: &[&Node]) {
    let n = nodes.len();
    assert!(
        eventually(Duration::from_secs(30), || nodes.iter().all(|x| x
            .peers()
            .iter()
            .filter(|p| p.state == PeerState::Alive && p.quota_free.is_some())
            .count()
            >= n - 1))
        .await,
        "cluster did not form"
    );
}

/// Waits until every node's table of `bucket` places `key` on members of `ids` only,
/// with `n` owners.
async fn settled(nodes: &[&Node], bucket: &str, r: u32, ids: &[NodeId]) {
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut ok = true;
        for m in nodes {
            let owners = m.cache(bucket, replicas(r)).await.unwrap().owners("probe");
            ok &= owners.len() == r as usize && owners.iter().all(|o| ids.contains(o));
        }
        if ok {
            return;
        }
        assert!(tokio::time::Instant::now() < end, "tables did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_can_be_stopped_without_losing_anything() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let base = dir("three");
    let a = start("a", base.join("a"), None).await;
    let b = start("b", base.join("b"), Some(&a)).await;
    let c = start("c", base.join("c"), Some(&a)).await;
    formed(&[&a, &b, &c]).await;
    let all = [a.id(), b.id(), c.id()];
    for (bucket, r) in [("r1", 1), ("r2", 2)] {
        settled(&[&a, &b, &c], bucket, r, &all).await;
    }
    assert!(!c.drain_status().draining);

    // Entries in both buckets, written through every node.
    let nodes = [a.clone(), b.clone(), c.clone()];
    let keys: Vec<String> = (0..120).map(|i| format!("k{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        let via = &nodes[i % 3];
        for (bucket, r) in [("r1", 1), ("r2", 2)] {
            let cache = via.cache(bucket, replicas(r)).await.unwrap();
            cache.set(k, format!("{bucket}-{k}"), None).await.unwrap();
        }
    }
    let held_by_c = c.cache("r1", replicas(1)).await.unwrap().stats().entries;
    assert!(
        held_by_c > 0,
        "c owns no r1 entry: the test would prove nothing"
    );

    // Files: some with one copy, on `c` alone, and some with two, put from each node.
    let mut files = Vec::new();
    for i in 0..4u8 {
        let data = vec![i; 3000 + usize::from(i)];
        let id = c
            .files()
            .unwrap()
            .put_bytes(data.clone(), put(1))
            .await
            .unwrap();
        files.push((id, data));
    }
    for (i, n) in nodes.iter().enumerate() {
        for j in 0..2u8 {
            let data = vec![100 + i as u8 * 10 + j; 5000];
            let id = n
                .files()
                .unwrap()
                .put_bytes(data.clone(), put(2))
                .await
                .unwrap();
            files.push((id, data));
        }
    }

    // Drain `c` and wait for it to hand everything off.
    let status = c.drain().await.unwrap();
    assert!(status.draining, "{status:?}");
    assert!(
        eventually(Duration::from_secs(120), || c.drain_status().done()).await,
        "the drain did not finish: {:?}",
        c.drain_status()
    );
    // Draining is for good: a second call only reports.
    assert!(c.drain().await.unwrap().done());
    // The others see it as a client now.
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(30), || n
                .peers()
                .iter()
                .any(|p| p.id == c.id() && p.role == Role::Client))
            .await,
            "{} does not see c as a client: {:?}",
            n.name(),
            n.peers()
        );
    }
    // It still serves reads meanwhile.
    let k = &keys[0];
    let got = c
        .cache("r1", replicas(1))
        .await
        .unwrap()
        .get(k)
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(format!("r1-{k}").as_bytes()));

    // Stop it, and every entry and file is still there.
    let gone = c.id();
    c.shutdown().await.unwrap();
    for n in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(30), || n
                .peers()
                .iter()
                .all(|p| p.id != gone || p.state == PeerState::Down))
            .await,
            "{} does not see c down",
            n.name()
        );
    }
    for n in [&a, &b] {
        for (bucket, r) in [("r1", 1), ("r2", 2)] {
            let cache = n.cache(bucket, replicas(r)).await.unwrap();
            for k in &keys {
                let got = cache.get(k).await.unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(format!("{bucket}-{k}").as_bytes()),
                    "{bucket}/{k} from {}",
                    n.name()
                );
            }
        }
        for (id, data) in &files {
            let got = n.files().unwrap().get_bytes(*id).await.unwrap();
            assert_eq!(&got[..], &data[..], "file {id} from {}", n.name());
        }
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}
