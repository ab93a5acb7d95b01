//! The discovery module's typed error.

use crate::error::{Classify, ErrorKind};

/// What goes wrong finding peers on the local network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The mDNS daemon failed.
    #[error("mDNS: {0}")]
    Mdns(#[source] mdns_sd::Error),
    /// The browse thread could not be started.
    #[error("starting the mDNS browse thread: {0}")]
    BrowseThread(#[source] std::io::Error),
    /// An advertisement carries no node id.
    #[error("advertisement without an id")]
    NoId,
    /// An advertisement carries no cluster tag.
    #[error("advertisement without a cluster tag")]
    NoCluster,
    /// An advertisement's SRV record names port 0.
    #[error("advertisement with port 0")]
    PortZero,
    /// None of an advertisement's addresses can be dialled.
    #[error("advertisement without a usable address")]
    NoAddress,
}

impl Classify for DiscoveryError {
    fn kind(&self) -> ErrorKind {
        match self {
            DiscoveryError::Mdns(_) | DiscoveryError::BrowseThread(_) => ErrorKind::Io,
            DiscoveryError::NoId
            | DiscoveryError::NoCluster
            | DiscoveryError::PortZero
            | DiscoveryError::NoAddress => ErrorKind::InvalidInput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn discovery_errors_keep_their_kind_message_and_cause() {
        let e: Error = DiscoveryError::BrowseThread(std::io::Error::other("no threads")).into();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.message(), "starting the mDNS browse thread: no threads");
        assert_eq!(
            std::error::Error::source(&e)
                .map(|c| c.to_string())
                .as_deref(),
            Some("no threads")
        );
        let e: Error = DiscoveryError::Mdns(mdns_sd::Error::Msg("bad interface".into())).into();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Io, "mDNS: bad interface")
        );
        assert!(std::error::Error::source(&e).is_some());
        let e: Error = DiscoveryError::PortZero.into();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::InvalidInput, "advertisement with port 0")
        );
    }
}
