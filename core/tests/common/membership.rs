//! A hostile member that speaks SWIM by hand: an authenticated raw peer that answers the
//! victim's pings (so it stays a live member) and writes whatever packets and full-state
//! syncs a test asks for, encoded with the crate's public codecs.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{Codec, Header, Member, Message};
use memmesh::membership::codec::SwimCodec;
use memmesh::membership::member::MemberId;
use memmesh::wire::codec::{decode_bulk, decode_frame, encode_bulk, encode_frame, FrameLimits};
use memmesh::wire::messages::MembershipOp;
use memmesh::wire::{Reply, Service, StreamHeader};
use memmesh::{Node, NodeId};

use crate::common::{eventually, RawPeer};

/// Frame limits for the tests' own frames.
pub fn limits() -> FrameLimits {
    FrameLimits::with_body(16 << 20)
}

/// A NodeId nobody holds the key of.
pub fn random_id() -> NodeId {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    NodeId::from_bytes(bytes)
}

/// A made-up member: a random NodeId nobody holds the key of.
pub fn fake(name: &str, addrs: Vec<SocketAddr>) -> Member<MemberId> {
    Member::alive(MemberId {
        id: random_id(),
        generation: 1,
        name: name.into(),
        addrs,
        role: memmesh::Role::Member,
    })
}

/// `n` fake members, all claiming `addr`.
pub fn fakes(n: usize, addr: SocketAddr) -> Vec<Member<MemberId>> {
    (0..n)
        .map(|i| fake(&format!("fake{i}"), vec![addr]))
        .collect()
}

/// The error kind of a reply, or `None` for `Ok`.
pub fn error_kind(reply: &[u8]) -> Option<String> {
    match decode_frame::<Reply>(reply, limits()) {
        Ok(frame) => match frame.header {
            Reply::Ok => None,
            Reply::Err { kind, .. } => Some(kind),
        },
        Err(e) => Some(format!("no reply ({e})")),
    }
}

fn membership_frame(op: MembershipOp, body: &[u8]) -> Vec<u8> {
    encode_frame(
        &StreamHeader::new(Service::Membership { op }),
        body,
        limits(),
    )
    .unwrap()
    .to_vec()
}

/// A SWIM packet as foca lays it out: header, then (for messages that carry them) a
/// `u16` count of member updates and the updates, then length-prefixed custom broadcasts.
pub fn packet(
    src: &MemberId,
    dst: &MemberId,
    message: Message<MemberId>,
    updates: &[Member<MemberId>],
    broadcasts: &[Vec<u8>],
) -> Vec<u8> {
    let mut buf = Vec::new();
    let header = Header {
        src: src.clone(),
        src_incarnation: 0,
        dst: dst.clone(),
        message,
    };
    SwimCodec.encode_header(&header, &mut buf).unwrap();
    buf.extend_from_slice(&u16::try_from(updates.len()).unwrap().to_be_bytes());
    for m in updates {
        SwimCodec.encode_member(m, &mut buf).unwrap();
    }
    for b in broadcasts {
        buf.extend_from_slice(&u16::try_from(b.len()).unwrap().to_be_bytes());
        buf.extend_from_slice(b);
    }
    buf
}

/// An authenticated member under the test's control.
pub struct SwimPeer {
    /// The raw connection to the victim.
    pub raw: RawPeer,
    /// The identity it claims in SWIM (its own NodeId).
    pub me: MemberId,
    victim: Arc<Mutex<Option<MemberId>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SwimPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SwimPeer {
    /// Connects to `victim`, answers its SWIM traffic (pings get acks, every stream a
    /// reply), and waits until it has learned the victim's SWIM identity.
    pub async fn join(victim: &Node) -> SwimPeer {
        let raw = RawPeer::connect(victim.addr(), None).await.unwrap();
        let me = MemberId {
            id: raw.id,
            generation: 1_000,
            name: "hostile".into(),
            addrs: vec![raw.endpoint.local_addr().unwrap()],
            role: memmesh::Role::Member,
        };
        let known = Arc::new(Mutex::new(None));
        let task = tokio::spawn(respond(
            raw.conn.clone(),
            me.clone(),
            victim.id(),
            known.clone(),
        ));
        let peer = SwimPeer {
            raw,
            me,
            victim: known,
            task,
        };
        assert!(
            eventually(Duration::from_secs(20), || peer
                .victim
                .lock()
                .unwrap()
                .is_some())
            .await,
            "the victim never sent its SWIM identity"
        );
        peer
    }

    /// The victim's SWIM identity, as last seen in its packets.
    pub fn victim(&self) -> MemberId {
        self.victim.lock().unwrap().clone().unwrap()
    }

    /// Sends a SWIM packet (raw bytes) and returns the reply frame.
    pub async fn send_raw_packet(&self, bytes: &[u8]) -> Vec<u8> {
        self.raw
            .exchange(&membership_frame(MembershipOp::Packet, bytes))
            .await
    }

    /// Sends a gossip packet from this peer to the victim.
    pub async fn gossip(&self, updates: &[Member<MemberId>], broadcasts: &[Vec<u8>]) -> Vec<u8> {
        let bytes = packet(
            &self.me,
            &self.victim(),
            Message::Gossip,
            updates,
            broadcasts,
        );
        self.send_raw_packet(&bytes).await
    }

    /// The members the victim holds (in SWIM, not only those it shows): its answer to an
    /// empty full-state sync (retried while syncs are rate-limited).
    pub async fn held(&self) -> Vec<Member<MemberId>> {
        for _ in 0..30 {
            let reply = self.sync(&[]).await;
            match decode_frame::<Reply>(&reply, limits()) {
                Ok(frame) if frame.header == Reply::Ok => {
                    return decode_bulk(&frame.body).unwrap();
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        panic!("the victim never answered a sync");
    }

    /// Sends a full-state sync with `members` and returns the reply frame.
    pub async fn sync(&self, members: &[Member<MemberId>]) -> Vec<u8> {
        let body = encode_bulk(&members.to_vec()).unwrap();
        self.raw
            .exchange(&membership_frame(MembershipOp::Sync, &body))
            .await
    }
}

/// Serves the victim's streams on `conn`: every frame gets an `Ok` reply; a ping gets an
/// ack; the victim's identity is recorded.
async fn respond(
    conn: quinn::Connection,
    me: MemberId,
    victim: NodeId,
    known: Arc<Mutex<Option<MemberId>>>,
) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        let conn = conn.clone();
        let me = me.clone();
        let known = known.clone();
        tokio::spawn(async move {
            let Ok(bytes) = recv.read_to_end(1 << 20).await else {
                return;
            };
            let ok = encode_frame(&Reply::Ok, b"", limits()).unwrap();
            let _ = send.write_all(&ok).await;
            let _ = send.finish();
            let Ok(frame) = decode_frame::<StreamHeader>(&bytes, limits()) else {
                return;
            };
            if frame.header.service
                != (Service::Membership {
                    op: MembershipOp::Packet,
                })
            {
                return;
            }
            let Ok(header) = SwimCodec.decode_header(&frame.body[..]) else {
                return;
            };
            if header.src.id != victim {
                return;
            }
            *known.lock().unwrap() = Some(header.src.clone());
            if let Message::Ping(n) = header.message {
                let ack = packet(&me, &header.src, Message::Ack(n), &[], &[]);
                if let Ok((mut s, mut r)) = conn.open_bi().await {
                    let _ = s
                        .write_all(&membership_frame(MembershipOp::Packet, &ack))
                        .await;
                    let _ = s.finish();
                    let _ = r.read_to_end(1 << 16).await;
                }
            }
        });
    }
}

/// One dial: who dialled, and the connection id it chose.
type Dial = (SocketAddr, Vec<u8>);

/// A UDP socket that counts the distinct QUIC connections dialled to it (by the
/// destination connection id of their Initial packets) per dialling address, never
/// answering.
pub struct DialSink {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<HashSet<Dial>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DialSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DialSink {
    /// Binds on an ephemeral loopback port.
    pub async fn bind() -> DialSink {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let counted = seen.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let p = &buf[..n];
                // QUIC long header: form bit, 4-byte version, DCID length, DCID.
                if n > 6 && p[0] & 0x80 != 0 {
                    let len = usize::from(p[5]);
                    if let Some(dcid) = p.get(6..6 + len) {
                        counted.lock().unwrap().insert((from, dcid.to_vec()));
                    }
                }
            }
        });
        DialSink { addr, seen, task }
    }

    /// Distinct connections dialled so far from `from` (a node dials from the address
    /// it listens on).
    pub fn dials_from(&self, from: SocketAddr) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| *a == from)
            .count()
    }
}
