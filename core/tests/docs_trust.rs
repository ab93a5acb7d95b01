//! Trust levels in the transport (ADR 0028): trusted outsiders connect by pinned key
//! without the cluster secret and get community documents only (byte counters prove a
//! cluster document sends nothing to them, even asked by id), private documents reach
//! listed devices only, outsiders are refused every other service and never become
//! members, strangers are refused, and commons peers are admitted only with
//! `serve_commons`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{builder, RawPeer};
use memmesh::docs::messages::{Op, Reply as DocsReply, Request as DocsRequest};
use memmesh::docs::sync::{SyncReply, SyncRequest};
use memmesh::wire::codec::{decode_bulk, decode_frame, encode_bulk, encode_frame, FrameLimits};
use memmesh::wire::messages::{BlockOp, ChannelOp};
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::{DocId, ErrorKind, Keypair, Node, NodeBuilder, NodeId, Reach};

const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh data dir and the identity a node started on it will have.
fn identity(name: &str) -> (PathBuf, NodeId) {
    let d = std::env::temp_dir().join(format!("memmesh-trust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let id = Keypair::load_or_create(&d).unwrap().node_id();
    (d, id)
}

fn node_on(name: &str, dir: &PathBuf, secret: &str) -> NodeBuilder {
    builder(name).data_dir(dir).cluster_secret(secret)
}

const SECRET_A: &str = "trust-test-cluster-a-secret-0123456789";
const SECRET_B: &str = "trust-test-cluster-b-secret-9876543210";

/// The ids of the documents `node` holds.
async fn held(node: &Node) -> Vec<DocId> {
    let mut ids: Vec<DocId> = node
        .docs()
        .unwrap()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    ids.sort();
    ids
}

/// Polls until `node` holds `id` with the heads `heads`.
async fn arrives(node: &Node, id: DocId, heads: &[String]) {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(d) = node.docs().unwrap().open(id).await {
            if d.heads().unwrap() == heads {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < end,
            "document {id} did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A document of `reach` on `node` with one edit; its id and heads.
async fn doc(node: &Node, reach: Reach) -> (DocId, Vec<String>) {
    let id = node.docs().unwrap().create(reach).await.unwrap();
    let d = node.docs().unwrap().open(id).await.unwrap();
    d.put("payload", format!("{reach} content")).await.unwrap();
    (id, d.heads().unwrap())
}

/// Lets the documents service run two more full rounds (its period is 1 s).
async fn rounds() {
    tokio::time::sleep(Duration::from_millis(2500)).await;
}

fn limits() -> FrameLimits {
    FrameLimits::with_body(1 << 20)
}

/// Sends one request frame for `service` with `body` from `raw`; the reply body or the
/// error kind.
async fn raw_call(raw: &RawPeer, service: Service, body: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    let frame = encode_frame(&StreamHeader::new(service), body, limits()).unwrap();
    let (mut send, mut recv) = raw.conn.open_bi().await.unwrap();
    send.write_all(&frame).await.unwrap();
    let _ = send.finish();
    let bytes = recv.read_to_end(1 << 20).await.expect("an answer");
    let reply = decode_frame::<Reply>(&bytes, limits()).expect("a reply frame");
    match reply.header {
        Reply::Ok => Ok(reply.body.to_vec()),
        Reply::Err { kind, .. } => Err(ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .unwrap()),
    }
}

/// A valid first sync message (from an empty document).
fn hello_message() -> Vec<u8> {
    use automerge::sync::SyncDoc;
    let mut doc = automerge::AutoCommit::new();
    let mut state = automerge::sync::State::new();
    let msg = doc.sync().generate_sync_message(&mut state).unwrap();
    msg.encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_document_sends_zero_bytes_to_a_trusted_outsider_and_a_community_one_syncs() {
    let (da, ida) = identity("zero-a");
    let (dout, idout) = identity("zero-out");
    let raw_key = Keypair::generate().unwrap();
    let a = node_on("a", &da, SECRET_A)
        .trusted_peers([idout, raw_key.node_id()])
        .start()
        .await
        .unwrap();
    assert_eq!(a.id(), ida);
    // The outsider is in another cluster (another secret) and trusts `a` by its id.
    let out = node_on("out", &dout, SECRET_B)
        .trusted_peers([ida])
        .start()
        .await
        .unwrap();
    let (cluster, _) = doc(&a, Reach::Cluster).await;
    out.connect_to(ida, &a.addr().to_string()).await.unwrap();

    // A trusted outsider asks for the cluster document by id: refused, nothing sent.
    let raw = RawPeer::connect_outsider(a.addr(), &raw_key, ida)
        .await
        .unwrap();
    let ask = SyncRequest {
        doc: cluster.0,
        reach: Reach::Community.as_u8(),
        msg: hello_message(),
    };
    let got = raw_call(&raw, Service::Docs, &sync_body(ask)).await;
    assert_eq!(got.unwrap_err(), ErrorKind::Unauthorized);
    // Nor is its id named when the outsider asks what changed (with a limit far above
    // what is served: capped, not refused).
    let since = DocsRequest::new(Op::Since {
        from: memmesh::docs::events::Position::START,
        limit: u32::MAX,
    });
    let reply = raw_call(&raw, Service::Docs, &encode_bulk(&since).unwrap())
        .await
        .unwrap();
    match decode_bulk::<DocsReply>(&reply).unwrap() {
        DocsReply::Since(s) => {
            assert!(s.docs.iter().all(|l| l.doc != cluster.0), "{s:?}");
            assert!(s.docs.is_empty(), "only a cluster document is held: {s:?}");
            assert!(s.up_to.epoch != 0 && !s.more);
        }
        other => panic!("not an answer to Since: {other:?}"),
    }
    rounds().await;
    let docs_a = a.docs().unwrap();
    assert_eq!(docs_a.sent_to(&raw_key.node_id()).bytes, 0);
    assert_eq!(
        docs_a.sent_to(&idout).bytes,
        0,
        "nothing to the outsider node"
    );
    assert_eq!(docs_a.sent().frames, 0);
    assert!(held(&out).await.is_empty());
    raw.conn.close(0u32.into(), b"done");

    // A community document reaches it (and the cluster one still does not).
    let (community, heads) = doc(&a, Reach::Community).await;
    arrives(&out, community, &heads).await;
    assert!(docs_a.sent_to(&idout).bytes > 0);
    rounds().await;
    assert_eq!(held(&out).await, vec![community]);
    // Edits from the outsider come back to `a`.
    let d = out.docs().unwrap().open(community).await.unwrap();
    d.put("from", "outsider").await.unwrap();
    let heads = d.heads().unwrap();
    arrives(&a, community, &heads).await;
    a.shutdown().await.unwrap();
    out.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_document_syncs_to_a_listed_device_and_never_to_another_member() {
    let (da, ida) = identity("dev-a");
    let (dd, idd) = identity("dev-d");
    let (dm, idm) = identity("dev-m");
    let a = node_on("a", &da, SECRET_A)
        .devices([idd])
        .start()
        .await
        .unwrap();
    let d = node_on("d", &dd, SECRET_A)
        .devices([ida])
        .start()
        .await
        .unwrap();
    let m = node_on("m", &dm, SECRET_A).start().await.unwrap();
    a.connect(&d.addr().to_string()).await.unwrap();
    a.connect(&m.addr().to_string()).await.unwrap();
    d.connect(&m.addr().to_string()).await.unwrap();
    let (private, heads) = doc(&a, Reach::Private).await;
    arrives(&d, private, &heads).await;
    // The device's edits come back, and neither node gives the document to `m`.
    let on_d = d.docs().unwrap().open(private).await.unwrap();
    on_d.put("from", "device").await.unwrap();
    arrives(&a, private, &on_d.heads().unwrap()).await;
    rounds().await;
    assert!(held(&m).await.is_empty());
    assert_eq!(a.docs().unwrap().sent_to(&idm).bytes, 0);
    assert_eq!(d.docs().unwrap().sent_to(&idm).bytes, 0);
    for n in [a, d, m] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_is_refused_every_other_service_and_is_never_a_member() {
    let (da, ida) = identity("svc-a");
    let (dout, idout) = identity("svc-out");
    let raw_key = Keypair::generate().unwrap();
    let a = node_on("a", &da, SECRET_A)
        .trusted_peers([idout, raw_key.node_id()])
        .start()
        .await
        .unwrap();
    a.channel("echo")
        .unwrap()
        .on_request(|req: memmesh::Request| async move { Ok(req.data) });
    let out = node_on("out", &dout, SECRET_B)
        .trusted_peers([ida])
        .start()
        .await
        .unwrap();
    out.connect_to(ida, &a.addr().to_string()).await.unwrap();
    // Through the public API: a channel request is refused on the serving side.
    let e = out
        .channel("echo")
        .unwrap()
        .request(ida, &b"hi"[..], None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    // Raw frames for the cache, blocks, channels, files and membership.
    let raw = RawPeer::connect_outsider(a.addr(), &raw_key, ida)
        .await
        .unwrap();
    for service in [
        Service::Cache,
        Service::Blocks { op: BlockOp::Put },
        Service::Channel {
            name: "echo".into(),
            op: ChannelOp::Request,
        },
        Service::Files,
        Service::Fetch { id: [0; 32] },
    ] {
        let got = raw_call(&raw, service.clone(), b"x").await;
        assert_eq!(got.unwrap_err(), ErrorKind::Unauthorized, "{service:?}");
    }
    // Neither side lists the other as a peer or a member.
    assert!(a.peers().iter().all(|p| p.id != idout && p.id != raw.id));
    assert!(out.peers().iter().all(|p| p.id != ida));
    // The documents service still answers it (an empty exchange for a new document
    // is refused only for its reach).
    let fresh = SyncRequest {
        doc: [9; 16],
        reach: Reach::Community.as_u8(),
        msg: hello_message(),
    };
    let reply = raw_call(&raw, Service::Docs, &sync_body(fresh))
        .await
        .unwrap();
    let reply: DocsReply = decode_bulk(&reply).unwrap();
    assert!(matches!(reply, DocsReply::Sync(SyncReply { .. })));
    a.shutdown().await.unwrap();
    out.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_without_the_secret_is_refused_and_commons_needs_serve_commons() {
    let (da, ida) = identity("str-a");
    let (dc, idc) = identity("str-c");
    let (ds, _) = identity("str-s");
    let a = node_on("a", &da, SECRET_A).start().await.unwrap();
    let commons = node_on("c", &dc, SECRET_A)
        .serve_commons(true)
        .start()
        .await
        .unwrap();
    // The stranger trusts both, but neither lists it.
    let stranger = node_on("s", &ds, SECRET_B)
        .trusted_peers([ida, idc])
        .start()
        .await
        .unwrap();
    let e = stranger
        .connect_to(ida, &a.addr().to_string())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    let raw = RawPeer::connect_outsider(a.addr(), &Keypair::generate().unwrap(), ida).await;
    assert_eq!(raw.err().map(|e| e.kind()), Some(ErrorKind::Unauthorized));
    // Serving commons admits it, for commons documents only.
    let (open, heads) = doc(&commons, Reach::Commons).await;
    let (community, _) = doc(&commons, Reach::Community).await;
    stranger
        .connect_to(idc, &commons.addr().to_string())
        .await
        .unwrap();
    arrives(&stranger, open, &heads).await;
    rounds().await;
    assert_eq!(held(&stranger).await, vec![open]);
    assert!(commons.peers().iter().all(|p| p.id != stranger.id()));
    let _ = community;
    for n in [a, commons, stranger] {
        n.shutdown().await.unwrap();
    }
}

/// The body of a documents frame carrying the sync message `req`.
fn sync_body(req: SyncRequest) -> Vec<u8> {
    encode_bulk(&DocsRequest::new(Op::Sync(req))).unwrap()
}
