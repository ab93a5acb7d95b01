//! Every limit the cache applies to what a user or a peer can make a node hold or do, in
//! one place (a later configuration issue can expose them as options). The serving side
//! applies the same limits as the client side: see `validate.rs`.

use std::time::Duration;

/// Longest key accepted, in bytes (user calls and peer requests alike).
pub const MAX_KEY_LEN: usize = 4096;

/// Longest bucket name accepted, in bytes.
pub const MAX_BUCKET_NAME_LEN: usize = 255;

/// Bytes of a frame kept for everything but an entry's key and value (the request's
/// envelope: bucket spec, version, expiry, the ids a write was sent to). A key and value
/// together may take `max_message_size - ENTRY_ENVELOPE` bytes, so that one entry always
/// fits in a request and in a pull page.
pub const ENTRY_ENVELOPE: usize = 4096;

/// Most keys (reads) or entries (writes) in one request. A user batch larger than this is
/// split into several requests; a peer request with more is refused (`InvalidInput`).
pub const MAX_BATCH: usize = 1024;

/// Most buckets a node holds. Past it, opening or defining a bucket fails with
/// `QuotaExceeded`.
pub const MAX_BUCKETS: usize = 1024;

/// Buckets kept for this node's own user: peers can make a node create buckets only while
/// it holds fewer than `MAX_BUCKETS - LOCAL_BUCKET_RESERVE`, so a member that defines
/// junk buckets cannot stop this node's application from opening its own.
pub const LOCAL_BUCKET_RESERVE: usize = 64;

/// How far ahead of this node's wall clock a version (HLC stamp) from a peer may be
/// (ADR 0010, *Clocks*). A stamp past it is refused (`InvalidInput`) instead of moving the
/// clock; a stamp no greater than the clock's last one is always accepted (it moves
/// nothing).
pub const MAX_CLOCK_DRIFT: Duration = Duration::from_secs(24 * 60 * 60);

/// Bytes of keys and values a node puts in one page it serves to a pull (an entry larger
/// than that travels alone in its page).
pub const PAGE_BYTES: usize = 2 * 1024 * 1024;

/// Bytes of keys and values one pull round may bring before the puller pauses (it resumes
/// from the same cursor after [`PULL_ROUND_PAUSE`]).
pub const MAX_PULL_ROUND_BYTES: u64 = 64 * 1024 * 1024;

/// Pause between two rounds of one pull.
pub const PULL_ROUND_PAUSE: Duration = Duration::from_millis(200);

/// Pause before a pull that stopped at the memory quota tries again (from where it
/// stopped).
pub const PULL_QUOTA_RETRY: Duration = Duration::from_secs(5);
