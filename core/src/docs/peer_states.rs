//! The per-peer sync state of each document, kept across restarts (ADR 0020, sixth
//! slice): what Automerge's `sync::State::encode` keeps of a state (the heads both sides
//! are known to share) and the sync status's "last synced" time, for every (document,
//! peer) pair. With it, the first exchange after a restart or a reconnection sends only
//! what changed since those shared heads (a Bloom filter of those changes, not of the
//! whole history).
//!
//! `<data_dir>/docs/sync-states` is [`MAGIC`] ‖ version ([`VERSION`]) ‖ the storage key's
//! AEAD box (bound to [`AAD`]) of the bincode list of [`Saved`] (big-endian, standard
//! bincode 2 configuration, as the wire's bulk bodies). It is rewritten whole (temp
//! file, fsync, rename, directory fsync) now and then while the node runs and at
//! shutdown; losing the latest one costs only a longer first exchange, never data. A
//! file that cannot be read is logged and ignored.

use serde::{Deserialize, Serialize};

use super::log::Sealer;

/// The file's name in `<data_dir>/docs/`.
pub const FILE_NAME: &str = "sync-states";
/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"memmeshS";
/// The format version this code writes and reads (1 had no `their_heads`: such a file is
/// ignored, which costs only longer first exchanges).
pub const VERSION: u8 = 2;
/// The associated data of the box.
pub const AAD: &[u8] = b"memmesh docs sync-states v1";
/// Most states saved (those of the documents first listed, in id order, beyond it are
/// not: each costs about 100 bytes, so the file stays within the 16 MiB bulk limit).
pub const MAX_SAVED: usize = 100_000;

/// The saved state of one (document, peer) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The document.
    pub doc: [u8; 16],
    /// The peer.
    pub peer: [u8; 32],
    /// `automerge::sync::State::encode` of the pair's state (empty: none).
    #[serde(with = "serde_bytes")]
    pub shared: Vec<u8>,
    /// When (unix ms) an exchange last left both sides at the same heads.
    pub last_synced: Option<u64>,
    /// The peer's heads as it last told them (the sync status's "in sync" and "behind").
    pub their_heads: Option<Vec<[u8; 32]>>,
}

/// The file's layout.
const KIND: super::sealed_file::Kind = super::sealed_file::Kind {
    magic: MAGIC,
    version: VERSION,
    aad: AAD,
};

/// The file's bytes for `saved` (at most [`MAX_SAVED`] of them), sealed with `key`.
pub fn encode(saved: &[Saved], key: &dyn Sealer) -> Result<Vec<u8>, String> {
    let saved = &saved[..saved.len().min(MAX_SAVED)];
    super::sealed_file::seal(KIND, &saved.to_vec(), key)
}

/// The states in a file's `bytes`, or why they cannot be read.
pub fn decode(bytes: &[u8], key: &dyn Sealer) -> Result<Vec<Saved>, String> {
    let saved: Vec<Saved> = super::sealed_file::open(KIND, bytes, key)?;
    if saved.len() > MAX_SAVED {
        return Err(format!("{} states, more than {MAX_SAVED}", saved.len()));
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::docs::sealed_file::tests::Xor;

    fn saved(n: u8) -> Saved {
        Saved {
            doc: [n; 16],
            peer: [n.wrapping_add(1); 32],
            shared: vec![n; 40],
            last_synced: n.is_multiple_of(2).then_some(u64::from(n) * 1000),
            their_heads: n.is_multiple_of(3).then(|| vec![[n; 32]]),
        }
    }

    #[test]
    fn states_round_trip_and_bad_files_are_refused() {
        let all: Vec<Saved> = (0..5).map(saved).collect();
        let bytes = encode(&all, &Xor(7)).unwrap();
        assert_eq!(decode(&bytes, &Xor(7)).unwrap(), all);
        assert!(decode(&bytes, &Xor(8)).is_err() || decode(&bytes, &Xor(8)).unwrap() != all);
        assert!(decode(&bytes[..8], &Xor(7)).is_err(), "truncated");
        assert!(decode(b"somethingelse", &Xor(7)).is_err(), "bad magic");
        let mut newer = bytes.clone();
        newer[8] = VERSION + 1;
        assert!(decode(&newer, &Xor(7)).unwrap_err().contains("version"));
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 3);
        assert!(decode(&cut, &Xor(7)).is_err(), "a cut box does not open");
        assert_eq!(
            decode(&encode(&[], &Xor(1)).unwrap(), &Xor(1)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn at_most_max_saved_are_written() {
        let many = vec![saved(1); MAX_SAVED + 3];
        let back = decode(&encode(&many, &Xor(3)).unwrap(), &Xor(3)).unwrap();
        assert_eq!(back.len(), MAX_SAVED);
    }
}
