//! A node SIGKILLed and restarted with the same identity (its data dir) on the same address
//! is reached again by a peer that still holds a connection to the dead process, well
//! before the 10 s idle timeout retires that connection: the restarted node dials its
//! bootstrap peer at once, and the newest connection wins the pool (ADR 0006). A request
//! already in flight on the dead connection waits for its own deadline (known; see the
//! issue notes), so the test asks with short deadlines, a few times.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memmesh::{Node, NodeId, PeerState};

/// Starts `memmesh node` on `listen` with `data_dir`, bootstrapping from `seed`; returns
/// the process and the node's id from its banner.
fn spawn(listen: &str, data_dir: &std::path::Path, seed: &str) -> (Child, NodeId) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memmesh"))
        .args([
            "node",
            "--name",
            "c",
            "--listen",
            listen,
            "--bootstrap",
            seed,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the CLI node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the banner");
    let id = line
        .split(['(', ')'])
        .nth(1)
        .expect("id in the banner")
        .parse()
        .expect("a node id");
    (child, id)
}

fn alive(n: &Node, id: NodeId) -> bool {
    n.peers()
        .iter()
        .any(|p| p.id == id && p.state == PeerState::Alive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reached_again_without_waiting_for_the_idle_timeout() {
    let a = Node::builder()
        .name("a")
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1)
        .start()
        .await
        .expect("start a");
    // A fixed address for c, so its restart is at the same place.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("memmesh-restart-{}", std::process::id()));
    let seed = a.addr().to_string();
    let (mut c, id) = spawn(&listen, &dir, &seed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !alive(&a, id) {
        assert!(Instant::now() < deadline, "c never joined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let echo = a.channel("echo").expect("channel");
    let reply = echo
        .request(id, "before", Some(Duration::from_secs(5)))
        .await
        .expect("c answers before the crash");
    assert_eq!(&reply[..], b"before");

    // Crash c and start it again at once, same identity, same address.
    c.kill().expect("SIGKILL c");
    c.wait().expect("reap c");
    let (mut c2, id2) = spawn(&listen, &dir, &seed);
    assert_eq!(id, id2, "the data dir keeps the identity");
    let restarted = Instant::now();

    // a's connection to the dead process is still pooled (no goodbye was said). A request
    // must get through well before the 10 s idle timeout would have retired it: ask with
    // deadlines of 2 s, a few times (one sent on the dead connection waits its deadline).
    let mut answered = None;
    for _ in 0..3 {
        if let Ok(r) = echo
            .request(id, "after", Some(Duration::from_secs(2)))
            .await
        {
            answered = Some(r);
            break;
        }
    }
    let took = restarted.elapsed();
    eprintln!(
        "the restarted node answered {} ms after its restart",
        took.as_millis()
    );
    let _ = c2.kill();
    let _ = c2.wait();
    let _ = std::fs::remove_dir_all(&dir);
    a.shutdown().await.expect("shutdown");
    assert_eq!(
        answered.as_deref(),
        Some(&b"after"[..]),
        "no answer from the restarted node within three 2 s attempts ({took:?})"
    );
}
