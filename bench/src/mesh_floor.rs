//! The floor of a cluster forming on one machine (issue 19 target 5): N bare quinn
//! endpoints on 127.0.0.1, each on its own one-thread runtime (as membership-bench's nodes),
//! with memmesh's TLS configuration (mutual TLS 1.3, ed25519 certificates) and its loopback
//! transport settings, connect as a full mesh: every pair once, each connection then
//! carrying one 64-byte request and its echo (about a SWIM probe and its ack). A memmesh
//! member must hear every other member speak for itself before it shows it (ADR 0022), so
//! a converged cluster of N has at least these N(N-1)/2 connections; memmesh adds its own
//! handshake (PAKE), SWIM and gossip on top. The wall time and process CPU of this mesh
//! are what the transport alone costs on this machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use memmesh::transport::tls;
use memmesh::{Keypair, TransportTuning};
use tokio::runtime::Runtime;

use crate::quinn_echo::{endpoint, quinn_configs, runtime};
use crate::usage::Usage;

/// Dials one endpoint keeps under way at once.
pub const DIALS_AT_ONCE: usize = 8;

/// What a full mesh cost.
#[derive(Debug, Clone, Copy)]
pub struct MeshFloor {
    /// Endpoints.
    pub endpoints: usize,
    /// Connections made (n(n-1)/2).
    pub connections: usize,
    /// From the first dial to the last echo.
    pub wall: Duration,
    /// Process CPU time over that span (every thread).
    pub cpu: Option<Duration>,
}

struct Peer {
    rt: Runtime,
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    name: String,
}

fn peer(i: usize, tuning: &TransportTuning) -> Result<Peer> {
    let key = Keypair::generate()?;
    let (server, client) = quinn_configs(&key, Arc::new(tuning.loopback_transport_config()?))?;
    let rt = runtime(1, &format!("floor-{i}"))?;
    let mut endpoint = endpoint(&rt, tuning, Some(server))?;
    endpoint.set_default_client_config(client);
    let addr = endpoint.local_addr()?;
    rt.spawn(accept(endpoint.clone()));
    Ok(Peer {
        rt,
        endpoint,
        addr,
        name: tls::server_name_for(Some(key.node_id())),
    })
}

/// Answers every connection's requests with their echo.
async fn accept(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else {
                return;
            };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                tokio::spawn(async move {
                    if let Ok(data) = recv.read_to_end(1024).await {
                        let _ = send.write_all(&data).await;
                        let _ = send.finish();
                        let _ = send.stopped().await;
                    }
                });
            }
        });
    }
}

/// One connection from `endpoint` to `to` and one echoed request on it.
async fn connect_and_echo(
    endpoint: quinn::Endpoint,
    to: SocketAddr,
    name: String,
) -> Result<quinn::Connection> {
    let conn = endpoint.connect(to, &name)?.await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let payload = [7u8; 64];
    send.write_all(&payload).await?;
    send.finish()?;
    let back = recv.read_to_end(1024).await?;
    anyhow::ensure!(back == payload, "the echo differs");
    Ok(conn)
}

/// Builds a full mesh of `n` endpoints and measures it. Call from a thread without an
/// async runtime (each endpoint gets its own).
pub fn full_mesh(n: usize) -> Result<MeshFloor> {
    let tuning = TransportTuning::default();
    let peers = (0..n)
        .map(|i| peer(i, &tuning))
        .collect::<Result<Vec<_>>>()?;
    let targets: Vec<(SocketAddr, String)> =
        peers.iter().map(|p| (p.addr, p.name.clone())).collect();
    let before = Usage::now();
    let start = Instant::now();
    // Endpoint i dials every endpoint after it, DIALS_AT_ONCE at a time.
    let handles: Vec<_> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let endpoint = p.endpoint.clone();
            let to: Vec<(SocketAddr, String)> = targets[i + 1..].to_vec();
            p.rt.spawn(async move {
                futures::stream::iter(to)
                    .map(|(addr, name)| connect_and_echo(endpoint.clone(), addr, name))
                    .buffer_unordered(DIALS_AT_ONCE)
                    .collect::<Vec<_>>()
                    .await
            })
        })
        .collect();
    let mut kept = Vec::new();
    for h in handles {
        for conn in futures::executor::block_on(h).context("a dialling task failed")? {
            kept.push(conn?);
        }
    }
    let wall = start.elapsed();
    let cpu = match (Usage::now(), before) {
        (Some(now), Some(before)) => Some(now.since(before).cpu),
        _ => None,
    };
    let connections = kept.len();
    for c in kept {
        c.close(0u32.into(), b"done");
    }
    for p in peers {
        p.endpoint.close(0u32.into(), b"done");
        p.rt.shutdown_timeout(Duration::from_secs(1));
    }
    Ok(MeshFloor {
        endpoints: n,
        connections,
        wall,
        cpu,
    })
}
