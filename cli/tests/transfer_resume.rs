//! A sending process killed (SIGKILL) in the middle of a file transfer: nothing appears
//! under the final name, and the same sender started again (same key) resumes after the
//! verified chunks instead of sending everything again; the file arrives whole.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memmesh::Node;

const SIZE: usize = 256 * 1024 * 1024;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memmesh-cli-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn send_file(to: &str, key_dir: &Path, file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memmesh"));
    cmd.args(["send-file", "--to", to, "--data-dir"])
        .arg(key_dir)
        .arg(file);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sender_resumes_after_the_verified_chunks() {
    let dir = scratch();
    let inbox = dir.join("inbox");
    let receiver = Node::builder()
        .name("receiver")
        .listen("127.0.0.1:0")
        .mdns(false)
        .inbox_dir(&inbox)
        .start()
        .await
        .unwrap();
    let to = receiver.addr().to_string();
    let file = dir.join("big.bin");
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let keys = dir.join("sender-key");
    let partial = inbox.join("big.bin.memmesh-partial");
    let whole = inbox.join("big.bin");

    // First run: killed once half has arrived (and before the end).
    let mut child = send_file(&to, &keys, &file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the CLI sender");
    let deadline = Instant::now() + Duration::from_secs(120);
    let received_at_kill = loop {
        let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if len >= (SIZE / 2) as u64 {
            child.kill().unwrap();
            break len;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sender finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "the transfer never got going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    child.wait().unwrap();
    assert!(received_at_kill < SIZE as u64, "killed before the end");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !whole.exists(),
        "nothing under the final name after the kill"
    );

    // Second run, same key: resumes.
    let out = send_file(&to, &keys, &file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "sent <bytes> bytes (<streamed> streamed) to <peer>: blake3:<hex>"
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let total: u64 = words[1].parse().unwrap();
    let streamed: u64 = words[3].trim_start_matches('(').parse().unwrap();
    assert_eq!(total, SIZE as u64);
    // At most the chunk being written at the kill is sent again (1 MiB chunks).
    assert!(
        streamed <= SIZE as u64 - received_at_kill + (2 << 20),
        "streamed {streamed} bytes again although {received_at_kill} had arrived"
    );
    let hash = format!("blake3:{}", blake3::hash(&data).to_hex());
    assert!(stdout.trim_end().ends_with(&hash), "{stdout}");
    assert_eq!(std::fs::read(&whole).unwrap(), data);
    assert!(!partial.exists());
    receiver.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
