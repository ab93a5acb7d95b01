//! The anchor: bare quinn 0.11 with memmesh's transport settings (`TransportTuning::default()`:
//! its `transport_config()`, `endpoint_config()` and `bind_socket()`) and memmesh's TLS
//! configuration (Ed25519 certificates, the server pinned by its key), streaming the whole
//! payload on one bidirectional stream.
//!
//! The client writes a one-byte mode, then the payload as 1 MiB `Bytes` chunks
//! (`write_chunk`, no copy), and finishes the stream. The sink reads it into a 64 KiB
//! buffer until the end; in BLAKE3 mode it hashes each filled buffer inline, in the same
//! task. It replies with the byte count (8 bytes, big-endian) and the hash (32 bytes, zero
//! without hashing). The client's clock runs from opening the stream to that reply, so
//! both systems are timed up to the receiver's confirmation.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::executor::block_on;
use memmesh::transport::tls;
use memmesh::{Keypair, NodeId, TransportTuning};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::runtime::Runtime;

/// Bytes the client hands to quinn per `write_chunk` (memmesh's chunk size).
pub const WRITE_CHUNK: usize = 1 << 20;
/// The sink's read buffer (DESIGN.md: 64 KiB I/O buffers; BLAKE3 is fast from 16 KiB).
pub const READ_BUFFER: usize = 64 << 10;
/// How long shutdown waits for each runtime's tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

const MODE_PLAIN: u8 = 0;
const MODE_BLAKE3: u8 = 1;
const REPLY_LEN: usize = 8 + 32;

fn runtime(threads: usize, name: &str) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("creating the {name} runtime"))
}

fn endpoint(
    rt: &Runtime,
    tuning: &TransportTuning,
    ip: IpAddr,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint> {
    let _inside = rt.enter();
    let socket = tuning.bind_socket(SocketAddr::new(ip, 0))?;
    quinn::Endpoint::new(
        tuning.endpoint_config()?,
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .context("creating a quinn endpoint")
}

/// The receiving side: a quinn server that reads every stream to its end.
pub struct QuinnSink {
    rt: Runtime,
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    id: NodeId,
}

impl QuinnSink {
    /// Starts the sink on `ip` (any free port), with its own runtime of `threads` workers.
    /// Call from a thread without an async runtime.
    pub fn start(ip: IpAddr, threads: usize) -> Result<Self> {
        let tuning = TransportTuning::default();
        let key = Keypair::generate()?;
        let tls =
            QuicServerConfig::try_from(tls::server_config(&key)?).context("quic server tls")?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(tls));
        config.transport_config(Arc::new(tuning.transport_config()?));
        let rt = runtime(threads, "quinn-sink")?;
        let endpoint = endpoint(&rt, &tuning, ip, Some(config))?;
        let addr = endpoint.local_addr().context("reading the sink address")?;
        rt.spawn(accept_loop(endpoint.clone()));
        Ok(Self {
            rt,
            endpoint,
            addr,
            id: key.node_id(),
        })
    }

    /// Where the sink listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key the sink's certificate carries (the client pins it).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Closes the endpoint and stops the runtime.
    pub fn shutdown(self) {
        self.endpoint.close(0u32.into(), b"done");
        self.rt.shutdown_timeout(SHUTDOWN_GRACE);
    }
}

async fn accept_loop(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(async move {
                    // A failed stream reaches the client as a reset or a short reply.
                    let _ = sink_stream(send, recv).await;
                });
            }
        });
    }
}

async fn sink_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> Result<()> {
    let mut mode = [0u8; 1];
    recv.read_exact(&mut mode).await?;
    let hashing = match mode[0] {
        MODE_PLAIN => false,
        MODE_BLAKE3 => true,
        other => bail!("unknown mode {other}"),
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match recv.read(&mut buf[filled..]).await? {
                Some(n) => filled += n,
                None => break,
            }
        }
        total += filled as u64;
        if hashing {
            hasher.update(&buf[..filled]);
        }
        if filled < buf.len() {
            break;
        }
    }
    let hash = if hashing {
        *hasher.finalize().as_bytes()
    } else {
        [0u8; 32]
    };
    let mut reply = Vec::with_capacity(REPLY_LEN);
    reply.extend_from_slice(&total.to_be_bytes());
    reply.extend_from_slice(&hash);
    send.write_all(&reply).await?;
    send.finish()?;
    Ok(())
}

/// What one stream delivered, as the sink confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    /// Bytes the sink counted.
    pub bytes: u64,
    /// The sink's BLAKE3 hash of them (hashing mode only).
    pub hash: Option<[u8; 32]>,
    /// From opening the stream to the sink's reply.
    pub duration: Duration,
}

/// The sending side: a quinn client connected to a [`QuinnSink`].
pub struct QuinnSource {
    rt: Runtime,
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl QuinnSource {
    /// Binds on `ip`, connects to the sink at `server` whose key is `server_id`, on a
    /// runtime of its own with `threads` workers. Call from a thread without an async
    /// runtime.
    pub fn connect(
        ip: IpAddr,
        server: SocketAddr,
        server_id: NodeId,
        threads: usize,
    ) -> Result<Self> {
        let tuning = TransportTuning::default();
        let key = Keypair::generate()?;
        let tls =
            QuicClientConfig::try_from(tls::client_config(&key)?).context("quic client tls")?;
        let mut config = quinn::ClientConfig::new(Arc::new(tls));
        config.transport_config(Arc::new(tuning.transport_config()?));
        let rt = runtime(threads, "quinn-source")?;
        let mut endpoint = endpoint(&rt, &tuning, ip, None)?;
        endpoint.set_default_client_config(config);
        let name = tls::server_name_for(Some(server_id));
        let dialler = endpoint.clone();
        // quinn spawns the connection's driver task: dial from inside the runtime.
        let conn = block_on(rt.spawn(async move {
            dialler
                .connect(server, &name)
                .context("dialling the quinn sink")?
                .await
                .context("connecting to the quinn sink")
        }))
        .context("the connect task failed")??;
        Ok(Self { rt, endpoint, conn })
    }

    /// Streams `data` on one new stream and waits for the sink's count (and hash, with
    /// `hash`). Fails if the count is not `data.len()`.
    pub fn send(&self, data: Bytes, hash: bool) -> Result<Streamed> {
        let conn = self.conn.clone();
        let len = data.len() as u64;
        let task = self.rt.spawn(async move {
            let started = Instant::now();
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&[if hash { MODE_BLAKE3 } else { MODE_PLAIN }])
                .await?;
            let mut offset = 0;
            while offset < data.len() {
                let end = (offset + WRITE_CHUNK).min(data.len());
                send.write_chunk(data.slice(offset..end)).await?;
                offset = end;
            }
            send.finish()?;
            let reply = recv.read_to_end(REPLY_LEN).await?;
            let duration = started.elapsed();
            ensure!(
                reply.len() == REPLY_LEN,
                "the sink replied {} bytes",
                reply.len()
            );
            let mut count = [0u8; 8];
            count.copy_from_slice(&reply[..8]);
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&reply[8..]);
            Ok::<_, anyhow::Error>(Streamed {
                bytes: u64::from_be_bytes(count),
                hash: hash.then_some(digest),
                duration,
            })
        });
        let streamed = block_on(task).context("the quinn stream task failed")??;
        ensure!(
            streamed.bytes == len,
            "the quinn sink counted {} bytes of {len}",
            streamed.bytes
        );
        Ok(streamed)
    }

    /// Closes the connection and the endpoint and stops the runtime.
    pub fn shutdown(self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.close(0u32.into(), b"done");
        let endpoint = self.endpoint;
        let _ = block_on(self.rt.spawn(async move {
            tokio::time::timeout(SHUTDOWN_GRACE, endpoint.wait_idle()).await
        }));
        self.rt.shutdown_timeout(SHUTDOWN_GRACE);
    }
}
