//! The transfer service against hostile members and crowded inboxes, over real QUIC:
//! two transfers with the same name, budgets of concurrent transfers per peer and per
//! node, silent offers (no file descriptor, an idle timeout), memory receives charged to
//! the memory quota, chunk sizes out of bounds, stale partial files, a receiver or a
//! fetcher that stops answering, and timeouts of `Duration::MAX`.

mod common;
#[path = "common/transfer.rs"]
mod transfer_helpers;

use std::time::Duration;

use common::*;
use memmesh::transfer::limits::{
    MAX_INCOMING_PER_NODE, MAX_INCOMING_PER_PEER, MAX_RECEIVE_CHUNK_SIZE, MAX_SERVED_PER_PEER,
    MIN_RECEIVE_CHUNK_SIZE, PARTIAL_MAX_AGE,
};
use memmesh::transfer::{Destination, Source};
use memmesh::wire::codec::{encode_frame, FrameLimits};
use memmesh::wire::io::read_frame;
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::ErrorKind;
use transfer_helpers::*;

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_transfers_with_the_same_name_arrive_whole_and_apart() {
    let dir = Scratch::new("same-name");
    let inbox = dir.join("inbox");
    let b = builder("b").inbox_dir(&inbox).start().await.unwrap();
    let a1 = node("a1").await;
    let a2 = node("a2").await;
    for a in [&a1, &a2] {
        a.connect(&b.addr().to_string()).await.unwrap();
    }
    // Two different files with the same name, from two senders at once.
    std::fs::create_dir_all(dir.join("one")).unwrap();
    std::fs::create_dir_all(dir.join("two")).unwrap();
    let src1 = dir.join("one").join("same.bin");
    let src2 = dir.join("two").join("same.bin");
    let h1 = write_generated(&src1, 40 * MIB, 1);
    let h2 = write_generated(&src2, 40 * MIB + 5, 2);
    let mut received = b.transfer().unwrap().received();
    let (t1, t2) = (a1.transfer().unwrap(), a2.transfer().unwrap());
    let to = [b.id()];
    let (r1, r2) = tokio::join!(
        t1.send(Source::Path(src1), &to),
        t2.send(Source::Path(src2), &to)
    );
    let (r1, r2) = (r1.unwrap().remove(0), r2.unwrap().remove(0));
    assert!(r1.error.is_none(), "{:?}", r1.error);
    assert!(r2.error.is_none(), "{:?}", r2.error);
    assert_eq!(r1.hash.as_deref(), Some(h1.as_str()));
    assert_eq!(r2.hash.as_deref(), Some(h2.as_str()));
    // Each delivered file hashes to the hash reported for it, and they are two files.
    let mut paths = Vec::new();
    for _ in 0..2 {
        let got = tokio::time::timeout(Duration::from_secs(30), received.next())
            .await
            .expect("delivered")
            .unwrap();
        let path = got.path.clone().expect("a file");
        assert_eq!(hash_file(&path), got.hash, "{path:?}");
        assert!(got.hash == h1 || got.hash == h2);
        paths.push(path);
    }
    assert_ne!(paths[0], paths[1]);
    assert!(paths.iter().all(|p| p.parent() == Some(inbox.as_path())));
    let mut names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["same (1).bin", "same.bin"]);
    assert!(leftovers(&inbox).is_empty(), "{:?}", leftovers(&inbox));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_file_is_never_overwritten_by_a_later_one() {
    let dir = Scratch::new("no-clobber");
    let inbox = dir.join("inbox");
    let b = builder("b").inbox_dir(&inbox).start().await.unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let t = a.transfer().unwrap();
    for (i, size) in [(0u64, 3 * MIB), (1, 2 * MIB), (2, 5)] {
        let src = dir.join(format!("v{i}")).join("report.txt");
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        write_generated(&src, size, i);
        let r = t.send(Source::Path(src.clone()), &[b.id()]).await.unwrap();
        assert!(r[0].error.is_none(), "{:?}", r[0].error);
    }
    for (name, size) in [
        ("report.txt", 3 * MIB),
        ("report (1).txt", 2 * MIB),
        ("report (2).txt", 5),
    ] {
        assert_eq!(std::fs::metadata(inbox.join(name)).unwrap().len(), size);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_part_damaged_on_disk_between_attempts_is_caught_before_delivery() {
    let dir = Scratch::new("damaged");
    let inbox = dir.join("inbox");
    let b = builder("b").inbox_dir(&inbox).start().await.unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("big.bin");
    // Large enough that the rest cannot arrive between the receiver passing 40 MiB and
    // the send being aborted (with 64 MiB it sometimes did, and the test then found the
    // file delivered instead of a partial).
    let expected = write_generated(&src, 256 * MIB, 7);
    let mut receiving = b.transfer().unwrap().progress();
    let t = a.transfer().unwrap();
    let sending = {
        let (t, src, to) = (t.clone(), src.clone(), b.id());
        tokio::spawn(async move { t.send(Source::Path(src), &[to]).await })
    };
    // Interrupted past the first checkpoint (every 32 MiB).
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let p = receiving.next().await.unwrap();
            if p.direction == memmesh::transfer::Direction::Receiving && p.done >= 40 * MIB {
                return;
            }
        }
    })
    .await
    .expect("the first attempt got past 40 MiB");
    sending.abort();
    let _ = sending.await;
    let partial = inbox.join("big.bin.memmesh-partial");
    let state = inbox.join("big.bin.memmesh-state");
    assert!(eventually(Duration::from_secs(10), || state.exists()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Someone damages the verified part on disk.
    {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&partial)
            .unwrap();
        let mut byte = [0u8; 1];
        f.seek(SeekFrom::Start(1000)).unwrap();
        f.read_exact(&mut byte).unwrap();
        f.seek(SeekFrom::Start(1000)).unwrap();
        f.write_all(&[byte[0] ^ 0x40]).unwrap();
    }
    let r = t
        .send(Source::Path(src.clone()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        r.attempts, 2,
        "the damage was caught, then everything sent again"
    );
    assert_eq!(r.hash.as_deref(), Some(expected.as_str()));
    assert_eq!(hash_file(&inbox.join("big.bin")), expected);
    assert!(leftovers(&inbox).is_empty(), "{:?}", leftovers(&inbox));
}

/// Whether `answer` is a refusal of `kind` whose message says `why`.
fn refused(answer: &Answered, kind: ErrorKind, why: &str) -> bool {
    matches!(answer, Answered::Refused(k, m) if *k == kind && m.contains(why))
}

/// `n` raw members of `b` (each one authenticated peer).
async fn raw_peers(b: &memmesh::Node, n: usize) -> Vec<RawPeer> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(RawPeer::connect(b.addr(), None).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_offers_beyond_the_per_peer_and_per_node_budgets_are_refused() {
    let dir = Scratch::new("budgets");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let peers = raw_peers(&b, MAX_INCOMING_PER_NODE / MAX_INCOMING_PER_PEER + 1).await;
    let mut open = Vec::new();
    // One peer: its budget, then a refusal.
    for i in 0..MAX_INCOMING_PER_PEER {
        let (s, r, answer) = raw_offer(&peers[0], offer(&format!("f{i}"), MIB, 1 << 20)).await;
        assert_eq!(answer, Answered::Accepted, "offer {i}");
        open.push((s, r));
    }
    let (_s, _r, answer) = raw_offer(&peers[0], offer("one-more", MIB, 1 << 20)).await;
    assert!(
        refused(&answer, ErrorKind::QuotaExceeded, "per peer"),
        "{answer:?}"
    );
    // The others fill the node's budget; then even a fresh peer is refused.
    let mut accepted = MAX_INCOMING_PER_PEER;
    'fill: for p in &peers[1..] {
        for i in 0..MAX_INCOMING_PER_PEER {
            if accepted == MAX_INCOMING_PER_NODE {
                break 'fill;
            }
            let (s, r, answer) = raw_offer(p, offer(&format!("g{i}"), MIB, 1 << 20)).await;
            assert_eq!(answer, Answered::Accepted);
            open.push((s, r));
            accepted += 1;
        }
    }
    let fresh = RawPeer::connect(b.addr(), None).await.unwrap();
    let (_s, _r, answer) = raw_offer(&fresh, offer("late", MIB, 1 << 20)).await;
    assert!(
        refused(&answer, ErrorKind::QuotaExceeded, "this node"),
        "{answer:?}"
    );
    // A real sender hears the same, as QuotaExceeded.
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(vec![1u8; 10].into()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        r.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::QuotaExceeded)
    );
    // Closing the streams gives the budget back.
    drop(open);
    drop(peers);
    let mut ok = false;
    for _ in 0..100 {
        let r = a
            .transfer()
            .unwrap()
            .send(Source::Bytes(vec![2u8; 10].into()), &[b.id()])
            .await
            .unwrap()
            .remove(0);
        if r.error.is_none() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "the budget never came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_offers_hold_no_file_descriptor_and_time_out() {
    let dir = Scratch::new("silent");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    b.transfer()
        .unwrap()
        .set_idle_timeout_for_tests(Duration::from_secs(2));
    let peer = RawPeer::connect(b.addr(), None).await.unwrap();
    // Warm up (the first offer creates the inbox and starts what a transfer needs).
    let warm = RawPeer::connect(b.addr(), None).await.unwrap();
    let (s, r, answer) = raw_offer(&warm, offer("warm", MIB, 1 << 20)).await;
    assert_eq!(answer, Answered::Accepted);
    drop((s, r));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, fds_before) = threads_and_fds();
    let mut open = Vec::new();
    for i in 0..MAX_INCOMING_PER_PEER {
        let (s, r, answer) = raw_offer(&peer, offer(&format!("quiet{i}"), 10 * MIB, 1 << 20)).await;
        assert_eq!(answer, Answered::Accepted);
        open.push((s, r));
    }
    let (_, fds_during) = threads_and_fds();
    assert!(
        fds_during < fds_before + MAX_INCOMING_PER_PEER,
        "{} silent offers took {} file descriptors",
        MAX_INCOMING_PER_PEER,
        fds_during.saturating_sub(fds_before)
    );
    // Each is dropped by the receiver once idle, with a Timeout reply.
    for (_s, mut r) in open {
        let reply = tokio::time::timeout(
            Duration::from_secs(30),
            read_frame::<Reply>(&mut r, FrameLimits::with_body(1 << 20)),
        )
        .await
        .expect("the receiver drops an idle transfer")
        .expect("with a reply");
        let err = reply.header.into_result().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    }
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_receives_are_charged_to_the_memory_quota() {
    let b = builder("b").memory_quota(8 * MIB).start().await.unwrap();
    b.transfer()
        .unwrap()
        .on_offer(|_| async { Destination::Memory });
    let peer = RawPeer::connect(b.addr(), None).await.unwrap();
    // Two silent offers of 5 MiB each: the second does not fit beside the first.
    let (s1, r1, first) = raw_offer(&peer, offer("m1", 5 * MIB, 1 << 20)).await;
    assert_eq!(first, Answered::Accepted);
    let (_s, _r, second) = raw_offer(&peer, offer("m2", 5 * MIB, 1 << 20)).await;
    assert!(
        matches!(second, Answered::Refused(ErrorKind::QuotaExceeded, _)),
        "{second:?}"
    );
    // Nor does a block.
    let err = b
        .blocks()
        .unwrap()
        .put(vec![0u8; 4 << 20], memmesh::Placement::Local)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    drop((s1, r1));
    // Once the first is gone, a real transfer fits, and its data is charged for as long
    // as it is held.
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let mut received = b.transfer().unwrap().received();
    let data = vec![9u8; 5 << 20];
    let mut delivered = None;
    for _ in 0..100 {
        let r = a
            .transfer()
            .unwrap()
            .send(Source::Bytes(data.clone().into()), &[b.id()])
            .await
            .unwrap()
            .remove(0);
        if r.error.is_none() {
            delivered = Some(received.next().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = delivered.expect("the quota was never given back");
    assert_eq!(delivered.data.as_deref(), Some(&data[..]));
    let err = b
        .blocks()
        .unwrap()
        .put(vec![0u8; 4 << 20], memmesh::Placement::Local)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::QuotaExceeded,
        "the received bytes are charged"
    );
    drop(delivered);
    drop(received);
    b.blocks()
        .unwrap()
        .put(vec![0u8; 4 << 20], memmesh::Placement::Local)
        .await
        .expect("released with the bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_sizes_outside_the_receiving_bounds_are_refused() {
    let dir = Scratch::new("chunks");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let peer = RawPeer::connect(b.addr(), None).await.unwrap();
    for chunk in [1024, MIN_RECEIVE_CHUNK_SIZE / 2, MAX_RECEIVE_CHUNK_SIZE * 2] {
        let (_s, _r, answer) = raw_offer(&peer, offer("c.bin", 100 * MIB, chunk)).await;
        assert!(
            refused(&answer, ErrorKind::InvalidInput, "chunk size"),
            "{chunk}: {answer:?}"
        );
    }
    for chunk in [MIN_RECEIVE_CHUNK_SIZE, MAX_RECEIVE_CHUNK_SIZE] {
        let (_s, _r, answer) = raw_offer(&peer, offer("c.bin", 100 * MIB, chunk)).await;
        assert_eq!(answer, Answered::Accepted, "{chunk}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_partial_files_are_removed_and_fresh_ones_kept() {
    let dir = Scratch::new("stale");
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let old = std::time::SystemTime::now() - PARTIAL_MAX_AGE - Duration::from_secs(3600);
    let stale = [
        inbox.join("old.bin.memmesh-partial"),
        inbox.join("old.bin.memmesh-state"),
        inbox.join("legacy.bin.memmesh-chunks"),
    ];
    for p in &stale {
        std::fs::write(p, b"left by a transfer that never finished").unwrap();
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let fresh = inbox.join("new.bin.memmesh-partial");
    std::fs::write(&fresh, b"still being resumed").unwrap();
    let unrelated = inbox.join("old-notes.txt");
    std::fs::write(&unrelated, b"not ours").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&unrelated)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let b = builder("b").inbox_dir(&inbox).start().await.unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(vec![3u8; 1000].into()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(
        eventually(Duration::from_secs(10), || stale
            .iter()
            .all(|p| !p.exists()))
        .await,
        "stale partial files are still there"
    );
    assert!(fresh.exists());
    assert!(unrelated.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_does_not_hang_the_sender() {
    let a = builder("a")
        .request_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    a.transfer()
        .unwrap()
        .set_idle_timeout_for_tests(Duration::from_secs(1));
    let silent = RawPeer::connect(a.addr(), None).await.unwrap();
    // The raw peer takes the stream and never answers.
    let held = tokio::spawn({
        let conn = silent.conn.clone();
        async move {
            let mut streams = Vec::new();
            while let Ok(s) = conn.accept_bi().await {
                streams.push(s);
            }
        }
    });
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        a.transfer()
            .unwrap()
            .send(Source::Bytes(vec![1u8; 100].into()), &[silent.id]),
    )
    .await
    .expect("send gave up on a silent receiver")
    .unwrap()
    .remove(0);
    assert_eq!(
        r.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::Timeout),
        "{:?}",
        r.error
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_where_the_answer_belongs_is_reported_as_it_is_and_not_retried() {
    let a = node("a").await;
    let receiver = RawPeer::connect(a.addr(), None).await.unwrap();
    // The receiver replies `Closed` (a cancel) in place of its answer, on every stream.
    let answering = tokio::spawn({
        let conn = receiver.conn.clone();
        async move {
            let mut streams = 0u32;
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                streams += 1;
                let limits = FrameLimits::with_body(1 << 20);
                let _ = memmesh::wire::io::read_raw_frame_opt(&mut recv, limits).await;
                let reply = Reply::Err {
                    kind: "Closed".into(),
                    message: "the receiver cancelled the transfer".into(),
                };
                let _ = send
                    .write_all(&encode_frame(&reply, &[], limits).unwrap())
                    .await;
                let _ = send.finish();
                tokio::spawn(async move {
                    let _ = recv.read_to_end(1 << 20).await;
                    drop(send);
                });
            }
            streams
        }
    });
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(vec![1u8; 100].into()), &[receiver.id])
        .await
        .unwrap()
        .remove(0);
    let err = r.error.expect("refused");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert_eq!(
        r.attempts, 1,
        "a cancel is not corruption: no second attempt"
    );
    receiver.conn.close(0u32.into(), b"");
    answering.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_that_stops_answering_gives_its_slot_back() {
    let a = node("a").await;
    a.transfer()
        .unwrap()
        .set_idle_timeout_for_tests(Duration::from_secs(1));
    let id = a
        .transfer()
        .unwrap()
        .publish(Source::Bytes(vec![7u8; 3 << 20].into()))
        .await
        .unwrap();
    let digest: [u8; 32] = data_encoding_hex(&id);
    let peer = RawPeer::connect(a.addr(), None).await.unwrap();
    let fetch = || async {
        let (mut send, mut recv) = peer.conn.open_bi().await.unwrap();
        let frame = encode_frame(
            &StreamHeader::new(Service::Fetch { id: digest }),
            &[],
            FrameLimits::with_body(1 << 20),
        )
        .unwrap();
        send.write_all(&frame).await.unwrap();
        let first = read_frame::<Reply>(&mut recv, FrameLimits::with_body(16 << 20))
            .await
            .unwrap();
        (send, recv, first.header.into_result())
    };
    let mut held = Vec::new();
    for _ in 0..MAX_SERVED_PER_PEER {
        let (s, r, first) = fetch().await;
        first.unwrap();
        held.push((s, r));
    }
    let (_s, _r, refused) = fetch().await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::QuotaExceeded);
    // The fetcher never says which chunks it has: the source gives up and the slots
    // come back, while the streams stay open.
    let mut served = false;
    for _ in 0..200 {
        let (_s, _r, first) = fetch().await;
        if first.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the slots never came back");
    drop(held);
}

fn data_encoding_hex(id: &str) -> [u8; 32] {
    let hex = id.trim_start_matches("blake3:");
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_of_duration_max_do_not_panic_a_transfer() {
    // Configured timeouts are at most a day (checked at start); the longest allowed must
    // not overflow anything a transfer adds to it.
    let day = Duration::from_secs(86_400);
    let dir = Scratch::new("max");
    let b = builder("b")
        .request_timeout(day)
        .connect_timeout(day)
        .start()
        .await
        .unwrap();
    let inbox = dir.join("inbox");
    b.transfer()
        .unwrap()
        .on_offer(move |o: memmesh::transfer::Offer| {
            let p = inbox.join(o.name);
            async move { Destination::Path(p) }
        });
    let a = builder("a")
        .request_timeout(day)
        .connect_timeout(day)
        .start()
        .await
        .unwrap();
    a.connect(&b.addr().to_string()).await.unwrap();
    let data = vec![4u8; 3 << 20];
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(data.clone().into()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.hash.as_deref(), Some(hash_bytes(&data).as_str()));
    let id = a
        .transfer()
        .unwrap()
        .publish(Source::Bytes(data.clone().into()))
        .await
        .unwrap();
    let got = b
        .transfer()
        .unwrap()
        .fetch(&id, a.id(), None)
        .await
        .unwrap();
    assert_eq!(got.data.as_deref(), Some(&data[..]));
}
