//! Where `Blocks::put` stores a block, and its text form (`"local"`, `"auto"` or a node
//! id) shared by every binding.

use std::fmt;
use std::str::FromStr;

use crate::blocks::error::BlocksError;
use crate::error::{Error, Result};
use crate::identity::NodeId;

/// Where `put` stores a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// In this node's RAM.
    #[default]
    Local,
    /// In the RAM of this peer.
    Peer(NodeId),
    /// On the live peer advertising the most free quota (this node if it has no peers).
    Auto,
}

impl FromStr for Placement {
    type Err = Error;

    /// `"local"`, `"auto"` or a node id (52 base32 characters); anything else is
    /// `InvalidInput` naming the three accepted forms.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(Placement::Local),
            "auto" => Ok(Placement::Auto),
            id => id.parse::<NodeId>().map(Placement::Peer).map_err(|e| {
                BlocksError::Placement {
                    text: id.to_string(),
                    source: e,
                }
                .into()
            }),
        }
    }
}

impl fmt::Display for Placement {
    /// The text [`Placement::from_str`] parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Local => f.write_str("local"),
            Placement::Auto => f.write_str("auto"),
            Placement::Peer(id) => write!(f, "{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use crate::ErrorKind;

    #[test]
    fn parses_and_prints_every_form() {
        let id = Keypair::generate().unwrap().node_id();
        for p in [Placement::Local, Placement::Auto, Placement::Peer(id)] {
            assert_eq!(p.to_string().parse::<Placement>().unwrap(), p);
        }
        assert_eq!("local".parse::<Placement>().unwrap(), Placement::Local);
        assert_eq!("auto".parse::<Placement>().unwrap(), Placement::Auto);
        assert_eq!(Placement::default(), Placement::Local);
    }

    #[test]
    fn anything_else_is_invalid_input_naming_the_forms() {
        for bad in ["", "Local", "elsewhere", "blake3:00"] {
            let e = bad.parse::<Placement>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(
                e.message().starts_with("placement must be"),
                "{}",
                e.message()
            );
            assert!(e.message().contains(&format!("{bad:?}")), "{}", e.message());
        }
    }
}
