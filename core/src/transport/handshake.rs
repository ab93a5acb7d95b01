//! The memmesh handshake that follows the TLS handshake on every connection (ADR 0002).
//!
//! On the first bidirectional stream, every message a [`Hello`] frame:
//!
//! 1. client → server: the client's PAKE message (no name, no addresses);
//! 2. server → client: the server's PAKE message, then the server's key confirmation;
//! 3. client → server: the client's key confirmation, with its name and addresses, sent
//!    only once the server's confirmation verified;
//! 4. server → client: the server's name and addresses, once the client's verified.
//!
//! A PAKE message reveals nothing that can be tested against a guess of the secret, and a
//! confirmation is only ever sent to a peer that has sent its own PAKE message: a peer
//! without the secret gets one guess per connection, checked online. A side whose check
//! fails closes the connection with [`CLOSE_UNAUTHORIZED`] before any service stream is
//! accepted. Before any of this, protected mode (no secret, not `open`) refuses
//! non-loopback peers, and a source that failed too often lately is refused.
//!
//! **Outsiders** (ADR 0028). A node dialling a peer it lists in `trusted_peers` skips
//! the PAKE: its first frame carries [`OUTSIDER`] (all zeros, never an honest PAKE
//! message) instead. The server admits it only if it lists the client in its own
//! `trusted_peers` (trust [`Trust::Outsider`]) or serves commons ([`Trust::Commons`]),
//! and refuses it otherwise; both sides are authenticated by their TLS keys alone, then
//! exchange names and addresses (server first). Every connection's [`PeerHello`]
//! carries the trust level this side gave the peer.
//!
//! Hello metadata is bounded: a name of at most [`MAX_NAME_LEN`] bytes, at most
//! [`MAX_HELLO_ADDRS`] addresses (ours are trimmed to that), and implausible addresses
//! (port 0, multicast, broadcast, loopback from a non-loopback peer) are dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use tracing::{debug, warn};

use crate::error::{Classify, Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::transport::auth::{exporter, ClusterKey, Role};
use crate::transport::errors::{connection_error, CLOSE_PROTOCOL, CLOSE_UNAUTHORIZED};
use crate::transport::tls::peer_node_id;
use crate::transport::trust::{Trust, TrustPolicy};
use crate::wire::codec::FrameLimits;
use crate::wire::io::{read_frame, write_frame};
use crate::wire::{Hello, WIRE_VERSION};

/// Longest node name a peer may announce, in bytes (the same bound as `NodeConfig::name`).
pub const MAX_NAME_LEN: usize = 255;
/// Most listen addresses a peer may announce in its hello.
pub const MAX_HELLO_ADDRS: usize = 16;

/// Hello frames are small: refuse anything larger (a full hello is ~750 bytes).
const HELLO_LIMITS: FrameLimits = FrameLimits {
    max_header: 2 * 1024,
    max_body: 0,
};

/// What this node tells peers about itself.
#[derive(Debug, Clone)]
pub struct LocalHello {
    /// The cluster key and admission policy.
    pub key: ClusterKey,
    /// Our name.
    pub name: String,
    /// Our listen addresses.
    pub addrs: Vec<SocketAddr>,
    /// Our devices, trusted outsiders and whether we serve commons.
    pub trust: TrustPolicy,
    /// A random number drawn when the node starts ([`Hello::boot`]).
    pub boot: u64,
}

/// The first frame's proof of a client that asks to be admitted as an outsider, without
/// the cluster secret (an honest PAKE message is a random curve point, never all zeros).
pub const OUTSIDER: [u8; 32] = [0u8; 32];

/// What a peer told us about itself, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// The peer's NodeId (from its TLS certificate).
    pub id: NodeId,
    /// The peer's name.
    pub name: String,
    /// The peer's listen addresses (validated, at most [`MAX_HELLO_ADDRS`]).
    pub addrs: Vec<SocketAddr>,
    /// The trust level this node gives the peer on this connection.
    pub trust: Trust,
    /// The peer's per-process random number ([`Hello::boot`]).
    pub boot: u64,
    /// A value both ends derive alike from this connection's TLS exporter: the
    /// tie-break between two connections of a simultaneous dial (`transport::duplicate`).
    pub rank: u128,
}

/// A frame of the PAKE exchange (no metadata).
fn frame(proof: [u8; 32]) -> Hello {
    Hello {
        version: WIRE_VERSION,
        proof,
        name: String::new(),
        addrs: Vec::new(),
        boot: 0,
    }
}

/// A frame that carries our metadata: name, addresses, boot number.
fn meta_frame(proof: [u8; 32], local: &LocalHello) -> Hello {
    Hello {
        version: WIRE_VERSION,
        proof,
        name: truncate(&local.name, MAX_NAME_LEN).to_string(),
        addrs: local.addrs.iter().take(MAX_HELLO_ADDRS).copied().collect(),
        boot: local.boot,
    }
}

/// Draws a node's boot number ([`Hello::boot`]) from the system's random source.
pub fn draw_boot() -> Result<u64> {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| HandshakeError::Random)?;
    Ok(u64::from_le_bytes(b))
}

/// Label of the exporter value that ranks a connection (`PeerHello::rank`).
const RANK_LABEL: &[u8] = b"EXPORTER-memmesh-connection-rank";

/// The connection's rank: the same value at both ends, unpredictable to either alone.
fn rank(conn: &quinn::Connection) -> Result<u128> {
    let mut out = [0u8; 16];
    conn.export_keying_material(&mut out, RANK_LABEL, b"")
        .map_err(|_| refuse(conn, HandshakeError::NoExporter))?;
    Ok(u128::from_be_bytes(out))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The admission policy refuses the peer (protected mode), or its PAKE message is bad.
    #[error("{0}")]
    Refused(String),
    /// The peer's source failed authentication too often lately.
    #[error("too many failed authentications from this address: retry later")]
    TooManyFailures,
    /// A node without the cluster secret that this node does not list in
    /// `trusted_peers` (and this node does not serve commons).
    #[error("not a trusted peer: it does not hold the cluster secret and is not in trusted_peers")]
    NotTrusted,
    /// The key confirmation did not verify: the peer holds another secret.
    #[error("cluster secret mismatch")]
    SecretMismatch,
    /// The peer's TLS certificate carries no node id.
    #[error("peer presented no usable certificate")]
    NoCertificate,
    /// A hello frame could not be read or its metadata is out of bounds.
    #[error("bad hello: {}", .0.message())]
    BadHello(#[source] Error),
    /// The peer speaks another wire version.
    #[error("unsupported wire version")]
    WireVersion,
    /// The announced name is too long.
    #[error("peer name is {len} bytes long, at most {MAX_NAME_LEN}")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Too many addresses are announced.
    #[error("peer announced {count} addresses, at most {MAX_HELLO_ADDRS}")]
    TooManyAddrs {
        /// How many.
        count: usize,
    },
    /// The TLS session gave no exporter value to rank the connection by.
    #[error("the TLS session offers no exporter value")]
    NoExporter,
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl Classify for HandshakeError {
    fn kind(&self) -> ErrorKind {
        match self {
            HandshakeError::Refused(_)
            | HandshakeError::TooManyFailures
            | HandshakeError::SecretMismatch
            | HandshakeError::NotTrusted
            | HandshakeError::NoCertificate => ErrorKind::Unauthorized,
            HandshakeError::BadHello(_) | HandshakeError::WireVersion => ErrorKind::Unsupported,
            HandshakeError::NameTooLong { .. } | HandshakeError::TooManyAddrs { .. } => {
                ErrorKind::InvalidInput
            }
            HandshakeError::NoExporter | HandshakeError::Random => ErrorKind::Internal,
        }
    }
}

/// Closes `conn` with the code matching `why` (its text as the reason) and returns it.
fn refuse(conn: &quinn::Connection, why: HandshakeError) -> Error {
    let code = if why.kind() == ErrorKind::Unauthorized {
        CLOSE_UNAUTHORIZED
    } else {
        CLOSE_PROTOCOL
    };
    conn.close(code.into(), why.to_string().as_bytes());
    why.into()
}

async fn send(stream: &mut quinn::SendStream, hello: Hello) -> Result<()> {
    write_frame(stream, &hello, &[], HELLO_LIMITS).await
}

/// Reads the next hello frame; a bad frame or a wrong version closes the connection.
async fn receive(conn: &quinn::Connection, stream: &mut quinn::RecvStream) -> Result<Hello> {
    let msg = match read_frame::<Hello>(stream, HELLO_LIMITS).await {
        Ok(f) => f.header,
        // The peer closed the connection (its reason is in the error): pass it on.
        Err(e) if conn.close_reason().is_some() => return Err(e),
        Err(e) => return Err(refuse(conn, HandshakeError::BadHello(e))),
    };
    if msg.version != WIRE_VERSION {
        warn!(addr = %conn.remote_address(), version = msg.version, "peer speaks an unsupported wire version");
        return Err(refuse(conn, HandshakeError::WireVersion));
    }
    Ok(msg)
}

fn peer_id(conn: &quinn::Connection) -> Result<NodeId> {
    peer_node_id(conn).ok_or_else(|| refuse(conn, HandshakeError::NoCertificate))
}

/// Checks the admission policy (protected mode) before anything is exchanged.
fn admit(conn: &quinn::Connection, key: &ClusterKey) -> Result<()> {
    match key.refusal(conn.remote_address().ip()) {
        Some(why) => {
            warn!(addr = %conn.remote_address(), "{why}");
            Err(refuse(conn, HandshakeError::Refused(why)))
        }
        None => Ok(()),
    }
}

/// Validates a peer's announced metadata: bounded name and address count, implausible
/// addresses dropped, unspecified IPs replaced by the IP the peer was seen at.
pub fn validate(
    id: NodeId,
    name: String,
    addrs: Vec<SocketAddr>,
    observed: IpAddr,
) -> Result<PeerHello> {
    if name.len() > MAX_NAME_LEN {
        return Err(HandshakeError::NameTooLong { len: name.len() }.into());
    }
    if addrs.len() > MAX_HELLO_ADDRS {
        return Err(HandshakeError::TooManyAddrs { count: addrs.len() }.into());
    }
    let observed = observed.to_canonical();
    let mut out: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for mut a in addrs {
        if a.ip().is_unspecified() {
            a.set_ip(observed);
        }
        let ip = a.ip().to_canonical();
        let implausible = a.port() == 0
            || ip.is_unspecified()
            || ip.is_multicast()
            || ip == IpAddr::V4(Ipv4Addr::BROADCAST)
            // A remote peer cannot be reached at our own loopback.
            || (ip.is_loopback() && !observed.is_loopback());
        if !implausible && !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(PeerHello {
        id,
        name,
        addrs: out,
        trust: Trust::Member,
        boot: 0,
        rank: 0,
    })
}

fn check_metadata(conn: &quinn::Connection, id: NodeId, msg: Hello) -> Result<PeerHello> {
    let mut peer = validate(id, msg.name, msg.addrs, conn.remote_address().ip()).map_err(|e| {
        warn!(peer = %id.short(), error = %e.chain(), "peer sent a bad hello");
        refuse(conn, HandshakeError::BadHello(e))
    })?;
    peer.boot = msg.boot;
    peer.rank = rank(conn)?;
    Ok(peer)
}

/// Runs the dialling side of the handshake.
pub async fn client(conn: &quinn::Connection, local: &LocalHello) -> Result<PeerHello> {
    let id = peer_id(conn)?;
    if local.trust.dials_as_outsider(&id) {
        return client_outsider(conn, local, id).await;
    }
    admit(conn, &local.key)?;
    let exp = exporter(conn)?;
    let (mut tx, mut rx) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let pake = local.key.start(Role::Client, &exp);
    send(&mut tx, frame(pake.message())).await?;
    let theirs = receive(conn, &mut rx).await?;
    let confirmation = receive(conn, &mut rx).await?;
    let session = pake
        .finish(&theirs.proof)
        .map_err(|e| refuse(conn, HandshakeError::Refused(e.message().to_string())))?;
    if !session.verify(Role::Server, &confirmation.proof) {
        warn!(peer = %id.short(), addr = %conn.remote_address(), "peer failed cluster authentication");
        return Err(refuse(conn, HandshakeError::SecretMismatch));
    }
    send(
        &mut tx,
        meta_frame(session.confirmation(Role::Client), local),
    )
    .await?;
    let _ = tx.finish();
    let meta = receive(conn, &mut rx).await?;
    let mut peer = check_metadata(conn, id, meta)?;
    peer.trust = local.trust.member(&id);
    debug!(peer = %peer.id.short(), name = %peer.name, trust = %peer.trust, "handshake complete (client)");
    Ok(peer)
}

/// The dialling side for a peer listed in `trusted_peers`: no PAKE, the TLS keys alone.
async fn client_outsider(
    conn: &quinn::Connection,
    local: &LocalHello,
    id: NodeId,
) -> Result<PeerHello> {
    let (mut tx, mut rx) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    send(&mut tx, frame(OUTSIDER)).await?;
    let meta = receive(conn, &mut rx).await?;
    let mut peer = check_metadata(conn, id, meta)?;
    send(&mut tx, meta_frame(OUTSIDER, local)).await?;
    let _ = tx.finish();
    peer.trust = Trust::Outsider;
    debug!(peer = %peer.id.short(), name = %peer.name, "handshake complete (client, outsider)");
    Ok(peer)
}

/// Runs the accepting side of the handshake.
pub async fn server(conn: &quinn::Connection, local: &LocalHello) -> Result<PeerHello> {
    let id = peer_id(conn)?;
    // Protected mode refuses before anything is read, unless a listed outsider may come
    // (then the first frame decides).
    if local.trust.trusted_peers.is_empty() && !local.trust.serve_commons {
        admit(conn, &local.key)?;
    }
    let ip = conn.remote_address().ip();
    if !local.key.may_try(ip, Instant::now()) {
        debug!(%ip, "refusing a source that failed authentication too often");
        return Err(refuse(conn, HandshakeError::TooManyFailures));
    }
    let (mut tx, mut rx) = conn.accept_bi().await.map_err(|e| connection_error(&e))?;
    let theirs = receive(conn, &mut rx).await?;
    if theirs.proof == OUTSIDER {
        return server_outsider(conn, local, id, tx, rx).await;
    }
    admit(conn, &local.key)?;
    let exp = exporter(conn)?;
    let pake = local.key.start(Role::Server, &exp);
    let ours = pake.message();
    let session = match pake.finish(&theirs.proof) {
        Ok(s) => s,
        Err(e) => {
            local.key.failed(ip, Instant::now());
            return Err(refuse(
                conn,
                HandshakeError::Refused(e.message().to_string()),
            ));
        }
    };
    send(&mut tx, frame(ours)).await?;
    send(&mut tx, frame(session.confirmation(Role::Server))).await?;
    // From here the peer may have tested one guess: anything but a valid confirmation
    // counts as a failed authentication.
    let confirmed = match receive(conn, &mut rx).await {
        Ok(msg) if session.verify(Role::Client, &msg.proof) => msg,
        other => {
            local.key.failed(ip, Instant::now());
            warn!(peer = %id.short(), addr = %conn.remote_address(), "peer failed cluster authentication");
            return Err(match other {
                Err(e) => e,
                Ok(_) => refuse(conn, HandshakeError::SecretMismatch),
            });
        }
    };
    let mut peer = check_metadata(conn, id, confirmed)?;
    send(&mut tx, meta_frame([0u8; 32], local)).await?;
    let _ = tx.finish();
    peer.trust = local.trust.member(&id);
    debug!(peer = %peer.id.short(), name = %peer.name, trust = %peer.trust, "handshake complete (server)");
    Ok(peer)
}

/// The accepting side for a client that asked to come in as an outsider: admitted if
/// listed in `trusted_peers` or when serving commons, refused otherwise.
async fn server_outsider(
    conn: &quinn::Connection,
    local: &LocalHello,
    id: NodeId,
    mut tx: quinn::SendStream,
    mut rx: quinn::RecvStream,
) -> Result<PeerHello> {
    let Some(trust) = local.trust.outsider(&id) else {
        debug!(peer = %id.short(), addr = %conn.remote_address(), "refused a node without the secret that is not trusted");
        return Err(refuse(conn, HandshakeError::NotTrusted));
    };
    send(&mut tx, meta_frame(OUTSIDER, local)).await?;
    let meta = receive(conn, &mut rx).await?;
    let mut peer = check_metadata(conn, id, meta)?;
    let _ = tx.finish();
    peer.trust = trust;
    debug!(peer = %peer.id.short(), name = %peer.name, trust = %trust, "handshake complete (server, outsider)");
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn id() -> NodeId {
        Keypair::generate().unwrap().node_id()
    }

    #[test]
    fn hello_metadata_is_bounded_and_implausible_addresses_dropped() {
        let lan: IpAddr = "10.0.0.9".parse().unwrap();
        let addrs: Vec<SocketAddr> = [
            "0.0.0.0:7400",
            "10.0.0.9:7400",
            "10.0.0.9:7400",
            "10.0.0.9:0",
            "224.0.0.251:5353",
            "255.255.255.255:7400",
            "127.0.0.1:7400",
            "[ff02::fb]:5353",
            "[::1]:7400",
            "192.168.1.2:7400",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let got = validate(id(), "n".into(), addrs.clone(), lan).unwrap();
        assert_eq!(
            got.addrs,
            vec![
                "10.0.0.9:7400".parse::<SocketAddr>().unwrap(),
                "192.168.1.2:7400".parse().unwrap()
            ]
        );
        // From a loopback peer, loopback addresses are plausible.
        let lo = validate(id(), "n".into(), addrs, "127.0.0.1".parse().unwrap()).unwrap();
        assert!(lo.addrs.contains(&"127.0.0.1:7400".parse().unwrap()));
        let many: Vec<SocketAddr> = (1..=MAX_HELLO_ADDRS as u16 + 1)
            .map(|p| SocketAddr::new(lan, p))
            .collect();
        assert!(validate(id(), "n".into(), many.clone(), lan).is_err());
        assert!(validate(id(), "n".into(), many[..MAX_HELLO_ADDRS].to_vec(), lan).is_ok());
        assert!(validate(id(), "x".repeat(MAX_NAME_LEN + 1), vec![], lan).is_err());
        assert!(validate(id(), "x".repeat(MAX_NAME_LEN), vec![], lan).is_ok());
    }

    #[test]
    fn our_own_hello_stays_within_the_bounds() {
        let many: Vec<SocketAddr> = (1..100u16)
            .map(|p| SocketAddr::new("2001:db8::1".parse().unwrap(), p))
            .collect();
        let local = LocalHello {
            key: ClusterKey::new(None),
            name: "é".repeat(200),
            addrs: many,
            trust: TrustPolicy::default(),
            boot: u64::MAX,
        };
        let h = meta_frame([0; 32], &local);
        assert!(h.name.len() <= MAX_NAME_LEN && h.name.chars().all(|c| c == 'é'));
        assert_eq!(h.addrs.len(), MAX_HELLO_ADDRS);
        let bytes = crate::wire::codec::encode_frame(&h, &[], HELLO_LIMITS);
        assert!(bytes.is_ok(), "a maximal hello fits the hello frame limit");
    }

    #[test]
    fn a_bad_hello_keeps_its_kind_message_and_cause() {
        let lan: IpAddr = "10.0.0.9".parse().unwrap();
        let cause = validate(id(), "x".repeat(MAX_NAME_LEN + 1), vec![], lan).unwrap_err();
        assert_eq!(cause.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            cause.message(),
            format!(
                "peer name is {} bytes long, at most {MAX_NAME_LEN}",
                MAX_NAME_LEN + 1
            )
        );
        let e: Error = HandshakeError::BadHello(cause.clone()).into();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.message(), format!("bad hello: {}", cause.message()));
        assert_eq!(
            std::error::Error::source(&e).map(|c| c.to_string()),
            Some(cause.to_string())
        );
        let e: Error = HandshakeError::SecretMismatch.into();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Unauthorized, "cluster secret mismatch")
        );
    }
}
