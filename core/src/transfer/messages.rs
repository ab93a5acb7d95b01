//! Frames exchanged on a transfer stream after the offer.

use crate::transfer::verify::ChunkHeader;

/// Where a receiver resumes: the leading chunks it verified, and the digest of their
/// tree ([`crate::transfer::stack::TreeStack::digest`]) for the sender to check against
/// its own content. A fixed 41 bytes or so, however large the transfer (the list of
/// chunk hashes it replaces outgrew a 64 KiB frame header past 2,047 chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resume {
    /// Chunks already verified (the next one expected).
    pub chunks: u64,
    /// Digest of the tree of those chunks.
    pub digest: [u8; 32],
}

/// The receiver's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    /// Go ahead, after the chunks the receiver holds already.
    Accept {
        /// Where it resumes.
        resume: Resume,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::{decode_header, encode_header, MAX_HEADER_LEN};

    #[test]
    fn the_resume_point_of_any_transfer_fits_a_small_header() {
        let answer = Answer::Accept {
            resume: Resume {
                chunks: u64::MAX,
                digest: [0xff; 32],
            },
        };
        let bytes = encode_header(&answer).unwrap();
        assert!(
            bytes.len() < 64 && bytes.len() < MAX_HEADER_LEN,
            "{}",
            bytes.len()
        );
        assert_eq!(decode_header::<Answer>(&bytes).unwrap(), answer);
    }
}
