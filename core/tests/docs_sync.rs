//! Documents between nodes: concurrent edits converge on two and three nodes, a node
//! that was down catches up, a private document never leaves its node, and hostile
//! sync messages get clean errors.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{builder, eventually, RawPeer};
use memmesh::docs::messages::{Op, Reply as DocsReply, Request as DocsRequest};
use memmesh::docs::sync::{SyncReply, SyncRequest};
use memmesh::wire::codec::{decode_bulk, decode_frame, encode_bulk, encode_frame, FrameLimits};
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::{DocId, ErrorKind, Node, Reach, Value};

const DEADLINE: Duration = Duration::from_secs(30);

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-docsync-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn start(name: &str, data: &Path) -> Node {
    builder(name)
        .data_dir(data)
        .start()
        .await
        .expect("start node")
}

/// The document's JSON on `node`, or `None` if it does not hold it.
async fn json(node: &Node, id: DocId) -> Option<String> {
    let doc = node.docs().ok()?.open(id).await.ok()?;
    doc.to_json().ok()
}

/// Polls until every node holds `id` with the same heads and JSON; returns that JSON.
async fn converged(nodes: &[&Node], id: DocId) -> String {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut seen = Vec::new();
        for n in nodes {
            let doc = match n.docs().unwrap().open(id).await {
                Ok(d) => Some((d.heads().unwrap(), d.to_json().unwrap())),
                Err(_) => None,
            };
            seen.push(doc);
        }
        if seen.iter().all(|s| s.is_some()) && seen.windows(2).all(|w| w[0] == w[1]) {
            return seen[0].clone().unwrap().1;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no convergence within {DEADLINE:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `node`'s sync status of `id` with `peer` until `ok` holds; returns it.
async fn peer_status(
    node: &Node,
    id: DocId,
    peer: memmesh::NodeId,
    ok: impl Fn(&memmesh::docs::PeerSync) -> bool,
) -> memmesh::docs::PeerSync {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let status = node.docs().unwrap().sync_status().await.unwrap();
        let p = status
            .iter()
            .find(|d| d.id == id)
            .and_then(|d| d.peers.iter().find(|p| p.peer == peer).cloned());
        if let Some(p) = p.filter(|p| ok(p)) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no such status within {DEADLINE:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_converge_after_concurrent_edits() {
    let (da, db) = (dir("two-a"), dir("two-b"));
    let a = start("a", &da).await;
    let b = start("b", &db).await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc_a = a.docs().unwrap().open(id).await.unwrap();
    doc_a.put("list", Value::List(vec![])).await.unwrap();
    doc_a.put("n", Value::Counter(0)).await.unwrap();
    converged(&[&a, &b], id).await;
    let doc_b = b.docs().unwrap().open(id).await.unwrap();
    assert_eq!(doc_b.reach(), Reach::Cluster);
    // Concurrent edits on both sides.
    let edits_a = async {
        for i in 0..20 {
            doc_a.insert("list", 0, format!("a{i}")).await.unwrap();
            doc_a.increment("n", 1).await.unwrap();
        }
    };
    let edits_b = async {
        for i in 0..20 {
            doc_b.insert("list", 0, format!("b{i}")).await.unwrap();
            doc_b.increment("n", 1).await.unwrap();
        }
    };
    tokio::join!(edits_a, edits_b);
    let json = converged(&[&a, &b], id).await;
    assert!(json.contains(r#""n":40"#), "{json}");
    match doc_a.get("list").unwrap() {
        Some(Value::List(l)) => assert_eq!(l.len(), 40),
        other => panic!("{other:?}"),
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_a_data_dir_share_documents_in_memory() {
    let a = builder("mem-a").start().await.unwrap();
    let b = builder("mem-b").start().await.unwrap();
    a.connect(&b.addr().to_string()).await.unwrap();
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc_a = a.docs().unwrap().open(id).await.unwrap();
    doc_a.put("from", "a").await.unwrap();
    converged(&[&a, &b], id).await;
    let doc_b = b.docs().unwrap().open(id).await.unwrap();
    doc_b.put("back", "b").await.unwrap();
    let json = converged(&[&a, &b], id).await;
    assert!(json.contains("\"back\":\"b\""), "{json}");
    let stats = b.docs().unwrap().stats().await.unwrap();
    assert_eq!((stats.documents, stats.persistent), (1, false));
    let status = a.docs().unwrap().sync_status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].id, id);
    assert!(
        status[0].peers.iter().any(|p| p.peer == b.id()),
        "{status:?}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_and_a_node_that_was_down_catches_up() {
    let (da, db, dc) = (dir("three-a"), dir("three-b"), dir("three-c"));
    let a = start("a", &da).await;
    let b = start("b", &db).await;
    let mut c = start("c", &dc).await;
    a.connect(&b.addr().to_string()).await.unwrap();
    b.connect(&c.addr().to_string()).await.unwrap();
    a.connect(&c.addr().to_string()).await.unwrap();
    let id = b.docs().unwrap().create(Reach::Community).await.unwrap();
    b.docs()
        .unwrap()
        .open(id)
        .await
        .unwrap()
        .put("t", Value::Text(String::new()))
        .await
        .unwrap();
    converged(&[&a, &b, &c], id).await;
    let mut tasks = Vec::new();
    for (n, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let doc = n.docs().unwrap().open(id).await.unwrap();
        tasks.push(async move {
            for i in 0..10 {
                doc.put(format!("{name}{i}").as_str(), i as i64)
                    .await
                    .unwrap();
                doc.splice_text("t", 0, 0, name).await.unwrap();
            }
        });
    }
    futures::future::join_all(tasks).await;
    let json = converged(&[&a, &b, &c], id).await;
    assert!(
        json.contains(r#""c9":9"#) && json.contains(r#""a9":9"#),
        "{json}"
    );

    // c goes down; a and b keep editing; c comes back (same data dir) and catches up.
    let c_addr = c.addr();
    c.shutdown().await.unwrap();
    let doc_a = a.docs().unwrap().open(id).await.unwrap();
    doc_a.put("while_away", Value::Counter(0)).await.unwrap();
    for _ in 0..200 {
        doc_a.increment("while_away", 1).await.unwrap();
    }
    c = builder("c")
        .data_dir(&dc)
        .listen(c_addr.to_string())
        .start()
        .await
        .unwrap();
    // It kept what it had.
    assert!(json_of(&c, id).await.contains(r#""c9":9"#));
    c.connect(&a.addr().to_string()).await.unwrap();
    let json = converged(&[&a, &b, &c], id).await;
    assert!(json.contains(r#""while_away":200"#), "{json}");
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

async fn json_of(node: &Node, id: DocId) -> String {
    json(node, id).await.unwrap_or_default()
}

fn limits() -> FrameLimits {
    FrameLimits::with_body(64 << 20)
}

/// Sends one docs frame with `body` from `raw`; the answer (a reply or the error).
async fn raw_call(raw: &RawPeer, body: &[u8]) -> Result<SyncReply, (ErrorKind, String)> {
    let frame = encode_frame(&StreamHeader::new(Service::Docs), body, limits()).unwrap();
    let (mut send, mut recv) = raw.conn.open_bi().await.unwrap();
    send.write_all(&frame).await.unwrap();
    let _ = send.finish();
    let bytes = recv.read_to_end(64 << 20).await.expect("an answer");
    let reply = decode_frame::<Reply>(&bytes, limits()).expect("a reply frame");
    match reply.header {
        Reply::Ok => match decode_bulk(&reply.body).expect("a sync reply") {
            DocsReply::Sync(r) => Ok(r),
            other => panic!("not a sync reply: {other:?}"),
        },
        Reply::Err { kind, message } => {
            let kind = ErrorKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .unwrap();
            Err((kind, message))
        }
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

/// A sync message carrying every change of `doc` (to a peer that has none).
fn message_with_everything(doc: &mut automerge::AutoCommit) -> Vec<u8> {
    use automerge::sync::SyncDoc;
    let mut empty = automerge::AutoCommit::new();
    let (mut ours, mut theirs) = (automerge::sync::State::new(), automerge::sync::State::new());
    let hello = empty.sync().generate_sync_message(&mut theirs).unwrap();
    doc.sync().receive_sync_message(&mut ours, hello).unwrap();
    doc.sync()
        .generate_sync_message(&mut ours)
        .unwrap()
        .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sync_over_docs_max_bytes_is_refused_on_the_serving_side() {
    use automerge::transaction::Transactable;
    let a = builder("cap-a")
        .docs_max_bytes(64 * 1024)
        .start()
        .await
        .unwrap();
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc = a.docs().unwrap().open(id).await.unwrap();
    doc.put("x", 1i64).await.unwrap();
    let heads = doc.heads().unwrap();
    let mut big = automerge::AutoCommit::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let blob: Vec<u8> = (0..100 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    big.put(automerge::ROOT, "blob", blob).unwrap();
    let msg = message_with_everything(&mut big);
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let fresh = DocId([7u8; 16]);
    for target in [id, fresh] {
        let req = SyncRequest {
            doc: target.0,
            reach: Reach::Cluster.as_u8(),
            msg: msg.clone(),
        };
        let (kind, m) = raw_call(&raw, &sync_body(req)).await.unwrap_err();
        assert_eq!(kind, ErrorKind::QuotaExceeded, "{m}");
        assert!(m.contains("docs_max_bytes"), "{m}");
    }
    assert_eq!(doc.heads().unwrap(), heads);
    let e = a.docs().unwrap().open(fresh).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_document_never_reaches_a_peer() {
    let (da, db) = (dir("priv-a"), dir("priv-b"));
    let a = start("a", &da).await;
    let b = start("b", &db).await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let private = a.docs().unwrap().create(Reach::Private).await.unwrap();
    let shared = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    for id in [private, shared] {
        let d = a.docs().unwrap().open(id).await.unwrap();
        d.put("x", "payload").await.unwrap();
    }
    // The cluster document arrives (so sync ran), then more rounds pass.
    converged(&[&a, &b], shared).await;
    let d = a.docs().unwrap().open(private).await.unwrap();
    d.put("later", 1i64).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let on_b: Vec<DocId> = b
        .docs()
        .unwrap()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(on_b, vec![shared]);
    assert_eq!(
        b.docs().unwrap().open(private).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // A peer that asks for it by id gets a refusal and no document bytes.
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let heads = d.heads().unwrap();
    let req = SyncRequest {
        doc: private.0,
        reach: Reach::Cluster.as_u8(),
        msg: hello_message(),
    };
    let (kind, _) = raw_call(&raw, &sync_body(req)).await.unwrap_err();
    assert_eq!(kind, ErrorKind::Unauthorized);
    // A peer cannot push a private document to a node either.
    let fresh = DocId([7u8; 16]);
    let req = SyncRequest {
        doc: fresh.0,
        reach: Reach::Private.as_u8(),
        msg: hello_message(),
    };
    let (kind, _) = raw_call(&raw, &sync_body(req)).await.unwrap_err();
    assert_eq!(kind, ErrorKind::Unauthorized);
    assert_eq!(
        a.docs().unwrap().open(fresh).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(d.heads().unwrap(), heads);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_document_stops_reaching_a_peer_and_a_widened_one_arrives() {
    let (da, db) = (dir("narrow-a"), dir("narrow-b"));
    let a = start("a", &da).await;
    let b = start("b", &db).await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc = a.docs().unwrap().open(id).await.unwrap();
    doc.put("before", 1i64).await.unwrap();
    converged(&[&a, &b], id).await;
    // a's status of b: in sync, behind by nothing, synced at some time.
    let synced = peer_status(&a, id, b.id(), |p| p.in_sync && p.behind == 0).await;
    let first = synced.last_synced.expect("a time of the last sync");

    // Narrowed to private: edits made after it never reach b, though b still holds the
    // document as a cluster one and keeps offering it to a (a refuses).
    doc.set_reach(Reach::Private).await.unwrap();
    assert_eq!(doc.reach(), Reach::Private);
    doc.put("after", 2i64).await.unwrap();
    let on_b = b.docs().unwrap().open(id).await.unwrap();
    on_b.put("from_b", 3i64).await.unwrap();
    // Several sync periods pass (SYNC_PERIOD is 1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(on_b.get("after").unwrap(), None);
    assert_eq!(doc.get("from_b").unwrap(), None);
    // Its sync status still shows b, as of the last exchange: behind by a's one change
    // since, not in sync, last synced before the narrowing (a last round of the exchange
    // may have stamped it again after `first`).
    let status = a.docs().unwrap().sync_status().await.unwrap();
    let mine = status.iter().find(|d| d.id == id).unwrap();
    assert_eq!(mine.reach, Reach::Private);
    let p = mine.peers.iter().find(|p| p.peer == b.id()).unwrap();
    assert_eq!(
        (p.in_sync, p.in_flight, p.behind),
        (false, false, 1),
        "{p:?}"
    );
    assert!(p.last_synced.is_some_and(|t| t >= first), "{p:?}");

    // Widened back: both sides' edits flow again.
    doc.set_reach(Reach::Cluster).await.unwrap();
    let json = converged(&[&a, &b], id).await;
    assert!(json.contains("after") && json.contains("from_b"), "{json}");
    let again = peer_status(&a, id, b.id(), |p| p.in_sync && p.behind == 0).await;
    assert!(again.last_synced.is_some_and(|t| t >= first), "{again:?}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sync_messages_get_clean_errors_and_leave_documents_intact() {
    let da = dir("hostile");
    let a = start("a", &da).await;
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc = a.docs().unwrap().open(id).await.unwrap();
    doc.put("x", 1i64).await.unwrap();
    let heads = doc.heads().unwrap();
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();

    // Not a bincode request at all: the wire codec's error (Corrupted, as for every
    // service body that does not decode).
    let (kind, _) = raw_call(&raw, b"\xff\xff\xff garbage").await.unwrap_err();
    assert_eq!(kind, ErrorKind::Corrupted);
    // Garbage, truncated and bit-flipped sync messages, for an existing and a new doc.
    let good = hello_message();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let cases: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        vec![],
        good[..good.len() / 2].to_vec(),
        vec![0x42; 4096],
        flipped,
    ];
    for target in [id, DocId([9u8; 16])] {
        for msg in &cases {
            let req = SyncRequest {
                doc: target.0,
                reach: Reach::Cluster.as_u8(),
                msg: msg.clone(),
            };
            if let Err((kind, m)) = raw_call(&raw, &sync_body(req)).await {
                assert_eq!(kind, ErrorKind::InvalidInput, "{m}");
            }
        }
    }
    // An unknown reach byte.
    let req = SyncRequest {
        doc: id.0,
        reach: 200,
        msg: good.clone(),
    };
    let (kind, _) = raw_call(&raw, &sync_body(req)).await.unwrap_err();
    assert_eq!(kind, ErrorKind::InvalidInput);
    // The document is intact, and a valid exchange still works.
    assert_eq!(doc.heads().unwrap(), heads);
    let req = SyncRequest {
        doc: id.0,
        reach: Reach::Cluster.as_u8(),
        msg: good,
    };
    let reply = raw_call(&raw, &sync_body(req)).await.unwrap();
    assert!(!reply.msg.is_empty());
    assert!(eventually(Duration::from_secs(1), || doc.heads().unwrap() == heads).await);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_subscriptions_see_local_and_peer_changes_and_lag_without_blocking() {
    use memmesh::docs::{ChangeEvent, ChangeOrigin};
    let a = builder("ch-a").start().await.unwrap();
    let b = builder("ch-b").start().await.unwrap();
    let mut on_a = a.docs().unwrap().changes();
    let mut on_b = b.docs().unwrap().changes();
    let mut slow = a.docs().unwrap().changes();
    a.connect(&b.addr().to_string()).await.unwrap();
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc = a.docs().unwrap().open(id).await.unwrap();
    let mut only = doc.changes();
    let other = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let other = a.docs().unwrap().open(other).await.unwrap();
    other.put("o", 1i64).await.unwrap();
    doc.put("k", 1i64).await.unwrap();
    // One document's subscription skips the other document's change.
    let Some(ChangeEvent::Change(c)) = only.next().await else {
        panic!("a change");
    };
    assert_eq!((c.id, c.origin), (id, ChangeOrigin::Local));
    assert_eq!((c.paths, c.paths_truncated), (vec!["k".to_string()], false));
    // Local: the other document's put, then this one's (creating is no change).
    let Some(ChangeEvent::Change(c)) = on_a.next().await else {
        panic!("a change");
    };
    assert_eq!((c.id, c.origin), (other.id(), ChangeOrigin::Local));
    assert_eq!(c.paths, ["o"]);
    let Some(ChangeEvent::Change(c)) = on_a.next().await else {
        panic!("a change");
    };
    assert_eq!((c.id, c.origin), (id, ChangeOrigin::Local));
    assert_eq!(c.heads, doc.heads().unwrap());
    // On b: brought by a's sync, until b has a's heads.
    let want = doc.heads().unwrap();
    loop {
        match tokio::time::timeout(DEADLINE, on_b.next())
            .await
            .expect("an event on b")
        {
            Some(ChangeEvent::Change(c)) if c.id == other.id() => {}
            Some(ChangeEvent::Change(c)) => {
                assert_eq!((c.id, c.origin), (id, ChangeOrigin::Peer(a.id())));
                // The only change a made to it, as a path of b's copy.
                assert_eq!((c.paths, c.paths_truncated), (vec!["k".to_string()], false));
                if c.heads == want {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // A subscriber that never reads loses the oldest events, and the node goes on.
    for i in 0..(memmesh::docs::changes::CHANGES_BUFFER as i64 + 10) {
        doc.put("k", i).await.unwrap();
    }
    assert!(matches!(slow.next().await, Some(ChangeEvent::Lagged(n)) if n > 0));
    a.shutdown().await.unwrap();
    // After shutdown the subscription ends.
    tokio::time::timeout(DEADLINE, async { while on_a.next().await.is_some() {} })
        .await
        .expect("the subscription ends");
    b.shutdown().await.unwrap();
}

/// Bytes of the changes `doc` (Automerge format) holds that a peer at `heads` lacks.
fn missing_bytes(doc: &[u8], heads: &[String]) -> usize {
    let mut doc = automerge::AutoCommit::load(doc).unwrap();
    let heads: Vec<automerge::ChangeHash> = heads.iter().map(|h| h.parse().unwrap()).collect();
    doc.get_changes(&heads)
        .iter()
        .map(|c| c.raw_bytes().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_after_1000_changes_gets_less_than_twice_their_size() {
    let (da, db, dc) = (dir("back-a"), dir("back-b"), dir("back-c"));
    let a = start("a", &da).await;
    let b = start("b", &db).await;
    let mut c = start("c", &dc).await;
    for (x, y) in [(&a, &b), (&b, &c), (&a, &c)] {
        x.connect(&y.addr().to_string()).await.unwrap();
    }
    let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
    let doc_a = a.docs().unwrap().open(id).await.unwrap();
    doc_a.put("t", Value::Text(String::new())).await.unwrap();
    doc_a.put("n", Value::Counter(0)).await.unwrap();
    converged(&[&a, &b, &c], id).await;
    let c_id = c.id();
    let c_addr = c.addr();
    let c_heads = c.docs().unwrap().open(id).await.unwrap().heads().unwrap();
    c.shutdown().await.unwrap();

    // While c is away, a makes 1,000 changes (b follows them live).
    for i in 0..1000 {
        if i % 2 == 0 {
            doc_a.increment("n", 1).await.unwrap();
        } else {
            doc_a.splice_text("t", 0, 0, "x").await.unwrap();
        }
    }
    converged(&[&a, &b], id).await;
    let missing = missing_bytes(&doc_a.save().unwrap(), &c_heads);
    let sent = |n: &Node| n.docs().unwrap().sent_to(&c_id).bytes;
    let before = sent(&a) + sent(&b);

    c = builder("c")
        .data_dir(&dc)
        .listen(c_addr.to_string())
        .start()
        .await
        .unwrap();
    c.connect(&a.addr().to_string()).await.unwrap();
    c.connect(&b.addr().to_string()).await.unwrap();
    let json = converged(&[&a, &b, &c], id).await;
    assert!(json.contains(r#""n":500"#), "{json}");
    // Two more rounds of the sync loop: anything still to be sent is counted.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let catch_up = sent(&a) + sent(&b) - before;
    println!("missing changes {missing} B, sent to the returning node {catch_up} B");
    assert!(catch_up > 0, "the returning node was sent nothing");
    assert!(
        catch_up < 2 * missing as u64,
        "sent {catch_up} B to catch up on {missing} B of changes"
    );
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
    for d in [da, db, dc] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `node`'s sync status of `id` with `peer`: (in sync, last synced).
async fn status_with(node: &Node, id: DocId, peer: memmesh::NodeId) -> Option<(bool, Option<u64>)> {
    let all = node.docs().unwrap().sync_status().await.unwrap();
    let doc = all.into_iter().find(|d| d.id == id)?;
    let p = doc.peers.into_iter().find(|p| p.peer == peer)?;
    Some((p.in_sync, p.last_synced))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_states_survive_a_restart_so_an_unchanged_document_costs_no_history_filter() {
    const CHANGES: usize = 2000;
    let (da, db) = (dir("states-a"), dir("states-b"));
    let a = start("a", &da).await;
    let mut b = start("b", &db).await;
    let (a_id, b_id) = (a.id(), b.id());
    // A document with a long history, imported in one go.
    let mut doc = automerge::AutoCommit::new();
    for i in 0..CHANGES {
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "n", i as i64)
            .unwrap();
        doc.commit();
    }
    let id = a
        .docs()
        .unwrap()
        .import(&doc.save(), Reach::Cluster)
        .await
        .unwrap();
    a.connect(&b.addr().to_string()).await.unwrap();
    converged(&[&a, &b], id).await;
    assert!(
        eventually(DEADLINE, || {
            futures::executor::block_on(status_with(&b, id, a_id))
                .is_some_and(|(in_sync, at)| in_sync && at.is_some())
        })
        .await,
        "b saw a at its heads"
    );
    let synced_at = status_with(&b, id, a_id).await.unwrap().1;

    // b restarts (same data dir and address): its sync state with a is back, and so is
    // "last synced".
    let b_addr = b.addr();
    b.shutdown().await.unwrap();
    drop(b);
    b = builder("b")
        .data_dir(&db)
        .listen(b_addr.to_string())
        .start()
        .await
        .unwrap();
    assert_eq!(b.id(), b_id);
    // Saved at shutdown: the time seen above, or a later round's.
    let restored = status_with(&b, id, a_id).await.and_then(|s| s.1);
    assert!(
        restored.is_some() && restored >= synced_at,
        "last synced survived the restart: {restored:?}, before {synced_at:?}"
    );
    let before = a.docs().unwrap().sent_to(&b_id).bytes;
    b.connect(&a.addr().to_string()).await.unwrap();
    assert!(
        eventually(DEADLINE, || {
            futures::executor::block_on(status_with(&b, id, a_id)).is_some_and(|s| s.0)
                && futures::executor::block_on(status_with(&a, id, b_id)).is_some_and(|s| s.0)
        })
        .await,
        "both in sync again"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let spent =
        a.docs().unwrap().sent_to(&b_id).bytes - before + b.docs().unwrap().sent_to(&a_id).bytes;
    // A sync state started from nothing sends a Bloom filter of the whole history
    // (10 bits per change); one restored from disk, of the changes since the shared heads.
    let history_filter = (CHANGES * 10 / 8) as u64;
    println!(
        "after the restart: {spent} B exchanged (a to b {} B, b to a {} B); a history filter is {history_filter} B",
        a.docs().unwrap().sent_to(&b_id).bytes - before,
        b.docs().unwrap().sent_to(&a_id).bytes
    );
    assert!(
        spent < history_filter,
        "{spent} B exchanged after the restart for an unchanged document"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    for d in [da, db] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_from_a_restart_asks_what_changed_since_its_position_and_syncs_only_that() {
    const DOCS: usize = 60;
    const EDITED: usize = 3;
    let (da, db) = (dir("pos-a"), dir("pos-b"));
    let a = start("a", &da).await;
    let mut b = start("b", &db).await;
    let (a_id, b_id) = (a.id(), b.id());
    let mut ids = Vec::new();
    for i in 0..DOCS {
        let id = a.docs().unwrap().create(Reach::Cluster).await.unwrap();
        let doc = a.docs().unwrap().open(id).await.unwrap();
        doc.put("n", Value::Int(i as i64)).await.unwrap();
        ids.push(id);
    }
    a.connect(&b.addr().to_string()).await.unwrap();
    for id in &ids {
        converged(&[&a, &b], *id).await;
    }
    // Let the last exchanges and the periodic questions settle.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // b stops; a edits a few documents meanwhile; b comes back on the same data dir.
    let b_addr = b.addr();
    b.shutdown().await.unwrap();
    drop(b);
    for id in &ids[..EDITED] {
        let doc = a.docs().unwrap().open(*id).await.unwrap();
        doc.put("edited", Value::Bool(true)).await.unwrap();
    }
    let a_before = a.docs().unwrap().sent_to(&b_id).frames;
    b = builder("b")
        .data_dir(&db)
        .listen(b_addr.to_string())
        .start()
        .await
        .unwrap();
    assert_eq!(b.id(), b_id);
    b.connect(&a.addr().to_string()).await.unwrap();
    for id in &ids[..EDITED] {
        let json = converged(&[&a, &b], *id).await;
        assert!(json.contains("edited"), "{json}");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let frames = a.docs().unwrap().sent_to(&b_id).frames - a_before
        + b.docs().unwrap().sent_to(&a_id).frames;
    println!("after the restart: {frames} sync frames for {EDITED} edited documents of {DOCS}");
    // Offering every document again would take at least one frame each way per
    // document; asking "what changed since" costs a few frames per edited document.
    assert!(
        frames < DOCS as u64,
        "{frames} sync frames after the restart for {EDITED} edited documents of {DOCS}"
    );
    // Every document is still the same on both.
    for id in &ids {
        assert_eq!(json(&a, *id).await, json(&b, *id).await);
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    for d in [da, db] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The body of a documents frame carrying the sync message `req`.
fn sync_body(req: SyncRequest) -> Vec<u8> {
    encode_bulk(&DocsRequest::new(Op::Sync(req))).unwrap()
}

/// A document of one change by `actor`, setting `key`.
fn one_change(actor: u8, key: &str) -> automerge::AutoCommit {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new();
    doc.set_actor(automerge::ActorId::from(vec![actor; 16]));
    doc.put(automerge::ROOT, key, 1i64).unwrap();
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_messages_for_one_new_document_both_land_and_survive_a_restart() {
    // Two first messages for a document this node does not hold yet, at once (a peer's
    // push beside the answer to this node's own question, in a real cluster): the one
    // that creates the document must not drop the other's changes, nor write its log
    // over the other's.
    let da = dir("adopt-race");
    let mut a = start("a", &da).await;
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let mut landed = Vec::new();
    for k in 1..=24u8 {
        let id = DocId([k; 16]);
        let call = |actor: u8, key: &'static str| {
            let msg = message_with_everything(&mut one_change(actor, key));
            let body = sync_body(SyncRequest {
                doc: id.0,
                reach: Reach::Cluster.as_u8(),
                msg,
            });
            let raw = &raw;
            async move { (key, raw_call(raw, &body).await) }
        };
        let (x, y) = tokio::join!(call(1, "x"), call(2, "y"));
        for (key, r) in [x, y] {
            match r {
                Ok(_) => landed.push((id, key)),
                // Still being created by the other message: the sender tries again.
                Err((kind, m)) => assert_eq!(kind, ErrorKind::QuotaExceeded, "{m}"),
            }
        }
    }
    assert!(landed.len() >= 24, "{landed:?}");
    for restarted in [false, true] {
        for (id, key) in &landed {
            let json = json_of(&a, *id).await;
            assert!(
                json.contains(&format!("\"{key}\"")),
                "{id} (restarted: {restarted}): {json}"
            );
        }
        if !restarted {
            a.shutdown().await.unwrap();
            a = start("a", &da).await;
        }
    }
    a.shutdown().await.unwrap();
}
