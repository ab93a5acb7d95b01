//! Authentication and hostile peers.

mod common;
#[path = "common/auth.rs"]
mod common_auth;
#[path = "netlab/mod.rs"]
mod netlab;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use common_auth::{raw_member, RawServer};
use memmesh::transport::auth::{self, AUTH_FAILURE_BURST};
use memmesh::transport::handshake::MAX_HELLO_ADDRS;
use memmesh::transport::pool::MAX_PEER_ADDRS;
use memmesh::wire::codec::{encode_frame, encode_header, FrameLimits};
use memmesh::wire::messages::ChannelOp;
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_secret_is_refused_and_nothing_is_delivered() {
    let a = builder("a").cluster_secret("alpha").start().await.unwrap();
    let b = builder("b").cluster_secret("beta").start().await.unwrap();
    let open = node("open").await;
    let inbox = b.channel("c").unwrap();
    echo(&b, "echo");

    let e = a.connect(&b.addr().to_string()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    // A node without a secret cannot join a cluster that has one, nor the reverse.
    assert_eq!(
        open.connect(&b.addr().to_string())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        b.connect(&open.addr().to_string())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unauthorized
    );
    // A raw peer with the wrong secret is closed before any frame is served.
    assert!(RawPeer::connect(b.addr(), Some(b"gamma")).await.is_err());

    assert!(a.peers().iter().all(|p| !p.connected));
    assert!(b.peers().is_empty(), "{:?}", b.peers());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), inbox.recv())
            .await
            .is_err()
    );

    // The same secret works.
    let b2 = builder("b2").cluster_secret("beta").start().await.unwrap();
    assert_eq!(b2.connect(&b.addr().to_string()).await.unwrap(), b.id());
    assert_eq!(
        &b2.channel("echo")
            .unwrap()
            .request(b.id(), "hi", None)
            .await
            .unwrap()[..],
        b"hi"
    );
    for n in [a, b, b2, open] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_key_for_an_expected_id_is_refused() {
    let a = node("a").await;
    let b = node("b").await;
    let impostor = node("impostor").await;
    // a expects b's id but dials the impostor's address.
    let e = a
        .connect_to(b.id(), &impostor.addr().to_string())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(a
        .peers()
        .iter()
        .all(|p| p.id != impostor.id() || !p.connected));
    // The right address with the right id works.
    a.connect_to(b.id(), &b.addr().to_string()).await.unwrap();
    for n in [a, b, impostor] {
        n.shutdown().await.unwrap();
    }
}

fn limits() -> FrameLimits {
    FrameLimits::with_body(1 << 20)
}

fn reply_of(bytes: &[u8]) -> Reply {
    memmesh::wire::codec::decode_frame::<Reply>(bytes, limits())
        .unwrap()
        .header
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_get_errors_and_do_not_disturb_other_traffic() {
    let target = builder("target")
        .max_message_size(64 * 1024)
        .start()
        .await
        .unwrap();
    echo(&target, "echo");
    let good = node("good").await;
    let target_id = good.connect(&target.addr().to_string()).await.unwrap();
    let raw = RawPeer::connect(target.addr(), None).await.unwrap();

    // Keep honest traffic flowing while the raw peer misbehaves.
    let ch = good.channel("echo").unwrap();
    let honest = tokio::spawn(async move {
        for i in 0..200u32 {
            let r = ch
                .request(target_id, i.to_be_bytes().to_vec(), None)
                .await
                .unwrap();
            assert_eq!(&r[..], &i.to_be_bytes());
        }
    });

    // A header that is not a valid message (this build's version, as a one-byte varint,
    // then an impossible variant).
    let version = u8::try_from(memmesh::wire::WIRE_VERSION).expect("a one-byte varint");
    let mut frame = b"\x00\x00\x00\x05\x00\x00\x00\x00".to_vec();
    frame.push(version);
    frame.extend_from_slice(b"\xff\xff\xff\xff");
    let reply = raw.exchange(&frame).await;
    assert!(
        matches!(reply_of(&reply), Reply::Err { ref kind, .. } if kind == "Corrupted"),
        "{:?}",
        reply_of(&reply)
    );
    // An oversized announced body.
    let mut huge = Vec::new();
    huge.extend_from_slice(&4u32.to_be_bytes());
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let reply = raw.exchange(&huge).await;
    assert!(matches!(reply_of(&reply), Reply::Err { ref kind, .. } if kind == "InvalidInput"));
    // A truncated frame.
    let frame = encode_frame(
        &StreamHeader::new(Service::Channel {
            name: "echo".into(),
            op: ChannelOp::Request,
        }),
        b"0123456789",
        limits(),
    )
    .unwrap();
    let reply = raw.exchange(&frame[..frame.len() - 3]).await;
    assert!(matches!(reply_of(&reply), Reply::Err { ref kind, .. } if kind == "Corrupted"));
    // A header from a future protocol version.
    let mut future = StreamHeader::new(Service::Channel {
        name: "echo".into(),
        op: ChannelOp::Request,
    });
    future.version = 99;
    let head = encode_header(&future).unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(head.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(&head);
    let reply = raw.exchange(&bytes).await;
    assert!(matches!(reply_of(&reply), Reply::Err { ref kind, .. } if kind == "Unsupported"));
    // Many garbage streams at once.
    let payloads: Vec<[u8; 37]> = (0..50u8).map(|i| [i; 37]).collect();
    futures::future::join_all(payloads.iter().map(|p| raw.exchange(p))).await;
    // A well-formed frame on the same raw connection is still served.
    let reply = raw.exchange(&frame).await;
    let decoded = memmesh::wire::codec::decode_frame::<Reply>(&reply, limits()).unwrap();
    assert_eq!(decoded.header, Reply::Ok);
    assert_eq!(&decoded.body[..], b"0123456789");

    honest.await.unwrap();
    target.shutdown().await.unwrap();
    good.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_peer_cannot_skip_the_handshake() {
    let target = node("target").await;
    let inbox = target.channel("c").unwrap();
    // Complete TLS but send a service frame instead of the hello.
    let key = memmesh::Keypair::generate().unwrap();
    let client = quinn::crypto::rustls::QuicClientConfig::try_from(
        memmesh::transport::tls::client_config(&key).unwrap(),
    )
    .unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(client)));
    let conn = ep
        .connect(target.addr(), memmesh::transport::tls::UNPINNED_SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let frame = encode_frame(
        &StreamHeader::new(Service::Channel {
            name: "c".into(),
            op: ChannelOp::Send,
        }),
        b"sneaky",
        limits(),
    )
    .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(&frame).await;
    let _ = send.finish();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    assert!(
        closed.is_ok(),
        "the node must close a peer that skips the handshake"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), inbox.recv())
            .await
            .is_err()
    );
    target.shutdown().await.unwrap();
}

/// The proof a dialling node sent first before ADR 0002's PAKE: an HMAC of the exporter
/// keyed by the secret (or by its KDF output), which a listener could test guesses
/// against offline.
fn legacy_proofs(secret: &[u8], exporter: &[u8; 32]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let derived = auth::kdf(secret).unwrap();
    for key in [secret, &derived[..]] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        for role in [&b"client::"[..], &b"server::"[..]] {
            let mut m = role.to_vec();
            m.extend_from_slice(exporter);
            out.push(ring::hmac::sign(&key, &m).as_ref().to_vec());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_secret_never_receives_a_client_proof() {
    let secret = auth::generate_secret().unwrap();
    let node = builder("dialler")
        .cluster_secret(&secret)
        .connect_timeout(Duration::from_secs(3))
        .start()
        .await
        .unwrap();

    // A listener that does not hold the secret (it answers with a guess, as an attacker
    // would) gets the node's PAKE message and nothing else.
    let raw = RawServer::bind();
    let to = raw.addr.to_string();
    let (dial, captured) =
        tokio::join!(node.connect(&to), raw.accept_once(b"a guess of the secret"));
    let e = dial.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        captured.rest.is_empty(),
        "the node sent {} more bytes (a confirmation?) to an unauthenticated server",
        captured.rest.len()
    );
    // What it got carries no name, no address, and no proof it could test guesses
    // against: not the HMAC of the connection's exporter under the secret or its KDF
    // output (what the node sent before the fix).
    assert!(captured.first.name.is_empty() && captured.first.addrs.is_empty());
    for proof in legacy_proofs(secret.as_bytes(), &captured.exporter) {
        assert!(
            !contains(&captured.first_bytes, &proof),
            "the node sent a proof verifiable offline"
        );
    }

    // Control: a listener that does hold the secret does get the node's confirmation
    // (so the capture above would have seen one).
    let raw = RawServer::bind();
    let to = raw.addr.to_string();
    let (_, captured) = tokio::join!(node.connect(&to), raw.accept_once(secret.as_bytes()));
    assert!(
        !captured.rest.is_empty(),
        "an authenticated server gets a confirmation"
    );
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_guesses_are_rate_limited_per_source() {
    let secret = auth::generate_secret().unwrap();
    let target = builder("target")
        .cluster_secret(&secret)
        .start()
        .await
        .unwrap();
    // A raw client gets nothing from the server before it sends its own PAKE message.
    let key = memmesh::Keypair::generate().unwrap();
    let client = quinn::crypto::rustls::QuicClientConfig::try_from(
        memmesh::transport::tls::client_config(&key).unwrap(),
    )
    .unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(client)));
    let conn = ep
        .connect(target.addr(), memmesh::transport::tls::UNPINNED_SERVER_NAME)
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(b"").await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(500), recv.read_chunk(1024, true)).await;
    assert!(
        !matches!(got, Ok(Ok(Some(_)))),
        "the server spoke before the client sent its PAKE message"
    );
    drop(conn);

    // Each wrong guess is one connection; after the burst the source is refused.
    for _ in 0..AUTH_FAILURE_BURST {
        match RawPeer::connect(target.addr(), Some(b"wrong guess, but long enough")).await {
            Ok(_) => panic!("a wrong secret was accepted"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
                assert!(e.message().contains("mismatch"), "{e}");
            }
        }
    }
    // (The server records a failure when the client's confirmation fails to come: give
    // the last one a moment.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let e = RawPeer::connect(target.addr(), Some(b"wrong guess, but long enough"))
        .await
        .err()
        .expect("a wrong secret was accepted");
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        e.message().contains("too many failed authentications"),
        "{e}"
    );
    // Even the right secret is refused from that source for now.
    let e = RawPeer::connect(target.addr(), Some(secret.as_bytes()))
        .await
        .err()
        .expect("refused while the source is blocked");
    assert!(e.message().contains("too many failed"), "{e}");
    target.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_replace_a_peers_addresses_and_implausible_ones_are_dropped() {
    let target = node("target").await;
    let key = memmesh::Keypair::generate().unwrap();
    let id = key.node_id();
    let mut kept = Vec::new();
    for round in 0..12u16 {
        let mut addrs: Vec<SocketAddr> = (0..MAX_HELLO_ADDRS as u16 - 3)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + round * 100 + i)))
            .collect();
        addrs.push("224.0.0.251:5353".parse().unwrap());
        addrs.push("127.0.0.1:0".parse().unwrap());
        addrs.push("255.255.255.255:7400".parse().unwrap());
        let (ep, conn) = raw_member(target.addr(), &key, None, "many-addresses", addrs.clone())
            .await
            .unwrap();
        kept.push((ep, conn));
        let listed = || {
            target
                .peers()
                .into_iter()
                .find(|p| p.id == id)
                .map(|p| p.addrs)
                .unwrap_or_default()
        };
        assert!(
            eventually(Duration::from_secs(5), || listed()
                .contains(&SocketAddr::from(([127, 0, 0, 1], 1000 + round * 100))))
            .await,
            "{:?}",
            listed()
        );
        let now = listed();
        assert!(
            now.len() <= MAX_PEER_ADDRS,
            "round {round}: {} addresses",
            now.len()
        );
        assert!(
            now.iter().all(|a| a.port() != 0
                && !a.ip().is_multicast()
                && !a.ip().is_unspecified()
                && a.ip() != std::net::IpAddr::from([255, 255, 255, 255])),
            "{now:?}"
        );
        // Only this round's addresses: nothing piles up from earlier connections.
        assert!(
            now.iter().all(|a| a.port() >= 1000 + round * 100),
            "round {round}: {now:?}"
        );
    }
    target.shutdown().await.unwrap();
}

#[test]
fn protected_mode_refuses_non_loopback_peers_until_a_secret_or_open_is_set() {
    let test = "protected_mode_refuses_non_loopback_peers_until_a_secret_or_open_is_set";
    let Some(lab) = netlab::Lab::new(test, 2) else {
        return;
    };
    let start = |slot: usize, f: &dyn Fn(memmesh::NodeBuilder) -> memmesh::NodeBuilder| {
        let b = f(memmesh::Node::builder()
            .name(format!("n{slot}"))
            .listen(lab.listen(slot))
            .mdns(false)
            .threads(1)
            .connect_timeout(Duration::from_secs(3)));
        netlab::start_in(lab.ns(slot), b)
    };
    let connect = |from: &memmesh::Node, to: &memmesh::Node| {
        futures::executor::block_on(from.connect(&to.addr().to_string()))
    };

    // No secret: the node refuses a non-loopback peer at the handshake, naming the fix.
    let protected = start(0, &|b| b);
    let open_peer = start(1, &|b| b.open(true));
    let e = connect(&open_peer, &protected).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        e.message().contains("protected mode") && e.message().contains("open = true"),
        "{e}"
    );
    assert!(protected.peers().is_empty(), "{:?}", protected.peers());
    // And it does not dial one either.
    let e = connect(&protected, &open_peer).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.message().contains("protected mode"), "{e}");

    // open = true on both sides: accepted.
    let open = start(0, &|b| b.open(true));
    assert_eq!(connect(&open_peer, &open).unwrap(), open.id());

    // A shared secret: accepted.
    let secret = auth::generate_secret().unwrap();
    let a = start(0, &|b| b.cluster_secret(&secret));
    let b = start(1, &|b| b.cluster_secret(&secret));
    assert_eq!(connect(&b, &a).unwrap(), a.id());
    for n in [protected, open_peer, open, a, b] {
        n.shutdown_blocking().unwrap();
    }
}
