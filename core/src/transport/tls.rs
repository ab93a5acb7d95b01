//! TLS 1.3 configuration bound to the node's Ed25519 key, with NodeId pinning.
//!
//! Every node presents a self-signed certificate carrying its Ed25519 public key. Trust
//! does not come from a CA: the client pins the NodeId it dialled (carried as the TLS
//! server name) and the server learns the client's NodeId from its certificate. The
//! handshake signature proves possession of the private key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::Result;
use crate::identity::{Keypair, NodeId};
use crate::transport::der::node_id_from_cert;
use crate::transport::errors::TransportError;

/// The ALPN protocol identifier of memmesh.
pub const ALPN: &[u8] = b"memmesh/1";

/// The TLS server name used when dialling an address without knowing its NodeId.
pub const UNPINNED_SERVER_NAME: &str = "unpinned.memmesh.invalid";

/// The crypto provider memmesh uses everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Creates a self-signed DER certificate for `key`.
pub fn self_signed_cert(key: &Keypair) -> Result<Vec<u8>> {
    let pair = rcgen::KeyPair::try_from(key.pkcs8_der()).map_err(|source| {
        TransportError::Certificate {
            step: "loading node key into rcgen",
            source,
        }
    })?;
    let params =
        rcgen::CertificateParams::new(vec![key.node_id().to_string()]).map_err(|source| {
            TransportError::Certificate {
                step: "certificate parameters",
                source,
            }
        })?;
    let cert = params
        .self_signed(&pair)
        .map_err(|source| TransportError::Certificate {
            step: "self-signing certificate",
            source,
        })?;
    Ok(cert.der().to_vec())
}

/// Builds the rustls server configuration (client certificates required).
pub fn server_config(key: &Keypair) -> Result<rustls::ServerConfig> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier::new(&provider));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TransportError::Tls {
            step: "tls versions",
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain(key)?, private_key(key))
        .map_err(|source| TransportError::Tls {
            step: "tls server certificate",
            source,
        })?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

/// Builds the rustls client configuration (presents our certificate, pins the server).
pub fn client_config(key: &Keypair) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier::new(&provider));
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TransportError::Tls {
            step: "tls versions",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(cert_chain(key)?, private_key(key))
        .map_err(|source| TransportError::Tls {
            step: "tls client certificate",
            source,
        })?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(cfg)
}

/// The server name to dial: the pinned NodeId, or the unpinned sentinel.
pub fn server_name_for(expected: Option<NodeId>) -> String {
    expected
        .map(|id| id.to_string())
        .unwrap_or_else(|| UNPINNED_SERVER_NAME.to_string())
}

/// Reads the peer's NodeId from the certificate chain quinn reports for a connection.
pub fn peer_node_id(conn: &quinn::Connection) -> Option<NodeId> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast_ref::<Vec<CertificateDer<'static>>>()?;
    node_id_from_cert(certs.first()?.as_ref()).ok()
}

fn cert_chain(key: &Keypair) -> Result<Vec<CertificateDer<'static>>> {
    Ok(vec![CertificateDer::from(self_signed_cert(key)?)])
}

fn private_key(key: &Keypair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()))
}

/// Verifies both sides of a memmesh handshake: Ed25519 certificates only, and on the
/// client side, a certificate whose key is the NodeId that was dialled.
#[derive(Debug)]
struct PeerVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn verify13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn check_cert(cert: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
        node_id_from_cert(cert.as_ref()).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        })
    }
}

/// TLS 1.2 is never offered; a peer that tries it is incompatible.
fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

/// The peer's key did not match the NodeId that was dialled.
#[derive(Debug, thiserror::Error)]
#[error("peer presented key {actual} but {expected} was expected")]
struct PinMismatch {
    expected: String,
    actual: NodeId,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = Self::check_cert(end_entity)?;
        let name = match server_name {
            ServerName::DnsName(name) => name.as_ref().to_string(),
            other => format!("{other:?}"),
        };
        if name == UNPINNED_SERVER_NAME {
            return Ok(ServerCertVerified::assertion());
        }
        match name.parse::<NodeId>() {
            Ok(expected) if expected == actual => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch {
                    expected: name,
                    actual,
                })),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::check_cert(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
