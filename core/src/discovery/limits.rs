//! What an mDNS advertisement on the LAN can make a node do, bounded.
//!
//! Anyone on the link can publish records with our (public) cluster tag, so every advert
//! is a request from a stranger to dial an address of their choosing. These defaults bound
//! how many dials run at once, how fast they start (in total and per destination), how
//! many addresses one advert can name, how many adverts wait, and how long a failure is
//! remembered. They are constants for now, grouped here so a later configuration issue
//! can expose them (ADR 0009 explains the choices).

use std::time::Duration;

/// Adverts being dialled at the same time (each dials its addresses one after another).
pub const MAX_DIALS_IN_FLIGHT: usize = 8;

/// Addresses of one destination IP reserved by dials at the same time.
pub const MAX_DIALS_IN_FLIGHT_PER_SOURCE: usize = 2;

/// Addresses dialled for one advertised node; further ones are ignored.
pub const MAX_ADDRS_PER_ADVERT: usize = 4;

/// Addresses of one mDNS record looked at (after dropping implausible ones); the rest of
/// a record that lists more is ignored before it is even parsed.
pub const MAX_ADDRS_READ_PER_RECORD: usize = 16;

/// Adverts waiting to be dialled. When full, the oldest advert of the source with the most
/// waiting adverts is dropped, so a newcomer from a quiet source always gets a place (and
/// the cache is replayed later, see [`REPLAY_AFTER_DROPS`]).
pub const MAX_PENDING: usize = 256;

/// Dials that may start at once after a quiet period (the overall token bucket's size).
pub const DIAL_BURST: u32 = 16;

/// One more dial may start every `DIAL_REFILL` (4 per second sustained, in total).
pub const DIAL_REFILL: Duration = Duration::from_millis(250);

/// Minimum gap between two dials that start towards the same IP.
pub const SOURCE_SPACING: Duration = Duration::from_millis(250);

/// After a failed dial, its IP is not dialled again for this long, doubled on every
/// consecutive failure up to [`SOURCE_BACKOFF_MAX`]; a success resets it.
pub const SOURCE_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// The longest wait imposed on an IP whose dials keep failing; an IP left alone this long
/// after its wait ends is forgotten (its next failure starts again at the minimum).
pub const SOURCE_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Destination IPs whose rate state is kept (idle ones are forgotten first).
pub const MAX_SOURCES: usize = 1024;

/// An advertised node and address whose dial failed is not dialled again for this long,
/// however often the same record is seen.
pub const FAILED_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Failed (node, address) pairs remembered; beyond this the soonest to expire are dropped.
pub const MAX_FAILED_REMEMBERED: usize = 4096;

/// Advertised nodes whose first sighting is remembered, to dial the node seen most
/// recently first; beyond this the earliest seen are forgotten (and rank as new).
pub const MAX_SEEN_REMEMBERED: usize = 4096;

/// How long one address of an advert may take to answer (capped by the node's
/// `connect_timeout`). A node on the local link answers in milliseconds.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// First wait before a browse that ended (mdns-sd drops it when its 1000-event channel
/// fills) is started again; doubled on each restart up to [`BROWSE_RESTART_MAX`].
pub const BROWSE_RESTART_MIN: Duration = Duration::from_millis(500);

/// The longest wait between two browse restarts.
pub const BROWSE_RESTART_MAX: Duration = Duration::from_secs(30);

/// A browse that lasted at least this long resets the restart wait to its minimum.
pub const BROWSE_STABLE: Duration = Duration::from_secs(60);

/// While adverts were dropped from the full waiting set, the browse is started again
/// (mdns-sd then replays its cache, so dropped adverts still advertised come back) at
/// most this often.
pub const REPLAY_AFTER_DROPS: Duration = Duration::from_secs(30);

/// How old the list of the interfaces' networks (used to drop off-link addresses) may get.
pub const NETWORKS_REFRESH: Duration = Duration::from_secs(5);

/// mDNS records read but not yet looked at. The browse thread only moves records here
/// (mdns-sd drops a browse whose 1000-event channel fills, so it must never wait on us);
/// beyond this the oldest are dropped, and a later browse restart replays what is still
/// advertised.
pub const MAX_RECORDS_QUEUED: usize = 4096;

/// Records looked at in one turn of the dial task before it starts dials again.
pub const RECORDS_PER_TURN: usize = 256;
