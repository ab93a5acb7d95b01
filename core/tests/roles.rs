//! Node roles (issue 17 item 4, ADR 0024), on real nodes over real QUIC on loopback: many
//! short-lived client nodes join a cluster of members, set and get through the owners,
//! and leave, and no partition moves; a file put from a client with replicas 2 lands on
//! members only; `Auto` block placement never picks a client; `peers()` shows the role.
//! No timing is asserted: waits poll with generous deadlines.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{builder, eventually};
use memmesh::blocks::Placement;
use memmesh::membership::MembershipConfig;
use memmesh::{CacheOptions, Node, NodeId, PeerState, PutOptions, Role};

/// How many client nodes the churn test starts (`MEMMESH_ROLES_CLIENTS`, default 200).
fn client_count() -> usize {
    std::env::var("MEMMESH_ROLES_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Clients alive at once in the churn test.
const AT_ONCE: usize = 4;

fn opts() -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas: 2,
        ..CacheOptions::default()
    })
}

/// Failure detection patient enough for a loaded test machine: what this file tests is
/// placement, and a member falsely declared down (then rejoining) would rebuild its table.
fn patient() -> MembershipConfig {
    MembershipConfig {
        probe_period: Duration::from_secs(1),
        probe_rtt: Duration::from_millis(500),
        suspect_timeout: Duration::from_secs(10),
        ..MembershipConfig::default()
    }
}

async fn member(name: &str, seed: Option<&Node>, data: Option<PathBuf>) -> Node {
    let mut b = builder(name).membership(patient());
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    if let Some(d) = data {
        b = b.data_dir(d);
    }
    b.start().await.expect("start a member")
}

async fn client(name: &str, seed: &Node) -> Node {
    builder(name)
        .role(Role::Client)
        .membership(patient())
        .bootstrap([seed.addr().to_string()])
        .start()
        .await
        .expect("start a client")
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

/// Waits until `node` lists `peer` alive with `role`.
async fn sees(node: &Node, peer: NodeId, role: Role) {
    assert!(
        eventually(Duration::from_secs(30), || node.peers().iter().any(|p| p
            .id
            == peer
            && p.state == PeerState::Alive
            && p.role == role))
        .await,
        "{} does not list {peer} as an alive {role}: {:?}",
        node.name(),
        node.peers()
    );
}

/// The owners of a sample of keys on every member, and each member's routing epoch.
type Placement3 = (Vec<u64>, BTreeMap<String, Vec<Vec<NodeId>>>);

async fn placement(members: &[Node], keys: &[String]) -> Placement3 {
    let mut epochs = Vec::new();
    let mut owners: BTreeMap<String, Vec<Vec<NodeId>>> = BTreeMap::new();
    for m in members {
        let c = m.cache("roles", opts()).await.unwrap();
        epochs.push(c.routing_epoch());
        for k in keys {
            owners.entry(k.clone()).or_default().push(c.owners(k));
        }
    }
    (epochs, owners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_clients_move_no_partition() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let a = member("a", None, None).await;
    let b = member("b", Some(&a), None).await;
    let c = member("c", Some(&a), None).await;
    formed(&[&a, &b, &c]).await;
    let members = [a.clone(), b.clone(), c.clone()];
    // Every member's table holds the three members before the clients come.
    let ids: Vec<NodeId> = members.iter().map(|m| m.id()).collect();
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut settled = true;
        for m in &members {
            let owners = m.cache("roles", opts()).await.unwrap().owners("probe");
            settled &= owners.len() == 2 && owners.iter().all(|o| ids.contains(o));
        }
        if settled {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "tables did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys: Vec<String> = (0..64).map(|i| format!("sample{i}")).collect();
    let before = placement(&members, &keys).await;
    let n = client_count();
    let mut written = Vec::new();
    let mut i = 0;
    while i < n {
        let batch: Vec<usize> = (i..(i + AT_ONCE).min(n)).collect();
        i += batch.len();
        let runs = batch.into_iter().map(|k| {
            let a = a.clone();
            async move {
                let cl = client(&format!("cli{k}"), &a).await;
                let cache = cl.cache("roles", opts()).await.unwrap();
                let key = format!("k{k}");
                cache.set(&key, format!("v{k}"), None).await.unwrap();
                let got = cache.get(&key).await.unwrap();
                assert_eq!(got.as_deref(), Some(format!("v{k}").as_bytes()));
                // The client holds nothing itself, not even what it wrote.
                assert_eq!(cache.stats().entries, 0);
                assert!(cache.owners(&key).iter().all(|o| *o != cl.id()));
                cl.shutdown().await.unwrap();
                key
            }
        });
        written.extend(futures::future::join_all(runs).await);
        // No member ever ranks a client among the owners.
        let (_, owners) = placement(&members, &keys[..8]).await;
        for o in owners.values().flatten().flatten() {
            assert!(ids.contains(o), "a client {o} owns a partition");
        }
    }
    let after = placement(&members, &keys).await;
    assert_eq!(
        before, after,
        "a client's arrival or departure moved partitions"
    );
    // Every value is readable from every member.
    for m in &members {
        let cache = m.cache("roles", opts()).await.unwrap();
        for (k, key) in written.iter().enumerate() {
            let got = cache.get(key).await.unwrap();
            assert_eq!(got.as_deref(), Some(format!("v{k}").as_bytes()), "{key}");
        }
    }
    // The members hold every entry at least twice (replicas 2; a previous owner may still
    // keep a copy for the handoff time after the cluster formed).
    let mut held = 0;
    for m in &members {
        held += m.cache("roles", opts()).await.unwrap().stats().entries;
    }
    assert!(held >= 2 * n as u64, "{held} entries held for {n} keys");
    for m in &members {
        m.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_show_the_role_and_auto_placement_never_picks_a_client() {
    let a = member("a", None, None).await;
    let b = member("b", Some(&a), None).await;
    formed(&[&a, &b]).await;
    // A client with far more free quota than any member: Auto would pick it by quota.
    let cl = builder("cli")
        .role(Role::Client)
        .memory_quota(1 << 30)
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    sees(&a, cl.id(), Role::Client).await;
    sees(&cl, a.id(), Role::Member).await;
    sees(&a, b.id(), Role::Member).await;
    assert!(
        eventually(Duration::from_secs(30), || a
            .peers()
            .iter()
            .any(|p| p.id == cl.id() && p.quota_free.is_some()))
        .await
    );
    for i in 0..8u8 {
        a.blocks()
            .unwrap()
            .put(vec![i; 1024], Placement::Auto)
            .await
            .unwrap();
    }
    assert_eq!(cl.blocks().unwrap().local_stats().blocks, 0);
    assert_eq!(b.blocks().unwrap().local_stats().blocks, 8);
    // The client can still put blocks on members, and read them.
    let id = cl
        .blocks()
        .unwrap()
        .put(vec![3u8; 512], Placement::Auto)
        .await
        .unwrap();
    assert_eq!(cl.blocks().unwrap().local_stats().blocks, 0);
    assert_eq!(
        &a.blocks().unwrap().get(&id).await.unwrap()[..],
        &[3u8; 512]
    );
    cl.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-roles-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_puts_file_replicas_on_members_only() {
    let base = dir("files");
    let a = member("a", None, Some(base.join("a"))).await;
    let b = member("b", Some(&a), Some(base.join("b"))).await;
    let c = member("c", Some(&a), Some(base.join("c"))).await;
    formed(&[&a, &b, &c]).await;
    let cl = builder("cli")
        .role(Role::Client)
        .data_dir(base.join("cli"))
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    for m in [&a, &b, &c] {
        sees(&cl, m.id(), Role::Member).await;
        sees(m, cl.id(), Role::Client).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || cl
            .peers()
            .iter()
            .filter(|p| p.quota_free.is_some())
            .count()
            >= 3)
        .await
    );
    let data = vec![5u8; 100_000];
    let id = cl
        .files()
        .unwrap()
        .put_bytes(
            data.clone(),
            PutOptions {
                replicas: 2,
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    let holders = cl.files().unwrap().stat(id).await.unwrap().holders;
    let others: Vec<&NodeId> = holders.iter().filter(|h| **h != cl.id()).collect();
    assert_eq!(others.len(), 2, "{holders:?}");
    let member_ids = [a.id(), b.id(), c.id()];
    assert!(others.iter().all(|h| member_ids.contains(h)), "{holders:?}");
    // A member reads it from the holders.
    let on_a = a.files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(&on_a[..], &data[..]);
    // A member putting with replicas 3 never asks the client: only members hold it.
    let id2 = a
        .files()
        .unwrap()
        .put_bytes(
            vec![6u8; 1000],
            PutOptions {
                replicas: 3,
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    let holders2 = a.files().unwrap().stat(id2).await.unwrap().holders;
    assert!(!holders2.contains(&cl.id()), "{holders2:?}");
    assert_eq!(holders2.len(), 3);
    for n in [&cl, &a, &b, &c] {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}
