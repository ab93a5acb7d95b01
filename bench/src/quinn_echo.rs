//! The anchor: a bare quinn 0.11 echo with memmesh's transport settings and TLS
//! configuration, one bidirectional stream per request (write the payload, finish, read
//! to the end), as memmesh does, minus memmesh's framing, handshake and dispatch.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
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
    handler_task: Arc<AtomicBool>,
}

/// memmesh's per-request task structure, added to the bare exchange one piece at a time
/// to attribute the difference between memmesh and quinn (see `rpc-bench --only hops`).
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

impl QuinnPair {
    /// Starts the server and the client (each runtime with `threads` workers) and
    /// connects them. Call from a thread without an async runtime.
    pub fn start(threads: usize) -> Result<Self> {
        let tuning = TransportTuning::default();
        let transport = Arc::new(tuning.transport_config()?);
        let server_key = Keypair::generate()?;
        let client_key = Keypair::generate()?;

        let server_tls = QuicServerConfig::try_from(tls::server_config(&server_key)?)
            .context("quic server tls")?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_tls));
        server_config.transport_config(transport.clone());
        let client_tls = QuicClientConfig::try_from(tls::client_config(&client_key)?)
            .context("quic client tls")?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_tls));
        client_config.transport_config(transport);

        let server_rt = runtime(threads, "quinn-server")?;
        let client_rt = runtime(threads, "quinn-client")?;
        let server = endpoint(&server_rt, &tuning, Some(server_config))?;
        let addr = server.local_addr().context("reading the server address")?;
        let handler_task = Arc::new(AtomicBool::new(false));
        server_rt.spawn(accept_loop(server.clone(), handler_task.clone()));
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
            handler_task,
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

    /// [`QuinnPair::call`] with some of memmesh's task structure added (`hops` applies
    /// to every call until changed; the server side is shared by all callers).
    pub fn call_with(
        &self,
        hops: Hops,
    ) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        self.handler_task
            .store(hops.handler_task, Ordering::Relaxed);
        let conn = self.conn.clone();
        let handle = self.handle();
        move |data| {
            let exchange = exchange(conn.clone(), data);
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

async fn exchange(conn: quinn::Connection, data: Bytes) -> Result<Bytes> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(&data).await?;
    send.finish()?;
    Ok(Bytes::from(recv.read_to_end(MAX_REPLY).await?))
}

async fn accept_loop(endpoint: quinn::Endpoint, handler_task: Arc<AtomicBool>) {
    while let Some(incoming) = endpoint.accept().await {
        let handler_task = handler_task.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                let in_task = handler_task.load(Ordering::Relaxed);
                tokio::spawn(echo_stream(send, recv, in_task));
            }
        });
    }
}

/// Echoes one stream. Failures reach the client as a reset or a short reply.
async fn echo_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream, in_task: bool) {
    let Ok(mut data) = recv.read_to_end(MAX_REPLY).await else {
        return;
    };
    if in_task {
        match tokio::spawn(async move { data }).await {
            Ok(d) => data = d,
            Err(_) => return,
        }
    }
    if send.write_all(&data).await.is_ok() {
        let _ = send.finish();
    }
}
