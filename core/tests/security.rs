//! Authentication and hostile peers.

mod common;

use std::time::Duration;

use common::*;
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
