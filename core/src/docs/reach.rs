//! Reach: where a document may flow, and who a peer is to this node (pure rules).

use std::fmt;
use std::str::FromStr;

use super::error::DocsError;

/// Where a document may flow (DESIGN.md "Trust levels and reach", ADR 0020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reach {
    /// This node and its listed `devices` only.
    Private,
    /// Members of the cluster (holders of the cluster secret).
    Cluster,
    /// Also trusted outsiders (`trusted_peers`, connected by pinned key without the
    /// secret).
    Community,
    /// Anyone who asks: also any authenticated node, when the node serves commons.
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

pub use crate::transport::trust::Trust;

/// Whether a document of `reach` may flow to (or be accepted from) a peer of `trust`
/// (ADR 0028): private to devices; cluster to members; community also to trusted
/// outsiders; commons to anyone admitted (commons peers are admitted only when the node
/// serves commons).
pub fn may_flow(reach: Reach, trust: Trust) -> bool {
    match reach {
        Reach::Private => trust == Trust::Device,
        Reach::Cluster => trust.is_member(),
        Reach::Community => trust.is_member() || trust == Trust::Outsider,
        Reach::Commons => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reach_flows_to_its_trust_levels_only() {
        use Trust::*;
        let table = [
            (Reach::Private, [false, true, false, false]),
            (Reach::Cluster, [true, true, false, false]),
            (Reach::Community, [true, true, true, false]),
            (Reach::Commons, [true, true, true, true]),
        ];
        for (reach, allowed) in table {
            for (trust, ok) in [Member, Device, Outsider, Commons].into_iter().zip(allowed) {
                assert_eq!(may_flow(reach, trust), ok, "{reach} to {trust}");
            }
        }
    }

    #[test]
    fn private_never_flows_to_members_and_bytes_round_trip() {
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
