//! Bootstrap entries given as DNS names (ADR 0027), through the system resolver:
//! `localhost:PORT` (from /etc/hosts) forms a cluster, and bad syntax fails the start with
//! `InvalidInput`. The real-DNS test (dnsmasq serving A and SRV records in network
//! namespaces, records changed while nodes run) is cli/tests/dns_netns.rs.

mod common;

use std::time::Duration;

use common::{builder, eventually, node};
use memmesh::{ErrorKind, Node, PeerState};

fn sees_alive(n: &Node, other: &Node) -> bool {
    n.peers()
        .iter()
        .any(|p| p.id == other.id() && p.state == PeerState::Alive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_bootstrapped_by_localhost_name_joins_the_cluster() {
    let seed = node("seed").await;
    let port = seed.addr().port();
    let b = builder("b")
        .bootstrap([format!("localhost:{port}")])
        .start()
        .await
        .expect("a HOST:PORT bootstrap entry starts");
    let c = builder("c")
        .bootstrap([format!("LOCALHOST:{port}")])
        .start()
        .await
        .unwrap();
    let formed = eventually(Duration::from_secs(30), || {
        sees_alive(&seed, &b) && sees_alive(&seed, &c) && sees_alive(&b, &c) && sees_alive(&c, &b)
    })
    .await;
    assert!(
        formed,
        "seed {:?}\nb {:?}\nc {:?}",
        seed.peers(),
        b.peers(),
        c.peers()
    );
    for n in [c, b, seed] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bootstrap_syntax_fails_the_start_with_invalid_input() {
    for entry in [
        "mesh.test",
        "mesh.test:port",
        "srv:",
        "me sh:1",
        "[fd00::1]",
    ] {
        let err = builder("bad")
            .bootstrap([entry])
            .start()
            .await
            .expect_err(entry);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{entry}: {err}");
        assert!(err.to_string().contains("bootstrap entry"), "{err}");
        assert!(err.to_string().contains("HOST:PORT"), "{err}");
    }
}
