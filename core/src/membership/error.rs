//! The typed errors of membership ([`MembershipError`]), each of one public [`ErrorKind`].
//! (Malformed member metadata is [`crate::membership::codec::MetadataError`].)

use std::path::PathBuf;

use crate::error::{io_kind, Classify, ErrorKind};
use crate::membership::limits::{
    MAX_PACKET_LEN, MAX_QUEUED_PACKETS, MAX_QUEUED_PACKETS_PER_PEER, MAX_SYNCS_IN_FLIGHT,
    MAX_SYNCS_IN_FLIGHT_PER_PEER, SYNCS_PER_PEER_PER_SECOND,
};

/// Why membership refused a configuration or something a peer sent, or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// `probe_period` is not greater than `probe_rtt`, or `probe_rtt` is zero.
    #[error("probe_period must be greater than probe_rtt, both non-zero")]
    ProbeTimings,
    /// `suspect_timeout`, `full_sync_interval` or `rejoin_interval` is zero.
    #[error("suspect_timeout, full_sync_interval and rejoin_interval must be non-zero")]
    ZeroInterval,
    /// A SWIM packet longer than [`MAX_PACKET_LEN`].
    #[error("a SWIM packet of {0} bytes exceeds the limit of {MAX_PACKET_LEN}")]
    PacketTooLarge(usize),
    /// A SWIM packet whose sender is not the authenticated peer that sent it.
    #[error("a SWIM packet from {from} claims to come from {claimed}")]
    Impersonation {
        /// The authenticated peer (short id).
        from: String,
        /// Who the packet says it is from (short id).
        claimed: String,
    },
    /// Too many SWIM packets wait for the actor.
    #[error(
        "too many SWIM packets waiting (at most {MAX_QUEUED_PACKETS_PER_PEER} per peer, \
         {MAX_QUEUED_PACKETS} in all)"
    )]
    PacketsQueued,
    /// Too many full-state syncs are being served.
    #[error(
        "too many full-state syncs in flight (at most {MAX_SYNCS_IN_FLIGHT_PER_PEER} per \
         peer, {MAX_SYNCS_IN_FLIGHT} in all)"
    )]
    SyncsInFlight,
    /// A peer asked for full-state syncs faster than allowed.
    #[error("too many full-state syncs (at most {SYNCS_PER_PEER_PER_SECOND} per second per peer)")]
    SyncRate,
    /// The generation file of the data dir could not be read.
    #[error("reading {}: {source}", path.display())]
    Generation {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The system random generator failed (seeding SWIM's choices).
    #[error("the system random generator failed")]
    Random,
}

impl Classify for MembershipError {
    fn kind(&self) -> ErrorKind {
        match self {
            MembershipError::ProbeTimings
            | MembershipError::ZeroInterval
            | MembershipError::PacketTooLarge(_) => ErrorKind::InvalidInput,
            MembershipError::Impersonation { .. } => ErrorKind::Unauthorized,
            MembershipError::PacketsQueued
            | MembershipError::SyncsInFlight
            | MembershipError::SyncRate => ErrorKind::QuotaExceeded,
            MembershipError::Generation { source, .. } => io_kind(source),
            MembershipError::Random => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn kinds_messages_and_causes_reach_the_public_error() {
        let e: Error = MembershipError::SyncRate.into();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(e.message().contains("per second per peer"), "{e}");
        let io = std::io::Error::other("disk on fire");
        let e: Error = MembershipError::Generation {
            path: PathBuf::from("/d/generation"),
            source: io,
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.message(), "reading /d/generation: disk on fire");
        assert!(std::error::Error::source(&e).is_some());
        assert!(matches!(
            e.downcast_ref::<MembershipError>(),
            Some(MembershipError::Generation { .. })
        ));
    }
}
