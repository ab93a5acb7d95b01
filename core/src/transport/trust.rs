//! Trust levels: who a connected peer is to this node, decided by the handshake for each
//! connection (ADR 0028), and which services each level may use (pure rules).

use std::collections::HashSet;

use crate::identity::NodeId;
use crate::wire::Service;

/// Who a connected peer is to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    /// Proved the cluster secret (or the node is open or protected, loopback only).
    Member,
    /// A member this node lists in `devices`: may also receive private documents.
    Device,
    /// A node this node lists in `trusted_peers`, authenticated by its pinned key without
    /// the cluster secret: community and commons documents only.
    Outsider,
    /// Any other authenticated node, admitted only because this node serves commons:
    /// commons documents only.
    Commons,
}

impl Trust {
    /// Whether the peer is a member of the cluster (member or device): only members take
    /// part in membership, gossip, the cache, blocks, channels, files and transfers.
    pub fn is_member(self) -> bool {
        matches!(self, Trust::Member | Trust::Device)
    }

    /// Its name (`member`, `device`, `outsider`, `commons`).
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Member => "member",
            Trust::Device => "device",
            Trust::Outsider => "outsider",
            Trust::Commons => "commons",
        }
    }
}

impl std::fmt::Display for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a peer of `trust` may ask this node for `service`. Members may use every
/// service; outsiders and commons peers only the documents service (which then checks
/// each document's reach against the trust level).
pub fn may_use(trust: Trust, service: &Service) -> bool {
    trust.is_member() || matches!(service, Service::Docs)
}

/// What a node's configuration says about peers: its devices, the outsiders it trusts,
/// and whether it serves commons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// `devices`: members that may receive private documents.
    pub devices: HashSet<NodeId>,
    /// `trusted_peers`: outsiders admitted by their pinned key, without the secret.
    pub trusted_peers: HashSet<NodeId>,
    /// `serve_commons`: admit any authenticated node for commons documents.
    pub serve_commons: bool,
}

impl TrustPolicy {
    /// The level of a peer `id` that proved the cluster secret.
    pub fn member(&self, id: &NodeId) -> Trust {
        if self.devices.contains(id) {
            Trust::Device
        } else {
            Trust::Member
        }
    }

    /// Whether this node dials `id` as an outsider (skipping the cluster secret): it is
    /// listed in `trusted_peers`.
    pub fn dials_as_outsider(&self, id: &NodeId) -> bool {
        self.trusted_peers.contains(id)
    }

    /// The level of a peer `id` that asked to be admitted without the secret, or `None`
    /// if it is refused: listed in `trusted_peers`, or any node when serving commons.
    pub fn outsider(&self, id: &NodeId) -> Option<Trust> {
        if self.trusted_peers.contains(id) {
            Some(Trust::Outsider)
        } else if self.serve_commons {
            Some(Trust::Commons)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn id() -> NodeId {
        Keypair::generate().unwrap().node_id()
    }

    #[test]
    fn the_policy_decides_each_level() {
        let (dev, out, other) = (id(), id(), id());
        let mut p = TrustPolicy {
            devices: [dev].into(),
            trusted_peers: [out].into(),
            serve_commons: false,
        };
        assert_eq!(p.member(&dev), Trust::Device);
        assert_eq!(p.member(&other), Trust::Member);
        assert!(p.dials_as_outsider(&out) && !p.dials_as_outsider(&other));
        assert_eq!(p.outsider(&out), Some(Trust::Outsider));
        assert_eq!(p.outsider(&other), None, "a stranger without the secret");
        p.serve_commons = true;
        assert_eq!(p.outsider(&other), Some(Trust::Commons));
        assert_eq!(p.outsider(&out), Some(Trust::Outsider));
    }

    #[test]
    fn outsiders_may_use_the_documents_service_only() {
        for t in [Trust::Member, Trust::Device] {
            assert!(t.is_member());
            assert!(may_use(t, &Service::Cache) && may_use(t, &Service::Docs));
        }
        for t in [Trust::Outsider, Trust::Commons] {
            assert!(!t.is_member());
            assert!(may_use(t, &Service::Docs));
            for s in [
                Service::Cache,
                Service::Files,
                Service::Goodbye,
                Service::Fetch { id: [0; 32] },
            ] {
                assert!(!may_use(t, &s), "{t} may not use {s:?}");
            }
        }
    }
}
