//! The cache's wire messages (the body of a `Service::Cache` frame, bulk-encoded).

use bytes::Bytes;
use serde_bytes::ByteBuf;

use crate::cache::partition::partition_of;
use crate::cache::store::EntryView;
use crate::cache::CacheOptions;
use crate::identity::NodeId;
use crate::wire::codec::decode_bulk_borrowed;

/// A bucket's definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// Bucket name.
    pub name: String,
    /// Its options.
    pub options: CacheOptions,
}

/// Values on the wire are byte strings (`serde_bytes`' encoding, one length and the
/// bytes) held as [`Bytes`], so that a value the store holds is sent, and one received is
/// stored, without a copy of its own.
mod wire_bytes {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        ByteBuf::deserialize(d).map(|b| Bytes::from(b.into_vec()))
    }
}

/// [`wire_bytes`] for an optional value (a delete has none).
mod wire_opt_bytes {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(serde_bytes::Bytes::new(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
        Option::<ByteBuf>::deserialize(d).map(|b| b.map(|b| Bytes::from(b.into_vec())))
    }
}

/// An entry on the wire (`value: None` is a delete).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WireEntry {
    /// The key.
    pub key: String,
    /// The value, or `None` for a delete.
    #[serde(with = "wire_opt_bytes")]
    pub value: Option<Bytes>,
    /// HLC version.
    pub version: u64,
    /// Expiry, ms since the epoch (0 = never).
    pub expires: u64,
}

impl From<&EntryView> for WireEntry {
    fn from(e: &EntryView) -> Self {
        WireEntry {
            key: e.key.clone(),
            value: e.value.clone(),
            version: e.version,
            expires: e.expires,
        }
    }
}

impl From<WireEntry> for EntryView {
    fn from(e: WireEntry) -> Self {
        EntryView {
            partition: partition_of(&e.key),
            key: e.key,
            value: e.value,
            version: e.version,
            expires: e.expires,
        }
    }
}

/// A read-modify-write done by a partition's primary owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RmwOp {
    /// Add to an integer value.
    Incr(i64),
    /// Set a new expiry, this many ms from now.
    Expire(u64),
}

/// A request to a node's cache service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Request {
    /// Define a bucket (refused if it exists with other options).
    Define(Spec),
    /// List the buckets known.
    Buckets,
    /// Apply writes; `sent_to` lists every node the writer sent them to, so a receiver
    /// whose table names other owners forwards to them.
    Apply {
        /// The bucket.
        spec: Spec,
        /// The writes.
        entries: Vec<WireEntry>,
        /// Nodes the writer (or a forwarder) sent these entries to.
        sent_to: Vec<NodeId>,
    },
    /// Read keys as an owner.
    Get {
        /// The bucket.
        bucket: String,
        /// The keys.
        keys: Vec<String>,
    },
    /// Return whatever is held for keys, in any partition state.
    Peek {
        /// The bucket.
        bucket: String,
        /// The keys.
        keys: Vec<String>,
    },
    /// A read-modify-write at the primary.
    Rmw {
        /// The bucket.
        spec: Spec,
        /// The key.
        key: String,
        /// The operation.
        op: RmwOp,
    },
    /// A page of the entries held for some partitions.
    Pull {
        /// The bucket.
        bucket: String,
        /// The partitions.
        partitions: Vec<u16>,
        /// Where to continue (0 at first).
        cursor: u32,
        /// The digest of the puller's routing table.
        table: u64,
    },
    /// Live entries per partition this node owns and holds fully.
    Count {
        /// The bucket.
        bucket: String,
    },
    /// Clear the bucket as of `version` (Redis's `FLUSHDB`, ADR 0021): drop what was
    /// written before it, keep what was written after it. Answered `Done`.
    Clear {
        /// The bucket.
        bucket: String,
        /// The clearing node's HLC stamp.
        version: u64,
    },
    /// Several independent [`Request::Apply`]s in one frame: concurrent writes to one
    /// peer, coalesced by the writer (`cache/outbox.rs`). Each part is applied, and
    /// answered, as its own `Apply` would be (answered [`Response::AppliedBatch`]).
    ApplyBatch(Vec<ApplyPart>),
}

/// One write of a [`Request::ApplyBatch`]: what one [`Request::Apply`] carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApplyPart {
    /// The bucket.
    pub spec: Spec,
    /// The writes.
    pub entries: Vec<WireEntry>,
    /// Nodes the writer (or a forwarder) sent these entries to.
    pub sent_to: Vec<NodeId>,
}

/// The answer to one part of a [`Request::ApplyBatch`]: what its own `Apply` would have
/// been answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PartReply {
    /// Per entry, what applying it did (as [`Response::Applied`]).
    Applied(Vec<Outcome>),
    /// The part was refused, with the error kind by name and a message (as a
    /// `Reply::Err` of the wire).
    Failed {
        /// The `ErrorKind` name.
        kind: String,
        /// Human-readable message.
        message: String,
    },
}

/// The result of reading one key at an owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Lookup {
    /// The value and its expiry.
    Found {
        /// The value.
        #[serde(with = "wire_bytes")]
        value: Bytes,
        /// Expiry, ms since the epoch (0 = never).
        expires: u64,
    },
    /// No such key (authoritative).
    Missing,
    /// This node does not own the key's partition: ask another owner.
    Moved,
}

/// What applying one written entry did at an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// A live entry existed before.
    pub existed: bool,
    /// The entry lost to a newer version held there (see `store::Applied`): the writer
    /// stamps it again past that version and writes it again.
    pub superseded_by: Option<u64>,
}

/// The result of a read-modify-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RmwResult {
    /// The new integer value (incr).
    Int(i64),
    /// Whether the key existed (expire).
    Existed(bool),
    /// This node is not the primary in its table: retry elsewhere.
    NotPrimary,
}

/// The first byte of an encoded [`Request::Get`]: the index of its variant (the wire's
/// varint is one byte for values below 251; `tests` check it).
const GET_TAG: u8 = 3;

/// The body of a [`Request::Get`] read in place: its bucket name and keys point into the
/// frame instead of being copied out of it (an owner answers many of them:
/// `serve::handle`).
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct GetRef<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The keys.
    #[serde(borrow)]
    pub keys: Vec<&'a str>,
}

impl<'a> GetRef<'a> {
    /// `body` read as a [`Request::Get`]; `None` for any other request, or a malformed
    /// one (decoding it as a [`Request`] then says why).
    pub(crate) fn decode(body: &'a [u8]) -> Option<GetRef<'a>> {
        match body.split_first() {
            Some((&GET_TAG, rest)) => decode_bulk_borrowed(rest).ok(),
            _ => None,
        }
    }
}

/// A reply from a node's cache service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Response {
    /// Done.
    Done,
    /// Known buckets.
    Buckets(Vec<Spec>),
    /// Per entry, what applying it did.
    Applied(Vec<Outcome>),
    /// Per key.
    Lookups(Vec<Lookup>),
    /// Per key, what is held (a `None` value is a tombstone).
    Peeked(Vec<Option<WireEntry>>),
    /// Outcome of a read-modify-write.
    Rmw(RmwResult),
    /// A page of a pull.
    Page {
        /// The entries.
        entries: Vec<WireEntry>,
        /// The cursor of the next page, if any.
        next: Option<u32>,
        /// Whether the answering node's routing table has the same members as the
        /// puller's. Until they agree, writes reaching the source may not be sent or
        /// forwarded to the puller (or the puller may own what it should not), so the
        /// pull does not count as complete.
        agrees: bool,
    },
    /// (partition, live entries) for each partition owned and held fully here.
    Counts(Vec<(u16, u64)>),
    /// Per part of a [`Request::ApplyBatch`], in order, what it did.
    AppliedBatch(Vec<PartReply>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::{decode_bulk, encode_bulk};

    /// The shapes values had on the wire when they were `ByteBuf`s.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct OldEntry {
        key: String,
        value: Option<ByteBuf>,
        version: u64,
        expires: u64,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum OldLookup {
        Found { value: ByteBuf, expires: u64 },
        Missing,
        Moved,
    }

    #[test]
    fn values_held_as_bytes_keep_their_wire_encoding() {
        for value in [Some(&b"abc"[..]), Some(&[][..]), None] {
            let new = WireEntry {
                key: "k".into(),
                value: value.map(Bytes::copy_from_slice),
                version: 7,
                expires: 9,
            };
            let old = OldEntry {
                key: "k".into(),
                value: value.map(|v| ByteBuf::from(v.to_vec())),
                version: 7,
                expires: 9,
            };
            let bytes = encode_bulk(&new).unwrap();
            assert_eq!(bytes, encode_bulk(&old).unwrap());
            assert_eq!(decode_bulk::<OldEntry>(&bytes).unwrap(), old);
            assert_eq!(decode_bulk::<WireEntry>(&bytes).unwrap(), new);
        }
        let new = Lookup::Found {
            value: Bytes::from_static(b"value"),
            expires: 3,
        };
        let old = OldLookup::Found {
            value: ByteBuf::from(b"value".to_vec()),
            expires: 3,
        };
        let bytes = encode_bulk(&new).unwrap();
        assert_eq!(bytes, encode_bulk(&old).unwrap());
        assert_eq!(decode_bulk::<Lookup>(&bytes).unwrap(), new);
        assert_eq!(
            encode_bulk(&Lookup::Moved).unwrap(),
            encode_bulk(&OldLookup::Moved).unwrap()
        );
    }

    #[test]
    fn a_get_read_in_place_is_exactly_the_get_request_and_nothing_else_is() {
        let spec = Spec {
            name: "b".into(),
            options: CacheOptions::default(),
        };
        let get = Request::Get {
            bucket: "bucket".into(),
            keys: vec!["a".into(), "".into(), "ключ".into()],
        };
        let bytes = encode_bulk(&get).unwrap();
        assert_eq!(
            GetRef::decode(&bytes),
            Some(GetRef {
                bucket: "bucket",
                keys: vec!["a", "", "ключ"],
            })
        );
        // A frame cut short, or with bytes after it, is not read as a `Get`.
        assert_eq!(GetRef::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(GetRef::decode(&longer), None);
        // Every other request: never read as a `Get` (their first byte differs).
        let others = [
            Request::Define(spec.clone()),
            Request::Buckets,
            Request::Apply {
                spec: spec.clone(),
                entries: Vec::new(),
                sent_to: Vec::new(),
            },
            Request::Peek {
                bucket: "bucket".into(),
                keys: vec!["a".into()],
            },
            Request::Rmw {
                spec: spec.clone(),
                key: "k".into(),
                op: RmwOp::Incr(1),
            },
            Request::Pull {
                bucket: "b".into(),
                partitions: vec![1],
                cursor: 0,
                table: 0,
            },
            Request::Count { bucket: "b".into() },
            Request::Clear {
                bucket: "b".into(),
                version: 1,
            },
            Request::ApplyBatch(Vec::new()),
        ];
        for other in others {
            let bytes = encode_bulk(&other).unwrap();
            assert_ne!(bytes[0], GET_TAG, "{other:?}");
            assert_eq!(GetRef::decode(&bytes), None, "{other:?}");
        }
    }
}
