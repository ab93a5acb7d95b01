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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::{digest, hmac};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use crate::error::{Error, ErrorKind, Result};

/// The exporter label of the authentication exchange.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-memmesh-cluster-auth";

/// KDF salt: fixed and public (its job is to make precomputed tables for other
/// applications useless, and to version the derivation). Changing it, or any KDF
/// parameter, changes every cluster key: it is a protocol change.
pub const KDF_SALT: &[u8] = b"memmesh cluster key v2 argon2id";
/// Argon2id memory cost in KiB: 32 MiB (above OWASP's 19 MiB minimum for two passes).
/// Derived once per node start: measured 70-170 ms on one core of this 2-core CI machine
/// (idle to loaded), debug and release alike since dependencies are optimised in debug
/// builds; 64 MiB took 300-370 ms when loaded, too close to the 0.5 s start budget.
pub const KDF_MEMORY_KIB: u32 = 32 * 1024;
/// Argon2id passes over the memory.
pub const KDF_ITERATIONS: u32 = 2;
/// Argon2id lanes (1: the node derives its key once, on one thread).
pub const KDF_LANES: u32 = 1;
/// Length of a cluster secret, in bytes, above which it is refused.
pub const MAX_SECRET_LEN: usize = 1024;
/// A secret shorter than this (in bytes) is reported as weak.
pub const WEAK_SECRET_MIN_LEN: usize = 16;
/// Bytes of the mDNS cluster tag (shown as hex): enough to tell clusters on one LAN apart
/// (two clusters share a tag with probability 1/65536; their nodes then try each other
/// and fail the PAKE), too few to confirm a guess of the secret.
pub const TAG_BYTES: usize = 2;
/// Length of the secrets `memmesh secret new` prints, in random bytes.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// Failed authentications a source IP may accumulate before it is refused for a while.
pub const AUTH_FAILURE_BURST: u32 = 20;
/// Each failed authentication from a source blocks it for this long once its burst is
/// used up (so a source gets at most one guess per this interval, sustained).
pub const AUTH_FAILURE_INTERVAL: Duration = Duration::from_secs(3);
/// Sources tracked by the failure limiter (the oldest recovered entry is dropped first).
pub const AUTH_FAILURE_SOURCES: usize = 4096;

/// How many derived keys a process keeps (a process that starts several nodes with one
/// secret, or tests, pay for the KDF once).
const KDF_MEMO: usize = 8;

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
        Ok(Self::from_derived(derive_memo(secret)?.to_vec(), true))
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

    /// Starts the PAKE for `role` on a connection whose exporter value is `exporter`.
    pub fn start(&self, role: Role, exporter: &[u8; 32]) -> Pake {
        let password = Password::new(self.derived.as_slice());
        let (id_a, id_b) = (
            identity(Role::Client, exporter),
            identity(Role::Server, exporter),
        );
        let (state, msg) = match role {
            Role::Client => Spake2::<Ed25519Group>::start_a(&password, &id_a, &id_b),
            Role::Server => Spake2::<Ed25519Group>::start_b(&password, &id_a, &id_b),
        };
        let mut message = [0u8; 32];
        // spake2 prefixes the 32-byte point with a side byte, implied here by the role.
        if let Some(point) = msg.get(1..33) {
            message.copy_from_slice(point);
        }
        Pake {
            role,
            exporter: *exporter,
            state,
            message,
        }
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

fn identity(role: Role, exporter: &[u8; 32]) -> Identity {
    let mut id = match role {
        Role::Client => b"memmesh/2 client".to_vec(),
        Role::Server => b"memmesh/2 server".to_vec(),
    };
    id.extend_from_slice(exporter);
    Identity::new(&id)
}

/// One side's PAKE in progress.
pub struct Pake {
    role: Role,
    exporter: [u8; 32],
    state: Spake2<Ed25519Group>,
    message: [u8; 32],
}

impl std::fmt::Debug for Pake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pake({:?})", self.role)
    }
}

impl Pake {
    /// The message to send to the peer (a curve point blinded by the secret: it reveals
    /// nothing that can be tested against a guess of the secret).
    pub fn message(&self) -> [u8; 32] {
        self.message
    }

    /// Completes the exchange with the peer's message. Fails (`Unauthorized`) only when
    /// that message is not a curve point; a wrong secret shows at the confirmation.
    pub fn finish(self, peer: &[u8; 32]) -> Result<Session> {
        let side = match self.role {
            Role::Client => 0x42, // the peer is side B
            Role::Server => 0x41, // the peer is side A
        };
        let mut msg = Vec::with_capacity(33);
        msg.push(side);
        msg.extend_from_slice(peer);
        let key = self
            .state
            .finish(&msg)
            .map_err(|e| Error::new(ErrorKind::Unauthorized, format!("bad PAKE message: {e}")))?;
        Ok(Session {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            exporter: self.exporter,
        })
    }
}

/// The shared key of a completed PAKE; both sides confirm they derived the same one.
pub struct Session {
    key: hmac::Key,
    exporter: [u8; 32],
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

impl Session {
    /// The confirmation `role` sends: an HMAC under the PAKE key, bound to the connection.
    pub fn confirmation(&self, role: Role) -> [u8; 32] {
        let tag = hmac::sign(&self.key, &confirm_message(role, &self.exporter));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Checks the peer's confirmation (constant time); `role` is the peer's role.
    pub fn verify(&self, role: Role, confirmation: &[u8; 32]) -> bool {
        hmac::verify(
            &self.key,
            &confirm_message(role, &self.exporter),
            confirmation,
        )
        .is_ok()
    }
}

fn confirm_message(role: Role, exporter: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(match role {
        Role::Client => b"memmesh/2 confirm client::",
        Role::Server => b"memmesh/2 confirm server::",
    });
    m.extend_from_slice(exporter);
    m
}

/// Argon2id of `secret` with the fixed parameters above.
pub fn kdf(secret: &[u8]) -> Result<[u8; 32]> {
    if secret.len() > MAX_SECRET_LEN {
        return Err(Error::invalid(format!(
            "the cluster secret is {} bytes long, at most {MAX_SECRET_LEN}",
            secret.len()
        )));
    }
    let params = argon2::Params::new(KDF_MEMORY_KIB, KDF_ITERATIONS, KDF_LANES, Some(32))
        .map_err(|e| Error::internal(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(secret, KDF_SALT, &mut out)
        .map_err(|e| Error::internal(format!("argon2: {e}")))?;
    Ok(out)
}

/// [`kdf`], remembered for the last few secrets of this process (by their SHA-256).
fn derive_memo(secret: &[u8]) -> Result<[u8; 32]> {
    static MEMO: Mutex<Vec<([u8; 32], [u8; 32])>> = Mutex::new(Vec::new());
    let mut id = [0u8; 32];
    id.copy_from_slice(digest::digest(&digest::SHA256, secret).as_ref());
    let found = MEMO
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, v)| *v);
    if let Some(v) = found {
        return Ok(v);
    }
    let derived = kdf(secret)?;
    let mut memo = MEMO.lock().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= KDF_MEMO {
        memo.remove(0);
    }
    memo.push((id, derived));
    Ok(derived)
}

/// Why `secret` is weak, if it looks so (a heuristic: it cannot see that a long
/// passphrase is a famous quote). Weak: shorter than [`WEAK_SECRET_MIN_LEN`] bytes, fewer
/// than 8 distinct bytes, or a short pattern repeated.
pub fn weakness(secret: &[u8]) -> Option<String> {
    if secret.is_empty() {
        return None;
    }
    if secret.len() < WEAK_SECRET_MIN_LEN {
        return Some(format!(
            "it is {} bytes long (fewer than {WEAK_SECRET_MIN_LEN})",
            secret.len()
        ));
    }
    let mut seen = [false; 256];
    for b in secret {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    if distinct < 8 {
        return Some(format!("it has only {distinct} distinct characters"));
    }
    if let Some(p) = (1..=secret.len() / 2).find(|&p| {
        secret
            .iter()
            .enumerate()
            .skip(p)
            .all(|(i, b)| secret.get(i - p) == Some(b))
    }) {
        return Some(format!("it repeats a {p}-character pattern"));
    }
    None
}

/// A new high-entropy secret: [`GENERATED_SECRET_BYTES`] random bytes in lowercase hex.
pub fn generate_secret() -> Result<String> {
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::internal("the system random generator failed"))?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

/// The exporter value of a QUIC connection (RFC 5705 via TLS 1.3).
pub fn exporter(conn: &quinn::Connection) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| Error::new(ErrorKind::Internal, "TLS exporter unavailable"))?;
    Ok(out)
}

/// The source an authentication failure is charged to: an IPv4 address, or an IPv6 /64
/// (one host usually holds a whole /64).
fn source(ip: IpAddr) -> [u8; 8] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, 0, 0, 0, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(v6) => {
            let mut out = [0u8; 8];
            out.copy_from_slice(&v6.octets()[..8]);
            out
        }
    }
}

/// Bounds online guessing: each failed authentication from a source pushes its
/// "theoretical arrival time" [`AUTH_FAILURE_INTERVAL`] later (GCRA); a source whose
/// time runs more than [`AUTH_FAILURE_BURST`] intervals ahead of now is refused until
/// it catches up. Pure logic: the caller passes `now`.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    sources: HashMap<[u8; 8], Instant>,
}

impl FailureLimiter {
    fn window() -> Duration {
        AUTH_FAILURE_INTERVAL.saturating_mul(AUTH_FAILURE_BURST)
    }

    /// Whether `ip` may try to authenticate at `now`.
    pub fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        match self.sources.get(&source(ip)) {
            // Fewer than the burst of failures still outstanding.
            Some(tat) => {
                tat.saturating_duration_since(now)
                    .saturating_add(AUTH_FAILURE_INTERVAL)
                    <= Self::window()
            }
            None => true,
        }
    }

    /// Records a failure of `ip` at `now`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        let key = source(ip);
        if !self.sources.contains_key(&key) && self.sources.len() >= AUTH_FAILURE_SOURCES {
            self.sources.retain(|_, tat| *tat > now);
            if self.sources.len() >= AUTH_FAILURE_SOURCES {
                if let Some(oldest) = self
                    .sources
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| *k)
                {
                    self.sources.remove(&oldest);
                }
            }
        }
        let tat = self.sources.entry(key).or_insert(now);
        let base = (*tat).max(now);
        *tat = base.checked_add(AUTH_FAILURE_INTERVAL).unwrap_or(base);
    }

    /// Sources currently tracked.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a full exchange between `a` (client) and `b` (server) and returns whether
    /// each side accepted the other's confirmation.
    fn exchange(a: &ClusterKey, b: &ClusterKey, exp_a: [u8; 32], exp_b: [u8; 32]) -> (bool, bool) {
        let pa = a.start(Role::Client, &exp_a);
        let pb = b.start(Role::Server, &exp_b);
        let (ma, mb) = (pa.message(), pb.message());
        let sa = pa.finish(&mb).unwrap();
        let sb = pb.finish(&ma).unwrap();
        (
            sa.verify(Role::Server, &sb.confirmation(Role::Server)),
            sb.verify(Role::Client, &sa.confirmation(Role::Client)),
        )
    }

    #[test]
    fn the_pake_succeeds_only_with_the_same_secret_and_connection() {
        let a = ClusterKey::new(Some(b"a long enough test secret"));
        let a2 = ClusterKey::new(Some(b"a long enough test secret"));
        let b = ClusterKey::new(Some(b"another test secret, also long"));
        let open = ClusterKey::new(None);
        let exp = [7u8; 32];
        assert_eq!(exchange(&a, &a2, exp, exp), (true, true));
        assert_eq!(exchange(&open, &open, exp, exp), (true, true));
        assert_eq!(exchange(&a, &b, exp, exp), (false, false));
        assert_eq!(exchange(&a, &open, exp, exp), (false, false));
        // Another connection (a relay between two TLS sessions) fails.
        assert_eq!(exchange(&a, &a2, exp, [8u8; 32]), (false, false));
    }

    #[test]
    fn confirmations_cannot_be_reflected_and_messages_are_fresh() {
        let k = ClusterKey::new(Some(b"a long enough test secret"));
        let exp = [1u8; 32];
        let pa = k.start(Role::Client, &exp);
        let pb = k.start(Role::Server, &exp);
        let again = k.start(Role::Client, &exp);
        // Randomised: the same secret on the same connection never gives the same message.
        assert_ne!(pa.message(), again.message());
        let (ma, mb) = (pa.message(), pb.message());
        let sa = pa.finish(&mb).unwrap();
        let sb = pb.finish(&ma).unwrap();
        assert!(!sa.verify(Role::Server, &sa.confirmation(Role::Client)));
        assert!(!sb.verify(Role::Client, &sb.confirmation(Role::Server)));
        // A message that is no curve point is refused.
        assert!((0u8..=255).any(|i| k.start(Role::Server, &exp).finish(&[i; 32]).is_err()));
    }

    #[test]
    fn kdf_parameters_are_the_documented_ones() {
        assert_eq!(KDF_SALT, b"memmesh cluster key v2 argon2id");
        assert_eq!(
            (KDF_MEMORY_KIB, KDF_ITERATIONS, KDF_LANES),
            (32 * 1024, 2, 1)
        );
        // A known answer: any change of parameters or salt shows here (and is a
        // protocol change: every cluster key changes).
        let k = kdf(b"correct horse battery staple").unwrap();
        assert_eq!(
            data_encoding::HEXLOWER.encode(&k),
            KNOWN_ANSWER,
            "the KDF output changed: a protocol change"
        );
        assert_ne!(kdf(b"correct horse battery stapler").unwrap(), k);
        assert!(kdf(&vec![b'x'; MAX_SECRET_LEN + 1]).is_err());
        assert!(ClusterKey::derive(Some(&vec![b'x'; MAX_SECRET_LEN + 1])).is_err());
    }

    /// Argon2id(secret, KDF_SALT, m = 32 MiB, t = 2, p = 1), checked against the reference
    /// implementation (argon2-cffi `hash_secret_raw`).
    const KNOWN_ANSWER: &str = "07cbb41827c410f43534aea9f99a4e4505033ede2eb0a3bf80b9eda27575aab7";

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
    fn weak_secrets_are_recognised() {
        assert!(weakness(b"").is_none());
        assert!(weakness(b"s3cret").unwrap().contains("fewer than 16"));
        assert!(weakness(b"aaaaaaaaaaaaaaaaaaaaaaaa")
            .unwrap()
            .contains("distinct"));
        assert!(weakness(b"passwordpassword").is_some());
        assert!(weakness(b"abcdefgh12abcdefgh12")
            .unwrap()
            .contains("repeats"));
        assert!(weakness(b"correct horse battery staple").is_none());
        let generated = generate_secret().unwrap();
        assert_eq!(generated.len(), 2 * GENERATED_SECRET_BYTES);
        assert!(weakness(generated.as_bytes()).is_none());
        assert_ne!(generate_secret().unwrap(), generated);
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

    #[test]
    fn failures_are_rate_limited_per_source() {
        let mut l = FailureLimiter::default();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..AUTH_FAILURE_BURST {
            assert!(l.allowed(a, t0));
            l.failed(a, t0);
        }
        assert!(!l.allowed(a, t0), "the burst is used up");
        assert!(l.allowed(b, t0), "another source is not affected");
        assert!(
            l.allowed(a, t0 + AUTH_FAILURE_INTERVAL),
            "one more try per interval"
        );
        // An IPv6 /64 is one source.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..AUTH_FAILURE_BURST {
            l.failed(v6a, t0);
        }
        assert!(!l.allowed(v6b, t0));
        // Bounded: many sources never grow the table past its limit.
        for i in 0..(AUTH_FAILURE_SOURCES as u32 + 100) {
            l.failed(IpAddr::V4(std::net::Ipv4Addr::from(i)), t0);
        }
        assert!(l.len() <= AUTH_FAILURE_SOURCES);
    }
}
