//! The budgets of the transfer service, per peer and per node (documented defaults; a
//! later configuration issue can expose them). Every number a peer sends is checked
//! against these on the receiving side, with the same bounds the sending side uses.

use std::time::Duration;

use crate::error::Result;
use crate::transfer::error::TransferError;

/// Transfers a single peer may push to this node at once (from its offer until the
/// verdict). One more is refused with `QuotaExceeded`.
pub const MAX_INCOMING_PER_PEER: usize = 8;
/// Transfers all peers together may push to this node at once; beyond, `QuotaExceeded`.
/// With [`MAX_RECEIVE_CHUNK_SIZE`] this bounds what incoming transfers hold: one file
/// descriptor (opened only once data arrives) and two chunk buffers each.
pub const MAX_INCOMING_PER_NODE: usize = 32;
/// Fetches a single peer may have this node serve at once; beyond, `QuotaExceeded`.
pub const MAX_SERVED_PER_PEER: usize = 8;
/// Fetches this node serves at once, for all peers; beyond, `QuotaExceeded`.
pub const MAX_SERVED_PER_NODE: usize = 32;

/// A transfer stream on which nothing moves for this long (no byte read, or a frame not
/// taken by the peer) is dropped with `Timeout`; the verified part of a file is kept for a
/// resume. Applies to both sides: an offer that sends nothing after being accepted, a
/// receiver that never answers, a fetcher that stops reading.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Smallest chunk size a receiver accepts (the sender uses 1 MiB): per-chunk costs (a
/// frame, a task, a write) stay small against the data.
pub const MIN_RECEIVE_CHUNK_SIZE: u32 = 64 << 10;
/// Largest chunk size a receiver accepts: a transfer holds at most two chunks in memory.
pub const MAX_RECEIVE_CHUNK_SIZE: u32 = 4 << 20;

/// Partial files (and their resume state) untouched for this long are removed, unless a
/// transfer is using them. A directory is swept when a transfer into it starts, at most
/// once per [`SWEEP_EVERY`].
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Least interval between two sweeps of one directory for stale partial files.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Entries of a directory looked at by one sweep.
pub const SWEEP_MAX_ENTRIES: usize = 100_000;

/// Names tried for a delivered file when its name is taken (`name (1).ext` …
/// `name (N).ext`); beyond, the transfer fails and its verified partial file is kept.
pub const MAX_NAME_COLLISIONS: u32 = 9_999;

/// Checks a chunk size proposed by a peer against what this node receives.
pub fn check_receive_chunk_size(chunk_size: u32) -> Result<()> {
    crate::transfer::tree::check_chunk_size(chunk_size)?;
    if !(MIN_RECEIVE_CHUNK_SIZE..=MAX_RECEIVE_CHUNK_SIZE).contains(&chunk_size) {
        return Err(TransferError::ReceiveChunkSize {
            size: chunk_size,
            min_kib: MIN_RECEIVE_CHUNK_SIZE >> 10,
            max_mib: MAX_RECEIVE_CHUNK_SIZE >> 20,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_bounded_on_the_receiving_side() {
        for ok in [MIN_RECEIVE_CHUNK_SIZE, 1 << 20, MAX_RECEIVE_CHUNK_SIZE] {
            check_receive_chunk_size(ok).unwrap();
        }
        for bad in [
            0,
            1024,
            MIN_RECEIVE_CHUNK_SIZE / 2,
            MIN_RECEIVE_CHUNK_SIZE + 1,
            MAX_RECEIVE_CHUNK_SIZE * 2,
            u32::MAX,
        ] {
            assert!(check_receive_chunk_size(bad).is_err(), "{bad}");
        }
    }
}
