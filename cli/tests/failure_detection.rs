//! A node killed without a goodbye (SIGKILL of a real process) is declared down by every
//! other member within the configured failure-detection time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memmesh::membership::MembershipConfig;
use memmesh::{Event, Node, NodeId, PeerState};

async fn member(name: &str, seed: Option<&Node>) -> Node {
    let mut b = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1);
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    b.start().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_declared_down_by_all_others() {
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
    // "node victim (<id>) listening on <addr>"
    let id: NodeId = line
        .split(['(', ')'])
        .nth(1)
        .expect("id in the banner")
        .parse()
        .unwrap();
    let alive = |n: &Node| {
        n.peers()
            .iter()
            .any(|p| p.id == id && p.state == PeerState::Alive)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(alive(&a) && alive(&b)) {
        assert!(
            Instant::now() < deadline,
            "the victim never joined: {:?}",
            a.peers()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ea = a.events().unwrap();
    let mut eb = b.events().unwrap();
    child.kill().unwrap(); // SIGKILL: no goodbye of any kind
    child.wait().unwrap();

    // Configured time: suspicion + grace, after a probe period or two. Allow a wide
    // margin on a shared 2-core machine; the figure itself is measured in bench/.
    let cfg = MembershipConfig::default();
    let budget = (cfg.probe_period * 4 + cfg.suspect_timeout + cfg.down_grace) * 3;
    for events in [&mut ea, &mut eb] {
        let got = tokio::time::timeout(budget, async {
            loop {
                if let Event::PeerDown { id: down } = events.next().await.unwrap() {
                    if down == id {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(got.is_ok(), "PeerDown not seen within {budget:?}");
    }
    for n in [&a, &b] {
        let p = n.peers().into_iter().find(|p| p.id == id).unwrap();
        assert_eq!(p.state, PeerState::Down);
    }
    // The survivors still see each other alive.
    assert!(a
        .peers()
        .iter()
        .any(|p| p.id == b.id() && p.state == PeerState::Alive));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
