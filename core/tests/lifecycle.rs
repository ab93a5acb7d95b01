//! Start, shutdown, restarts and vanishing peers.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use memmesh::{Bytes, ErrorKind, Request, TransportTuning};

#[test]
fn a_node_runs_without_any_host_runtime_and_from_a_current_thread_runtime() {
    // No async runtime at all on this thread.
    let cfg = builder("plain").config().clone();
    let a = memmesh::Node::start_blocking(cfg).unwrap();
    let b = memmesh::Node::start_blocking(builder("plain-b").config().clone()).unwrap();
    echo(&b, "echo");
    let reply = futures::executor::block_on(async {
        let id = a.connect(&b.addr().to_string()).await?;
        a.channel("echo")?.request(id, "no runtime", None).await
    })
    .unwrap();
    assert_eq!(&reply[..], b"no runtime");
    // A single-threaded host runtime is never blocked by the node's work.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reply = a
            .channel("echo")
            .unwrap()
            .request(b.id(), "ct", None)
            .await
            .unwrap();
        assert_eq!(&reply[..], b"ct");
        a.shutdown().await.unwrap();
    });
    b.shutdown_blocking().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_every_call_is_closed() {
    let a = node("a").await;
    let b = node("b").await;
    let ch = a.channel("c").unwrap();
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    a.shutdown().await.unwrap();
    a.shutdown().await.unwrap(); // idempotent
    assert!(a.is_closed());
    assert_eq!(
        ch.request(b_id, "x", None).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(
        ch.send("x", b_id).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(ch.recv().await.unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(a.channel("d").unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(
        a.connect(&b.addr().to_string()).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    // b sees a go away: at once when a's close reaches it; if that packet is lost, after
    // the QUIC idle timeout (10 s) at the latest.
    assert!(
        eventually(Duration::from_secs(15), || b
            .peers()
            .iter()
            .all(|p| p.state == memmesh::PeerState::Down && !p.connected))
        .await
    );
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_shuts_the_node_down() {
    let b = node("b").await;
    let addr = {
        let a = node("a").await;
        a.connect(&b.addr().to_string()).await.unwrap();
        a.addr()
    };
    // The dropped node's socket is released: its port can be bound again.
    let rebound = eventually(Duration::from_secs(5), || {
        std::net::UdpSocket::bind(addr).is_ok()
    })
    .await;
    assert!(rebound, "port of a dropped node is still bound");
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_with_the_same_identity_is_redialled() {
    let dir = std::env::temp_dir().join(format!("memmesh-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let a = node("a").await;
    let b = builder("b").data_dir(&dir).start().await.unwrap();
    echo(&b, "echo");
    let b_addr = b.addr();
    let b_id = a.connect(&b_addr.to_string()).await.unwrap();
    let ch = a.channel("echo").unwrap();
    assert_eq!(&ch.request(b_id, "1", None).await.unwrap()[..], b"1");
    b.shutdown().await.unwrap();
    assert!(eventually(Duration::from_secs(5), || !a.peers()[0].connected).await);
    // Same data dir (same key), same port.
    let b2 = builder("b")
        .data_dir(&dir)
        .listen(b_addr.to_string())
        .start()
        .await
        .unwrap();
    assert_eq!(b2.id(), b_id);
    echo(&b2, "echo");
    assert_eq!(&ch.request(b_id, "2", None).await.unwrap()[..], b"2");
    a.shutdown().await.unwrap();
    b2.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A UDP relay that can be cut, to make a peer vanish without any goodbye.
async fn relay(to: SocketAddr, cut: Arc<AtomicBool>) -> SocketAddr {
    let outer = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let inner = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    inner.connect(to).await.unwrap();
    let addr = outer.local_addr().unwrap();
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let (o, i, c, k) = (outer.clone(), inner.clone(), client.clone(), cut.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = o.recv_from(&mut buf).await {
            *c.lock().unwrap() = Some(from);
            if !k.load(Ordering::SeqCst) {
                let _ = i.send(&buf[..n]).await;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = inner.recv(&mut buf).await {
            let dest = *client.lock().unwrap();
            if let (Some(dest), false) = (dest, cut.load(Ordering::SeqCst)) {
                let _ = outer.send_to(&buf[..n], dest).await;
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_vanishing_mid_request_gives_an_error_not_a_hang() {
    let tuning = TransportTuning {
        idle_timeout: Duration::from_secs(2),
        keep_alive: Duration::from_millis(500),
        mtu_upper_bound: 1452,
        ..TransportTuning::default()
    };
    let a = builder("a").tuning(tuning).start().await.unwrap();
    let b = node("b").await;
    let cut = Arc::new(AtomicBool::new(false));
    let started = Arc::new(tokio::sync::Notify::new());
    let s = started.clone();
    b.channel("slow").unwrap().on_request(move |_req: Request| {
        let s = s.clone();
        async move {
            s.notify_one();
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Bytes::new())
        }
    });
    let via = relay(b.addr(), cut.clone()).await;
    let b_id = a.connect(&via.to_string()).await.unwrap();
    let ch = a.channel("slow").unwrap();
    let call =
        tokio::spawn(async move { ch.request(b_id, "x", Some(Duration::from_secs(30))).await });
    started.notified().await;
    cut.store(true, Ordering::SeqCst);
    let result = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the request must end, not hang")
        .unwrap();
    let kind = result.unwrap_err().kind();
    assert!(
        matches!(kind, ErrorKind::PeerUnavailable | ErrorKind::Timeout),
        "{kind:?}"
    );

    // With a request deadline shorter than the idle timeout, the caller gets Timeout.
    cut.store(false, Ordering::SeqCst);
    let a2 = node("a2").await;
    let via2 = relay(b.addr(), cut.clone()).await;
    let id2 = a2.connect(&via2.to_string()).await.unwrap();
    let e = a2
        .channel("slow")
        .unwrap()
        .request(id2, "x", Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    for n in [a, a2, b] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_stops_when_its_requester_gives_up() {
    let a = node("a").await;
    let b = node("b").await;
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s, f) = (started.clone(), finished.clone());
    b.channel("slow").unwrap().on_request(move |_req: Request| {
        let (s, f) = (s.clone(), f.clone());
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok(Bytes::new())
        }
    });
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let e = a
        .channel("slow")
        .unwrap()
        .request(b_id, "x", Some(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(
        eventually(Duration::from_secs(5), || started.load(Ordering::SeqCst)
            == 1)
        .await
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the handler ran on after the requester left"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_peer_that_left_fails_as_unavailable() {
    let a = node("a").await;
    let b = node("b").await;
    echo(&b, "echo");
    let mut events = a.events().unwrap();
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    // Wait until b is a member (not merely connected), so its goodbye is a member's.
    let joined = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let memmesh::Event::PeerUp { id, .. } = events.next().await.unwrap() {
                if id == b_id {
                    return;
                }
            }
        }
    })
    .await;
    assert!(joined.is_ok(), "b never became a member: {:?}", a.peers());
    b.shutdown().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || a
            .peers()
            .iter()
            .any(|p| p.id == b_id && p.state == memmesh::PeerState::Down))
        .await
    );
    let e = a
        .channel("echo")
        .unwrap()
        .request(b_id, "x", Some(Duration::from_secs(20)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerUnavailable, "{e}");
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_one_data_dir_is_a_clear_error_until_the_first_shuts_down() {
    let dir = std::env::temp_dir().join(format!("memmesh-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = builder("first").data_dir(&dir).start().await.unwrap();
    let e = builder("second")
        .data_dir(&dir)
        .start()
        .await
        .expect_err("a second node on the same data dir must not start");
    assert_eq!(e.kind(), memmesh::ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("in use"), "{e}");
    // The failed start changed nothing: the identity on disk is still the first node's.
    let id = first.id();
    first.shutdown().await.unwrap();
    let again = builder("again").data_dir(&dir).start().await.unwrap();
    assert_eq!(again.id(), id);
    // Dropping every handle releases the lock too.
    drop(again);
    let mut last = None;
    for _ in 0..50 {
        match builder("after-drop").data_dir(&dir).start().await {
            Ok(n) => {
                last = Some(n);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let last = last.expect("the lock is released when the last handle is dropped");
    assert_eq!(last.id(), id);
    last.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 12, defect 15 (known flakes): a closing node's goodbye must always arrive, and a
/// request to a peer that left must fail at once. With an idle timeout and failure
/// detection of a minute, only the goodbye can explain a peer seen as gone within 30 s, and
/// only the pool dropping its connection can explain a request failing within that time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_goodbye_arrives_and_a_request_to_the_departed_fails_at_once() {
    let slow = memmesh::membership::MembershipConfig {
        suspect_timeout: Duration::from_secs(60),
        down_grace: Duration::from_secs(60),
        ..memmesh::membership::MembershipConfig::default()
    };
    let tuning = memmesh::TransportTuning {
        idle_timeout: Duration::from_secs(120),
        ..memmesh::TransportTuning::default()
    };
    let a = builder("a")
        .membership(slow.clone())
        .tuning(tuning.clone())
        .start()
        .await
        .unwrap();
    let ch = a.channel("echo").unwrap();
    for round in 0..10 {
        let b = builder("b")
            .membership(slow.clone())
            .tuning(tuning.clone())
            .start()
            .await
            .unwrap();
        echo(&b, "echo");
        let b_id = a.connect(&b.addr().to_string()).await.unwrap();
        // Alternate: a goodbye with and without a request in flight just before it.
        if round % 2 == 0 {
            assert_eq!(&ch.request(b_id, "x", None).await.unwrap()[..], b"x");
        }
        b.shutdown().await.unwrap();
        let gone = eventually(Duration::from_secs(30), || {
            !a.peers().iter().any(|p| p.id == b_id && p.connected)
        })
        .await;
        assert!(
            gone,
            "round {round}: b's goodbye never arrived: {:?}",
            a.peers()
        );
        let e = tokio::time::timeout(
            Duration::from_secs(30),
            ch.request(b_id, "y", Some(Duration::from_secs(60))),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: a request to the departed peer hung"))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PeerUnavailable, "round {round}: {e}");
    }
    a.shutdown().await.unwrap();
}
