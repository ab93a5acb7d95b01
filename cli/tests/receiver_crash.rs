//! A receiving process SIGKILLed at random points of a file transfer, again and again
//! (issue 12, "durable means durable"): after each restart on the same data dir and address,
//! the sender's next attempt resumes from what the receiver had verified and saved, nothing
//! ever appears under the final name before the whole file is verified, and the file that
//! finally arrives hashes to the id that was sent. The kill points come from a seed that is
//! printed (replay with `MEMMESH_CRASH_SEED`).

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memmesh::transfer::Source;
use memmesh::Node;

const SIZE: usize = 256 * 1024 * 1024;
const KILLS: usize = 3;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memmesh-cli-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free UDP port on loopback (the receiver is restarted on the same address).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `memmesh node` as the receiver and waits for its banner; its output is drained
/// by a thread so it never blocks on a full pipe.
fn spawn_receiver(listen: &str, data_dir: &Path, inbox: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memmesh"))
        .args(["node", "--name", "receiver", "--listen", listen])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--inbox")
        .arg(inbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the CLI receiver");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    out.read_line(&mut banner).expect("the banner");
    assert!(!banner.is_empty(), "the receiver exited at start");
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            line.clear();
        }
    });
    child
}

/// A small deterministic generator for the kill points (no dependency needed).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_killed_at_random_points_resumes_and_delivers_a_verified_file() {
    let mut seed: u64 = std::env::var("MEMMESH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
                | 1
        });
    println!("kill points from seed {seed} (replay with MEMMESH_CRASH_SEED={seed})");
    let dir = scratch();
    let inbox = dir.join("inbox");
    let data_dir = dir.join("receiver-data");
    let listen = format!("127.0.0.1:{}", free_port());
    let file = dir.join("big.bin");
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let expected = format!("blake3:{}", blake3::hash(&data).to_hex());
    let partial = inbox.join("big.bin.memmesh-partial");
    let whole = inbox.join("big.bin");

    let sender = Node::builder()
        .name("sender")
        .listen("127.0.0.1:0")
        .mdns(false)
        .start()
        .await
        .unwrap();
    let t = sender.transfer().unwrap();

    for round in 0..KILLS {
        let mut child = spawn_receiver(&listen, &data_dir, &inbox);
        let id = sender.connect(&listen).await.unwrap();
        let sending = {
            let (t, file) = (t.clone(), file.clone());
            tokio::spawn(async move { t.send(Source::Path(file), &[id]).await })
        };
        // The first kill comes before the receiver's first background sync (every
        // 32 MiB), so before any checkpoint of what it received; the others somewhere
        // between 15 % and 90 % of what is still missing.
        let start = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let missing = SIZE as u64 - start;
        let at = if round == 0 {
            (4 + next(&mut seed) % 20) << 20
        } else {
            start + missing * (15 + next(&mut seed) % 76) / 100
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            if len >= at || sending.is_finished() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if sending.is_finished() {
            let r = sending.await;
            panic!("round {round}: the transfer ended before the kill point {at}: {r:?}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        println!("round {round}: receiver killed at about {at} of {SIZE} bytes");
        assert!(
            !whole.exists(),
            "round {round}: a file under the final name before it was complete"
        );
        // The sender gives up on the dead receiver (or is still retrying): either way it
        // must end.
        let killed = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(180), sending)
            .await
            .expect("the sender gave up in time")
            .unwrap();
        println!(
            "round {round}: the sender ended {:?} after the kill: {r:?}",
            killed.elapsed()
        );
        if let Ok(results) = r {
            assert!(
                results.iter().all(|r| r.error.is_some()),
                "round {round}: a send reported success to a killed receiver: {results:?}"
            );
        }
    }

    // The last run: nothing kills it.
    let mut child = spawn_receiver(&listen, &data_dir, &inbox);
    let id = sender.connect(&listen).await.unwrap();
    let before = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let r = t
        .send(Source::Path(file.clone()), &[id])
        .await
        .unwrap()
        .remove(0);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.hash.as_deref(), Some(expected.as_str()));
    assert_eq!(r.bytes, SIZE as u64);
    println!(
        "final run: {} bytes sent of {SIZE} ({before} were on disk)",
        r.sent
    );
    assert!(
        r.sent < SIZE as u64,
        "nothing kept from {KILLS} interrupted attempts: everything was sent again"
    );
    assert!(
        eventually(Duration::from_secs(30), || whole.exists()),
        "the file never appeared"
    );
    let got = std::fs::read(&whole).unwrap();
    assert_eq!(format!("blake3:{}", blake3::hash(&got).to_hex()), expected);
    assert!(!partial.exists(), "the partial file was left behind");
    // Every attempt worked in the one partial file (even one killed before its first
    // checkpoint): nothing else is left in the inbox.
    let left: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["big.bin"], "leftovers in the inbox");
    child.kill().unwrap();
    child.wait().unwrap();
    sender.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
