//! Cluster-secret authentication: both sides prove they hold the secret by an
//! HMAC-SHA256 over the TLS exporter value of *this* connection, so a proof cannot be
//! replayed on another connection and the secret itself never crosses the wire.
//!
//! Nodes without a secret use an empty key: they can talk to each other, and never to a
//! node that has one.

use ring::hmac;

use crate::error::{Error, ErrorKind};

/// The exporter label of the authentication proof.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-memmesh-cluster-auth";

/// Which side of the connection produces a proof (the two proofs differ, so one side's
/// proof cannot be reflected back as the other's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that dialled.
    Client,
    /// The side that accepted.
    Server,
}

/// The HMAC key derived from a cluster secret.
#[derive(Clone)]
pub struct ClusterKey {
    key: hmac::Key,
    tag: String,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterKey(tag={})", self.tag)
    }
}

impl ClusterKey {
    /// Derives the key from `secret` (`None` or empty: the open cluster).
    pub fn new(secret: Option<&[u8]>) -> Self {
        let secret = secret.unwrap_or_default();
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let tag_bytes = hmac::sign(&key, b"memmesh cluster tag v1");
        let tag = if secret.is_empty() {
            "open".to_string()
        } else {
            data_encoding::HEXLOWER.encode(&tag_bytes.as_ref()[..8])
        };
        Self { key, tag }
    }

    /// A public tag that identifies the cluster without revealing the secret (for mDNS).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The proof for `role` given the connection's exporter value.
    pub fn proof(&self, role: Role, exporter: &[u8; 32]) -> [u8; 32] {
        let tag = hmac::sign(&self.key, &message(role, exporter));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Checks a peer's proof in constant time.
    pub fn verify(&self, role: Role, exporter: &[u8; 32], proof: &[u8; 32]) -> bool {
        hmac::verify(&self.key, &message(role, exporter), proof).is_ok()
    }
}

fn message(role: Role, exporter: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(match role {
        Role::Client => b"client::",
        Role::Server => b"server::",
    });
    m.extend_from_slice(exporter);
    m
}

/// The exporter value of a QUIC connection (RFC 5705 via TLS 1.3).
pub fn exporter(conn: &quinn::Connection) -> Result<[u8; 32], Error> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| Error::new(ErrorKind::Internal, "TLS exporter unavailable"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_only_with_the_same_secret_and_role() {
        let a = ClusterKey::new(Some(b"s3cret"));
        let b = ClusterKey::new(Some(b"other"));
        let open = ClusterKey::new(None);
        let exp = [7u8; 32];
        let p = a.proof(Role::Client, &exp);
        assert!(a.verify(Role::Client, &exp, &p));
        assert!(!a.verify(Role::Server, &exp, &p));
        assert!(!b.verify(Role::Client, &exp, &p));
        assert!(!open.verify(Role::Client, &exp, &p));
        assert!(!a.verify(Role::Client, &[8u8; 32], &p));
        assert_ne!(a.tag(), b.tag());
        assert_eq!(open.tag(), "open");
        assert!(!a.tag().contains("s3cret"));
    }
}
