//! Creating the node's quinn endpoint (server and client in one socket).

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::error::{Error, Result};
use crate::identity::Keypair;
use crate::transport::tls;
use crate::transport::tuning::TransportTuning;

/// Builds the endpoint bound to `addr`. Must run inside the node's tokio runtime.
pub fn make_endpoint(
    key: &Keypair,
    addr: SocketAddr,
    tuning: &TransportTuning,
) -> Result<quinn::Endpoint> {
    let transport = Arc::new(tuning.transport_config()?);

    let server_tls = QuicServerConfig::try_from(tls::server_config(key)?)
        .map_err(|e| Error::internal(format!("quic server tls: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_tls));
    server.transport_config(transport.clone());

    let client_tls = QuicClientConfig::try_from(tls::client_config(key)?)
        .map_err(|e| Error::internal(format!("quic client tls: {e}")))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_tls));
    client.transport_config(transport);

    let socket = tuning.bind_socket(addr)?;
    let mut endpoint = quinn::Endpoint::new(
        tuning.endpoint_config()?,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| Error::from(e).context(format!("starting QUIC endpoint on {addr}")))?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}
