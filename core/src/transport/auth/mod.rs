//! Who gets in: the cluster secret and the admission policy (ADR 0002, ADR 0014).
//!
//! - The secret is stretched once, at start, by a memory-hard KDF (Argon2id with fixed,
//!   versioned parameters: [`KDF_SALT`], [`KDF_MEMORY_KIB`], [`KDF_ITERATIONS`]), so every
//!   guess of an attacker costs one Argon2id evaluation.
//! - Both sides then prove they hold it with a PAKE (SPAKE2 over Ed25519) bound to the TLS
//!   exporter value of *this* connection, followed by key confirmation. Neither side ever
//!   sends a value that can be tested offline against guesses of the secret: a peer that
//!   does not hold it learns at most whether its one guess per connection was right.
//! - The public mDNS tag is derived from the KDF output and is only 16 bits long.
//! - Without a secret a node is in *protected mode* unless it is explicitly `open`: it
//!   talks to loopback peers only.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ring::hmac;

use crate::error::{Classify, ErrorKind, Result};

mod kdf;
mod limiter;
mod pake;

pub use kdf::{
    generate_secret, kdf, weakness, GENERATED_SECRET_BYTES, KDF_ITERATIONS, KDF_LANES,
    KDF_MEMORY_KIB, KDF_SALT, MAX_SECRET_LEN, WEAK_SECRET_MIN_LEN,
};
pub use limiter::{
    FailureLimiter, AUTH_FAILURE_BURST, AUTH_FAILURE_INTERVAL, AUTH_FAILURE_SOURCES,
};
pub use pake::{exporter, Pake, Session};

/// Bytes of the mDNS cluster tag (shown as hex): enough to tell clusters on one LAN apart
/// (two clusters share a tag with probability 1/65536; their nodes then try each other
/// and fail the PAKE), too few to confirm a guess of the secret.
pub const TAG_BYTES: usize = 2;

/// What can go wrong deriving the cluster key or proving it to a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The secret is longer than [`MAX_SECRET_LEN`].
    #[error("the cluster secret is {len} bytes long, at most {MAX_SECRET_LEN}")]
    SecretTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Argon2 refused its parameters (a bug: they are constants).
    #[error("argon2 parameters: {0}")]
    KdfParams(#[source] argon2::Error),
    /// Argon2 failed.
    #[error("argon2: {0}")]
    Kdf(#[source] argon2::Error),
    /// The operating system's random generator failed (ring's error carries nothing
    /// more).
    #[error("the system random generator failed")]
    Random(#[source] ring::error::Unspecified),
    /// The peer's PAKE message is not a curve point.
    #[error("bad PAKE message: {0}")]
    BadPakeMessage(#[source] spake2::Error),
    /// The TLS session gave no exporter value.
    #[error("TLS exporter unavailable")]
    NoExporter,
}

impl Classify for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            AuthError::SecretTooLong { .. } => ErrorKind::InvalidInput,
            AuthError::BadPakeMessage(_) => ErrorKind::Unauthorized,
            AuthError::KdfParams(_)
            | AuthError::Kdf(_)
            | AuthError::Random(_)
            | AuthError::NoExporter => ErrorKind::Internal,
        }
    }
}

/// Which side of the connection produces a message (the two differ, so one side's
/// message cannot be reflected back as the other's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that dialled.
    Client,
    /// The side that accepted.
    Server,
}

/// The key derived from a cluster secret, and who this node lets in.
#[derive(Clone)]
pub struct ClusterKey {
    /// The KDF output (the PAKE password); empty for a node without a secret.
    derived: Arc<Vec<u8>>,
    has_secret: bool,
    open: bool,
    tag: String,
    limiter: Arc<Mutex<FailureLimiter>>,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClusterKey(tag={}, secret={}, open={})",
            self.tag, self.has_secret, self.open
        )
    }
}

impl ClusterKey {
    /// Derives the key from `secret` (`None` or empty: no secret, protected mode). A
    /// secret longer than [`MAX_SECRET_LEN`] gets a key nobody can match (use
    /// [`ClusterKey::derive`] to be told).
    pub fn new(secret: Option<&[u8]>) -> Self {
        Self::derive(secret).unwrap_or_else(|_| {
            let mut random = vec![0u8; 32];
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
            Self::from_derived(random, true)
        })
    }

    /// Derives the key from `secret`, refusing one longer than [`MAX_SECRET_LEN`].
    pub fn derive(secret: Option<&[u8]>) -> Result<Self> {
        let secret = secret.unwrap_or_default();
        if secret.is_empty() {
            return Ok(Self::from_derived(Vec::new(), false));
        }
        Ok(Self::from_derived(kdf::derive_memo(secret)?.to_vec(), true))
    }

    fn from_derived(derived: Vec<u8>, has_secret: bool) -> Self {
        let tag = if has_secret {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &derived);
            let t = hmac::sign(&key, b"memmesh cluster tag v2");
            data_encoding::HEXLOWER.encode(&t.as_ref()[..TAG_BYTES])
        } else {
            "open".to_string()
        };
        Self {
            derived: Arc::new(derived),
            has_secret,
            open: false,
            tag,
            limiter: Arc::new(Mutex::new(FailureLimiter::default())),
        }
    }

    /// Lets a node without a secret talk to non-loopback peers (`open = true`). Has no
    /// effect on a node with a secret, which admits whoever proves it.
    pub fn with_open(mut self, open: bool) -> Self {
        self.open = open;
        self
    }

    /// Whether a cluster secret is set.
    pub fn has_secret(&self) -> bool {
        self.has_secret
    }

    /// Whether the node is in protected mode: no secret and not `open`, so only loopback
    /// peers are accepted and dialled.
    pub fn protected(&self) -> bool {
        !self.has_secret && !self.open
    }

    /// Why a connection with a peer at `ip` is refused by the admission policy, if it is
    /// (protected mode and a non-loopback peer). Dialling an unspecified IP (`0.0.0.0`)
    /// reaches this machine, so it counts as loopback.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if !self.protected() || ip.is_loopback() || ip.is_unspecified() {
            return None;
        }
        Some(format!(
            "protected mode: a node without a cluster secret talks to loopback peers only \
             ({ip} is not); set the same cluster secret on every node (`memmesh secret new` \
             makes one) or set open = true to accept anyone"
        ))
    }

    /// A public tag that tells clusters apart on mDNS (`open` without a secret): 16 bits
    /// of an HMAC keyed by the KDF output, so testing a guess of the secret against it
    /// costs a full KDF evaluation and cannot confirm the guess.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Whether `ip` may try to authenticate now (it has not failed too often lately).
    pub fn may_try(&self, ip: IpAddr, now: Instant) -> bool {
        self.limiter().allowed(ip, now)
    }

    /// Records a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        self.limiter().failed(ip, now);
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, FailureLimiter> {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_short_and_comes_from_the_kdf_output() {
        let a = ClusterKey::new(Some(b"a long enough test secret"));
        let b = ClusterKey::new(Some(b"another test secret, also long"));
        assert_eq!(a.tag().len(), 2 * TAG_BYTES);
        assert_ne!(a.tag(), b.tag());
        assert_eq!(ClusterKey::new(None).tag(), "open");
        let derived = kdf(b"a long enough test secret").unwrap();
        let t = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &derived),
            b"memmesh cluster tag v2",
        );
        assert_eq!(a.tag(), data_encoding::HEXLOWER.encode(&t.as_ref()[..2]));
    }

    #[test]
    fn protected_mode_admits_loopback_only() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let lan: IpAddr = "10.0.0.2".parse().unwrap();
        let none = ClusterKey::new(None);
        assert!(none.protected());
        assert!(none.refusal(lo).is_none() && none.refusal(lo6).is_none());
        assert!(none.refusal(mapped).is_none());
        let why = none.refusal(lan).unwrap();
        assert!(
            why.contains("protected mode") && why.contains("open = true"),
            "{why}"
        );
        assert!(none.clone().with_open(true).refusal(lan).is_none());
        let secret = ClusterKey::new(Some(b"a long enough test secret"));
        assert!(!secret.protected() && secret.refusal(lan).is_none());
    }
}
