//! Resume past 2 GiB: a 3 GiB file (3,072 chunks of 1 MiB, more than the 2,048 chunk
//! hashes a 64 KiB frame header could carry) is interrupted once more than 2 GiB has
//! been verified, then sent again: it resumes after the verified part and arrives whole.
//! Needs ~6 GiB for a moment: a tmpfs when the test may mount one (root, as in CI), else
//! the temporary directory's disk (everything is removed at the end). Run it with
//! `cargo test --release --test transfer_resume_large` where a debug build is too slow.

mod common;
#[path = "common/transfer.rs"]
mod transfer_helpers;

use std::time::Duration;

use common::*;
use memmesh::transfer::{Direction, Source};
use transfer_helpers::*;

const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_gibibyte_transfer_interrupted_past_two_gibibytes_resumes_to_a_verified_end() {
    // Warnings show why a transfer stopped (a CI run once waited here for ten minutes
    // with nothing printed).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("memmesh=warn")
        .with_test_writer()
        .try_init();
    let dir = Scratch::on_tmpfs("resume-3g", "6700m");
    let inbox = dir.join("inbox");
    let b = builder("b").inbox_dir(&inbox).start().await.unwrap();
    let a = node("a").await;
    a.connect(&b.addr().to_string()).await.unwrap();
    let src = dir.join("three.gib");
    let size = 3 * GIB;
    let expected = write_generated(&src, size, 3);

    let mut receiving = b.transfer().unwrap().progress();
    let t = a.transfer().unwrap();
    let mut sending = {
        let (t, src, to) = (t.clone(), src.clone(), b.id());
        tokio::spawn(async move { t.send(Source::Path(src), &[to]).await })
    };
    // Interrupt once more than 2.25 GiB is verified on the receiving side; a send that
    // ends first (it failed) says why.
    let cut = 2 * GIB + GIB / 4;
    let verified_at_cut = tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            tokio::select! {
                p = receiving.next() => {
                    let p = p.expect("progress");
                    if p.direction == Direction::Receiving && p.done >= cut {
                        return p.done;
                    }
                }
                ended = &mut sending => panic!("the first send ended before the cut: {ended:?}"),
            }
        }
    })
    .await
    .expect("the first attempt never got past 2.25 GiB");
    sending.abort();
    let _ = sending.await;
    assert!(verified_at_cut < size, "interrupted before the end");
    assert!(
        !inbox.join("three.gib").exists(),
        "nothing under the final name after the interruption"
    );

    // The same file again: it resumes after what was verified.
    let r = t
        .send(Source::Path(src.clone()), &[b.id()])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.bytes, size);
    assert_eq!(r.hash.as_deref(), Some(expected.as_str()));
    assert!(
        r.sent <= size - verified_at_cut + (64 << 20),
        "sent {} bytes again although {} had been verified",
        r.sent,
        verified_at_cut
    );
    let landed = inbox.join("three.gib");
    assert_eq!(std::fs::metadata(&landed).unwrap().len(), size);
    assert_eq!(hash_file(&landed), expected);
    assert!(leftovers(&inbox).is_empty(), "{:?}", leftovers(&inbox));
    std::fs::remove_file(&landed).unwrap();
    std::fs::remove_file(&src).unwrap();
}
