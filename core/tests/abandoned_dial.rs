//! Issue 12, defect 12: a connection closed with QUIC application code 0 (what quinn sends
//! when the last handle of a connection is dropped, e.g. a dial abandoned by its timeout)
//! was read as the peer's graceful leave, and the "left" marker it set was never cleared
//! by a later connection, so a live peer stayed Down on that node until it restarted.

mod common;

use std::time::Duration;

use common::*;
use memmesh::membership::MembershipConfig;
use memmesh::{Event, Keypair, Node, NodeId, PeerState};

fn state_of(n: &Node, id: NodeId) -> Option<PeerState> {
    n.peers().into_iter().find(|p| p.id == id).map(|p| p.state)
}

/// Waits up to `within` for a `PeerDown` of `id` among `events`.
async fn down_event(events: &mut memmesh::Events, id: NodeId, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Ok(Event::PeerDown { id: down }) if down == id => return,
                Ok(_) => {}
                Err(_) => std::future::pending::<()>().await,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_without_a_goodbye_is_not_a_leave() {
    // Failure detection so slow that only a (mis-read) goodbye can explain a PeerDown.
    let slow = MembershipConfig {
        suspect_timeout: Duration::from_secs(60),
        down_grace: Duration::from_secs(60),
        ..MembershipConfig::default()
    };
    let a = builder("a").membership(slow.clone()).start().await.unwrap();
    let mut events = a.events().unwrap();
    let dir = std::env::temp_dir().join(format!("memmesh-abandoned-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let b = builder("b")
        .membership(slow)
        .data_dir(&dir)
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    echo(&b, "echo");
    assert!(
        eventually(Duration::from_secs(20), || {
            state_of(&a, b.id()) == Some(PeerState::Alive)
        })
        .await,
        "a sees b: {:?}",
        a.peers()
    );

    // A second connection authenticated as b (b's own key, as b's dial would be), which
    // then ends the way an abandoned dial does: application close with code 0.
    let key = Keypair::load_or_create(&dir).unwrap();
    assert_eq!(key.node_id(), b.id());
    let raw = RawPeer::connect_as(a.addr(), None, &key).await.unwrap();
    raw.conn.close(0u32.into(), b"");
    raw.endpoint.wait_idle().await;

    assert!(
        !down_event(&mut events, b.id(), Duration::from_secs(3)).await,
        "a dropped connection was taken for b leaving: {:?}",
        a.peers()
    );
    assert_eq!(state_of(&a, b.id()), Some(PeerState::Alive));
    // And a reaches b (it dials again).
    let reply = a
        .channel("echo")
        .unwrap()
        .request(b.id(), "still here?", None)
        .await
        .unwrap();
    assert_eq!(&reply[..], b"still here?");
    assert_eq!(state_of(&a, b.id()), Some(PeerState::Alive));

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
