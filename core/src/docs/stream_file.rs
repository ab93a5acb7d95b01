//! The event log and stream positions kept across restarts (ADR 0020, seventh slice):
//! `<data_dir>/docs/stream`, a sealed file (`sealed_file.rs`, magic [`MAGIC`], version
//! [`VERSION`], associated data [`AAD`]) of a [`Saved`].
//!
//! It is written at start (marked not clean), now and then while the node runs (not
//! clean) and at an orderly shutdown (clean). A log read back from a clean file goes on
//! with the same epoch; otherwise (a crash, a missing or unreadable file) the node starts
//! a new epoch, which makes every peer's position in the old one read as "from the
//! beginning": they re-check every document once, and nothing is missed. The positions
//! in peers' logs are kept either way: they only ever cover changes already durable here.

use serde::{Deserialize, Serialize};

use super::events::Position;
use super::log::Sealer;
use super::sealed_file::{self, Kind};

/// The file's name in `<data_dir>/docs/`.
pub const FILE_NAME: &str = "stream";
/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"memmeshE";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// The associated data of the box.
pub const AAD: &[u8] = b"memmesh docs stream v1";
/// Most events saved (one per document; about 30 bytes each). A log with more is saved
/// as not clean: the next start begins a new epoch.
pub const MAX_EVENTS: usize = 400_000;
/// Most peers whose positions are saved (the latest-used first).
pub const MAX_PEERS: usize = 4096;

const KIND: Kind = Kind {
    magic: MAGIC,
    version: VERSION,
    aad: AAD,
};

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The log's epoch.
    pub epoch: u64,
    /// Its last event number.
    pub head: u64,
    /// Whether it was written at an orderly shutdown (every event recorded before it).
    pub clean: bool,
    /// Each document's last event.
    pub events: Vec<([u8; 16], u64)>,
    /// This node's position in each peer's log.
    pub peers: Vec<([u8; 32], Position)>,
}

/// The file's bytes for `saved`, sealed with `key` (too many events: saved not clean and
/// without them; too many peers: the first [`MAX_PEERS`]).
pub fn encode(saved: &Saved, key: &dyn Sealer) -> Result<Vec<u8>, String> {
    let mut s = saved.clone();
    if s.events.len() > MAX_EVENTS {
        s.events.clear();
        s.clean = false;
    }
    s.peers.truncate(MAX_PEERS);
    sealed_file::seal(KIND, &s, key)
}

/// What a file's `bytes` hold, or why they cannot be read.
pub fn decode(bytes: &[u8], key: &dyn Sealer) -> Result<Saved, String> {
    let s: Saved = sealed_file::open(KIND, bytes, key)?;
    if s.events.len() > MAX_EVENTS || s.peers.len() > MAX_PEERS {
        return Err(format!(
            "{} events and {} peers, more than {MAX_EVENTS} and {MAX_PEERS}",
            s.events.len(),
            s.peers.len()
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::docs::sealed_file::tests::Xor;

    #[test]
    fn the_file_round_trips_and_an_oversized_log_is_saved_not_clean() {
        let s = Saved {
            epoch: 42,
            head: 9,
            clean: true,
            events: vec![([1; 16], 3), ([2; 16], 9)],
            peers: vec![([7; 32], Position { epoch: 5, seq: 11 })],
        };
        let bytes = encode(&s, &Xor(3)).unwrap();
        assert_eq!(decode(&bytes, &Xor(3)).unwrap(), s);
        assert!(decode(&bytes[..6], &Xor(3)).is_err());
        assert!(decode(b"memmeshS\x01xx", &Xor(3)).is_err(), "another kind");
        let big = Saved {
            events: vec![([0; 16], 1); MAX_EVENTS + 1],
            clean: true,
            ..s
        };
        let back = decode(&encode(&big, &Xor(3)).unwrap(), &Xor(3)).unwrap();
        assert!(!back.clean && back.events.is_empty());
        assert_eq!(back.peers, big.peers);
    }
}
