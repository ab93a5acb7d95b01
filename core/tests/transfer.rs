//! Verified transfer over real QUIC: bytes to several peers, a file into an inbox, an
//! empty file, a refused offer, a stale partial file, corruption on the wire, resume,
//! publish/fetch, a file changing while sent (or while fetched), cancellation by the
//! receiver, progress on both sides.

mod common;

use std::path::PathBuf;

use common::*;
use memmesh::transfer::events::Subscription;
use memmesh::transfer::{Destination, Direction, Progress, Source};
use memmesh::ErrorKind;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memmesh-transfer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_go_to_several_peers_in_parallel_with_equal_hashes() {
    let a = node("a").await;
    let mut peers = Vec::new();
    for i in 0..3 {
        let p = node(&format!("p{i}")).await;
        p.transfer()
            .unwrap()
            .on_offer(|_| async { Destination::Memory });
        a.connect(&p.addr().to_string()).await.unwrap();
        peers.push(p);
    }
    let data = pattern(3 * 1024 * 1024 + 17);
    let mut got = peers[1].transfer().unwrap().received();
    let ids: Vec<_> = peers.iter().map(|p| p.id()).collect();
    let results = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(data.clone().into()), &ids)
        .await
        .unwrap();
    let expected = format!("blake3:{}", blake3_hex(&data));
    for (r, id) in results.iter().zip(&ids) {
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.peer, *id);
        assert_eq!(r.bytes, data.len() as u64);
        assert_eq!(r.hash.as_deref(), Some(expected.as_str()));
    }
    let received = got.next().await.unwrap();
    assert_eq!(received.data.as_deref(), Some(&data[..]));
    assert_eq!(received.hash, expected);
}

/// The events waiting on `progress` for `direction`; the last must say everything is done.
fn drain(progress: &mut Subscription<Progress>, direction: Direction, total: u64) -> Vec<Progress> {
    let mut seen = Vec::new();
    while let Some(p) = progress.try_next() {
        assert!(p.done <= p.total, "{p:?}");
        if p.direction == direction {
            seen.push(p);
        }
    }
    let last = seen
        .last()
        .unwrap_or_else(|| panic!("no {direction:?} progress"));
    assert_eq!((last.done, last.total), (total, total), "{last:?}");
    seen
}

/// Waits until the partial file at `path` holds at least `bytes`, looking every
/// millisecond: a quiet machine moves over 1 GB/s on loopback, so a coarser look can
/// find a 48 MiB transfer already over.
async fn until_partial_holds(path: &std::path::Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::metadata(path)
        .map(|m| m.len() >= bytes)
        .unwrap_or(false)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never held {bytes} bytes",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn blake3_hex(data: &[u8]) -> String {
    memmesh::BlockId::of(data)
        .to_string()
        .trim_start_matches("blake3:")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_lands_in_the_inbox_whole_and_an_empty_file_too() {
    let dir = scratch("inbox");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("big.bin");
    let data = pattern(5 * 1024 * 1024 + 3);
    std::fs::write(&src, &data).unwrap();
    let empty = dir.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    for (path, content) in [(&src, &data[..]), (&empty, &b""[..])] {
        let r = a
            .transfer()
            .unwrap()
            .send(Source::Path(path.clone()), &[b.id()])
            .await
            .unwrap()
            .remove(0);
        assert!(r.error.is_none(), "{:?}", r.error);
        let landed = dir.join("inbox").join(path.file_name().unwrap());
        assert_eq!(std::fs::read(&landed).unwrap(), content);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("inbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("memmesh-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_nobody_takes_is_refused_clearly() {
    let a = node("a").await;
    let b = node("b").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(vec![1u8; 10].into()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    let err = r.error.expect("refused");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(r.hash.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_larger_than_the_memory_quota_is_refused_into_memory() {
    let a = node("a").await;
    let b = builder("b").memory_quota(1 << 20).start().await.unwrap();
    b.transfer()
        .unwrap()
        .on_offer(|_| async { Destination::Memory });
    a.connect(&b.addr().to_string()).await.unwrap();
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(vec![1u8; 2 << 20].into()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    let err = r.error.expect("refused");
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert!(err.to_string().contains("memory quota"), "{err}");
    // Within the quota it goes through.
    let r = a
        .transfer()
        .unwrap()
        .send(Source::Bytes(vec![1u8; 1000].into()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_partial_file_is_ignored_and_the_result_is_whole() {
    let dir = scratch("resume");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("file.bin");
    let data = pattern(4 * 1024 * 1024);
    std::fs::write(&src, &data).unwrap();
    // A first, complete transfer...
    let first = a
        .transfer()
        .unwrap()
        .send(Source::Path(src.clone()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(first.error.is_none(), "{:?}", first.error);
    // ...then leave a damaged partial file behind and send again.
    let dest = dir.join("inbox").join("file.bin");
    std::fs::remove_file(&dest).unwrap();
    let mut partial = data[..3 * 1024 * 1024].to_vec();
    partial[2 * 1024 * 1024 + 5] ^= 0xff;
    std::fs::write(dir.join("inbox").join("file.bin.memmesh-partial"), &partial).unwrap();
    // A sidecar from another transfer (wrong id): it is ignored and the file is whole.
    // (Resume with a matching id is covered by `transfer::verify` unit tests; an
    // end-to-end resume test after killing the sender is still to write.)
    std::fs::write(
        dir.join("inbox").join("file.bin.memmesh-chunks"),
        [0u8; 32 + 96],
    )
    .unwrap();
    let again = a
        .transfer()
        .unwrap()
        .send(Source::Path(src.clone()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(again.error.is_none(), "{:?}", again.error);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_corrupted_on_the_wire_is_caught_and_only_the_rest_is_sent_again() {
    let dir = scratch("corrupt");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("data.bin");
    let data = pattern(6 * 1024 * 1024);
    std::fs::write(&src, &data).unwrap();
    let t = a.transfer().unwrap();
    t.corrupt_chunk_once_for_tests(4);
    let mut progress = t.progress();
    let mut receiving = b.transfer().unwrap().progress();
    let r = t
        .send(Source::Path(src), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.attempts, 2, "the corrupted chunk made one more attempt");
    // The second attempt resumed at the damaged chunk: chunks 0..4 were not sent again.
    assert_eq!(r.sent, 2 * 1024 * 1024, "{r:?}");
    assert_eq!(
        std::fs::read(dir.join("inbox").join("data.bin")).unwrap(),
        data
    );
    let sent = drain(&mut progress, Direction::Sending, data.len() as u64);
    assert!(sent
        .iter()
        .all(|p| p.peer == b.id() && p.name == "data.bin"));
    // The receiver reports its side too, naming the sender.
    let received = drain(&mut receiving, Direction::Receiving, data.len() as u64);
    assert!(received
        .iter()
        .all(|p| p.peer == a.id() && p.name == "data.bin"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_transfer_resumes_without_resending_verified_chunks() {
    let dir = scratch("interrupted");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("big.bin");
    // Large enough to still be on its way well after its first MiBs have arrived (see
    // `until_partial_holds`).
    let data = pattern(160 * 1024 * 1024);
    std::fs::write(&src, &data).unwrap();
    let partial = dir.join("inbox").join("big.bin.memmesh-partial");
    let t = a.transfer().unwrap();
    let sending = {
        let t = t.clone();
        let src = src.clone();
        let id = b.id();
        tokio::spawn(async move { t.send(Source::Path(src), &[id]).await })
    };
    // Stop the sender once its first MiBs have arrived (the stream is reset).
    until_partial_holds(&partial, 8 * 1024 * 1024).await;
    sending.abort();
    let _ = sending.await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !dir.join("inbox").join("big.bin").exists(),
        "no file under its final name yet"
    );
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(
        kept >= 8 * 1024 * 1024,
        "the partial file kept {kept} bytes"
    );
    let r = t
        .send(Source::Path(src), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    // The second attempt resumed where the kept prefix ends (give or take the chunk being
    // written when the stream was reset): what had arrived was not sent again.
    assert!(
        r.sent <= data.len() as u64 - kept + 4 * 1024 * 1024,
        "sent {} again after {kept} bytes were kept",
        r.sent
    );
    assert_eq!(
        std::fs::read(dir.join("inbox").join("big.bin")).unwrap(),
        data
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_files_and_held_blocks_can_be_fetched_into_a_file_or_memory() {
    let dir = scratch("fetch");
    let a = node("a").await;
    let b = node("b").await;
    b.connect(&a.addr().to_string()).await.unwrap();
    let src = dir.join("report.bin");
    let data = pattern(3 * 1024 * 1024 + 1);
    std::fs::write(&src, &data).unwrap();
    let id = a
        .transfer()
        .unwrap()
        .publish(Source::Path(src))
        .await
        .unwrap();
    assert_eq!(id, format!("blake3:{}", blake3_hex(&data)));
    let mut serving = a.transfer().unwrap().progress();
    let mut fetching = b.transfer().unwrap().progress();
    let into = dir.join("copy.bin");
    let got = b
        .transfer()
        .unwrap()
        .fetch(&id, a.id(), Some(into.clone()))
        .await
        .unwrap();
    assert_eq!(got.hash, id);
    assert_eq!(got.path.as_deref(), Some(into.as_path()));
    assert_eq!(std::fs::read(&into).unwrap(), data);
    let total = data.len() as u64;
    assert!(drain(&mut fetching, Direction::Receiving, total)
        .iter()
        .all(|p| p.peer == a.id() && p.name == "report.bin"));
    // The source reports its last event once the fetcher has everything: wait for it.
    let served = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let p = serving.next().await.unwrap();
            if p.direction == Direction::Sending && p.done == total {
                return p;
            }
        }
    })
    .await
    .expect("the source reports the fetch it served");
    assert_eq!((served.peer, served.total), (b.id(), total));
    // A block held by a is fetchable by its id, into memory.
    let block = a
        .blocks()
        .unwrap()
        .put(vec![5u8; 1000], memmesh::Placement::Local)
        .await
        .unwrap();
    let got = b
        .transfer()
        .unwrap()
        .fetch(&block.to_string(), a.id(), None)
        .await
        .unwrap();
    assert_eq!(got.data.as_deref(), Some(&[5u8; 1000][..]));
    // Unknown and malformed ids.
    let unknown = format!("blake3:{}", "0".repeat(64));
    let err = b
        .transfer()
        .unwrap()
        .fetch(&unknown, a.id(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = b
        .transfer()
        .unwrap()
        .fetch("blake3:zz", a.id(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(a.transfer().unwrap().unpublish(&id).unwrap());
    let err = b
        .transfer()
        .unwrap()
        .fetch(&id, a.id(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changing_while_being_sent_fails_clearly() {
    let dir = scratch("changing");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("live.log");
    // Large enough to still be on its way when its first bytes have arrived (see
    // `until_partial_holds`).
    std::fs::write(&src, pattern(160 * 1024 * 1024)).unwrap();
    let partial = dir.join("inbox").join("live.log.memmesh-partial");
    let sending = {
        let t = a.transfer().unwrap();
        let (src, id) = (src.clone(), b.id());
        tokio::spawn(async move { t.send(Source::Path(src), &[id]).await })
    };
    until_partial_holds(&partial, 1).await;
    // Another writer appends to the file mid-transfer.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .unwrap()
        .write_all(b"one more line\n")
        .unwrap();
    let r = sending.await.unwrap().unwrap().remove(0);
    let err = r
        .error
        .expect("a changed file must not be reported as sent");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.message().contains("changed while it was being sent"),
        "{err}"
    );
    assert!(!dir.join("inbox").join("live.log").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_can_cancel_an_incoming_transfer() {
    let dir = scratch("cancel");
    let b = builder("b")
        .inbox_dir(dir.join("inbox"))
        .start()
        .await
        .unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    {
        let seen = seen.clone();
        let inbox = dir.join("inbox");
        b.transfer()
            .unwrap()
            .on_offer(move |offer: memmesh::transfer::Offer| {
                *seen.lock().unwrap() = Some(offer.id.clone());
                let dest = inbox.join(&offer.name);
                async move { memmesh::transfer::Destination::Path(dest) }
            });
    }
    let src = dir.join("slow.bin");
    std::fs::write(&src, pattern(64 * 1024 * 1024)).unwrap();
    let sending = {
        let t = a.transfer().unwrap();
        let (src, id) = (src.clone(), b.id());
        tokio::spawn(async move { t.send(Source::Path(src), &[id]).await })
    };
    assert!(
        eventually(std::time::Duration::from_secs(30), || seen
            .lock()
            .unwrap()
            .is_some())
        .await
    );
    let offer_id = seen.lock().unwrap().clone().unwrap();
    // The transfer can be cancelled once the handler's answer is in (a moment after the
    // handler ran), and 64 MiB into a file takes much longer than that here.
    assert!(
        eventually(std::time::Duration::from_secs(10), || b
            .transfer()
            .unwrap()
            .cancel(&offer_id)
            .unwrap())
        .await,
        "the running transfer could not be cancelled"
    );
    let r = sending.await.unwrap().unwrap().remove(0);
    let err = r.error.expect("cancelled");
    assert!(
        matches!(err.kind(), ErrorKind::Closed | ErrorKind::PeerUnavailable),
        "{err}"
    );
    assert!(!dir.join("inbox").join("slow.bin").exists());
    assert!(!b.transfer().unwrap().cancel(&offer_id).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_file_changing_during_a_fetch_fails_it_with_the_sources_reason() {
    let dir = scratch("fetch-changing");
    let a = node("a").await;
    let b = node("b").await;
    b.connect(&a.addr().to_string()).await.unwrap();
    let src = dir.join("live.bin");
    // Large enough to still be on its way at the first progress report (100 ms in): a
    // quiet machine moved 64 MiB in less than that, and the fetch was over before the
    // file changed.
    std::fs::write(&src, pattern(256 * 1024 * 1024)).unwrap();
    let id = a
        .transfer()
        .unwrap()
        .publish(Source::Path(src.clone()))
        .await
        .unwrap();
    let mut fetching = b.transfer().unwrap().progress();
    let into = dir.join("copy.bin");
    let fetch = {
        let (t, id, from, into) = (b.transfer().unwrap(), id.clone(), a.id(), into.clone());
        tokio::spawn(async move { t.fetch(&id, from, Some(into)).await })
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let p = fetching.next().await.unwrap();
            if p.direction == Direction::Receiving && p.done > 0 && p.done < p.total {
                return;
            }
        }
    })
    .await
    .expect("the fetch got going");
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .unwrap()
        .write_all(b"more")
        .unwrap();
    let err = fetch.await.unwrap().unwrap_err();
    // The source's reason, not a malformed frame.
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.message().contains("changed while it was being sent"),
        "{err}"
    );
    assert!(!into.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
