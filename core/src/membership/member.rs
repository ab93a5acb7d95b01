//! The identity a node has in the SWIM membership protocol.

use std::net::SocketAddr;

use crate::identity::NodeId;

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
        Err(e) => {
            return Err(crate::error::Error::from(e).context(format!("reading {}", path.display())))
        }
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
    fn a_restarted_node_wins_over_its_old_identity() {
        let id = Keypair::generate().unwrap().node_id();
        let old = MemberId {
            id,
            generation: 10,
            name: "n".into(),
            addrs: vec![],
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
