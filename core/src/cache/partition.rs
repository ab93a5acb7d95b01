//! Partitioning and rendezvous placement. Pure logic.
//!
//! A key belongs to one of [`PARTITIONS`] partitions (a stable hash of the key, the same on
//! every node and version). A partition's owners are the first `replicas` members ranked by
//! a rendezvous score of (member, partition): every node computes the same owners from the
//! same member list, and a membership change moves only the partitions whose top ranks
//! changed.

use crate::identity::NodeId;

/// The number of partitions (prime, as in Olric and Hazelcast).
pub const PARTITIONS: usize = 271;

/// FNV-1a over `bytes`: stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A strong 64-bit mix (splitmix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The partition of `key`.
pub fn partition_of(key: &str) -> u16 {
    (mix(fnv1a(key.as_bytes())) % PARTITIONS as u64) as u16
}

/// The rendezvous score of `member` for `partition` (higher ranks first).
pub fn score(member: &NodeId, partition: u16) -> u64 {
    mix(fnv1a(member.as_bytes()) ^ mix(u64::from(partition) + 1))
}

/// `members` ranked for `partition`, best first (ties broken by id).
pub fn rank(members: &[NodeId], partition: u16) -> Vec<NodeId> {
    let mut ranked: Vec<(u64, NodeId)> =
        members.iter().map(|m| (score(m, partition), *m)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, m)| m).collect()
}

/// The owners of `partition` among `members` with `replicas` copies, primary first: the
/// first `replicas` of [`rank`] (all of them when there are fewer members).
pub fn owners_of(members: &[NodeId], partition: u16, replicas: u32) -> Vec<NodeId> {
    let mut ranked = rank(members, partition);
    ranked.truncate(usize::try_from(replicas).unwrap_or(usize::MAX));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn ids(n: usize) -> Vec<NodeId> {
        (0..n)
            .map(|_| Keypair::generate().unwrap().node_id())
            .collect()
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("user:1"), partition_of("user:1"));
        let mut counts = [0usize; PARTITIONS];
        for i in 0..100_000 {
            counts[partition_of(&format!("key:{i}")) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 250 && *max < 500, "uneven spread {min}..{max}");
    }

    #[test]
    fn a_join_moves_about_one_share_of_primaries() {
        let mut members = ids(3);
        let before: Vec<NodeId> = (0..PARTITIONS as u16)
            .map(|p| rank(&members, p)[0])
            .collect();
        members.extend(ids(1));
        let after: Vec<NodeId> = (0..PARTITIONS as u16)
            .map(|p| rank(&members, p)[0])
            .collect();
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        // Only partitions whose new primary is the newcomer move (about a quarter).
        assert!(after
            .iter()
            .zip(&before)
            .all(|(a, b)| a == b || *a == members[3]));
        assert!(moved > 30 && moved < 110, "moved {moved}");
        // The ranking does not depend on the order of the member list.
        let mut shuffled = members.clone();
        shuffled.reverse();
        assert_eq!(rank(&members, 7), rank(&shuffled, 7));
        assert_eq!(owners_of(&members, 7, 2), rank(&members, 7)[..2]);
        assert_eq!(owners_of(&members, 7, 9), rank(&members, 7));
        let table = crate::cache::routing::Table::new(1, members.clone());
        for p in 0..PARTITIONS as u16 {
            assert_eq!(owners_of(&members, p, 3), table.owners(p, 3));
        }
    }
}
