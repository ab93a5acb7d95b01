//! A hostile member against connection serving and channels: streams that never send a
//! request, more streams than the node serves in total, connections that never finish
//! the memmesh handshake, and a flood of large messages nobody reads. In each case the
//! node holds no more than its budget, says so to the peer, and keeps serving others.

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use memmesh::channel::queue::{message_cost, CHANNEL_QUEUE_BYTES};
use memmesh::transport::tuning::{
    MAX_INBOUND_CONNECTIONS_PER_SOURCE, MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_SOURCE,
    MAX_STREAMS_PER_NODE, MAX_STREAMS_PER_PEER,
};
use memmesh::{ErrorKind, Keypair};
use serve::*;
use tokio::time::Instant;

/// Tasks a node may run besides the streams under test (membership, the honest peer's
/// requests, timers).
const SLACK: usize = 48;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_streams_hold_at_most_the_per_peer_cap_and_get_timeout_after_the_deadline() {
    let target = builder("target")
        .request_timeout(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    echo(&target, "echo");
    let real = node("real").await;
    let target_id = real.connect(&target.addr().to_string()).await.unwrap();
    let ch = real.channel("echo").unwrap();
    ch.request(target_id, "warm up", None).await.unwrap();
    let baseline = tasks(&target);

    let raw = RawPeer::connect(target.addr(), None).await.unwrap();
    let streams: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(silent_stream(raw.conn.clone(), Duration::from_secs(180))))
        .collect();
    // The honest peer is served all along; watch what the attack costs the target.
    let end = Instant::now() + Duration::from_secs(180);
    let mut peak = 0;
    let mut honest = 0;
    while !streams.iter().all(|s| s.is_finished()) && Instant::now() < end {
        peak = peak.max(tasks(&target));
        if peak > baseline + MAX_STREAMS_PER_PEER + SLACK {
            break;
        }
        let r = ch.request(target_id, "still there?", None).await.unwrap();
        assert_eq!(&r[..], b"still there?");
        honest += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        peak <= baseline + MAX_STREAMS_PER_PEER + SLACK,
        "one peer made the node run {} tasks (baseline {baseline})",
        peak
    );
    assert!(
        peak >= baseline + MAX_STREAMS_PER_PEER / 2,
        "the attack never reached the node (peak {peak}, baseline {baseline})"
    );
    assert!(honest > 0);
    // Every silent stream was answered with a clear Timeout, none left hanging.
    for s in streams {
        let ending = s.await.unwrap();
        assert_eq!(ending.kind(), Some("Timeout"), "{ending:?}");
    }
    assert!(
        eventually(Duration::from_secs(20), || tasks(&target)
            <= baseline + 2 + SLACK)
        .await,
        "the streams' tasks did not end: {} tasks (baseline {baseline})",
        tasks(&target)
    );
    raw.conn.close(0u32.into(), b"done");
    target.shutdown().await.unwrap();
    real.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_node_total_are_refused_with_quota_exceeded() {
    // Silent streams are held 10 s: ample time for the attack to fill the node.
    let target = builder("target")
        .request_timeout(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    echo(&target, "echo");
    let real = node("real").await;
    let target_id = real.connect(&target.addr().to_string()).await.unwrap();
    let ch = real.channel("echo").unwrap();
    ch.request(target_id, "warm up", None).await.unwrap();
    let baseline = tasks(&target);

    // Enough members, each at its own cap, to pass the node's total.
    let members = MAX_STREAMS_PER_NODE / MAX_STREAMS_PER_PEER + 1;
    let mut raws = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..members {
        let raw = RawPeer::connect(target.addr(), None).await.unwrap();
        for _ in 0..MAX_STREAMS_PER_PEER {
            streams.push(tokio::spawn(silent_stream(
                raw.conn.clone(),
                Duration::from_secs(180),
            )));
        }
        raws.push(raw);
    }
    let mut peak = 0;
    let mut refused_honest = None;
    let end = Instant::now() + Duration::from_secs(120);
    // Two tasks per connection: its loop of streams, and the refusal of unidirectional ones.
    let bound = baseline + MAX_STREAMS_PER_NODE + 2 * members + SLACK;
    while !streams.iter().all(|s| s.is_finished()) && Instant::now() < end {
        peak = peak.max(tasks(&target));
        if peak > bound {
            break;
        }
        if refused_honest.is_none() && streams.iter().any(|s| s.is_finished()) {
            // The node is full (it has refused a stream): an honest request is refused
            // too, clearly, rather than left waiting.
            if let Err(e) = ch.request(target_id, "now?", None).await {
                assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
                refused_honest = Some(e);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One task per stream served, and two per connection.
    assert!(
        peak <= bound,
        "peers made the node run {peak} tasks (baseline {baseline})"
    );
    let mut busy = 0;
    for s in streams {
        match s.await.unwrap() {
            Ending::Busy => busy += 1,
            other => assert_eq!(other.kind(), Some("Timeout"), "{other:?}"),
        }
    }
    assert!(busy > 0, "no stream was refused");
    assert!(
        refused_honest.is_some(),
        "the honest request was never refused"
    );
    // Once the silent streams are gone, the honest peer is served again.
    assert!(
        eventually(Duration::from_secs(20), || tasks(&target)
            <= baseline + 2 * members + SLACK)
        .await,
        "the streams' tasks did not end: {} tasks (baseline {baseline})",
        tasks(&target)
    );
    assert_eq!(
        &ch.request(target_id, "back", None).await.unwrap()[..],
        b"back"
    );
    for raw in raws {
        raw.conn.close(0u32.into(), b"done");
    }
    target.shutdown().await.unwrap();
    real.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_handshakes_are_capped_and_dropped_after_the_timeout() {
    let target = builder("target")
        .connect_timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    echo(&target, "echo");
    let to = target.addr();

    // One address opens many connections that complete TLS and never say hello.
    let attacker = client(ip("127.0.0.1"), &Keypair::generate().unwrap());
    let attempts = futures::future::join_all((0..60).map(|_| tls_only(&attacker, to))).await;
    let held: Vec<quinn::Connection> = attempts.into_iter().filter_map(Result::ok).collect();
    assert!(
        !held.is_empty() && held.len() <= MAX_PENDING_HANDSHAKES_PER_SOURCE,
        "{} unfinished handshakes held from one address",
        held.len()
    );
    // A real peer from another address connects meanwhile and is served.
    let real = builder("real").listen("127.0.0.2:0").start().await.unwrap();
    let id = real.connect(&to.to_string()).await.unwrap();
    let ch = real.channel("echo").unwrap();
    assert_eq!(&ch.request(id, "hi", None).await.unwrap()[..], b"hi");
    // The silent connections are dropped after the handshake timeout.
    for c in &held {
        tokio::time::timeout(Duration::from_secs(30), c.closed())
            .await
            .expect("an unfinished handshake was dropped");
    }
    // Then the same address can connect for real.
    let again = node("again").await;
    assert_eq!(
        again.connect(&to.to_string()).await.unwrap(),
        id_of(&target)
    );

    // Many addresses: the node-wide cap.
    let sources: Vec<quinn::Endpoint> = (10..20)
        .map(|i| client(ip(&format!("127.0.0.{i}")), &Keypair::generate().unwrap()))
        .collect();
    let attempts = futures::future::join_all(
        sources
            .iter()
            .flat_map(|e| (0..MAX_PENDING_HANDSHAKES_PER_SOURCE + 4).map(move |_| (e, to)))
            .map(|(e, to)| async move { (e.local_addr().unwrap().ip(), tls_only(e, to).await) }),
    )
    .await;
    let held: Vec<(IpAddr, quinn::Connection)> = attempts
        .into_iter()
        .filter_map(|(ip, r)| r.ok().map(|c| (ip, c)))
        .collect();
    assert!(
        held.len() <= MAX_PENDING_HANDSHAKES,
        "{} unfinished handshakes held in total",
        held.len()
    );
    for (source, _) in &held {
        let n = held.iter().filter(|(s, _)| s == source).count();
        assert!(n <= MAX_PENDING_HANDSHAKES_PER_SOURCE, "{n} from {source}");
    }
    for (_, c) in &held {
        tokio::time::timeout(Duration::from_secs(30), c.closed())
            .await
            .expect("an unfinished handshake was dropped");
    }
    let late = builder("late").listen("127.0.0.3:0").start().await.unwrap();
    assert_eq!(late.connect(&to.to_string()).await.unwrap(), id_of(&target));
    for n in [target, real, again, late] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_from_one_source_are_capped() {
    let target = node("target").await;
    echo(&target, "echo");
    let to = target.addr();
    // One address mints identities and keeps a connection open with each.
    let mut held = Vec::new();
    while held.len() < MAX_INBOUND_CONNECTIONS_PER_SOURCE {
        let batch = (MAX_INBOUND_CONNECTIONS_PER_SOURCE - held.len()).min(16);
        let batch = futures::future::join_all((0..batch).map(|_| RawPeer::connect(to, None))).await;
        for raw in batch {
            held.push(raw.expect("a connection within the per-source cap"));
        }
    }
    // One more from that address is refused before any handshake work.
    let refused = RawPeer::connect(to, None).await;
    assert!(
        refused.is_err(),
        "a connection past the per-source cap was served"
    );
    // Another address is served meanwhile.
    let real = builder("real").listen("127.0.0.2:0").start().await.unwrap();
    let id = real.connect(&to.to_string()).await.unwrap();
    let ch = real.channel("echo").unwrap();
    assert_eq!(&ch.request(id, "hi", None).await.unwrap()[..], b"hi");
    // A connection that closes gives its place back.
    let gone = held.pop().unwrap();
    gone.conn.close(0u32.into(), b"done");
    let mut again = None;
    let end = Instant::now() + Duration::from_secs(20);
    while again.is_none() && Instant::now() < end {
        again = RawPeer::connect(to, None).await.ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a freed place was never given back");
    for raw in held.into_iter().chain(again) {
        raw.conn.close(0u32.into(), b"done");
    }
    target.shutdown().await.unwrap();
    real.shutdown().await.unwrap();
}

fn id_of(node: &memmesh::Node) -> memmesh::NodeId {
    node.id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_messages_nobody_reads_is_refused_at_the_byte_bound() {
    // The target waits at most 1 s for room before refusing a message.
    let target = builder("target")
        .send_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let sink = target.channel("sink").unwrap();
    let flooder = node("flooder").await;
    let target_id = flooder.connect(&target.addr().to_string()).await.unwrap();
    let ch = flooder.channel("sink").unwrap();
    let size = 1 << 20;
    let fits = (CHANNEL_QUEUE_BYTES / message_cost(size)) as usize;

    // One after the other: accepted up to the byte bound, then a clear refusal.
    let mut accepted = 0;
    let mut refusal = None;
    for i in 0..fits + 8 {
        match ch.send(vec![i as u8; size], target_id).await {
            Ok(_) => accepted += 1,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let e = refusal.expect("the flood was never refused");
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert_eq!(accepted, fits);

    // All at once, on top of a full queue: every one refused, none left waiting.
    let burst =
        futures::future::join_all((0..32).map(|i| ch.send(vec![i as u8; size], target_id))).await;
    for r in burst {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::QuotaExceeded);
    }

    // What was accepted is all there, in order; then there is room again.
    for i in 0..accepted {
        let m = sink.recv().await.unwrap();
        assert_eq!((m.data.len(), m.data[0]), (size, i as u8));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sink.recv())
            .await
            .is_err(),
        "a refused message was queued anyway"
    );
    ch.send(vec![7u8; size], target_id).await.unwrap();
    assert_eq!(sink.recv().await.unwrap().data[0], 7);
    target.shutdown().await.unwrap();
    flooder.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unidirectional_streams_are_refused_and_the_connection_keeps_serving() {
    let target = node("target").await;
    echo(&target, "echo");
    let raw = RawPeer::connect(target.addr(), None).await.unwrap();
    // More than the connection's concurrent unidirectional streams: each refused one
    // frees its place for the next, so none of these waits for ever.
    for i in 0..600u32 {
        let mut s = raw.conn.open_uni().await.unwrap();
        // Not finished: only the node's STOP_SENDING ends it.
        let _ = s.write_all(format!("junk {i}").as_bytes()).await;
        let stopped = tokio::time::timeout(Duration::from_secs(10), s.stopped())
            .await
            .expect("the node answers a unidirectional stream");
        assert_eq!(
            stopped.unwrap(),
            Some(quinn::VarInt::from_u32(
                memmesh::transport::errors::CLOSE_PROTOCOL
            )),
            "stream {i}"
        );
    }
    // The same connection still serves a request, and the node another peer.
    let header = memmesh::wire::StreamHeader::new(memmesh::wire::Service::Channel {
        name: "echo".into(),
        op: memmesh::wire::messages::ChannelOp::Request,
    });
    let limits = memmesh::wire::codec::FrameLimits::with_body(1024);
    let body = memmesh::transport::rpc::call(&raw.conn, &header, b"after", limits)
        .await
        .unwrap();
    assert_eq!(&body[..], b"after");
    let real = node("real").await;
    let id = real.connect(&target.addr().to_string()).await.unwrap();
    let r = real
        .channel("echo")
        .unwrap()
        .request(id, "hi", None)
        .await
        .unwrap();
    assert_eq!(&r[..], b"hi");
    raw.conn.close(0u32.into(), b"done");
    target.shutdown().await.unwrap();
    real.shutdown().await.unwrap();
}
