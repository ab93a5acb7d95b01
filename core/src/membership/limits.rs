//! Everything a member can make this node hold or do through membership is bounded here
//! (defaults; a later configuration issue may expose them). Why these values: ADR 0008.

use std::time::Duration;

/// Most members one node holds (every state, down included, this node excluded). Beyond
/// it, members only heard of are dropped (with a warning); a member that speaks for
/// itself over an authenticated connection may take the place of a down member or of one
/// only heard of, never of a live member that spoke for itself.
pub const MAX_MEMBERS: usize = 1024;

/// Most members one full-state sync may carry (a peer holds at most [`MAX_MEMBERS`]);
/// a larger one is refused whole with `InvalidInput`.
pub const MAX_SYNC_MEMBERS: usize = MAX_MEMBERS;

/// Largest SWIM packet accepted, in bytes (foca's `max_packet_size`, also what this node
/// sends); it bounds the members one packet can carry (a few hundred).
pub const MAX_PACKET_LEN: usize = 32 * 1024;

/// Longest member name, in bytes (the node configuration's own limit).
pub const MAX_NAME_LEN: usize = 255;

/// Most addresses one member may list (a node with more advertises its first ones).
pub const MAX_MEMBER_ADDRS: usize = 16;

/// Dials SWIM may start per second to members with no live connection (each address
/// tried counts as one), and how many may be saved up; packets beyond are dropped, as
/// SWIM expects of a lossy network.
pub const SWIM_DIALS_PER_SECOND: u32 = 8;
/// See [`SWIM_DIALS_PER_SECOND`].
pub const SWIM_DIAL_BURST: u32 = 32;

/// SWIM packets from one peer waiting for the membership actor; beyond, the peer is told
/// `QuotaExceeded`.
pub const MAX_QUEUED_PACKETS_PER_PEER: usize = 64;
/// SWIM packets from all peers waiting for the membership actor.
pub const MAX_QUEUED_PACKETS: usize = 1024;
/// Full-state syncs from one peer being decoded or applied at once; beyond, the peer is
/// told `QuotaExceeded`.
pub const MAX_SYNCS_IN_FLIGHT_PER_PEER: usize = 2;
/// Full-state syncs from all peers being decoded or applied at once.
pub const MAX_SYNCS_IN_FLIGHT: usize = 32;
/// Full-state syncs one peer may start per second (an honest one starts one every
/// `full_sync_interval` with a random member), and how many may be saved up.
pub const SYNCS_PER_PEER_PER_SECOND: u32 = 1;
/// See [`SYNCS_PER_PEER_PER_SECOND`].
pub const SYNC_BURST: u32 = 4;
/// How often per second this node tells one peer its current identity when that peer
/// keeps addressing an older one (a burst of [`CORRECTION_BURST`]).
pub const CORRECTIONS_PER_PEER_PER_SECOND: u32 = 1;
/// See [`CORRECTIONS_PER_PEER_PER_SECOND`].
pub const CORRECTION_BURST: u32 = 2;

/// How long a member's own word about its generation outweighs hearsay: for this long
/// after a member last spoke for itself, updates from others claiming it runs a higher
/// generation are ignored (it would have said so itself).
pub const OWN_WORD_WINDOW: Duration = Duration::from_secs(10);

/// Largest memory quota an advert may claim (16 TiB); larger values are capped.
pub const MAX_ADVERT_QUOTA: u64 = 1 << 44;
/// Within one generation, an advert's sequence number may run ahead of the last one
/// accepted by one per this interval elapsed (the fastest a node advertises)...
pub const ADVERT_SEQ_INTERVAL: Duration = Duration::from_millis(200);
/// ...plus this many (delays in transit).
pub const ADVERT_SEQ_SLACK: u64 = 64;
/// How far ahead of its node's generation an advert's sequence number may start (a node
/// numbers its adverts from its starting generation on).
pub const ADVERT_SEQ_AHEAD: u64 = 1 << 32;
/// After this long without an accepted advert from a node, its next advert is accepted
/// whatever its sequence number, so no advert can freeze a node's entry for longer.
pub const ADVERT_STALE_AFTER: Duration = Duration::from_secs(30);

/// Most goodbyes remembered from nodes not (yet) in the view.
pub const MAX_EARLY_GOODBYES: usize = MAX_MEMBERS;

/// Shortest interval between two warnings about refused membership input.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);
