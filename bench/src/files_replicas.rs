//! files-bench (c): `put_path` with replicas 3 beside a plain `transfer().send` of the same
//! bytes to the same two peers, across network namespaces ([`crate::files_netns`]).
//!
//! Three child processes of the bench binary, one per namespace: two **peers**
//! (`files-bench peer`: a node with a data dir, for the files, and an inbox dir, for the
//! plain transfers) and the **origin** (`files-bench origin`), which connects to both,
//! waits until they are live members, then for each repeat times, in alternating order,
//! `transfer().send(Source::Path(file), [p1, p2])` (both peers fsync the received file
//! before acknowledging it) and `files().put_path(file, replicas 3)` (the origin stores
//! it, both peers pull it and store it durably). Each repeat uses different bytes (the
//! first 8 bytes of the source are the repeat's number), because a put then delete leaves
//! tombstones on the holders. The origin prints one JSON line per repeat.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use memmesh::transfer::Source;
use memmesh::{Node, NodeId, PeerState, PutOptions};
use serde::{Deserialize, Serialize};

use crate::files_netns::Lab;
use crate::transfer::netns::ChildGuard;

/// The port every node listens on (each in its own namespace).
pub const PORT: u16 = 7400;
/// How long the origin waits for its peers to be live members.
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(30);

/// What a peer prints once it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerReady {
    /// Its node id.
    pub id: String,
    /// Its address.
    pub addr: String,
    /// Its inbox directory (plain transfers land there).
    pub inbox: PathBuf,
}

/// One repeat, as the origin prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// The repeat's number.
    pub repeat: u32,
    /// Seconds of `transfer().send` to both peers.
    pub send_secs: f64,
    /// Seconds of `put_path` with replicas 3.
    pub put_secs: f64,
    /// How many holders `stat` listed after the put.
    pub holders: usize,
}

/// The figures of (c).
#[derive(Debug, Clone)]
pub struct Replicas {
    /// Bytes of the file.
    pub size: u64,
    /// Every repeat.
    pub rounds: Vec<Round>,
    /// The MTU between the origin and a peer.
    pub mtu: u32,
}

/// The median of `v` (0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

impl Replicas {
    /// Median MB/s of the plain transfer (bytes of the file over the time to reach both).
    pub fn send_mbps(&self) -> f64 {
        median(self.rounds.iter().map(|r| self.mbps(r.send_secs)).collect())
    }

    /// Median MB/s of the put with replicas 3.
    pub fn put_mbps(&self) -> f64 {
        median(self.rounds.iter().map(|r| self.mbps(r.put_secs)).collect())
    }

    fn mbps(&self, secs: f64) -> f64 {
        self.size as f64 / 1e6 / secs.max(1e-9)
    }
}

fn start_node(listen: &str, dir: &Path, threads: usize) -> Result<Node> {
    std::fs::create_dir_all(dir.join("inbox"))?;
    Node::builder()
        .name("files-bench")
        .listen(listen)
        // Across namespaces nobody is on loopback: no secret, so open.
        .open(true)
        .mdns(false)
        .threads(threads)
        .data_dir(dir.join("node"))
        .inbox_dir(dir.join("inbox"))
        .start_blocking()
        .with_context(|| format!("starting the node on {listen}"))
}

/// `files-bench peer`: serves until standard input closes.
pub fn peer(listen: &str, dir: &Path, threads: usize) -> Result<()> {
    let node = start_node(listen, dir, threads)?;
    let ready = PeerReady {
        id: node.id().to_string(),
        addr: node.addr().to_string(),
        inbox: dir.join("inbox"),
    };
    println!("{}", serde_json::to_string(&ready)?);
    std::io::stdout().flush()?;
    std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
        .context("waiting for standard input to close")?;
    node.shutdown_blocking()?;
    Ok(())
}

/// Writes `repeat` into the first 8 bytes of `source` (so every repeat has its own id).
fn stamp(source: &Path, repeat: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(source)?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&u64::from(repeat).to_le_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Removes everything in the peers' inboxes (the plain transfers' files).
fn empty(inboxes: &[PathBuf]) -> Result<()> {
    for dir in inboxes {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_file() {
                std::fs::remove_file(&p)?;
            }
        }
    }
    Ok(())
}

/// `files-bench origin`: connects to the peers, then measures `repeats` rounds, one JSON
/// line ([`Round`]) each on standard output.
pub fn origin(
    listen: &str,
    dir: &Path,
    threads: usize,
    source: &Path,
    peers: &[PeerReady],
    repeats: u32,
) -> Result<()> {
    let node = start_node(listen, dir, threads)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let mut ids = Vec::new();
        for p in peers {
            let id: NodeId = p.id.parse().context("a peer's id")?;
            node.connect_to(id, &p.addr)
                .await
                .with_context(|| format!("connecting to {}", p.addr))?;
            ids.push(id);
        }
        let until = Instant::now() + MEMBERS_TIMEOUT;
        loop {
            let live = node
                .peers()
                .iter()
                .filter(|p| p.state == PeerState::Alive && ids.contains(&p.id))
                .count();
            if live == ids.len() {
                break;
            }
            ensure!(
                Instant::now() < until,
                "only {live} of {} peers live after {MEMBERS_TIMEOUT:?}",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let size = std::fs::metadata(source)?.len();
        let transfer = node.transfer()?;
        let files = node.files()?;
        let inboxes: Vec<PathBuf> = peers.iter().map(|p| p.inbox.clone()).collect();
        let replicas = ids.len() as u32 + 1;
        for repeat in 0..repeats {
            stamp(source, repeat)?;
            let mut send_secs = 0.0;
            let mut put_secs = 0.0;
            let mut holders = 0;
            for step in 0..2 {
                if (step + repeat) % 2 == 0 {
                    let t = Instant::now();
                    let results = transfer
                        .send(Source::Path(source.to_path_buf()), &ids)
                        .await?;
                    send_secs = t.elapsed().as_secs_f64();
                    for r in &results {
                        if let Some(e) = &r.error {
                            bail!("transfer().send to {}: {e}", r.peer.short());
                        }
                        ensure!(r.bytes == size, "sent {} of {size} bytes", r.bytes);
                    }
                    empty(&inboxes)?;
                } else {
                    let options = PutOptions {
                        replicas,
                        ..PutOptions::named("replicated")
                    };
                    let t = Instant::now();
                    let id = files.put_path(source, options).await?;
                    put_secs = t.elapsed().as_secs_f64();
                    holders = files.stat(id).await?.holders.len();
                    files.delete(id).await?;
                }
            }
            let round = Round {
                repeat,
                send_secs,
                put_secs,
                holders,
            };
            println!("{}", serde_json::to_string(&round)?);
            std::io::stdout().flush()?;
        }
        Ok::<_, anyhow::Error>(())
    });
    drop(rt);
    node.shutdown_blocking()?;
    outcome
}

/// Runs (c): a lab of three namespaces, two peers and the origin as children of `exe`,
/// the source file `source` (in `dir`, which every namespace sees: one file system).
pub fn run(
    exe: &Path,
    dir: &Path,
    source: &Path,
    repeats: u32,
    threads: usize,
) -> Result<Replicas> {
    let lab = Lab::create(3)?;
    let mtu = lab.mtu(0, 1)?;
    let size = std::fs::metadata(source)?.len();
    let threads = threads.to_string();
    let mut peers = Vec::new();
    let mut ready = Vec::new();
    for i in 1..3 {
        let listen = format!("{}:{PORT}", lab.ip(i));
        let mut child = ChildGuard::spawn(
            lab.command(i, exe)
                .args(["peer", "--listen", &listen, "--threads", &threads, "--dir"])
                .arg(dir.join(format!("peer{i}")))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
            "peer",
        )?;
        let stdout = child.0.stdout.take().context("no peer stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading a peer's address")?;
        let info: PeerReady = serde_json::from_str(line.trim())
            .with_context(|| format!("a peer did not start (it printed {line:?})"))?;
        ready.push(info);
        peers.push(child);
    }
    let listen = format!("{}:{PORT}", lab.ip(0));
    let mut origin = ChildGuard::spawn(
        lab.command(0, exe)
            .args(["origin", "--listen", &listen, "--threads", &threads])
            .arg("--repeats")
            .arg(repeats.to_string())
            .arg("--peers")
            .arg(serde_json::to_string(&ready)?)
            .arg("--source")
            .arg(source)
            .arg("--dir")
            .arg(dir.join("origin"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
        "origin",
    )?;
    let stdout = origin.0.stdout.take().context("no origin stdout")?;
    let mut rounds = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the origin's output")?;
        let round: Round = serde_json::from_str(line.trim())
            .with_context(|| format!("parsing the origin's line {line:?}"))?;
        eprintln!(
            "(c) repeat {}: send {:.2} s, put {:.2} s, {} holders",
            round.repeat, round.send_secs, round.put_secs, round.holders
        );
        rounds.push(round);
    }
    let status = origin.wait_for(Duration::from_secs(30))?;
    ensure!(status.success(), "the origin failed ({status})");
    for mut p in peers {
        drop(p.0.stdin.take());
        let status = p.wait_for(Duration::from_secs(15))?;
        ensure!(status.success(), "a peer failed ({status})");
    }
    ensure!(
        rounds.len() == repeats as usize,
        "the origin printed {} of {repeats} rounds",
        rounds.len()
    );
    for r in &rounds {
        ensure!(
            r.holders == 3,
            "repeat {}: stat lists {} holders, expected 3",
            r.repeat,
            r.holders
        );
    }
    Ok(Replicas { size, rounds, mtu })
}
