//! Where a message goes ([`Target`]), and the parsing of node ids given as text that
//! every binding shares (`send`'s `to`, a transfer's peers).

use crate::error::Result;
use crate::identity::NodeId;

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every connected peer (not this node).
    All,
    /// These peers (this node's own id delivers locally).
    Peers(Vec<NodeId>),
}

impl From<NodeId> for Target {
    fn from(id: NodeId) -> Self {
        Target::Peers(vec![id])
    }
}

impl From<Vec<NodeId>> for Target {
    fn from(ids: Vec<NodeId>) -> Self {
        Target::Peers(ids)
    }
}

impl From<&[NodeId]> for Target {
    fn from(ids: &[NodeId]) -> Self {
        Target::Peers(ids.to_vec())
    }
}

impl Target {
    /// The target of node ids given as text: `None` is [`Target::All`] (every connected
    /// peer), `Some(ids)` those peers. A malformed id is `InvalidInput` naming it.
    pub fn parse<I, S>(ids: Option<I>) -> Result<Target>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        match ids {
            None => Ok(Target::All),
            Some(ids) => parse_ids(ids).map(Target::Peers),
        }
    }
}

/// Node ids given as text (52 base32 characters each), in order. A malformed one is
/// `InvalidInput` naming it.
pub fn parse_ids<I, S>(ids: I) -> Result<Vec<NodeId>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    ids.into_iter().map(|id| id.as_ref().parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::ErrorKind;

    #[test]
    fn none_is_everyone_and_a_list_is_those_peers() {
        let a = Keypair::generate().unwrap().node_id();
        let b = Keypair::generate().unwrap().node_id();
        assert_eq!(Target::parse(None::<Vec<String>>).unwrap(), Target::All);
        let ids = [a.to_string(), b.to_string()];
        assert_eq!(
            Target::parse(Some(&ids)).unwrap(),
            Target::Peers(vec![a, b])
        );
        assert_eq!(
            Target::parse(Some(Vec::<String>::new())).unwrap(),
            Target::Peers(vec![])
        );
        assert_eq!(parse_ids([a.to_string()]).unwrap(), vec![a]);
    }

    #[test]
    fn a_malformed_id_is_invalid_input_naming_it() {
        let a = Keypair::generate().unwrap().node_id().to_string();
        let e = Target::parse(Some([a.as_str(), "nope"])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("\"nope\""), "{}", e.message());
    }
}
