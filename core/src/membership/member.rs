//! The identity a node has in the SWIM membership protocol.

use std::net::{IpAddr, SocketAddr};

use crate::identity::NodeId;
use crate::membership::error::MembershipError;
use crate::membership::limits::{MAX_MEMBER_ADDRS, MAX_NAME_LEN};
use crate::peer::Role;

/// A member as SWIM knows it: the node id plus what peers need to reach and show it.
///
/// `generation` distinguishes incarnations of the same node across restarts: a node starts
/// with the current time in milliseconds, so a restarted node's identity wins over the
/// one the cluster may still remember, and rejoins cleanly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MemberId {
    /// The node.
    pub id: NodeId,
    /// Restart counter (milliseconds since the epoch at start, bumped on renew).
    pub generation: u64,
    /// Human-readable name.
    pub name: String,
    /// Addresses the node listens on.
    pub addrs: Vec<SocketAddr>,
    /// What the node does for the mesh: a client owns no partitions and holds no
    /// replicas (ADR 0024). Part of the identity so that every member knows it before
    /// it routes anything to the node.
    pub role: Role,
}

impl MemberId {
    /// This node's own identity, within the limits every peer applies: the name cut to
    /// [`MAX_NAME_LEN`] bytes (at a character boundary) and the first
    /// [`MAX_MEMBER_ADDRS`] addresses.
    pub fn own(id: NodeId, generation: u64, name: &str, addrs: &[SocketAddr]) -> Self {
        let mut end = name.len().min(MAX_NAME_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        MemberId {
            id,
            generation,
            name: name[..end].to_string(),
            addrs: addrs.iter().take(MAX_MEMBER_ADDRS).copied().collect(),
            role: Role::Member,
        }
    }

    /// The same identity with `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The addresses worth dialling: the plausible ones ([`dialable`]), at most
    /// [`MAX_MEMBER_ADDRS`].
    pub fn dialable_addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .filter(|a| dialable(a))
            .take(MAX_MEMBER_ADDRS)
            .copied()
            .collect()
    }
}

/// Whether a peer could be reached at `addr`: not port 0, not an unspecified, "this
/// network" (`0.0.0.0/8`), broadcast or multicast address. Anything else a member
/// claims is dropped before it is dialled (it would make this node send packets where a
/// hostile member says).
pub fn dialable(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip().to_canonical() {
        IpAddr::V4(v4) => !(v4.octets()[0] == 0 || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

impl foca::Identity for MemberId {
    type Addr = NodeId;

    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            generation: self.generation.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> NodeId {
        self.id
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// The starting generation for a node started now.
pub fn initial_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

/// File in the data dir holding the last generation a node started with.
const GENERATION_FILE: &str = "generation";

/// The generation to start with. With a data dir, the node keeps its NodeId across
/// restarts, so its new generation must beat every earlier one even if the wall clock
/// went backwards since (an NTP step, a dead RTC battery): it is the greater of the clock
/// and the last generation stored there plus a margin for the renewals made while it ran,
/// and is stored before the node joins.
pub fn starting_generation(data_dir: Option<&std::path::Path>) -> crate::error::Result<u64> {
    let now = initial_generation();
    let Some(dir) = data_dir else {
        return Ok(now); // a fresh NodeId: nothing to beat
    };
    let path = dir.join(GENERATION_FILE);
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(MembershipError::Generation { path, source: e }.into()),
    };
    let generation = next_generation(now, stored);
    crate::durable::write_atomic(&path, generation.to_string().as_bytes(), false)?;
    Ok(generation)
}

/// Renewals a running node may have made (each `+1`), skipped over at the next start.
const RENEWAL_MARGIN: u64 = 1 << 20;

/// The greater of the clock and the stored generation plus [`RENEWAL_MARGIN`].
fn next_generation(now: u64, stored: Option<u64>) -> u64 {
    match stored {
        Some(s) => now.max(s.saturating_add(RENEWAL_MARGIN)),
        None => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use foca::Identity;

    #[test]
    fn a_restart_beats_the_last_generation_even_if_the_clock_went_back() {
        // The clock moved forward: it wins.
        assert_eq!(next_generation(5_000_000, Some(10)), 5_000_000);
        // The clock went back an hour: the stored generation (plus renewals) still wins.
        let stored = 1_700_000_000_000;
        let g = next_generation(stored - 3_600_000, Some(stored));
        assert!(g > stored + 1000, "{g}");
        assert_eq!(next_generation(7, None), 7);
        let dir = std::env::temp_dir().join(format!("memmesh-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = starting_generation(Some(&dir)).unwrap();
        let second = starting_generation(Some(&dir)).unwrap();
        assert!(second > first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn implausible_addresses_are_not_dialled_and_own_identity_fits_the_limits() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        for good in ["127.0.0.1:7400", "10.1.2.3:1", "[::1]:7400", "[fe80::1]:9"] {
            assert!(dialable(&addr(good)), "{good}");
        }
        for bad in [
            "0.0.0.0:7400",
            "0.1.2.3:7400",
            "255.255.255.255:7400",
            "224.0.0.251:5353",
            "10.0.0.1:0",
            "[::]:7400",
            "[ff02::fb]:5353",
            "[::ffff:0.0.0.0]:7400",
            "[::ffff:239.1.1.1]:7400",
        ] {
            assert!(!dialable(&addr(bad)), "{bad}");
        }
        let id = Keypair::generate().unwrap().node_id();
        let many: Vec<SocketAddr> = (1..=40u16)
            .map(|p| SocketAddr::from(([10, 0, 0, 1], p)))
            .collect();
        let mut with_bad = vec![addr("0.0.0.0:1"), addr("224.0.0.1:2")];
        with_bad.extend(&many);
        let m = MemberId {
            id,
            generation: 1,
            name: "n".into(),
            addrs: with_bad,
            role: crate::peer::Role::Member,
        };
        assert_eq!(m.dialable_addrs(), many[..MAX_MEMBER_ADDRS].to_vec());
        // A name of multi-byte characters is cut at a character boundary.
        let own = MemberId::own(id, 1, &"é".repeat(200), &many);
        assert!(own.name.len() <= MAX_NAME_LEN && own.name.chars().all(|c| c == 'é'));
        assert_eq!(own.addrs.len(), MAX_MEMBER_ADDRS);
        crate::membership::codec::check_member_id(&own).unwrap();
    }

    #[test]
    fn a_restarted_node_wins_over_its_old_identity() {
        let id = Keypair::generate().unwrap().node_id();
        let old = MemberId {
            id,
            generation: 10,
            name: "n".into(),
            addrs: vec![],
            role: crate::peer::Role::Member,
        };
        let new = MemberId {
            generation: 11,
            ..old.clone()
        };
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
        assert_eq!(old.renew().unwrap().generation, 11);
        assert_eq!(old.addr(), new.addr());
    }
}
