//! Membership over real QUIC: bootstrap and peer exchange, SWIM failure detection,
//! graceful leave, rejoin, leader, events.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use memmesh::membership::MembershipConfig;
use memmesh::{Event, Node, NodeId, PeerState};

fn alive_ids(n: &Node) -> HashSet<NodeId> {
    n.peers()
        .into_iter()
        .filter(|p| p.state == PeerState::Alive)
        .map(|p| p.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_nodes_converge_from_one_bootstrap_address() {
    let seed = node("seed").await;
    let mut nodes = vec![seed.clone()];
    for i in 1..16 {
        let n = builder(&format!("n{i}"))
            .bootstrap([seed.addr().to_string()])
            .start()
            .await
            .unwrap();
        nodes.push(n);
    }
    let all: HashSet<NodeId> = nodes.iter().map(|n| n.id()).collect();
    let converged = eventually(Duration::from_secs(60), || {
        nodes.iter().all(|n| {
            let mut expect = all.clone();
            expect.remove(&n.id());
            alive_ids(n) == expect
        })
    })
    .await;
    for n in &nodes {
        assert_eq!(
            alive_ids(n).len(),
            15,
            "{} sees {:?}",
            n.name(),
            n.peers().len()
        );
    }
    assert!(converged);
    // Everyone agrees on the leader: the lowest id.
    let lowest = *all.iter().min().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || nodes
            .iter()
            .all(|n| n.leader() == lowest))
        .await
    );
    // Peer exchange: a node that only knew the seed has talked to the others directly.
    let last = nodes.last().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || last
            .peers()
            .iter()
            .filter(|p| p.connected)
            .count()
            > 1)
        .await,
        "{:?}",
        last.peers()
    );
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_is_seen_at_once_and_a_restart_rejoins() {
    // Failure detection so slow that only a goodbye can explain a quick PeerDown.
    let slow = MembershipConfig {
        suspect_timeout: Duration::from_secs(60),
        down_grace: Duration::from_secs(60),
        ..MembershipConfig::default()
    };
    let a = builder("a").membership(slow.clone()).start().await.unwrap();
    let mut events = a.events().unwrap();
    let dir = std::env::temp_dir().join(format!("memmesh-rejoin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let b = builder("b")
        .membership(slow.clone())
        .data_dir(&dir)
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    let b_id = b.id();
    let b_addr = b.addr();
    let first_up = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Event::PeerUp { id, name, .. } = events.next().await.unwrap() {
                if id == b_id {
                    return name;
                }
            }
        }
    })
    .await
    .expect("PeerUp for b");
    assert_eq!(first_up, "b");

    b.shutdown().await.unwrap();
    let down = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::PeerDown { id } = events.next().await.unwrap() {
                return id;
            }
        }
    })
    .await
    .expect("a graceful leave must be reported without waiting for failure detection");
    assert_eq!(down, b_id);
    assert_eq!(
        a.peers().iter().find(|p| p.id == b_id).map(|p| p.state),
        Some(PeerState::Down)
    );

    // Same identity, same address: it comes back as alive.
    let b2 = builder("b")
        .membership(slow)
        .data_dir(&dir)
        .listen(b_addr.to_string())
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    assert_eq!(b2.id(), b_id);
    let back = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Event::PeerUp { id, .. } = events.next().await.unwrap() {
                if id == b_id {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        back.is_ok(),
        "the restarted node must rejoin: {:?}",
        a.peers()
    );
    assert!(eventually(Duration::from_secs(10), || alive_ids(&a).contains(&b_id)).await);
    assert!(eventually(Duration::from_secs(10), || alive_ids(&b2).contains(&a.id())).await);
    a.shutdown().await.unwrap();
    b2.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_changes_when_the_leader_leaves() {
    let mut nodes = Vec::new();
    let seed = node("s").await;
    nodes.push(seed.clone());
    for i in 0..2 {
        nodes.push(
            builder(&format!("m{i}"))
                .bootstrap([seed.addr().to_string()])
                .start()
                .await
                .unwrap(),
        );
    }
    nodes.sort_by_key(|n| n.id());
    let (low, rest) = nodes.split_first().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || rest
            .iter()
            .all(|n| n.leader() == low.id()))
        .await
    );
    let mut events = rest[0].events().unwrap();
    low.shutdown().await.unwrap();
    let next = rest[0].id().min(rest[1].id());
    let changed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Event::LeaderChanged { leader } = events.next().await.unwrap() {
                return leader;
            }
        }
    })
    .await
    .expect("LeaderChanged");
    assert_eq!(changed, next);
    assert!(
        eventually(Duration::from_secs(10), || rest
            .iter()
            .all(|n| n.leader() == next))
        .await
    );
    for n in rest {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_never_appears_in_any_member_list() {
    let a = builder("a").cluster_secret("right").start().await.unwrap();
    let b = builder("b")
        .cluster_secret("right")
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    let intruder = builder("intruder")
        .cluster_secret("wrong")
        .bootstrap([a.addr().to_string(), b.addr().to_string()])
        .start()
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || alive_ids(&a).contains(&b.id())).await);
    // Give the intruder's bootstrap retries time to fail.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in [&a, &b] {
        assert!(
            n.peers().iter().all(|p| p.id != intruder.id()),
            "{:?}",
            n.peers()
        );
    }
    assert!(intruder.peers().iter().all(|p| !p.connected));
    for n in [a, b, intruder] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_end_with_closed_at_shutdown() {
    let a = node("a").await;
    let mut events = a.events().unwrap();
    a.shutdown().await.unwrap();
    assert_eq!(
        events.next().await.unwrap_err().kind(),
        memmesh::ErrorKind::Closed
    );
    assert_eq!(a.events().unwrap_err().kind(), memmesh::ErrorKind::Closed);
}

/// An island: `a` starts with a bootstrap peer that is not up yet, `c` joins through `a`;
/// they know only each other, so `a` is not alone and no member of the rest holds them
/// as down. When the bootstrap peer `b` comes up, `a` still dials it (a bootstrap address
/// no live member is at), and the three become one cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_island_that_missed_its_bootstrap_peer_joins_it_when_it_comes_up() {
    // A loopback port for `b`, free now.
    let b_addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    // A secret of this test's own: `a` dials `b_addr` for seconds, and a node of another
    // test running meanwhile may be given that port; with the shared test secret the two
    // clusters would merge (another test then saw this test's nodes as members).
    let builder = |name: &str| builder(name).cluster_secret("membership island test");
    let a = builder("a")
        .bootstrap([b_addr.to_string()])
        .connect_timeout(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let c = builder("c")
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || alive_ids(&a).contains(&c.id())).await);
    // Past `a`'s start-up dials (5 tries of 500 ms, 6 s in all): only membership's now.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let b = builder("b")
        .listen(b_addr.to_string())
        .start()
        .await
        .unwrap();
    let all: HashSet<NodeId> = [a.id(), b.id(), c.id()].into_iter().collect();
    let one = eventually(Duration::from_secs(60), || {
        [&a, &b, &c].iter().all(|n| {
            let mut others = all.clone();
            others.remove(&n.id());
            alive_ids(n) == others
        })
    })
    .await;
    assert!(
        one,
        "a sees {:?}, b sees {:?}, c sees {:?}",
        alive_ids(&a).len(),
        alive_ids(&b).len(),
        alive_ids(&c).len()
    );
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}
