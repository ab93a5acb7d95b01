//! Blocks over real QUIC: put locally, on a peer and by free quota; read from a third
//! node; freed by their owner only; quota enforced with overhead; a vanished holder is
//! reported.

mod common;

use std::time::Duration;

use common::*;
use memmesh::blocks::store::block_cost;
use memmesh::{BlockId, ErrorKind, Node, Placement};

async fn cluster(quotas: &[u64]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for (i, q) in quotas.iter().enumerate() {
        let mut b = builder(&format!("n{i}")).memory_quota(*q);
        if let Some(seed) = nodes.first() {
            b = b.bootstrap([seed.addr().to_string()]);
        }
        nodes.push(b.start().await.unwrap());
    }
    let n = nodes.len();
    assert!(
        eventually(Duration::from_secs(20), || nodes.iter().all(|x| x
            .peers()
            .iter()
            .filter(|p| p.state == memmesh::PeerState::Alive)
            .count()
            == n - 1))
        .await,
        "cluster did not form"
    );
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_put_on_one_peer_is_readable_from_a_third_node_and_freed_by_its_owner() {
    let nodes = cluster(&[1 << 20, 1 << 20, 1 << 20]).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let data = vec![7u8; 100_000];
    let id = a
        .blocks()
        .unwrap()
        .put(data.clone(), Placement::Peer(b.id()))
        .await
        .unwrap();
    assert_eq!(id, BlockId::of(&data));
    assert_eq!(b.blocks().unwrap().local_stats().blocks, 1);
    assert_eq!(a.blocks().unwrap().local_stats().blocks, 0);
    // The third node never heard of it: it finds it on the holder.
    let got = c.blocks().unwrap().get(&id).await.unwrap();
    assert_eq!(&got[..], &data[..]);
    assert_eq!(&a.blocks().unwrap().get(&id).await.unwrap()[..], &data[..]);
    // Stats from any node list every node with its use.
    let stats = c.blocks().unwrap().stats().await.unwrap();
    assert_eq!(stats.len(), 3);
    let held = stats.iter().find(|u| u.id == b.id()).unwrap();
    assert_eq!(held.used, block_cost(100_000));
    assert_eq!(held.free, (1 << 20) - block_cost(100_000));
    // The third node never put it: it cannot free it.
    let err = c.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(b.blocks().unwrap().local_stats().blocks, 1);
    // Freed by the node that put it, it is gone everywhere.
    a.blocks().unwrap().free(&id).await.unwrap();
    assert_eq!(b.blocks().unwrap().local_stats().used, 0);
    let err = a.blocks().unwrap().get(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = a.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_counts_overhead_and_a_put_over_it_fails_without_evicting() {
    let n = builder("small")
        .memory_quota(2 * block_cost(1000))
        .start()
        .await
        .unwrap();
    let blocks = n.blocks().unwrap();
    let first = blocks.put(vec![1u8; 1000], Placement::Local).await.unwrap();
    // The same content again costs nothing (content addressing).
    assert_eq!(
        blocks.put(vec![1u8; 1000], Placement::Local).await.unwrap(),
        first
    );
    blocks.put(vec![2u8; 1000], Placement::Local).await.unwrap();
    let err = blocks
        .put(vec![3u8; 1], Placement::Local)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    let usage = blocks.local_stats();
    assert_eq!(usage.blocks, 2);
    assert_eq!(usage.used, 2 * block_cost(1000));
    assert_eq!(usage.free, 0);
    assert_eq!(&blocks.get(&first).await.unwrap()[..], &[1u8; 1000][..]);
    // A remote put over the holder's quota fails the same way.
    let m = builder("big").start().await.unwrap();
    assert_eq!(m.connect(&n.addr().to_string()).await.unwrap(), n.id());
    let err = m
        .blocks()
        .unwrap()
        .put(vec![4u8; 10], Placement::Peer(n.id()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    // Bad ids are refused clearly.
    assert_eq!(
        BlockId::parse("blake3:xyz").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_placement_picks_the_peer_with_most_free_quota() {
    let nodes = cluster(&[1 << 20, 1 << 20, 8 << 20]).await;
    let roomy = nodes[2].id();
    // The free-quota adverts travel with membership.
    assert!(
        eventually(Duration::from_secs(10), || nodes[0]
            .peers()
            .iter()
            .any(|p| p.id == roomy && p.quota_free == Some(8 << 20)))
        .await,
        "quota advert not seen: {:?}",
        nodes[0].peers()
    );
    let id = nodes[0]
        .blocks()
        .unwrap()
        .put(vec![9u8; 4096], Placement::Auto)
        .await
        .unwrap();
    assert_eq!(nodes[2].blocks().unwrap().local_stats().blocks, 1);
    assert_eq!(
        &nodes[1].blocks().unwrap().get(&id).await.unwrap()[..],
        &[9u8; 4096][..]
    );
    // The advert follows the change.
    assert!(
        eventually(Duration::from_secs(10), || nodes[0].peers().iter().any(
            |p| p.id == roomy && p.quota_free == Some((8 << 20) - block_cost(4096))
        ))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_from_a_vanished_holder_is_peer_unavailable() {
    let nodes = cluster(&[1 << 20, 1 << 20]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let id = a
        .blocks()
        .unwrap()
        .put(&b"precious"[..], Placement::Peer(b.id()))
        .await
        .unwrap();
    b.shutdown().await.unwrap();
    let err = a.blocks().unwrap().get(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PeerUnavailable, "{err}");
    assert!(err.message().contains(&b.id().short()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_report_usage_for_another_node() {
    let nodes = cluster(&[1 << 20, 1 << 20]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    // The raw member answers every stream with a usage report in b's name, with an
    // endless name and more free bytes than it has.
    let forged = memmesh::NodeUsage {
        id: b.id(),
        name: "x".repeat(100_000),
        quota: 1 << 20,
        used: 0,
        free: u64::MAX,
        blocks: 0,
        block_bytes: 0,
    };
    let body = memmesh::wire::codec::encode_bulk(&forged).unwrap();
    let conn = raw.conn.clone();
    let responder = tokio::spawn(async move {
        let limits = memmesh::wire::codec::FrameLimits::with_body(1 << 20);
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let _ = recv.read_to_end(1 << 20).await;
            let frame =
                memmesh::wire::codec::encode_frame(&memmesh::wire::Reply::Ok, &body, limits)
                    .unwrap();
            let _ = send.write_all(&frame).await;
            let _ = send.finish();
        }
    });
    let stats = a.blocks().unwrap().stats().await.unwrap();
    let about_b: Vec<_> = stats.iter().filter(|u| u.id == b.id()).collect();
    assert_eq!(about_b.len(), 1, "{stats:?}");
    assert_eq!(about_b[0].name, b.name());
    let from_raw = stats
        .iter()
        .find(|u| u.id == raw.id)
        .expect("the raw member's report");
    assert!(from_raw.name.len() <= 255);
    assert!(from_raw.free <= from_raw.quota);
    responder.abort();
}
