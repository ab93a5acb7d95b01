//! The receiving side: two memmesh nodes and a bare quinn sink, in one process.
//!
//! - the **inbox node** receives files into its configured `inbox_dir` (no offer handler);
//! - the **memory node** answers every offer with `Destination::Memory` (`on_offer`);
//! - two [`QuinnSink`]s read bare quinn streams: one with memmesh's tuned transport
//!   settings, one with quinn's defaults.
//!
//! The inbox node also answers the sender's control requests on [`CTL_CHANNEL`]: open and
//! close a measurement window of this process (CPU time, resident memory), and hand over a
//! received transfer, whose content the benchmark hashes again itself (outside the timed
//! window) before dropping it or deleting the file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use memmesh::transfer::events::Subscription;
use memmesh::transfer::{Destination, Received};
use memmesh::{ErrorKind, Node, Request};
use serde::{Deserialize, Serialize};

use crate::transfer::procfs::{self, Sample, Window};
use crate::transfer::quinn_stream::{QuinnSink, Settings};
use crate::transfer::{hash_file, hash_label, Case};

/// The channel of the control requests (on the inbox node).
pub const CTL_CHANNEL: &str = "transfer-bench";
/// How long a `take` waits for the transfer to be delivered.
const TAKE_TIMEOUT: Duration = Duration::from_secs(120);
/// The memory node's quota: only checked against the offered size, never allocated.
const MEMORY_QUOTA: u64 = 1 << 40;

/// How the sender reaches a receiver (printed as JSON by `transfer-bench receive`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverInfo {
    /// The receiving process.
    pub pid: u32,
    /// The inbox node's address.
    pub inbox_addr: String,
    /// The memory node's address.
    pub memory_addr: String,
    /// The quinn sink's address (memmesh's tuned transport settings).
    pub quinn_addr: String,
    /// The key the quinn sink's certificate carries.
    pub quinn_id: String,
    /// The address of the quinn sink with quinn's default transport settings.
    pub quinn_default_addr: String,
    /// The key its certificate carries.
    pub quinn_default_id: String,
}

/// A control request (JSON on [`CTL_CHANNEL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum CtlRequest {
    /// Open a measurement window of the receiving process (reply: `null`).
    Begin,
    /// Close it (reply: a [`Sample`]).
    End,
    /// Wait for the transfer of the content `hash` into `case`'s node, hash what landed
    /// and drop it (reply: [`Taken`]).
    Take {
        /// Which node received it.
        case: Case,
        /// `blake3:<hex>` of the content, as memmesh reports it.
        hash: String,
        /// The name it must have been offered under (the file case: the source file's).
        name: Option<String>,
    },
    /// The receiving process's largest resident size so far (reply: bytes).
    MaxRss,
}

/// What a `take` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// Bytes received.
    pub bytes: u64,
    /// The hash memmesh reported for it (`Received::hash`).
    pub reported: String,
    /// The BLAKE3 hash of the memory buffer or the file, computed by the benchmark.
    pub recomputed: String,
    /// What was left in the inbox after the file was deleted (should be nothing: no
    /// `.memmesh-partial`, no `.memmesh-chunks`).
    pub leftovers: Vec<String>,
}

struct Ctl {
    window: Mutex<Option<Window>>,
    inbox: tokio::sync::Mutex<Subscription<Received>>,
    memory: tokio::sync::Mutex<Subscription<Received>>,
    inbox_dir: PathBuf,
}

/// The receiving side, started by [`Receiver::start`].
pub struct Receiver {
    inbox: Node,
    memory: Node,
    quinn: QuinnSink,
    quinn_default: QuinnSink,
}

fn start_node(name: &str, ip: IpAddr, threads: usize, inbox: Option<&Path>) -> Result<Node> {
    let mut builder = Node::builder()
        .name(name)
        .listen(SocketAddr::new(ip, 0).to_string())
        // Across namespaces the sender is not on loopback: no secret, so open.
        .open(true)
        .mdns(false)
        .threads(threads)
        .memory_quota(MEMORY_QUOTA);
    if let Some(dir) = inbox {
        builder = builder.inbox_dir(dir);
    }
    builder
        .start_blocking()
        .with_context(|| format!("starting node {name}"))
}

impl Receiver {
    /// Starts both nodes and the two quinn sinks on `ip`, files landing in `inbox_dir` (created
    /// if missing). Call from a thread without an async runtime.
    pub fn start(ip: IpAddr, inbox_dir: &Path, threads: usize) -> Result<Self> {
        std::fs::create_dir_all(inbox_dir)
            .with_context(|| format!("creating {}", inbox_dir.display()))?;
        let inbox = start_node("tb-inbox", ip, threads, Some(inbox_dir))?;
        let memory = start_node("tb-memory", ip, threads, None)?;
        memory
            .transfer()?
            .on_offer(|_| async { Destination::Memory });
        let ctl = Arc::new(Ctl {
            window: Mutex::new(None),
            inbox: tokio::sync::Mutex::new(inbox.transfer()?.received()),
            memory: tokio::sync::Mutex::new(memory.transfer()?.received()),
            inbox_dir: inbox_dir.to_path_buf(),
        });
        inbox.channel(CTL_CHANNEL)?.on_request(move |req: Request| {
            let ctl = ctl.clone();
            async move {
                ctl.handle(&req.data)
                    .await
                    .map_err(|e| memmesh::Error::new(ErrorKind::HandlerFailed, format!("{e:#}")))
            }
        });
        let quinn = QuinnSink::start(ip, threads, Settings::Tuned)?;
        let quinn_default = QuinnSink::start(ip, threads, Settings::Default)?;
        Ok(Self {
            inbox,
            memory,
            quinn,
            quinn_default,
        })
    }

    /// How a sender reaches this receiver.
    pub fn info(&self) -> ReceiverInfo {
        ReceiverInfo {
            pid: std::process::id(),
            inbox_addr: self.inbox.addr().to_string(),
            memory_addr: self.memory.addr().to_string(),
            quinn_addr: self.quinn.addr().to_string(),
            quinn_id: self.quinn.id().to_string(),
            quinn_default_addr: self.quinn_default.addr().to_string(),
            quinn_default_id: self.quinn_default.id().to_string(),
        }
    }

    /// Shuts both nodes and the sinks down.
    pub fn shutdown(self) -> Result<()> {
        self.quinn.shutdown();
        self.quinn_default.shutdown();
        self.inbox.shutdown_blocking()?;
        self.memory.shutdown_blocking()?;
        Ok(())
    }
}

impl Ctl {
    async fn handle(&self, body: &[u8]) -> Result<Bytes> {
        let request: CtlRequest =
            serde_json::from_slice(body).context("parsing a control request")?;
        let reply = match request {
            CtlRequest::Begin => {
                *self.window.lock().unwrap_or_else(|p| p.into_inner()) = Some(Window::begin());
                serde_json::to_vec(&())?
            }
            CtlRequest::End => {
                let window = self
                    .window
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .context("end without begin")?;
                serde_json::to_vec::<Sample>(&window.end())?
            }
            CtlRequest::Take { case, hash, name } => {
                serde_json::to_vec(&self.take(case, &hash, name.as_deref()).await?)?
            }
            CtlRequest::MaxRss => serde_json::to_vec(&procfs::max_rss())?,
        };
        Ok(Bytes::from(reply))
    }

    async fn take(&self, case: Case, hash: &str, name: Option<&str>) -> Result<Taken> {
        let rx = match case {
            Case::Memory => &self.memory,
            Case::File => &self.inbox,
        };
        let mut rx = rx.lock().await;
        let received = tokio::time::timeout(TAKE_TIMEOUT, async {
            loop {
                let r = rx.next().await.context("waiting for a received transfer")?;
                if r.hash == hash {
                    return Ok::<_, anyhow::Error>(r);
                }
            }
        })
        .await
        .with_context(|| format!("{hash} was not delivered within {TAKE_TIMEOUT:?}"))??;
        if let Some(name) = name {
            ensure!(
                received.offer.name == name,
                "offered as {:?}, expected {name:?}",
                received.offer.name
            );
        }
        let bytes = received.offer.size;
        let reported = received.hash.clone();
        let recomputed = match case {
            Case::Memory => {
                let data = received
                    .data
                    .context("a memory transfer was delivered without its data")?;
                ensure!(
                    data.len() as u64 == bytes,
                    "{} bytes in memory for an offer of {bytes}",
                    data.len()
                );
                tokio::task::spawn_blocking(move || hash_label(&blake3::hash(&data))).await?
            }
            Case::File => {
                let path = received
                    .path
                    .context("a file transfer was delivered without its path")?;
                let expected = self.inbox_dir.join(&received.offer.name);
                ensure!(
                    path == expected,
                    "landed at {}, expected {}",
                    path.display(),
                    expected.display()
                );
                let (len, hash) = tokio::task::spawn_blocking(move || {
                    let out = hash_file(&path);
                    std::fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                    out
                })
                .await??;
                ensure!(len == bytes, "{len} bytes on disk for an offer of {bytes}");
                hash_label(&hash)
            }
        };
        let leftovers = std::fs::read_dir(&self.inbox_dir)
            .with_context(|| format!("listing {}", self.inbox_dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        Ok(Taken {
            bytes,
            reported,
            recomputed,
            leftovers,
        })
    }
}
