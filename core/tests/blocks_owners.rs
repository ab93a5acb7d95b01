//! Blocks have owners: the nodes that put them. The same content put by two nodes is
//! stored once and lives until both have freed it; a node that never put a block cannot
//! free it (over the public API or with a hand-made frame); an owner that leaves the
//! cluster for good gives its references up.

mod common;

use std::time::Duration;

use common::*;
use memmesh::blocks::store::{block_cost, OWNER_OVERHEAD};
use memmesh::membership::MembershipConfig;
use memmesh::wire::codec::{decode_frame, encode_frame, FrameLimits};
use memmesh::wire::messages::BlockOp;
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::{ErrorKind, Node, NodeBuilder, Placement};

async fn cluster(builders: Vec<NodeBuilder>) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for mut b in builders {
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

fn limits() -> FrameLimits {
    FrameLimits::with_body(1 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_content_lives_until_its_last_owner_frees_it_and_only_owners_can() {
    let nodes = cluster(
        ["a", "b", "c", "d"]
            .iter()
            .map(|n| builder(n).memory_quota(1 << 20))
            .collect(),
    )
    .await;
    let (a, b, c, d) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    let data = vec![42u8; 10_000];
    let on_c = Placement::Peer(c.id());
    let id = a.blocks().unwrap().put(data.clone(), on_c).await.unwrap();
    assert_eq!(
        b.blocks().unwrap().put(data.clone(), on_c).await.unwrap(),
        id
    );
    // Stored once, charged once, plus the second owner.
    let held = c.blocks().unwrap().local_stats();
    assert_eq!(held.blocks, 1);
    assert_eq!(held.used, block_cost(10_000) + OWNER_OVERHEAD);

    // A frees its reference: B's is still there.
    a.blocks().unwrap().free(&id).await.unwrap();
    assert_eq!(&b.blocks().unwrap().get(&id).await.unwrap()[..], &data[..]);
    assert_eq!(c.blocks().unwrap().local_stats().used, block_cost(10_000));
    // A's reference is gone: freeing again is refused, the block stays.
    let err = a.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    // D never put it: neither before nor after reading it can it free it.
    let err = d.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(&d.blocks().unwrap().get(&id).await.unwrap()[..], &data[..]);
    let err = d.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    // Nor can the holder's own user, who did not put it either.
    let err = c.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    // Nor a member that writes the free frame by hand.
    let raw = RawPeer::connect(c.addr(), None).await.unwrap();
    let frame = encode_frame(
        &StreamHeader::new(Service::Blocks {
            op: BlockOp::Free { id: *id.digest() },
        }),
        &[],
        limits(),
    )
    .unwrap();
    let reply = decode_frame::<Reply>(&raw.exchange(&frame).await, limits()).unwrap();
    assert!(
        matches!(reply.header, Reply::Err { ref kind, .. } if kind == "Unauthorized"),
        "{:?}",
        reply.header
    );
    assert_eq!(c.blocks().unwrap().local_stats().blocks, 1);

    // B frees the last reference: the block is gone.
    b.blocks().unwrap().free(&id).await.unwrap();
    let after = c.blocks().unwrap().local_stats();
    assert_eq!((after.blocks, after.used), (0, 0));
    let err = b.blocks().unwrap().get(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = b.blocks().unwrap().free(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // A node that put content locally and on a peer frees its own copy first.
    let local = c
        .blocks()
        .unwrap()
        .put(data.clone(), Placement::Local)
        .await
        .unwrap();
    d.blocks().unwrap().put(data.clone(), on_c).await.unwrap();
    c.blocks().unwrap().free(&local).await.unwrap();
    assert_eq!(
        &a.blocks().unwrap().get(&local).await.unwrap()[..],
        &data[..]
    );
    d.blocks().unwrap().free(&local).await.unwrap();
    assert_eq!(c.blocks().unwrap().local_stats().blocks, 0);

    raw.conn.close(0u32.into(), b"done");
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_leaves_for_good_gives_its_blocks_up() {
    let forgetful = MembershipConfig {
        forget_after: Duration::from_secs(1),
        ..MembershipConfig::default()
    };
    let nodes = cluster(vec![
        builder("holder").membership(forgetful),
        builder("stays"),
        builder("leaves"),
    ])
    .await;
    let (holder, stays, leaves) = (&nodes[0], &nodes[1], &nodes[2]);
    let on_holder = Placement::Peer(holder.id());
    let kept = stays
        .blocks()
        .unwrap()
        .put(b"kept".to_vec(), on_holder)
        .await
        .unwrap();
    let shared = b"both".to_vec();
    stays
        .blocks()
        .unwrap()
        .put(shared.clone(), on_holder)
        .await
        .unwrap();
    leaves
        .blocks()
        .unwrap()
        .put(shared.clone(), on_holder)
        .await
        .unwrap();
    let gone = leaves
        .blocks()
        .unwrap()
        .put(b"only the leaver's".to_vec(), on_holder)
        .await
        .unwrap();
    assert_eq!(holder.blocks().unwrap().local_stats().blocks, 3);

    leaves.shutdown().await.unwrap();
    // Down at once (a goodbye), forgotten after a second, released after the grace.
    let h = holder.blocks().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || h.local_stats().blocks == 2).await,
        "the leaver's own block is released: {:?}",
        h.local_stats()
    );
    let err = stays.blocks().unwrap().get(&gone).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(
        &stays.blocks().unwrap().get(&kept).await.unwrap()[..],
        b"kept"
    );
    assert_eq!(
        h.local_stats().used,
        block_cost(4) + block_cost(4),
        "the shared block keeps one owner"
    );
    for n in [&nodes[0], &nodes[1]] {
        n.shutdown().await.unwrap();
    }
}
