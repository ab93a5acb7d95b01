//! The anchor: a bare quinn 0.11 echo with memmesh's transport settings and TLS
//! configuration, one bidirectional stream per request (write the payload, finish, read
//! to the end), as memmesh does, minus memmesh's framing, handshake and dispatch.

use std::net::SocketAddr;
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
        server_rt.spawn(accept_loop(server.clone()));
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
        })
    }

    /// The client's runtime, where the load tasks run.
    pub fn handle(&self) -> Handle {
        self.client_rt.handle().clone()
    }

    /// One request: a fresh bidirectional stream, the payload written and finished, the
    /// reply read to its end.
    pub fn call(&self) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
        let conn = self.conn.clone();
        move |data| {
            let conn = conn.clone();
            Box::pin(async move {
                let (mut send, mut recv) = conn.open_bi().await?;
                send.write_all(&data).await?;
                send.finish()?;
                Ok(Bytes::from(recv.read_to_end(MAX_REPLY).await?))
            })
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

async fn accept_loop(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(echo_stream(send, recv));
            }
        });
    }
}

/// Echoes one stream. Failures reach the client as a reset or a short reply.
async fn echo_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let Ok(data) = recv.read_to_end(MAX_REPLY).await else {
        return;
    };
    if send.write_all(&data).await.is_ok() {
        let _ = send.finish();
    }
}
