//! A minimal DER reader that finds the Ed25519 public key in an X.509 certificate.
//!
//! Pure logic, no I/O. We parse the structure properly (rather than searching for a byte
//! pattern) so that a crafted certificate cannot smuggle another node's key into, say,
//! its subject name and have us mistake it for the certificate's real key.

use crate::identity::{NodeId, NODE_ID_LEN};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xa0;
/// 1.3.101.112, id-Ed25519.
const ED25519_OID: [u8; 3] = [0x2b, 0x65, 0x70];

/// Why a certificate was not accepted as a memmesh node certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The DER structure is truncated or malformed.
    #[error("malformed certificate DER")]
    Malformed,
    /// The certificate's key is not an Ed25519 key.
    #[error("certificate key is not Ed25519")]
    NotEd25519,
}

/// Reads one TLV at the front of `input`: returns (tag, content, rest).
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let (&tag, rest) = input.split_first().ok_or(CertError::Malformed)?;
    let (&first, rest) = rest.split_first().ok_or(CertError::Malformed)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(CertError::Malformed);
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(CertError::Malformed);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Reads a TLV that must carry `expected` as its tag.
fn expect_tlv(input: &[u8], expected: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (tag, content, rest) = read_tlv(input)?;
    if tag != expected {
        return Err(CertError::Malformed);
    }
    Ok((content, rest))
}

/// Extracts the Ed25519 public key (the [`NodeId`]) from a DER X.509 certificate.
pub fn node_id_from_cert(cert_der: &[u8]) -> Result<NodeId, CertError> {
    let (cert, _) = expect_tlv(cert_der, SEQUENCE)?;
    let (tbs, _) = expect_tlv(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = expect_tlv(rest, VERSION_TAG)?.1;
    }
    rest = expect_tlv(rest, INTEGER)?.1; // serial number
    rest = expect_tlv(rest, SEQUENCE)?.1; // signature algorithm
    rest = expect_tlv(rest, SEQUENCE)?.1; // issuer
    rest = expect_tlv(rest, SEQUENCE)?.1; // validity
    rest = expect_tlv(rest, SEQUENCE)?.1; // subject
    let (spki, _) = expect_tlv(rest, SEQUENCE)?;
    let (alg, spki_rest) = expect_tlv(spki, SEQUENCE)?;
    let (oid, _) = expect_tlv(alg, OID)?;
    if oid != ED25519_OID {
        return Err(CertError::NotEd25519);
    }
    let (bits, _) = expect_tlv(spki_rest, BIT_STRING)?;
    match bits.split_first() {
        Some((0, key)) if key.len() == NODE_ID_LEN => {
            NodeId::from_slice(key).map_err(|_| CertError::Malformed)
        }
        _ => Err(CertError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::transport::tls::self_signed_cert;
    use proptest::prelude::*;

    #[test]
    fn finds_the_key_of_our_own_certificates() {
        let key = Keypair::generate().unwrap();
        let cert = self_signed_cert(&key).unwrap();
        assert_eq!(node_id_from_cert(&cert).unwrap(), key.node_id());
    }

    #[test]
    fn every_truncation_is_rejected_cleanly() {
        let key = Keypair::generate().unwrap();
        let cert = self_signed_cert(&key).unwrap();
        for len in 0..cert.len() {
            // Must not panic; the key lives near the middle, so a short prefix fails.
            let _ = node_id_from_cert(&cert[..len]);
        }
        assert!(node_id_from_cert(&cert[..cert.len() / 4]).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = node_id_from_cert(&bytes);
        }

        #[test]
        fn mutated_certificates_never_panic(idx in 0usize..400, val in any::<u8>()) {
            let key = Keypair::generate().unwrap();
            let mut cert = self_signed_cert(&key).unwrap();
            let i = idx % cert.len();
            cert[i] = val;
            let _ = node_id_from_cert(&cert);
        }
    }
}
