//! Files across nodes (issue 14, ADR 0018), on real nodes over real QUIC on loopback: a
//! stored file fetched through the transfer engine, puts with replicas, search on get
//! after the origin is gone, a delete that reaches a holder that was down, repair of a
//! damaged copy, refusals (too many replicas, a hold of a deleted file) and hostile
//! frames. No timing is asserted: waits poll with generous deadlines.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{builder, eventually, RawPeer};
use memmesh::files::messages::{Op, Reply as FilesReply, Request, VERSION};
use memmesh::files::FileId;
use memmesh::wire::codec::{decode_bulk, decode_frame, encode_bulk, encode_frame, FrameLimits};
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::{ErrorKind, Node, PeerState, PutOptions};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-frep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed))
        .collect()
}

fn replicas(n: u32) -> PutOptions {
    PutOptions {
        replicas: n,
        ..PutOptions::default()
    }
}

async fn start(name: &str, data: &Path, seed: Option<&Node>) -> Node {
    let mut b = builder(name).data_dir(data);
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    b.start().await.expect("start node")
}

/// Waits until every node sees every other one alive in its membership view (an advert
/// received: a connected peer not confirmed yet is listed alive too).
async fn formed(nodes: &[&Node]) {
    let n = nodes.len();
    assert!(
        eventually(Duration::from_secs(30), || nodes.iter().all(|x| x
            .peers()
            .iter()
            .filter(|p| p.state == PeerState::Alive && p.quota_free.is_some())
            .count()
            >= n - 1))
        .await,
        "cluster did not form"
    );
}

/// `n` nodes with data dirs under `base`, the first the seed.
async fn cluster(base: &Path, n: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let d = base.join(format!("n{i}"));
        let node = start(&format!("n{i}"), &d, nodes.first()).await;
        nodes.push(node);
    }
    formed(&nodes.iter().collect::<Vec<_>>()).await;
    nodes
}

async fn listed(node: &Node) -> Vec<FileId> {
    node.files()
        .unwrap()
        .list(None, 1000)
        .await
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.id)
        .collect()
}

async fn sees_down(node: &Node, gone: memmesh::NodeId) -> bool {
    eventually(Duration::from_secs(30), || {
        node.peers()
            .iter()
            .all(|p| p.id != gone || p.state == PeerState::Down)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_file_is_fetched_verified_through_the_transfer_engine() {
    let base = dir("fetch");
    let nodes = cluster(&base, 2).await;
    let data = pattern(3 * 1024 * 1024 + 5, 1);
    let id = nodes[0]
        .files()
        .unwrap()
        .put_bytes(data.clone(), PutOptions::default())
        .await
        .unwrap();
    let got = nodes[1]
        .transfer()
        .unwrap()
        .fetch(&id.to_string(), nodes[0].id(), None)
        .await
        .unwrap();
    assert_eq!(got.hash, id.to_string());
    assert_eq!(got.data.unwrap().as_ref(), &data[..]);
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_four_nodes_outlive_the_origin() {
    let base = dir("three");
    let nodes = cluster(&base, 4).await;
    let data = pattern(2 * 1024 * 1024 + 77, 2);
    let origin = &nodes[0];
    let id = origin
        .files()
        .unwrap()
        .put_bytes(
            data.clone(),
            PutOptions {
                name: Some("three.bin".into()),
                ..replicas(3)
            },
        )
        .await
        .unwrap();
    let info = origin.files().unwrap().stat(id).await.unwrap();
    assert_eq!(info.holders.len(), 3, "{:?}", info.holders);
    assert!(info.holders.contains(&origin.id()));
    let mut outsider = None;
    for n in &nodes[1..] {
        let has = listed(n).await.contains(&id);
        assert_eq!(has, info.holders.contains(&n.id()), "{}", n.id());
        if has {
            let theirs = n.files().unwrap().stat(id).await.unwrap();
            assert_eq!(theirs.name.as_deref(), Some("three.bin"));
            assert!(theirs.holders.contains(&origin.id()));
            assert!(theirs.holders.contains(&n.id()));
        } else {
            outsider = Some(n.clone());
        }
    }
    let outsider = outsider.expect("one node holds nothing");
    // The node holding nothing finds it by search (and does not become a holder).
    let got = outsider.files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    assert!(listed(&outsider).await.is_empty());
    origin.shutdown().await.unwrap();
    assert!(sees_down(&outsider, nodes[0].id()).await);
    // Without the origin: found by search again (or, once the survivors restored the
    // replica count, on the outsider itself); into a path the same way.
    let got = outsider.files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    let out = base.join("got.bin");
    outsider
        .files()
        .unwrap()
        .get_to_path(id, &out)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);
    for n in &nodes[1..] {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// The holders' pulls of a put are served from what the caller gave (the file, or the
/// bytes), not by decrypting the copy just stored; each holder still ends with a
/// verified copy in its own store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_serves_its_holders_from_its_source() {
    let base = dir("lend");
    let nodes = cluster(&base, 3).await;
    let origin = nodes[0].files().unwrap();
    let data = pattern(3 * 1024 * 1024 + 11, 9);
    let src = base.join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let id = origin.put_path(&src, replicas(3)).await.unwrap();
    assert_eq!(origin.served_from_source_for_tests(), 2);
    let small = pattern(200_000, 10);
    let small_id = origin.put_bytes(small.clone(), replicas(2)).await.unwrap();
    assert_eq!(origin.served_from_source_for_tests(), 3);
    let holder = origin
        .stat(small_id)
        .await
        .unwrap()
        .holders
        .into_iter()
        .find(|h| *h != nodes[0].id())
        .unwrap();
    nodes[0].shutdown().await.unwrap();
    for n in &nodes[1..] {
        // Read from each holder's own store: the origin is gone.
        let got = n.files().unwrap().get_bytes(id).await.unwrap();
        assert_eq!(got.as_ref(), &data[..]);
        if n.id() == holder {
            let got = n.files().unwrap().get_bytes(small_id).await.unwrap();
            assert_eq!(got.as_ref(), &small[..]);
        }
    }
    for n in &nodes[1..] {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_down_for_good_is_replaced_by_the_surviving_holder() {
    let base = dir("restore");
    let nodes = cluster(&base, 3).await;
    let data = pattern(500_000, 6);
    let id = nodes[0]
        .files()
        .unwrap()
        .put_bytes(data.clone(), replicas(2))
        .await
        .unwrap();
    let holders = nodes[0].files().unwrap().stat(id).await.unwrap().holders;
    assert_eq!(holders.len(), 2);
    let (lost, spare): (Vec<&Node>, Vec<&Node>) =
        nodes[1..].iter().partition(|n| holders.contains(&n.id()));
    let (lost, spare) = (lost[0], spare[0]);
    assert!(listed(spare).await.is_empty());
    let lost_id = lost.id();
    lost.shutdown().await.unwrap();
    assert!(sees_down(&nodes[0], lost_id).await);
    // The spare lists it once its copy is durable; the surviving holder records it when
    // the spare's answer arrives.
    let mut restored = false;
    for _ in 0..600 {
        let recorded = nodes[0].files().unwrap().stat(id).await.unwrap().holders;
        if listed(spare).await.contains(&id) && recorded.contains(&spare.id()) {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        restored,
        "the replica count was not restored on the spare node"
    );
    let info = nodes[0].files().unwrap().stat(id).await.unwrap();
    assert!(info.holders.contains(&spare.id()), "{:?}", info.holders);
    let theirs = spare.files().unwrap().stat(id).await.unwrap();
    assert!(
        theirs.holders.contains(&nodes[0].id()),
        "{:?}",
        theirs.holders
    );
    assert_eq!(
        spare.files().unwrap().get_bytes(id).await.unwrap().as_ref(),
        &data[..]
    );
    nodes[0].shutdown().await.unwrap();
    spare.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_replicas_than_live_members_is_a_clear_error_and_stores_nothing() {
    let base = dir("toomany");
    let nodes = cluster(&base, 2).await;
    let files = nodes[0].files().unwrap();
    let e = files
        .put_bytes(&b"not enough nodes"[..], replicas(3))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerUnavailable, "{e}");
    assert!(e.message().contains("replicas 3 asked, but only 2"), "{e}");
    assert_eq!(files.stats().unwrap().files, 0);
    let e = files
        .put_bytes(&b"x"[..], replicas(1000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_reaches_a_holder_that_was_down_and_the_file_stays_gone() {
    let base = dir("delete");
    let nodes = cluster(&base, 3).await;
    let data = pattern(100_000, 3);
    let id = nodes[0]
        .files()
        .unwrap()
        .put_bytes(data.clone(), replicas(3))
        .await
        .unwrap();
    for n in &nodes {
        assert!(listed(n).await.contains(&id));
    }
    // The third holder goes down, keeping its data dir.
    let down_id = nodes[2].id();
    nodes[2].shutdown().await.unwrap();
    assert!(sees_down(&nodes[0], down_id).await);
    nodes[0].files().unwrap().delete(id).await.unwrap();
    assert!(listed(&nodes[0]).await.is_empty());
    assert!(listed(&nodes[1]).await.is_empty());
    // Back on the same data dir: the delete reaches it.
    let back = start("n2", &base.join("n2"), Some(&nodes[0])).await;
    assert_eq!(back.id(), down_id);
    let mut gone = false;
    for _ in 0..600 {
        if listed(&back).await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the restarted holder still lists the deleted file");
    // And it stays gone: not by search from another node, not on the restarted one.
    formed(&[&nodes[0], &nodes[1], &back]).await;
    for n in [&nodes[1], &back, &nodes[0]] {
        let e = n.files().unwrap().get_bytes(id).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
    assert!(listed(&back).await.is_empty());
    for n in [&nodes[0], &nodes[1], &back] {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_is_repaired_from_a_replica_never_returned() {
    let base = dir("repair");
    let nodes = cluster(&base, 2).await;
    let data = pattern(300_000, 4);
    let id = nodes[0]
        .files()
        .unwrap()
        .put_bytes(
            data.clone(),
            PutOptions {
                name: Some("r.bin".into()),
                ..replicas(2)
            },
        )
        .await
        .unwrap();
    let hex = id.to_string().trim_start_matches("blake3:").to_string();
    let content = base.join("n1").join("files").join(&hex);
    let mut bytes = std::fs::read(&content).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&content, &bytes).unwrap();
    let got = nodes[1].files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    // Repaired in place: read again locally, still right, name kept.
    let again = nodes[1].files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(again.as_ref(), &data[..]);
    let info = nodes[1].files().unwrap().stat(id).await.unwrap();
    assert_eq!(info.name.as_deref(), Some("r.bin"));
    // With no good copy anywhere: Corrupted, never wrong bytes.
    for n in 0..2 {
        let content = base.join(format!("n{n}")).join("files").join(&hex);
        let mut bytes = std::fs::read(&content).unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(&content, &bytes).unwrap();
    }
    let e = nodes[1].files().unwrap().get_bytes(id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// Flips a byte in the middle of `id`'s sealed contents in a node's value log, found by its
/// record's frame (the id, then the length; the node may be running).
fn flip_logged_byte(data: &Path, id: FileId) -> bool {
    for segment in std::fs::read_dir(data.join("files-log")).unwrap() {
        let path = segment.unwrap().path();
        let mut log = std::fs::read(&path).unwrap();
        let Some(at) = log.windows(32).position(|w| w == &id.digest()[..]) else {
            continue;
        };
        let len = u32::from_le_bytes(log[at + 32..at + 36].try_into().unwrap()) as usize;
        log[at + 36 + len / 2] ^= 0x40;
        std::fs::write(&path, &log).unwrap();
        return true;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_small_file_in_the_value_log_is_repaired_from_a_replica() {
    let base = dir("repair-small");
    let nodes = cluster(&base, 2).await;
    let data = pattern(4096, 5);
    let id = nodes[0]
        .files()
        .unwrap()
        .put_bytes(data.clone(), replicas(2))
        .await
        .unwrap();
    // The origin appended it to its value log (the replica holds a content file).
    assert!(flip_logged_byte(&base.join("n0"), id), "n0 logged it");
    let got = nodes[0].files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    let again = nodes[0].files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(again.as_ref(), &data[..]);
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_room_is_not_asked_once_its_advert_says_so() {
    let base = dir("room");
    let seed = start("n0", &base.join("n0"), None).await;
    let small = builder("n1")
        .data_dir(base.join("n1"))
        .disk_quota(10_000)
        .bootstrap([seed.addr().to_string()])
        .start()
        .await
        .unwrap();
    formed(&[&seed, &small]).await;
    let data = pattern(100_000, 7);
    let files = seed.files().unwrap();
    // Until its advert arrives the small node is asked and refuses (QuotaExceeded); once
    // it advertises its free disk, the put fails before asking anyone.
    let mut said = String::new();
    for _ in 0..300 {
        let e = files
            .put_bytes(data.clone(), replicas(2))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PeerUnavailable, "{e}");
        said = e.message().to_string();
        if said.contains("replicas 2 asked, but only 1 node(s)") {
            break;
        }
        assert!(said.contains("stored on 1 of 2"), "{said}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        said.contains("replicas 2 asked, but only 1 node(s)"),
        "{said}"
    );
    assert!(listed(&small).await.is_empty());
    // Small files still fit.
    let id = files
        .put_bytes(pattern(1_000, 8), replicas(2))
        .await
        .unwrap();
    assert!(listed(&small).await.contains(&id));
    seed.shutdown().await.unwrap();
    small.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_of_a_deleted_file_is_refused() {
    let base = dir("refuse");
    let nodes = cluster(&base, 3).await;
    let data = pattern(10_000, 5);
    let files = nodes[0].files().unwrap();
    let id = files.put_bytes(data.clone(), replicas(3)).await.unwrap();
    files.delete(id).await.unwrap();
    for n in &nodes {
        assert!(listed(n).await.is_empty());
    }
    // The origin forgot its tombstone once both holders applied it; they keep theirs.
    let e = files
        .put_bytes(data.clone(), replicas(2))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerUnavailable, "{e}");
    assert!(e.message().contains("stored on 1 of 2"), "{e}");
    assert!(e.message().contains("was deleted"), "{e}");
    assert!(listed(&nodes[1]).await.is_empty());
    assert!(listed(&nodes[2]).await.is_empty());
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}

fn limits() -> FrameLimits {
    FrameLimits::with_body(1 << 20)
}

/// Sends one files frame with `body` and returns the error kind and message, or the
/// reply.
async fn raw_call(raw: &RawPeer, body: &[u8]) -> Result<FilesReply, (String, String)> {
    let frame = encode_frame(&StreamHeader::new(Service::Files), body, limits()).unwrap();
    let (mut send, mut recv) = raw.conn.open_bi().await.unwrap();
    send.write_all(&frame).await.unwrap();
    let _ = send.finish();
    let bytes = recv.read_to_end(1 << 20).await.unwrap();
    let reply = decode_frame::<Reply>(&bytes, limits()).unwrap();
    match reply.header {
        Reply::Ok => Ok(decode_bulk(&reply.body).unwrap()),
        Reply::Err { kind, message } => Err((kind, message)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_frames_get_clean_errors() {
    let base = dir("hostile");
    let node = start("h", &base, None).await;
    let raw = RawPeer::connect(node.addr(), None).await.unwrap();
    let bad = |op: Op, version: u8| encode_bulk(&Request { version, op }).unwrap();
    // Unknown version.
    let (kind, msg) = raw_call(&raw, &bad(Op::Has { id: [1; 32] }, VERSION + 1))
        .await
        .unwrap_err();
    assert_eq!(kind, "Unsupported", "{msg}");
    assert!(msg.contains("version"), "{msg}");
    // Garbage and a truncated id: malformed, as the codec says of any frame.
    let (kind, _) = raw_call(&raw, b"\x01\x07\xff\xff\xff").await.unwrap_err();
    assert_eq!(kind, "Corrupted");
    let (kind, _) = raw_call(&raw, &[1, 1, 3, 3, 3]).await.unwrap_err();
    assert_eq!(kind, "Corrupted");
    // A huge size, from a peer that is not even a member.
    let huge = Op::Hold {
        id: [2; 32],
        size: u64::MAX,
        name: None,
        content_type: None,
        holders: vec![],
    };
    let (kind, msg) = raw_call(&raw, &bad(huge, VERSION)).await.unwrap_err();
    assert_eq!(kind, "InvalidInput", "{msg}");
    let small = Op::Hold {
        id: [2; 32],
        size: 10,
        name: None,
        content_type: None,
        holders: vec![],
    };
    let (kind, msg) = raw_call(&raw, &bad(small, VERSION)).await.unwrap_err();
    assert_eq!(kind, "Unauthorized", "{msg}");
    let forget = Op::Forget {
        id: [2; 32],
        tombstone: true,
    };
    let (kind, msg) = raw_call(&raw, &bad(forget, VERSION)).await.unwrap_err();
    assert_eq!(kind, "Unauthorized", "{msg}");
    // A well-formed question gets its answer.
    let has = raw_call(&raw, &bad(Op::Has { id: [3; 32] }, VERSION)).await;
    assert_eq!(has, Ok(FilesReply::No));
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_with_replicas_right_after_joining_waits_for_the_peer_to_be_admitted() {
    let base = dir("joined");
    let a = start("a", &base.join("a"), None).await;
    let b = start("b", &base.join("b"), None).await;
    // No wait for membership: `b` is connected to `a` but not yet admitted when it puts.
    b.connect(&a.addr().to_string()).await.unwrap();
    let data = pattern(64 * 1024 + 3, 9);
    let id = b
        .files()
        .unwrap()
        .put_bytes(data.clone(), replicas(2))
        .await
        .expect("a put right after joining reaches the peer");
    let stat = b.files().unwrap().stat(id).await.unwrap();
    assert_eq!(stat.holders.len(), 2, "{:?}", stat.holders);
    assert!(stat.holders.contains(&a.id()));
    assert_eq!(
        a.files().unwrap().get_bytes(id).await.unwrap().as_ref(),
        &data[..]
    );
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

/// Every progress event waiting on `events`, as (peer, direction, done, total); each
/// names the file `id`.
fn drained(
    events: &mut memmesh::transfer::events::Subscription<memmesh::transfer::Progress>,
    id: FileId,
) -> Vec<(memmesh::NodeId, memmesh::transfer::Direction, u64, u64)> {
    let mut got = Vec::new();
    let mut measured = false;
    while let Some(p) = events.try_next() {
        assert_eq!(p.name, id.to_string());
        assert!(p.done <= p.total, "{p:?}");
        // The transfer engine's own events carry the rate measured.
        measured |= p.rate > 0.0;
        got.push((p.peer, p.direction, p.done, p.total));
    }
    assert!(got.is_empty() || measured, "only closing events: {got:?}");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_with_replicas_and_a_get_from_another_node_report_progress() {
    use memmesh::transfer::Direction::{Receiving, Sending};
    let base = dir("progress");
    let nodes = cluster(&base, 4).await;
    let size = 3 * 1024 * 1024 + 5;
    let data = pattern(size, 4);
    let origin = &nodes[0];
    let mut sent = origin.files().unwrap().progress();
    let mut pulled: Vec<_> = nodes[1..]
        .iter()
        .map(|n| n.files().unwrap().progress())
        .collect();
    let id = origin
        .files()
        .unwrap()
        .put_bytes(data.clone(), replicas(3))
        .await
        .unwrap();
    let holders: Vec<memmesh::NodeId> = origin
        .files()
        .unwrap()
        .stat(id)
        .await
        .unwrap()
        .holders
        .into_iter()
        .filter(|h| *h != origin.id())
        .collect();
    assert_eq!(holders.len(), 2, "{holders:?}");
    // The origin: each holder's pull, sent, ending with everything done.
    let events = drained(&mut sent, id);
    for h in &holders {
        let mine: Vec<_> = events.iter().filter(|e| e.0 == *h).collect();
        assert!(
            mine.iter().all(|e| e.1 == Sending && e.3 == size as u64),
            "{mine:?}"
        );
        assert_eq!(mine.last().map(|e| e.2), Some(size as u64), "{mine:?}");
    }
    // Each holder: its pull from the origin, received; the outsider: nothing.
    let mut outsider = None;
    for (n, events) in nodes[1..].iter().zip(pulled.iter_mut()) {
        let events = drained(events, id);
        if holders.contains(&n.id()) {
            assert!(!events.is_empty());
            assert!(
                events
                    .iter()
                    .all(|e| e.0 == origin.id() && e.1 == Receiving && e.3 == size as u64),
                "{events:?}"
            );
            assert_eq!(events.last().map(|e| e.2), Some(size as u64));
        } else {
            assert!(events.is_empty(), "{events:?}");
            outsider = Some(n.clone());
        }
    }
    // A get from the node holding nothing: received from one holder, to the end.
    let outsider = outsider.expect("one node holds nothing");
    let mut got_events = outsider.files().unwrap().progress();
    let got = outsider.files().unwrap().get_bytes(id).await.unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    let events = drained(&mut got_events, id);
    let last = events.last().copied().expect("progress of the get");
    assert_eq!(
        (last.1, last.2, last.3),
        (Receiving, size as u64, size as u64)
    );
    assert!(
        last.0 == origin.id() || holders.contains(&last.0),
        "{last:?}"
    );
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&base);
}
