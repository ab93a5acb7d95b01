//! Frames exchanged on a transfer stream after the offer.

use crate::transfer::verify::ChunkHeader;

/// The receiver's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    /// Go ahead; `have` lists the hashes of the chunks already held (resume).
    Accept {
        /// Hashes of the leading chunks the receiver already verified.
        have: Vec<[u8; 32]>,
    },
    /// Refused.
    Reject {
        /// Why.
        reason: String,
    },
}

/// What the sender streams after an accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Part {
    /// A chunk (its bytes are the frame body).
    Chunk(ChunkHeader),
    /// The end, with the BLAKE3 hash of the whole content.
    End {
        /// The whole-content hash.
        hash: [u8; 32],
    },
}

/// What a source says about content it is asked for (the body of its first reply).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Found {
    /// Its name.
    pub name: String,
    /// Total bytes.
    pub size: u64,
    /// Bytes per chunk.
    pub chunk_size: u32,
}
