//! The anchors: bare quinn 0.11 streaming the whole payload on one bidirectional stream,
//! with memmesh's TLS configuration (Ed25519 certificates, the server pinned by its key) and
//! one of two sets of transport settings ([`Settings`]):
//!
//! - [`Settings::Tuned`]: memmesh's (`TransportTuning::default()`: its `transport_config()`,
//!   `endpoint_config()` and `bind_socket()`);
//! - [`Settings::Default`]: quinn's own defaults (`quinn::TransportConfig::default()`,
//!   `quinn::EndpointConfig::default()`, a plain `std::net::UdpSocket::bind` without buffer
//!   sizes), the baseline of DESIGN.md's transfer target.
//!
//! The client writes a one-byte mode, then the payload as 1 MiB `Bytes` chunks
//! (`write_chunk`, no copy), and finishes the stream. The sink reads it into a 64 KiB
//! buffer until the end; in BLAKE3 mode it hashes each filled buffer inline, in the same
//! task. It replies with the byte count (8 bytes, big-endian) and the hash (32 bytes, zero
//! without hashing). The client's clock runs from opening the stream to that reply, so
//! both systems are timed up to the receiver's confirmation.
//!
//! In keep mode (the ceiling of a memory destination, [`QuinnSource::send_kept`]) the
//! client sends the payload's size after the mode; the sink reserves one fresh buffer of
//! that size (as memmesh's memory destination does), appends every received piece to it
//! (one copy, as memmesh), hashes it with BLAKE3 inline in 64 KiB or larger updates, and
//! keeps the buffer after its reply until the client asks it to let go
//! ([`QuinnSource::release`], outside the measurement).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::{Bytes, BytesMut};
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
/// A client connection idle for longer than this is replaced before the next stream
/// (quinn's default idle timeout is 30 s, without keep-alive).
const REOPEN_AFTER_IDLE: Duration = Duration::from_secs(20);

const MODE_PLAIN: u8 = 0;
const MODE_BLAKE3: u8 = 1;
/// BLAKE3 into one fresh buffer of the announced size, kept after the reply.
const MODE_KEEP: u8 = 2;
/// Drop the buffer kept by the last [`MODE_KEEP`] stream.
const MODE_RELEASE: u8 = 3;
const REPLY_LEN: usize = 8 + 32;
/// The largest size a keep-mode stream may announce (the sink reserves it at once).
const MAX_KEEP: u64 = 64 << 30;

/// What a sink reads a stream into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A reused 64 KiB buffer, counted only.
    Plain,
    /// A reused 64 KiB buffer, hashed.
    Blake3,
    /// One fresh buffer of the whole, hashed, kept after the reply.
    Keep,
}

impl Mode {
    fn byte(self) -> u8 {
        match self {
            Mode::Plain => MODE_PLAIN,
            Mode::Blake3 => MODE_BLAKE3,
            Mode::Keep => MODE_KEEP,
        }
    }
}

/// The buffer of the last keep-mode stream, held until released.
type Kept = Arc<Mutex<Option<BytesMut>>>;

/// The transport settings of a sink and a source; TLS is memmesh's in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settings {
    /// memmesh's tuned settings: `TransportTuning::default()`.
    Tuned,
    /// quinn's defaults: `TransportConfig::default()`, `EndpointConfig::default()`, a UDP
    /// socket bound with the kernel's default buffer sizes.
    Default,
}

impl Settings {
    fn name(self) -> &'static str {
        match self {
            Settings::Tuned => "tuned",
            Settings::Default => "default",
        }
    }

    fn transport_config(self) -> Result<quinn::TransportConfig> {
        Ok(match self {
            Settings::Tuned => TransportTuning::default().transport_config()?,
            Settings::Default => quinn::TransportConfig::default(),
        })
    }

    fn endpoint_config(self) -> Result<quinn::EndpointConfig> {
        Ok(match self {
            Settings::Tuned => TransportTuning::default().endpoint_config()?,
            Settings::Default => quinn::EndpointConfig::default(),
        })
    }

    fn bind_socket(self, addr: SocketAddr) -> Result<std::net::UdpSocket> {
        Ok(match self {
            Settings::Tuned => TransportTuning::default().bind_socket(addr)?,
            Settings::Default => {
                std::net::UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?
            }
        })
    }
}

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
    settings: Settings,
    ip: IpAddr,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint> {
    let _inside = rt.enter();
    let socket = settings.bind_socket(SocketAddr::new(ip, 0))?;
    quinn::Endpoint::new(
        settings.endpoint_config()?,
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
    /// Starts the sink on `ip` (any free port) with `settings`, with its own runtime of
    /// `threads` workers. Call from a thread without an async runtime.
    pub fn start(ip: IpAddr, threads: usize, settings: Settings) -> Result<Self> {
        let key = Keypair::generate()?;
        let tls =
            QuicServerConfig::try_from(tls::server_config(&key)?).context("quic server tls")?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(tls));
        config.transport_config(Arc::new(settings.transport_config()?));
        let rt = runtime(threads, &format!("quinn-sink-{}", settings.name()))?;
        let endpoint = endpoint(&rt, settings, ip, Some(config))?;
        let addr = endpoint.local_addr().context("reading the sink address")?;
        rt.spawn(accept_loop(endpoint.clone(), Kept::default()));
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

async fn accept_loop(endpoint: quinn::Endpoint, kept: Kept) {
    while let Some(incoming) = endpoint.accept().await {
        let kept = kept.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    // A failed stream reaches the client as a reset or a short reply.
                    let _ = sink_stream(send, recv, kept).await;
                });
            }
        });
    }
}

async fn sink_stream(
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    kept: Kept,
) -> Result<()> {
    let mut mode = [0u8; 1];
    recv.read_exact(&mut mode).await?;
    let hashing = match mode[0] {
        MODE_PLAIN => false,
        MODE_BLAKE3 => true,
        MODE_KEEP => return keep_stream(send, recv, kept).await,
        MODE_RELEASE => {
            let old = kept.lock().unwrap_or_else(|p| p.into_inner()).take();
            drop(old);
            return reply(send, 0, [0u8; 32]).await;
        }
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
    reply(send, total, hash).await
}

/// Keep mode: reads the announced size, then the payload into one fresh buffer of that
/// size (each piece quinn hands over appended once), hashing it inline; stores the buffer
/// in `kept` before replying.
async fn keep_stream(
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    kept: Kept,
) -> Result<()> {
    let mut size = [0u8; 8];
    recv.read_exact(&mut size).await?;
    let size = u64::from_be_bytes(size);
    ensure!(size <= MAX_KEEP, "a keep stream of {size} bytes");
    let size = usize::try_from(size)?;
    let mut buf = BytesMut::with_capacity(size);
    let mut hasher = blake3::Hasher::new();
    let mut hashed = 0;
    while let Some(piece) = recv.read_chunk(usize::MAX, true).await? {
        ensure!(
            buf.len() + piece.bytes.len() <= size,
            "more than the {size} bytes announced"
        );
        buf.extend_from_slice(&piece.bytes);
        if buf.len() - hashed >= READ_BUFFER {
            hasher.update(&buf[hashed..]);
            hashed = buf.len();
        }
    }
    hasher.update(&buf[hashed..]);
    let total = buf.len() as u64;
    *kept.lock().unwrap_or_else(|p| p.into_inner()) = Some(buf);
    reply(send, total, *hasher.finalize().as_bytes()).await
}

/// Replies with the count and the hash, and finishes the stream.
async fn reply(mut send: quinn::SendStream, total: u64, hash: [u8; 32]) -> Result<()> {
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
    settings: Settings,
    server: SocketAddr,
    server_name: String,
    /// The connection and when its last stream ended.
    conn: Mutex<(quinn::Connection, Instant)>,
}

impl QuinnSource {
    /// Binds on `ip` with `settings`, connects to the sink at `server` whose key is
    /// `server_id`, on a runtime of its own with `threads` workers. Call from a thread
    /// without an async runtime.
    pub fn connect(
        ip: IpAddr,
        server: SocketAddr,
        server_id: NodeId,
        threads: usize,
        settings: Settings,
    ) -> Result<Self> {
        let key = Keypair::generate()?;
        let tls =
            QuicClientConfig::try_from(tls::client_config(&key)?).context("quic client tls")?;
        let mut config = quinn::ClientConfig::new(Arc::new(tls));
        config.transport_config(Arc::new(settings.transport_config()?));
        let rt = runtime(threads, &format!("quinn-source-{}", settings.name()))?;
        let mut endpoint = endpoint(&rt, settings, ip, None)?;
        endpoint.set_default_client_config(config);
        let server_name = tls::server_name_for(Some(server_id));
        let conn = dial(&rt, &endpoint, server, &server_name)?;
        Ok(Self {
            rt,
            endpoint,
            settings,
            server,
            server_name,
            conn: Mutex::new((conn, Instant::now())),
        })
    }

    /// With [`Settings::Default`], replaces the connection if it is closed or has been
    /// idle long enough to be near quinn's default idle timeout (30 s, without keep-alive).
    /// Returns whether it did: the new connection is then cold. Call outside a measurement.
    /// With [`Settings::Tuned`] it does nothing (the tuned keep-alive holds the connection
    /// open).
    pub fn reopen_if_idle(&self) -> Result<bool> {
        if self.settings == Settings::Tuned {
            return Ok(false);
        }
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0.close_reason().is_none() && guard.1.elapsed() < REOPEN_AFTER_IDLE {
            return Ok(false);
        }
        let conn = dial(&self.rt, &self.endpoint, self.server, &self.server_name)?;
        let old = std::mem::replace(&mut *guard, (conn, Instant::now()));
        old.0.close(0u32.into(), b"idle");
        Ok(true)
    }

    /// Streams `data` on one new stream and waits for the sink's count (and hash, with
    /// `hash`). Fails if the count is not `data.len()`.
    pub fn send(&self, data: Bytes, hash: bool) -> Result<Streamed> {
        self.stream(data, if hash { Mode::Blake3 } else { Mode::Plain })
    }

    /// Streams `data` to be received into one fresh buffer of its size, hashed, and kept
    /// by the sink after its reply (until [`QuinnSource::release`]): what a memory
    /// destination must do, on the bare transport. Fails if the count is not `data.len()`.
    pub fn send_kept(&self, data: Bytes) -> Result<Streamed> {
        self.stream(data, Mode::Keep)
    }

    /// Asks the sink to drop the buffer kept by the last [`QuinnSource::send_kept`].
    pub fn release(&self) -> Result<()> {
        let conn = self.connection();
        let task = self.rt.spawn(async move {
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&[MODE_RELEASE]).await?;
            send.finish()?;
            let reply = recv.read_to_end(REPLY_LEN).await?;
            ensure!(
                reply.len() == REPLY_LEN,
                "the sink replied {} bytes",
                reply.len()
            );
            Ok::<_, anyhow::Error>(())
        });
        block_on(task).context("the quinn release task failed")?
    }

    fn connection(&self) -> quinn::Connection {
        self.conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    fn stream(&self, data: Bytes, mode: Mode) -> Result<Streamed> {
        let conn = self.connection();
        let len = data.len() as u64;
        let hash = mode != Mode::Plain;
        let task = self.rt.spawn(async move {
            let started = Instant::now();
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&[mode.byte()]).await?;
            if mode == Mode::Keep {
                send.write_all(&len.to_be_bytes()).await?;
            }
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
        let streamed = block_on(task).context("the quinn stream task failed");
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).1 = Instant::now();
        let streamed = streamed??;
        ensure!(
            streamed.bytes == len,
            "the quinn sink counted {} bytes of {len}",
            streamed.bytes
        );
        Ok(streamed)
    }

    /// Closes the connection and the endpoint and stops the runtime.
    pub fn shutdown(self) {
        let (conn, _) = self.conn.into_inner().unwrap_or_else(|p| p.into_inner());
        conn.close(0u32.into(), b"done");
        self.endpoint.close(0u32.into(), b"done");
        let endpoint = self.endpoint;
        let _ = block_on(self.rt.spawn(async move {
            tokio::time::timeout(SHUTDOWN_GRACE, endpoint.wait_idle()).await
        }));
        self.rt.shutdown_timeout(SHUTDOWN_GRACE);
    }
}

/// Connects `endpoint` to the sink at `server`.
fn dial(
    rt: &Runtime,
    endpoint: &quinn::Endpoint,
    server: SocketAddr,
    server_name: &str,
) -> Result<quinn::Connection> {
    let dialler = endpoint.clone();
    let name = server_name.to_string();
    // quinn spawns the connection's driver task: dial from inside the runtime.
    block_on(rt.spawn(async move {
        dialler
            .connect(server, &name)
            .context("dialling the quinn sink")?
            .await
            .context("connecting to the quinn sink")
    }))
    .context("the connect task failed")?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pair(settings: Settings) -> (QuinnSink, QuinnSource) {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sink = QuinnSink::start(ip, 1, settings).unwrap();
        let source = QuinnSource::connect(ip, sink.addr(), sink.id(), 1, settings).unwrap();
        (sink, source)
    }

    #[test]
    fn both_settings_stream_and_count_every_byte() {
        let data = crate::transfer::pattern(3 * WRITE_CHUNK + 12_345);
        for settings in [Settings::Tuned, Settings::Default] {
            let (sink, source) = pair(settings);
            let plain = source.send(data.clone(), false).unwrap();
            assert_eq!(plain.bytes, data.len() as u64, "{settings:?}");
            assert_eq!(plain.hash, None);
            let hashed = source.send(data.clone(), true).unwrap();
            assert_eq!(hashed.hash, Some(*blake3::hash(&data).as_bytes()));
            let kept = source.send_kept(data.clone()).unwrap();
            assert_eq!(kept.bytes, data.len() as u64, "{settings:?}");
            assert_eq!(kept.hash, Some(*blake3::hash(&data).as_bytes()));
            source.release().unwrap();
            source.release().unwrap();
            source.shutdown();
            sink.shutdown();
        }
    }

    #[test]
    fn a_closed_default_connection_is_reopened_and_a_tuned_one_is_not() {
        let data = crate::transfer::pattern(WRITE_CHUNK);
        let (sink, source) = pair(Settings::Default);
        assert!(!source.reopen_if_idle().unwrap(), "fresh and open");
        let conn = source.conn.lock().unwrap().0.clone();
        conn.close(0u32.into(), b"test");
        assert!(conn.close_reason().is_some());
        assert!(source.reopen_if_idle().unwrap());
        assert_eq!(
            source.send(data.clone(), false).unwrap().bytes,
            data.len() as u64
        );
        source.shutdown();
        sink.shutdown();

        let (sink, source) = pair(Settings::Tuned);
        source.conn.lock().unwrap().0.close(0u32.into(), b"test");
        assert!(!source.reopen_if_idle().unwrap());
        assert!(
            source.send(data, false).is_err(),
            "tuned: as before, no reopening"
        );
        source.shutdown();
        sink.shutdown();
    }
}
