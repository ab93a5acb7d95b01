//! The timings of membership ([`MembershipConfig`]), their validation, and the foca
//! configuration a node derives from them ([`MembershipConfig::foca_config`]).

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use crate::error::Result;
use crate::membership::error::MembershipError;
use crate::membership::limits::MAX_PACKET_LEN;

/// Timing of failure detection and view maintenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// How often each node probes a random member.
    pub probe_period: Duration,
    /// How long to wait for a direct probe reply before asking others to probe.
    pub probe_rtt: Duration,
    /// How long a suspect member has to refute before SWIM declares it down.
    pub suspect_timeout: Duration,
    /// How long after SWIM's verdict `PeerDown` is reported (a member back within it
    /// causes no `PeerDown`). A graceful leave skips it.
    pub down_grace: Duration,
    /// How long a down member is remembered before it is removed from the view.
    pub forget_after: Duration,
    /// How often the full member list is exchanged with a random member.
    pub full_sync_interval: Duration,
    /// How often this node announces itself to a member just declared down (less often
    /// the longer it stays down, at most every 4 × this, so a heal is seen within about
    /// that), and the first pause of the bootstrap re-dials while it has no live member:
    /// so a healed partition or a resumed process rejoins.
    pub rejoin_interval: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self {
            probe_period: Duration::from_millis(500),
            probe_rtt: Duration::from_millis(200),
            suspect_timeout: Duration::from_millis(1000),
            down_grace: Duration::from_millis(500),
            forget_after: Duration::from_secs(3600),
            full_sync_interval: Duration::from_secs(5),
            rejoin_interval: Duration::from_secs(1),
        }
    }
}

impl MembershipConfig {
    /// Checks the timings are usable.
    pub fn validate(&self) -> Result<()> {
        if self.probe_rtt.is_zero() || self.probe_period <= self.probe_rtt {
            return Err(MembershipError::ProbeTimings.into());
        }
        if self.suspect_timeout.is_zero()
            || self.full_sync_interval.is_zero()
            || self.rejoin_interval.is_zero()
        {
            return Err(MembershipError::ZeroInterval.into());
        }
        Ok(())
    }

    /// The configuration of foca (the SWIM implementation) a node runs with these
    /// timings: the actor builds its `Foca` with it, and a simulator that drives foca the
    /// way a node does should too. Packets are at most [`MAX_PACKET_LEN`] bytes, members
    /// declared down are told so, and foca's own periodic announce to down members is off
    /// (the actor announces every `rejoin_interval`, also when it is alone).
    pub fn foca_config(&self) -> foca::Config {
        let mut c = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(31));
        c.probe_period = self.probe_period;
        c.probe_rtt = self.probe_rtt;
        c.suspect_to_down_after = self.suspect_timeout;
        c.remove_down_after = Some(self.forget_after);
        c.max_packet_size = NonZeroUsize::MIN.saturating_add(MAX_PACKET_LEN - 1);
        // A member we declared down is told so (it then renews its identity and rejoins).
        c.notify_down_members = true;
        // foca announces to down members only while it has live ones, and every 65 s: the
        // actor does it itself every `rejoin_interval`, also when it is alone.
        c.periodic_announce_to_down_members = None;
        c
    }
}
