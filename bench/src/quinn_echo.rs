//! The anchor: a bare quinn 0.11 echo with memmesh's transport settings and TLS
//! configuration, one bidirectional stream per request (write the payload, finish, read
//! to the end), as memmesh does, minus memmesh's framing, handshake and dispatch.
//!
//! For attribution, [`Hops`] adds memmesh's per-request structure to the bare exchange
//! one piece at a time (`rpc-bench --only hops`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use futures::executor::block_on;
use memmesh::transport::tls;
use memmesh::{Keypair, TransportTuning};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::runtime::{Handle, Runtime};

use crate::load::CallFuture;
use crate::MAX_REPLY;

/// How long shutdown waits for each runtime's tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// An echo server and a client connected to it, each on its own runtime (as two memmesh
/// nodes each run their own).
pub struct QuinnPair {
    server_rt: Runtime,
    client_rt: Runtime,
    server: quinn::Endpoint,
    client: quinn::Endpoint,
    conn: quinn::Connection,
    /// The server side of the current [`Hops`] (see [`Hops::server_bits`]).
    server_mode: Arc<AtomicU8>,
}

/// Pieces of memmesh's per-request structure that can be added to the bare exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hops {
    /// Run the exchange as its own task on the client runtime and await its handle, as
    /// `Channel::request` does (`Node::run`).
    pub request_task: bool,
    /// Wrap the exchange in `tokio::time::timeout`, as `Channel::request` does.
    pub timeout: bool,
    /// On the server, produce the reply in a task of its own and await it, as memmesh's
    /// channel service runs the request handler.
    pub handler_task: bool,
    /// Length-prefixed frames read with `read_exact` on both sides, as memmesh's wire
    /// codec does, instead of `read_to_end`.
    pub framed: bool,
    /// With `framed`: after the frame, also read the end of the stream (its FIN) before
    /// dropping the `RecvStream`. Without it (as memmesh does today), quinn sends a
    /// STOP_SENDING frame when the unfinished `RecvStream` is dropped.
    pub read_fin: bool,
}

const HANDLER_TASK: u8 = 1;
const FRAMED: u8 = 2;
const READ_FIN: u8 = 4;

impl Hops {
    fn server_bits(self) -> u8 {
        (if self.handler_task { HANDLER_TASK } else { 0 })
            | (if self.framed { FRAMED } else { 0 })
            | (if self.read_fin { READ_FIN } else { 0 })
    }
}

/// A multi-thread runtime of `threads` workers named `name`.
pub(crate) fn runtime(threads: usize, name: &str) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("creating the {name} runtime"))
}

/// A quinn endpoint on 127.0.0.1 with `tuning`'s socket and endpoint settings, driven by `rt`.
pub(crate) fn endpoint(
    rt: &Runtime,
    tuning: &TransportTuning,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint> {
    let _inside = rt.enter();
    let socket = tuning.bind_socket(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    quinn::Endpoint::new(
        tuning.endpoint_config()?,
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .context("creating a quinn endpoint")
}

/// memmesh's TLS configuration for `key` (mutual TLS 1.3), as a quinn server and client
/// configuration, both with `transport`.
pub(crate) fn quinn_configs(
    key: &Keypair,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig)> {
    let server_tls =
        QuicServerConfig::try_from(tls::server_config(key)?).context("quic server tls")?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_tls));
    server.transport_config(transport.clone());
    let client_tls =
        QuicClientConfig::try_from(tls::client_config(key)?).context("quic client tls")?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_tls));
    client.transport_config(transport);
    Ok((server, client))
}

impl QuinnPair {
    /// Starts the server and the client (each runtime with `threads` workers) and
    /// connects them. Call from a thread without an async runtime.
    pub fn start(threads: usize) -> Result<Self> {
        let tuning = TransportTuning::default();
        let transport = Arc::new(tuning.transport_config()?);
        let server_key = Keypair::generate()?;
        let client_key = Keypair::generate()?;

        let (server_config, _) = quinn_configs(&server_key, transport.clone())?;
        let (_, client_config) = quinn_configs(&client_key, transport)?;

        let server_rt = runtime(threads, "quinn-server")?;
        let client_rt = runtime(threads, "quinn-client")?;
        let server = endpoint(&server_rt, &tuning, Some(server_config))?;
        let addr = server.local_addr().context("reading the server address")?;
        let server_mode = Arc::new(AtomicU8::new(0));
        server_rt.spawn(accept_loop(server.clone(), server_mode.clone()));
        let mut client = endpoint(&client_rt, &tuning, None)?;
        client.set_default_client_config(client_config);

        let name = tls::server_name_for(Some(server_key.node_id()));
        let dialler = client.clone();
        // quinn spawns the connection's driver task: dial from inside the client runtime.
        let conn = block_on(client_rt.spawn(async move {
            dialler
                .connect(addr, &name)
                .context("dialling the echo server")?
                .await
                .context("connecting to the echo server")
        }))
        .context("the connect task failed")??;
        Ok(Self {
            server_rt,
            client_rt,
            server,
            client,
            conn,
            server_mode,
        })
    }

    /// The client's runtime, where the load tasks run.
    pub fn handle(&self) -> Handle {
        self.client_rt.handle().clone()
    }

    /// One request: a fresh bidirectional stream, the payload written and finished, the
    /// reply read to its end.
    pub fn call(&self) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        self.call_with(Hops::default())
    }

    /// [`QuinnPair::call`] with some of memmesh's structure added. The server side of
    /// `hops` applies to every stream opened from now on, whoever opens it.
    pub fn call_with(
        &self,
        hops: Hops,
    ) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        self.server_mode
            .store(hops.server_bits(), Ordering::Relaxed);
        let conn = self.conn.clone();
        let handle = self.handle();
        move |data| {
            let exchange = exchange(conn.clone(), data, hops);
            let timed = async move {
                if hops.timeout {
                    tokio::time::timeout(Duration::from_secs(30), exchange)
                        .await
                        .context("request timed out")?
                } else {
                    exchange.await
                }
            };
            if hops.request_task {
                let task = handle.spawn(timed);
                Box::pin(async move { task.await.context("the request task failed")? })
            } else {
                Box::pin(timed)
            }
        }
    }

    /// UDP datagrams sent plus received by the client per request, over `n` sequential
    /// requests of `payload` with `hops` (a count, not a timing: it shows extra packets).
    pub fn datagrams_per_request(&self, hops: Hops, payload: Bytes, n: u32) -> Result<f64> {
        ensure!(n > 0, "n must be at least 1");
        let call = self.call_with(hops);
        let conn = self.conn.clone();
        let run = self.client_rt.spawn(async move {
            // Let ACKs of earlier traffic settle so they are not counted here.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let before = conn.stats().udp_tx.datagrams + conn.stats().udp_rx.datagrams;
            for _ in 0..n {
                call(payload.clone()).await?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let after = conn.stats().udp_tx.datagrams + conn.stats().udp_rx.datagrams;
            Ok::<_, anyhow::Error>((after - before) as f64 / f64::from(n))
        });
        block_on(run).context("the counting task failed")?
    }

    /// Closes the connection and both endpoints and stops both runtimes.
    pub fn shutdown(self) {
        self.conn.close(0u32.into(), b"done");
        self.client.close(0u32.into(), b"done");
        self.server.close(0u32.into(), b"done");
        let client = self.client;
        let _ =
            block_on(self.client_rt.spawn(async move {
                tokio::time::timeout(SHUTDOWN_GRACE, client.wait_idle()).await
            }));
        self.client_rt.shutdown_timeout(SHUTDOWN_GRACE);
        self.server_rt.shutdown_timeout(SHUTDOWN_GRACE);
    }
}

/// `len: u32 BE | body` in one buffer (as memmesh encodes a frame).
fn frame(body: &[u8]) -> Result<Bytes> {
    let len = u32::try_from(body.len()).context("body too large for a frame")?;
    let mut buf = BytesMut::with_capacity(4 + body.len());
    buf.put_u32(len);
    buf.put_slice(body);
    Ok(buf.freeze())
}

/// Reads one frame with `read_exact`; with `read_fin`, then reads the end of the stream.
async fn read_framed(recv: &mut quinn::RecvStream, read_fin: bool) -> Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    ensure!(len <= MAX_REPLY, "frame of {len} bytes is too large");
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    if read_fin {
        recv.read_to_end(0).await?;
    }
    Ok(body)
}

async fn exchange(conn: quinn::Connection, data: Bytes, hops: Hops) -> Result<Bytes> {
    let (mut send, mut recv) = conn.open_bi().await?;
    if hops.framed {
        send.write_all(&frame(&data)?).await?;
        send.finish()?;
        return Ok(Bytes::from(read_framed(&mut recv, hops.read_fin).await?));
    }
    send.write_all(&data).await?;
    send.finish()?;
    Ok(Bytes::from(recv.read_to_end(MAX_REPLY).await?))
}

async fn accept_loop(endpoint: quinn::Endpoint, mode: Arc<AtomicU8>) {
    while let Some(incoming) = endpoint.accept().await {
        let mode = mode.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(echo_stream(send, recv, mode.load(Ordering::Relaxed)));
            }
        });
    }
}

/// Echoes one stream. Failures reach the client as a reset or a short reply.
async fn echo_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream, mode: u8) {
    let request = if mode & FRAMED != 0 {
        read_framed(&mut recv, mode & READ_FIN != 0).await.ok()
    } else {
        recv.read_to_end(MAX_REPLY).await.ok()
    };
    let Some(mut data) = request else { return };
    if mode & HANDLER_TASK != 0 {
        match tokio::spawn(async move { data }).await {
            Ok(d) => data = d,
            Err(_) => return,
        }
    }
    let reply = if mode & FRAMED != 0 {
        match frame(&data) {
            Ok(f) => f,
            Err(_) => return,
        }
    } else {
        Bytes::from(data)
    };
    if send.write_all(&reply).await.is_ok() {
        let _ = send.finish();
    }
}
