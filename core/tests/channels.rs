//! Messaging channels over real QUIC between real nodes.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use memmesh::{Bytes, Error, ErrorKind, Request, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_connect_and_list_each_other() {
    let a = node("a").await;
    let b = node("b").await;
    let c = node("c").await;
    assert_eq!(a.connect(&b.addr().to_string()).await.unwrap(), b.id());
    assert_eq!(a.connect(&c.addr().to_string()).await.unwrap(), c.id());
    assert_eq!(b.connect(&c.addr().to_string()).await.unwrap(), c.id());
    // Connecting again reuses the connection and returns the same id.
    assert_eq!(a.connect(&b.addr().to_string()).await.unwrap(), b.id());

    let ids: HashSet<_> = a.peers().iter().map(|p| p.id).collect();
    assert_eq!(ids, HashSet::from([b.id(), c.id()]));
    let pb = a.peers().into_iter().find(|p| p.id == b.id()).unwrap();
    assert_eq!(pb.name, "b");
    assert!(pb.addrs.contains(&b.addr()));
    assert_eq!(pb.state, memmesh::PeerState::Alive);
    assert!(pb.connected);
    // The accepting side learns the dialler's id from its certificate.
    assert!(eventually(Duration::from_secs(5), || c.peers().len() == 2).await);
    let names: HashSet<_> = c.peers().into_iter().map(|p| p.name).collect();
    assert_eq!(names, HashSet::from(["a".to_string(), "b".to_string()]));
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_both_ways() {
    let a = node("a").await;
    let b = node("b").await;
    echo(&a, "echo");
    b.channel("upper")
        .unwrap()
        .on_request(|req: Request| async move { Ok(Bytes::from(req.data.to_ascii_uppercase())) });
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let reply = a
        .channel("upper")
        .unwrap()
        .request(b_id, "hello", None)
        .await
        .unwrap();
    assert_eq!(&reply[..], b"HELLO");
    // b answers a over the same connection, without dialling.
    let reply = b
        .channel("echo")
        .unwrap()
        .request(a.id(), vec![1u8, 2, 3], None)
        .await
        .unwrap();
    assert_eq!(&reply[..], &[1, 2, 3]);
    // The handler sees who asked.
    b.channel("who")
        .unwrap()
        .on_request(|req: Request| async move { Ok(Bytes::from(req.from.to_string())) });
    let who = a
        .channel("who")
        .unwrap()
        .request(b_id, "", None)
        .await
        .unwrap();
    assert_eq!(std::str::from_utf8(&who).unwrap(), a.id().to_string());
    // A request to itself is served locally.
    let me = a
        .channel("echo")
        .unwrap()
        .request(a.id(), "self", None)
        .await
        .unwrap();
    assert_eq!(&me[..], b"self");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_peer_and_send_targets_one() {
    let hub = node("hub").await;
    let mut spokes = Vec::new();
    for i in 0..3 {
        let n = node(&format!("s{i}")).await;
        let ch = n.channel("news").unwrap();
        hub.connect(&n.addr().to_string()).await.unwrap();
        spokes.push((n, ch));
    }
    let delivered = hub
        .channel("news")
        .unwrap()
        .broadcast("flash")
        .await
        .unwrap();
    assert_eq!(delivered, 3);
    for (_, ch) in &spokes {
        let m = ch.recv().await.unwrap();
        assert_eq!(&m.data[..], b"flash");
        assert_eq!(m.from, hub.id());
    }
    let only = spokes[1].0.id();
    assert_eq!(
        hub.channel("news")
            .unwrap()
            .send("direct", only)
            .await
            .unwrap(),
        1
    );
    assert_eq!(&spokes[1].1.recv().await.unwrap().data[..], b"direct");
    // A message handler sees messages in order.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    spokes[0].1.on_message(move |m: memmesh::Message| {
        let sink = sink.clone();
        async move { sink.lock().unwrap().push(m.data) }
    });
    let ch = hub.channel("news").unwrap();
    for i in 0..20u8 {
        ch.send(vec![i], spokes[0].0.id()).await.unwrap();
    }
    assert!(eventually(Duration::from_secs(10), || seen.lock().unwrap().len() == 20).await);
    let got: Vec<u8> = seen.lock().unwrap().iter().map(|b| b[0]).collect();
    assert_eq!(got, (0..20).collect::<Vec<u8>>());
    hub.shutdown().await.unwrap();
    for (n, _) in spokes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_are_all_answered() {
    let a = node("a").await;
    let b = builder("b").threads(2).start().await.unwrap();
    echo(&b, "echo");
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let ch = a.channel("echo").unwrap();
    let calls = (0..1000u32).map(|i| {
        let ch = ch.clone();
        async move { (i, ch.request(b_id, i.to_be_bytes().to_vec(), None).await) }
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results {
        assert_eq!(&r.unwrap()[..], &i.to_be_bytes());
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_come_back_as_clear_errors() {
    let a = node("a").await;
    let b = node("b").await;
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let ch = a.channel("x").unwrap();

    // Channel not opened on b.
    let e = ch.request(b_id, "q", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("no channel"), "{e}");
    // Channel opened but no request handler.
    let bx = b.channel("x").unwrap();
    let e = ch.request(b_id, "q", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.message().contains("no request handler"), "{e}");
    // Handler returns an error: its kind and message travel back.
    bx.on_request(|_req: Request| async move {
        Err::<Bytes, _>(Error::new(ErrorKind::QuotaExceeded, "too much"))
    });
    let e = ch.request(b_id, "q", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(e.message(), "too much");
    // Handler panics: HandlerFailed, and the node keeps serving.
    bx.on_request(|req: Request| async move {
        if req.data.is_empty() {
            panic!("boom");
        }
        Ok(req.data)
    });
    let e = ch.request(b_id, Bytes::new(), None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HandlerFailed, "{e}");
    assert_eq!(&ch.request(b_id, "ok", None).await.unwrap()[..], b"ok");
    // Cleared handler: NotFound again.
    bx.clear_request_handler();
    assert_eq!(
        ch.request(b_id, "q", None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Sending to a channel that does not exist is an error, not a silent drop.
    let e = a
        .channel("nowhere")
        .unwrap()
        .send("m", b_id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_invalid_input() {
    let a = builder("a").max_message_size(1024).start().await.unwrap();
    assert_eq!(
        a.connect("not an address").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        a.connect(&a.addr().to_string()).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(a.channel("").unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        a.channel(&"x".repeat(256)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let ch = a.channel("c").unwrap();
    let e = ch.request(a.id(), vec![0u8; 1025], None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("max_message_size"));
    let stranger = memmesh::Keypair::generate().unwrap().node_id();
    assert_eq!(
        ch.request(stranger, "x", None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        builder("z").threads(0).start().await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        builder("z")
            .listen("300.1.1.1:1")
            .start()
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_applies_backpressure_and_never_drops() {
    let a = node("a").await;
    let b = builder("b").channel_queue(4).start().await.unwrap();
    let inbox = b.channel("q").unwrap();
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let ch = a.channel("q").unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    // Ten senders race for a queue of four: six must wait until the reader drains.
    let senders: Vec<_> = (0..10u8)
        .map(|i| {
            let ch = ch.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                ch.send(vec![i], b_id).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    assert!(eventually(Duration::from_secs(5), || sent.load(Ordering::SeqCst) == 4).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        sent.load(Ordering::SeqCst),
        4,
        "senders must wait while the queue is full"
    );
    let mut got = HashSet::new();
    for _ in 0..10 {
        got.insert(inbox.recv().await.unwrap().data[0]);
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(got, (0..10).collect::<HashSet<u8>>());

    // With nobody reading, a sender gets a clear Timeout rather than a silent drop.
    let a2 = builder("a2")
        .send_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    a2.connect(&b.addr().to_string()).await.unwrap();
    let ch2 = a2.channel("q").unwrap();
    let mut ok = 0;
    let mut timeouts = 0;
    for i in 0..6u8 {
        match ch2.send(vec![i], b_id).await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
                timeouts += 1;
            }
        }
    }
    assert_eq!(ok, 4);
    assert_eq!(timeouts, 2);
    for n in [a, a2, b] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_all_and_some_reports_partial_failure() {
    let a = node("a").await;
    let b = node("b").await;
    b.channel("t").unwrap();
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let ghost = memmesh::Keypair::generate().unwrap().node_id();
    let e = a
        .channel("t")
        .unwrap()
        .send("m", Target::Peers(vec![b_id, ghost]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message().contains("delivered to 1 of 2"), "{e}");
    assert_eq!(
        &b.channel("t").unwrap().recv().await.unwrap().data[..],
        b"m"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// `a` and `b`, each with an echo handler on channel "echo", dial each other at the
/// same instant; both dials succeed.
async fn dial_each_other(a: &memmesh::Node, b: &memmesh::Node) {
    echo(a, "echo");
    echo(b, "echo");
    let (addr_a, addr_b) = (a.addr().to_string(), b.addr().to_string());
    let (ab, ba) = tokio::join!(a.connect(&addr_b), b.connect(&addr_a));
    assert_eq!(ab.unwrap(), b.id());
    assert_eq!(ba.unwrap(), a.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_leave_both_directions_working() {
    let a = node("a").await;
    let b = node("b").await;
    dial_each_other(&a, &b).await;
    let (ca, cb) = (a.channel("echo").unwrap(), b.channel("echo").unwrap());
    for i in 0..20u8 {
        let (x, y) = tokio::join!(
            ca.request(b.id(), vec![i], None),
            cb.request(a.id(), vec![i], None)
        );
        assert_eq!(&x.unwrap()[..], &[i]);
        assert_eq!(&y.unwrap()[..], &[i]);
    }
    assert_eq!(a.peers().len(), 1);
    assert_eq!(b.peers().len(), 1);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn very_long_timeouts_mean_no_deadline_and_never_panic() {
    // A node's configured timeouts are bounded (a day at most, checked at start: see
    // `NodeConfig::validate`); a per-call timeout of any length saturates.
    let e = builder("absurd")
        .request_timeout(Duration::MAX)
        .start()
        .await
        .expect_err("a node configured with Duration::MAX must not start");
    assert_eq!(e.kind(), memmesh::ErrorKind::InvalidInput, "{e}");
    let day = Duration::from_secs(86_400);
    let forever = |name: &str| {
        builder(name)
            .request_timeout(day)
            .send_timeout(day)
            .connect_timeout(day)
    };
    let a = forever("a").start().await.unwrap();
    let b = forever("b").start().await.unwrap();
    echo(&b, "echo");
    let inbox = b.channel("q").unwrap();
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let ch = a.channel("echo").unwrap();
    let r = ch.request(b_id, "x", Some(Duration::MAX)).await.unwrap();
    assert_eq!(&r[..], b"x");
    let r = ch
        .request(b_id, "y", Some(Duration::from_secs(u64::MAX)))
        .await
        .unwrap();
    assert_eq!(&r[..], b"y");
    assert_eq!(a.channel("q").unwrap().send("m", b_id).await.unwrap(), 1);
    assert_eq!(&inbox.recv().await.unwrap().data[..], b"m");
    let id = a
        .blocks()
        .unwrap()
        .put("block", memmesh::Placement::Peer(b_id))
        .await
        .unwrap();
    assert_eq!(&a.blocks().unwrap().get(&id).await.unwrap()[..], b"block");

    // A peer that connects again replaces its connection: the old one is retired after
    // `request_timeout` + 1 s, and the new one is served.
    let key = memmesh::Keypair::generate().unwrap();
    let raw = serve::client("127.0.0.1".parse().unwrap(), &key);
    let first = serve::authenticated(&raw, b.addr()).await.unwrap();
    let second = serve::authenticated(&raw, b.addr()).await.unwrap();
    let frame = memmesh::wire::codec::encode_frame(
        &memmesh::wire::StreamHeader::new(memmesh::wire::Service::Channel {
            name: "echo".into(),
            op: memmesh::wire::messages::ChannelOp::Request,
        }),
        b"again",
        memmesh::wire::codec::FrameLimits::with_body(1024),
    )
    .unwrap();
    for conn in [&second, &first] {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&frame).await.unwrap();
        send.finish().unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 16))
            .await
            .expect("the connection is served")
            .unwrap();
        assert!(reply.ends_with(b"again"));
    }
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// A request to the node itself is polled where it is awaited (no task hop: a blocking
/// caller on a plain thread runs the handler itself), and still times out and ends with
/// `Closed` at shutdown, as requests run as node tasks do.
#[test]
fn a_request_to_this_node_runs_where_it_is_awaited_and_still_times_out_and_closes() {
    use futures::executor::block_on;
    let node = memmesh::Node::builder()
        .name("self")
        .listen("127.0.0.1:0")
        .mdns(false)
        .start_blocking()
        .unwrap();
    let me = node.id();

    // Answered on this very thread, with no tokio runtime of its own.
    let ch = node.channel("where").unwrap();
    ch.on_request(|_req: Request| async move {
        Ok(Bytes::from(format!("{:?}", std::thread::current().id())))
    });
    let reply = block_on(ch.request(me, "q", None)).unwrap();
    assert_eq!(
        std::str::from_utf8(&reply).unwrap(),
        format!("{:?}", std::thread::current().id())
    );

    // A handler that never answers: the request's timeout still applies.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let stuck = node.channel("stuck").unwrap();
    stuck.on_request(move |_req: Request| {
        let _ = started_tx.lock().unwrap().send(());
        futures::future::pending::<memmesh::Result<Bytes>>()
    });
    let e = block_on(stuck.request(me, "q", Some(Duration::from_millis(100)))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    started_rx.recv().unwrap();

    // Shutdown ends a request in flight with Closed.
    let waiting = std::thread::spawn(move || block_on(stuck.request(me, "q", None)));
    started_rx.recv().unwrap();
    node.shutdown_blocking().unwrap();
    let e = waiting.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
}

/// Two nodes that dial each other at once hold two connections for a moment; both sides
/// must keep the same one (ADR 0006), or each closes the one the other kept when the
/// replaced connection's grace ends, failing the calls in flight on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_converge_on_one_connection_and_no_call_fails() {
    let grace = Duration::from_millis(500) + Duration::from_secs(1);
    let mut pairs = Vec::new();
    for i in 0..12 {
        let a = builder(&format!("a{i}"))
            .request_timeout(Duration::from_millis(500))
            .start()
            .await
            .unwrap();
        let b = builder(&format!("b{i}"))
            .request_timeout(Duration::from_millis(500))
            .start()
            .await
            .unwrap();
        dial_each_other(&a, &b).await;
        pairs.push((a, b));
    }
    // Calls back to back in both directions of every pair, across the end of the grace.
    let end = tokio::time::Instant::now() + grace * 3;
    let mut calls = 0u32;
    while tokio::time::Instant::now() < end {
        for (n, (a, b)) in pairs.iter().enumerate() {
            let (ca, cb) = (a.channel("echo").unwrap(), b.channel("echo").unwrap());
            let (x, y) = tokio::join!(
                ca.request(b.id(), vec![n as u8], None),
                cb.request(a.id(), vec![n as u8], None)
            );
            assert_eq!(
                &x.unwrap_or_else(|e| panic!("pair {n} a→b, call {calls}: {e}"))[..],
                &[n as u8]
            );
            assert_eq!(
                &y.unwrap_or_else(|e| panic!("pair {n} b→a, call {calls}: {e}"))[..],
                &[n as u8]
            );
        }
        calls += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (a, b) in pairs {
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    }
}
