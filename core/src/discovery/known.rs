//! The known-peers table: the members this node has seen (id, name, the addresses they
//! were reached at, when last seen), kept in the data dir so that a restarted node can
//! redial its cluster without any bootstrap address or mDNS. Pure: it takes `now` (wall
//! clock, milliseconds since the Unix epoch, since the table outlives the process) and
//! does no I/O; the node's shell (`node::known`) loads, saves and dials.
//!
//! Bounds: at most [`MAX_KNOWN_PEERS`] entries, each with at most
//! [`MAX_KNOWN_ADDRS`] addresses (the newest first) and a name of at most
//! [`MAX_KNOWN_NAME_LEN`] bytes. A new peer past the entry bound evicts the entry seen
//! longest ago (ties: the lowest id); an address past the per-entry bound evicts that
//! entry's oldest address. Entries unseen for longer than the time to live are dropped
//! by [`KnownPeers::expire`].
//!
//! The file format ([`KnownPeers::encode`], [`KnownPeers::decode`]) is described in
//! `docs/storage-format.md` ("Known peers").

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::error::{Classify, ErrorKind};
use crate::identity::{NodeId, NODE_ID_LEN};

/// Most peers remembered.
pub const MAX_KNOWN_PEERS: usize = 256;
/// Most addresses remembered for one peer.
pub const MAX_KNOWN_ADDRS: usize = 4;
/// Longest name remembered, in bytes (longer names are cut at a character boundary).
pub const MAX_KNOWN_NAME_LEN: usize = 255;
/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"MMPEERS\0";
/// The schema version this code writes (and the newest it reads).
pub const SCHEMA_VERSION: u16 = 1;
/// The name of the file in the data dir.
pub const FILE_NAME: &str = "known-peers";

/// Length of the trailing BLAKE3 checksum.
const CHECKSUM_LEN: usize = 32;

/// A peer file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KnownPeersError {
    /// The file does not start with [`MAGIC`].
    #[error("not a known-peers file (bad magic)")]
    BadMagic,
    /// Written by a newer memmesh (its schema version).
    #[error(
        "known-peers file has schema version {0}, newer than this memmesh reads ({SCHEMA_VERSION})"
    )]
    Newer(u16),
    /// The checksum does not match the contents.
    #[error("known-peers file is corrupted (checksum mismatch)")]
    Checksum,
    /// The file ends in the middle of a field.
    #[error("known-peers file is truncated")]
    Truncated,
    /// A field holds a value no writer produces.
    #[error("known-peers file is malformed: {0}")]
    Malformed(&'static str),
}

impl Classify for KnownPeersError {
    fn kind(&self) -> ErrorKind {
        match self {
            KnownPeersError::Newer(_) => ErrorKind::Unsupported,
            _ => ErrorKind::Corrupted,
        }
    }
}

/// One remembered peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// The peer.
    pub id: NodeId,
    /// Its name when last seen.
    pub name: String,
    /// Addresses it was reached at, the most recent first.
    pub addrs: Vec<SocketAddr>,
    /// When it was last seen alive, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
}

/// What [`KnownPeers::record`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Nothing but (possibly) the last-seen time.
    Touched,
    /// A new peer, a new name or a new address: worth saving soon.
    Changed,
    /// Nothing (a disabled table, or this node itself).
    Ignored,
}

/// The table: peers by id, with their time to live.
#[derive(Debug, Clone)]
pub struct KnownPeers {
    ttl: Duration,
    peers: BTreeMap<NodeId, KnownPeer>,
}

/// `addr` with an IPv4-mapped IPv6 address turned back into IPv4 (what a dual-stack
/// socket reports for an IPv4 peer), so that it can be dialled from an IPv4 socket.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The first `max` bytes of `name`, cut at a character boundary.
fn cut(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl KnownPeers {
    /// An empty table whose entries live `ttl` after they were last seen (`ZERO`: the
    /// table remembers nothing).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            peers: BTreeMap::new(),
        }
    }

    /// Whether remembering is on (a nonzero time to live).
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// How many peers are remembered.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is remembered.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The entry of `id`, if remembered.
    pub fn get(&self, id: &NodeId) -> Option<&KnownPeer> {
        self.peers.get(id)
    }

    /// Every entry, by id.
    pub fn iter(&self) -> impl Iterator<Item = &KnownPeer> {
        self.peers.values()
    }

    /// Records that `id`, called `name`, was seen alive at `now_ms`, reached at `addr`
    /// (`None`: seen, but not reached at a new address). The address goes first in the
    /// entry's list; the oldest addresses beyond [`MAX_KNOWN_ADDRS`] are dropped. A new
    /// entry past [`MAX_KNOWN_PEERS`] evicts the one seen longest ago.
    pub fn record(
        &mut self,
        id: NodeId,
        name: &str,
        addr: Option<SocketAddr>,
        now_ms: u64,
    ) -> Recorded {
        if !self.enabled() {
            return Recorded::Ignored;
        }
        let addr = addr.map(canonical);
        let name = cut(name, MAX_KNOWN_NAME_LEN);
        if let Some(p) = self.peers.get_mut(&id) {
            let mut changed = false;
            if p.name != name {
                p.name = name.to_string();
                changed = true;
            }
            if let Some(a) = addr {
                if p.addrs.first() != Some(&a) {
                    p.addrs.retain(|x| *x != a);
                    p.addrs.insert(0, a);
                    p.addrs.truncate(MAX_KNOWN_ADDRS);
                    changed = true;
                }
            }
            p.last_seen_ms = p.last_seen_ms.max(now_ms);
            return if changed {
                Recorded::Changed
            } else {
                Recorded::Touched
            };
        }
        // Without an address there is nothing to dial later: not worth an entry.
        let Some(a) = addr else {
            return Recorded::Ignored;
        };
        if self.peers.len() >= MAX_KNOWN_PEERS {
            self.evict_oldest();
        }
        self.peers.insert(
            id,
            KnownPeer {
                id,
                name: name.to_string(),
                addrs: vec![a],
                last_seen_ms: now_ms,
            },
        );
        Recorded::Changed
    }

    /// Forgets the entry seen longest ago (ties: the lowest id).
    fn evict_oldest(&mut self) {
        let oldest = self
            .peers
            .values()
            .min_by_key(|p| (p.last_seen_ms, p.id))
            .map(|p| p.id);
        if let Some(id) = oldest {
            self.peers.remove(&id);
        }
    }

    /// Whether the entry `p` has outlived the time to live at `now_ms`. A last-seen time
    /// in the future (the clock went back) counts as seen now.
    fn expired(&self, p: &KnownPeer, now_ms: u64) -> bool {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        now_ms.saturating_sub(p.last_seen_ms) > ttl_ms
    }

    /// Drops the entries unseen for longer than the time to live (every entry when
    /// remembering is off) and returns how many were dropped.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let before = self.peers.len();
        if !self.enabled() {
            self.peers.clear();
            return before;
        }
        let dead: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| self.expired(p, now_ms))
            .map(|p| p.id)
            .collect();
        for id in &dead {
            self.peers.remove(id);
        }
        before - self.peers.len()
    }

    /// The peers to redial at start, the most recently seen first (ties: by id), each
    /// with its addresses (most recent first), leaving out `me`, expired entries and
    /// addresses `dialable` refuses.
    pub fn to_dial(
        &self,
        me: &NodeId,
        now_ms: u64,
        dialable: impl Fn(&SocketAddr) -> bool,
    ) -> Vec<(NodeId, Vec<SocketAddr>)> {
        if !self.enabled() {
            return Vec::new();
        }
        let mut out: Vec<&KnownPeer> = self
            .peers
            .values()
            .filter(|p| p.id != *me && !self.expired(p, now_ms))
            .collect();
        out.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.id.cmp(&b.id)));
        out.into_iter()
            .map(|p| {
                let addrs: Vec<SocketAddr> =
                    p.addrs.iter().filter(|a| dialable(a)).copied().collect();
                (p.id, addrs)
            })
            .filter(|(_, addrs)| !addrs.is_empty())
            .collect()
    }

    /// The file's bytes (format version [`SCHEMA_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.peers.len() * 96);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
        // At most MAX_KNOWN_PEERS entries: always fits.
        out.extend_from_slice(&(self.peers.len() as u32).to_le_bytes());
        for p in self.peers.values() {
            out.extend_from_slice(p.id.as_bytes());
            out.extend_from_slice(&p.last_seen_ms.to_le_bytes());
            let name = cut(&p.name, MAX_KNOWN_NAME_LEN);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            let addrs = &p.addrs[..p.addrs.len().min(MAX_KNOWN_ADDRS)];
            out.push(addrs.len() as u8);
            for a in addrs {
                match a.ip() {
                    IpAddr::V4(v4) => {
                        out.push(4);
                        out.extend_from_slice(&v4.octets());
                    }
                    IpAddr::V6(v6) => {
                        out.push(6);
                        out.extend_from_slice(&v6.octets());
                    }
                }
                out.extend_from_slice(&a.port().to_le_bytes());
            }
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Reads a file written by [`KnownPeers::encode`] into a table with time to live
    /// `ttl`. A file over the bounds, with a bad checksum, truncated, or from a newer
    /// schema is refused whole.
    pub fn decode(bytes: &[u8], ttl: Duration) -> Result<Self, KnownPeersError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(KnownPeersError::BadMagic);
        }
        let mut r = Reader {
            bytes: &bytes[MAGIC.len()..],
        };
        let version = u16::from_le_bytes(r.array()?);
        if version > SCHEMA_VERSION {
            return Err(KnownPeersError::Newer(version));
        }
        if version == 0 {
            return Err(KnownPeersError::Malformed("schema version 0"));
        }
        if bytes.len() < MAGIC.len() + 2 + CHECKSUM_LEN {
            return Err(KnownPeersError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if blake3::hash(body).as_bytes()[..] != sum[..] {
            return Err(KnownPeersError::Checksum);
        }
        let mut r = Reader {
            bytes: &body[MAGIC.len() + 2..],
        };
        let count = u32::from_le_bytes(r.array()?) as usize;
        if count > MAX_KNOWN_PEERS {
            return Err(KnownPeersError::Malformed("too many peers"));
        }
        let mut table = KnownPeers::new(ttl);
        for _ in 0..count {
            let id = NodeId::from_bytes(r.array::<NODE_ID_LEN>()?);
            let last_seen_ms = u64::from_le_bytes(r.array()?);
            let [name_len] = r.array::<1>()?;
            let name = std::str::from_utf8(r.take(usize::from(name_len))?)
                .map_err(|_| KnownPeersError::Malformed("a name is not UTF-8"))?
                .to_string();
            let [n_addrs] = r.array::<1>()?;
            if usize::from(n_addrs) > MAX_KNOWN_ADDRS {
                return Err(KnownPeersError::Malformed("too many addresses"));
            }
            let mut addrs = Vec::with_capacity(usize::from(n_addrs));
            for _ in 0..n_addrs {
                let ip: IpAddr = match r.array::<1>()? {
                    [4] => Ipv4Addr::from(r.array::<4>()?).into(),
                    [6] => Ipv6Addr::from(r.array::<16>()?).into(),
                    _ => return Err(KnownPeersError::Malformed("unknown address family")),
                };
                let port = u16::from_le_bytes(r.array()?);
                addrs.push(SocketAddr::new(ip, port));
            }
            let peer = KnownPeer {
                id,
                name,
                addrs,
                last_seen_ms,
            };
            if table.peers.insert(id, peer).is_some() {
                return Err(KnownPeersError::Malformed("a peer is listed twice"));
            }
        }
        if !r.bytes.is_empty() {
            return Err(KnownPeersError::Malformed("bytes after the last peer"));
        }
        Ok(table)
    }
}

/// Reads fields off the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KnownPeersError> {
        if self.bytes.len() < n {
            return Err(KnownPeersError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], KnownPeersError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn id(n: u16) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[..2].copy_from_slice(&n.to_be_bytes());
        NodeId::from_bytes(bytes)
    }

    fn addr(port: u16) -> SocketAddr {
        ([127, 0, 0, 1], port).into()
    }

    fn any(_: &SocketAddr) -> bool {
        true
    }

    #[test]
    fn records_newest_address_first_bounded_and_touches() {
        let mut t = KnownPeers::new(DAY);
        assert_eq!(t.record(id(1), "a", Some(addr(1)), 10), Recorded::Changed);
        assert_eq!(t.record(id(1), "a", Some(addr(1)), 20), Recorded::Touched);
        assert_eq!(t.record(id(1), "a", None, 30), Recorded::Touched);
        assert_eq!(t.get(&id(1)).unwrap().last_seen_ms, 30);
        // An older sighting never moves last-seen back.
        t.record(id(1), "a", None, 5);
        assert_eq!(t.get(&id(1)).unwrap().last_seen_ms, 30);
        for port in 2..=6 {
            assert_eq!(
                t.record(id(1), "a", Some(addr(port)), 40),
                Recorded::Changed
            );
        }
        let p = t.get(&id(1)).unwrap();
        assert_eq!(p.addrs, vec![addr(6), addr(5), addr(4), addr(3)]);
        // An address seen again moves to the front without duplicates.
        t.record(id(1), "renamed", Some(addr(4)), 50);
        let p = t.get(&id(1)).unwrap();
        assert_eq!(p.addrs, vec![addr(4), addr(6), addr(5), addr(3)]);
        assert_eq!(p.name, "renamed");
        // A peer seen with no address is not worth an entry.
        assert_eq!(t.record(id(2), "b", None, 50), Recorded::Ignored);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn mapped_addresses_and_long_names_are_normalised() {
        let mut t = KnownPeers::new(DAY);
        let mapped: SocketAddr = "[::ffff:10.0.0.7]:7400".parse().unwrap();
        t.record(id(1), &"é".repeat(200), Some(mapped), 1);
        let p = t.get(&id(1)).unwrap();
        assert_eq!(p.addrs, vec!["10.0.0.7:7400".parse().unwrap()]);
        assert!(p.name.len() <= MAX_KNOWN_NAME_LEN);
        assert_eq!(p.name.len(), 254);
    }

    #[test]
    fn a_full_table_evicts_the_peer_seen_longest_ago() {
        let mut t = KnownPeers::new(DAY);
        for n in 0..MAX_KNOWN_PEERS as u16 {
            t.record(id(n), "p", Some(addr(n)), 1000 + u64::from(n));
        }
        // Peer 0 was seen longest ago, but is seen again now: peer 1 is the oldest.
        t.record(id(0), "p", None, 5000);
        t.record(id(999), "new", Some(addr(999)), 6000);
        assert_eq!(t.len(), MAX_KNOWN_PEERS);
        assert!(t.get(&id(1)).is_none());
        assert!(t.get(&id(0)).is_some() && t.get(&id(999)).is_some());
    }

    #[test]
    fn entries_unseen_past_the_ttl_expire_and_are_not_dialled() {
        let ttl = Duration::from_secs(10);
        let mut t = KnownPeers::new(ttl);
        t.record(id(1), "old", Some(addr(1)), 0);
        t.record(id(2), "new", Some(addr(2)), 5_000);
        t.record(id(3), "future", Some(addr(3)), 100_000);
        // At 10 s exactly, peer 1 is still within its ttl.
        assert_eq!(t.to_dial(&id(0), 10_000, any).len(), 3);
        let dial = t.to_dial(&id(0), 10_001, any);
        assert_eq!(
            dial,
            vec![(id(3), vec![addr(3)]), (id(2), vec![addr(2)])],
            "newest first, the expired peer left out"
        );
        assert_eq!(t.expire(10_001), 1);
        assert!(t.get(&id(1)).is_none());
        // A clock that went back: a last-seen in the future counts as now.
        assert_eq!(t.expire(50_000), 1);
        assert!(t.get(&id(3)).is_some());
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let mut t = KnownPeers::new(Duration::ZERO);
        assert!(!t.enabled());
        assert_eq!(t.record(id(1), "a", Some(addr(1)), 1), Recorded::Ignored);
        assert!(t.is_empty());
        let mut loaded = KnownPeers::new(DAY);
        loaded.record(id(1), "a", Some(addr(1)), 1);
        let mut off = KnownPeers::decode(&loaded.encode(), Duration::ZERO).unwrap();
        assert!(off.to_dial(&id(0), 1, any).is_empty());
        assert_eq!(off.expire(1), 1);
    }

    #[test]
    fn dialling_skips_this_node_and_refused_addresses() {
        let mut t = KnownPeers::new(DAY);
        t.record(id(1), "me", Some(addr(1)), 1);
        t.record(id(2), "b", Some(addr(2)), 1);
        t.record(id(2), "b", Some(addr(0)), 2);
        t.record(id(3), "c", Some(addr(0)), 1);
        let dial = t.to_dial(&id(1), 3, |a| a.port() != 0);
        assert_eq!(dial, vec![(id(2), vec![addr(2)])]);
    }

    #[test]
    fn encodes_and_decodes_every_field() {
        let mut t = KnownPeers::new(DAY);
        t.record(id(1), "alpha", Some(addr(1)), 11);
        t.record(id(1), "alpha", Some("[2001:db8::1]:9".parse().unwrap()), 12);
        t.record(id(2), "", Some(addr(2)), u64::MAX);
        let bytes = t.encode();
        assert_eq!(&bytes[..8], b"MMPEERS\0");
        assert_eq!(&bytes[8..10], &SCHEMA_VERSION.to_le_bytes());
        let back = KnownPeers::decode(&bytes, DAY).unwrap();
        let a: Vec<_> = t.iter().cloned().collect();
        let b: Vec<_> = back.iter().cloned().collect();
        assert_eq!(a, b);
        let empty = KnownPeers::new(DAY).encode();
        assert_eq!(empty.len(), 8 + 2 + 4 + 32);
        assert!(KnownPeers::decode(&empty, DAY).unwrap().is_empty());
    }

    #[test]
    fn damaged_or_newer_files_are_refused_with_a_reason() {
        let mut t = KnownPeers::new(DAY);
        t.record(id(1), "alpha", Some(addr(1)), 11);
        let good = t.encode();
        let decode = |b: &[u8]| KnownPeers::decode(b, DAY).map(|_| ());
        assert_eq!(decode(b""), Err(KnownPeersError::BadMagic));
        assert_eq!(decode(b"garbage garbage"), Err(KnownPeersError::BadMagic));
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        assert_eq!(decode(&flipped), Err(KnownPeersError::Checksum));
        for cut in [9, 12, good.len() - 1] {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut newer = good.clone();
        newer[8..10].copy_from_slice(&(SCHEMA_VERSION + 1).to_le_bytes());
        assert_eq!(
            decode(&newer),
            Err(KnownPeersError::Newer(SCHEMA_VERSION + 1))
        );
        assert_eq!(KnownPeersError::Newer(2).kind(), ErrorKind::Unsupported);
        assert_eq!(KnownPeersError::Checksum.kind(), ErrorKind::Corrupted);
        // A well-checksummed body that lies about its contents.
        let resum = |mut body: Vec<u8>| {
            let sum = blake3::hash(&body);
            body.extend_from_slice(sum.as_bytes());
            body
        };
        let body = good[..good.len() - 32].to_vec();
        let mut many = body.clone();
        many[10..14].copy_from_slice(&(MAX_KNOWN_PEERS as u32 + 1).to_le_bytes());
        assert!(matches!(
            decode(&resum(many)),
            Err(KnownPeersError::Malformed(_))
        ));
        let mut short = body.clone();
        short[10..14].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(decode(&resum(short)), Err(KnownPeersError::Truncated));
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(matches!(
            decode(&resum(trailing)),
            Err(KnownPeersError::Malformed(_))
        ));
        let mut family = body;
        // id 32 + seen 8 + name 1+5 + count 1, after magic 8 + version 2 + count 4.
        family[14 + 32 + 8 + 6 + 1] = 5;
        assert!(matches!(
            decode(&resum(family)),
            Err(KnownPeersError::Malformed(_))
        ));
    }
}
