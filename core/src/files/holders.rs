//! Choosing holders (pure): rendezvous hashing ranks nodes for a file by a score of
//! `(file id, node id)`, highest first, so that every node ranks the same candidates the
//! same way without coordination; and the retry schedule of unacknowledged deletes.

use std::time::{Duration, Instant};

use crate::identity::NodeId;

/// The rendezvous score of `node` for file `id`: the first 8 bytes of
/// BLAKE3(`"memmesh files rendezvous" ‖ id ‖ node`), big-endian.
pub fn score(id: &[u8; 32], node: &NodeId) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"memmesh files rendezvous");
    h.update(id);
    h.update(node.as_bytes());
    let out = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out.as_bytes()[..8]);
    u64::from_be_bytes(first)
}

/// `candidates` ranked for file `id`, highest score first (ties by node id), without
/// duplicates and without the nodes in `exclude`.
pub fn rank(id: &[u8; 32], candidates: &[NodeId], exclude: &[NodeId]) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = candidates
        .iter()
        .copied()
        .filter(|c| !exclude.contains(c))
        .collect();
    out.sort_by(|a, b| score(id, b).cmp(&score(id, a)).then(a.cmp(b)));
    out.dedup();
    out
}

/// Whether this node (`me`) is the one, among the surviving holders of a file, that acts
/// for it (restores its replica count): the first by rendezvous.
pub fn acts_for(id: &[u8; 32], me: &NodeId, survivors: &[NodeId]) -> bool {
    rank(id, survivors, &[]).first() == Some(me)
}

/// First wait before a `Forget` is sent again to a holder that did not acknowledge.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between two tries.
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// When to try a holder again: exponential backoff from [`RETRY_FIRST`] up to
/// [`RETRY_MAX`], per holder; a holder that comes back (`PeerUp`) is tried at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failed tries so far.
    pub failures: u32,
    /// Not before this instant.
    pub next: Instant,
}

impl Backoff {
    /// Due at once.
    pub fn now(now: Instant) -> Backoff {
        Backoff {
            failures: 0,
            next: now,
        }
    }

    /// Whether a try is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// After a failed try at `now`.
    pub fn failed(self, now: Instant) -> Backoff {
        let failures = self.failures.saturating_add(1);
        let wait = RETRY_FIRST
            .saturating_mul(1u32 << failures.min(16).saturating_sub(1))
            .min(RETRY_MAX);
        Backoff {
            failures,
            next: now + wait,
        }
    }

    /// The holder came back at `now`: due at once.
    pub fn back(self, now: Instant) -> Backoff {
        Backoff::now(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn nodes(n: usize) -> Vec<NodeId> {
        (0..n)
            .map(|_| Keypair::generate().unwrap().node_id())
            .collect()
    }

    #[test]
    fn ranking_is_the_same_everywhere_and_excludes() {
        let ns = nodes(6);
        let id = [7u8; 32];
        let a = rank(&id, &ns, &[]);
        let mut rev = ns.clone();
        rev.reverse();
        assert_eq!(
            rank(&id, &rev, &[]),
            a,
            "order of candidates does not matter"
        );
        assert_eq!(a.len(), 6);
        let without = rank(&id, &ns, &[a[0]]);
        assert_eq!(
            without,
            a[1..].to_vec(),
            "removing one keeps the others' order"
        );
        assert!(acts_for(&id, &a[0], &ns));
        assert!(!acts_for(&id, &a[1], &ns));
        // Another file ranks differently (with 6 nodes, almost surely).
        let others: Vec<Vec<NodeId>> = (0u8..8).map(|i| rank(&[i; 32], &ns, &[])).collect();
        assert!(others.iter().any(|o| o[0] != others[0][0]));
    }

    #[test]
    fn backoff_grows_caps_and_resets_when_the_holder_is_back() {
        let t0 = Instant::now();
        let b = Backoff::now(t0);
        assert!(b.due(t0));
        let b = b.failed(t0);
        assert!(!b.due(t0));
        assert!(b.due(t0 + RETRY_FIRST));
        let b = b.failed(t0);
        assert_eq!(b.next, t0 + RETRY_FIRST * 2);
        let mut c = b;
        for _ in 0..40 {
            c = c.failed(t0);
        }
        assert_eq!(c.next, t0 + RETRY_MAX);
        assert!(c.back(t0).due(t0));
    }
}
