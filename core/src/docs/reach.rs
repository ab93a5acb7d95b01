//! Reach: where a document may flow, and who a peer is to this node (pure rules).

use std::fmt;
use std::str::FromStr;

use super::error::DocsError;

/// Where a document may flow (DESIGN.md "Trust levels and reach", ADR 0020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reach {
    /// This node only (its listed devices arrive in a later version).
    Private,
    /// Members of the cluster (holders of the cluster secret).
    Cluster,
    /// Also trusted outsiders (not in the transport yet: members only for now).
    Community,
    /// Anyone who asks, when the node serves commons (members only for now).
    Commons,
}

impl Reach {
    /// Its byte on disk and on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            Reach::Private => 0,
            Reach::Cluster => 1,
            Reach::Community => 2,
            Reach::Commons => 3,
        }
    }

    /// The reach of byte `b`.
    pub fn from_u8(b: u8) -> Option<Reach> {
        Some(match b {
            0 => Reach::Private,
            1 => Reach::Cluster,
            2 => Reach::Community,
            3 => Reach::Commons,
            _ => return None,
        })
    }

    /// Its name (`private`, `cluster`, `community`, `commons`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Private => "private",
            Reach::Cluster => "cluster",
            Reach::Community => "community",
            Reach::Commons => "commons",
        }
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reach {
    type Err = DocsError;

    fn from_str(s: &str) -> Result<Reach, DocsError> {
        Ok(match s {
            "private" => Reach::Private,
            "cluster" => Reach::Cluster,
            "community" => Reach::Community,
            "commons" => Reach::Commons,
            other => {
                return Err(DocsError::Invalid(format!(
                    "unknown reach {other:?}: use private, cluster, community or commons"
                )))
            }
        })
    }
}

/// Who a connected peer is to this node. Today's transport admits members only (every
/// authenticated connection proved the cluster secret, or the node is open or protected);
/// trusted outsiders and strangers arrive with trust levels in the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Holds the cluster secret (or the node is open).
    Member,
}

/// Whether a document of `reach` may flow to (or be accepted from) a peer of `trust`.
pub fn may_flow(reach: Reach, trust: Trust) -> bool {
    match (reach, trust) {
        (Reach::Private, _) => false,
        (Reach::Cluster | Reach::Community | Reach::Commons, Trust::Member) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_never_flows_and_bytes_round_trip() {
        assert!(!may_flow(Reach::Private, Trust::Member));
        assert!(may_flow(Reach::Cluster, Trust::Member));
        for b in 0..=3 {
            let r = Reach::from_u8(b).unwrap();
            assert_eq!(r.as_u8(), b);
            assert_eq!(r.as_str().parse::<Reach>().unwrap(), r);
        }
        assert!(Reach::from_u8(4).is_none());
    }
}
