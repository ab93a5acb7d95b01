//! Small helpers shared by core's unit tests (compiled only for them).

use crate::identity::{Keypair, NodeId};
use crate::membership::member::MemberId;

/// `n` fresh node ids, sorted.
pub(crate) fn ids(n: usize) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = (0..n)
        .map(|_| Keypair::generate().expect("a fresh key").node_id())
        .collect();
    v.sort();
    v
}

/// The SWIM identity of `id` at `generation`, named "n", with no addresses.
pub(crate) fn member(id: NodeId, generation: u64) -> MemberId {
    MemberId {
        id,
        generation,
        name: "n".into(),
        addrs: vec![],
        role: crate::peer::Role::Member,
    }
}
