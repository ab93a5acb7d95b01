//! The cache's wire messages (the body of a `Service::Cache` frame, bulk-encoded).

use bytes::Bytes;
use serde_bytes::ByteBuf;

use crate::cache::partition::partition_of;
use crate::cache::store::{EntryView, Written};
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

impl From<&Written<'_>> for WireEntry {
    fn from(e: &Written<'_>) -> Self {
        WireEntry {
            key: e.key.to_string(),
            value: e.value.map(Bytes::copy_from_slice),
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

/// The first byte of an encoded [`Request::Apply`] and of a [`Request::ApplyBatch`]
/// (`tests` check them).
const APPLY_TAG: u8 = 2;
const APPLY_BATCH_TAG: u8 = 9;

/// An entry of an `Apply` read in place: its key and value point into the frame.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct WireEntryRef<'a> {
    /// The key.
    pub key: &'a str,
    /// The value, or `None` for a delete.
    #[serde(borrow)]
    pub value: Option<&'a serde_bytes::Bytes>,
    /// HLC version.
    pub version: u64,
    /// Expiry, ms since the epoch (0 = never).
    pub expires: u64,
}

impl<'a> WireEntryRef<'a> {
    /// The entry as the store applies it.
    pub(crate) fn written(&self) -> Written<'a> {
        Written {
            key: self.key,
            value: self.value.map(|v| &v[..]),
            version: self.version,
            expires: self.expires,
            partition: partition_of(self.key),
        }
    }
}

impl WireEntry {
    /// The entry as the store applies it.
    pub(crate) fn written(&self) -> Written<'_> {
        Written {
            key: &self.key,
            value: self.value.as_deref(),
            version: self.version,
            expires: self.expires,
            partition: partition_of(&self.key),
        }
    }
}

/// One write of an `Apply` (or of a part of an `ApplyBatch`) read in place.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct ApplyRef<'a> {
    /// The bucket.
    pub spec: Spec,
    /// The writes.
    #[serde(borrow)]
    pub entries: Vec<WireEntryRef<'a>>,
    /// Nodes the writer (or a forwarder) sent these entries to.
    pub sent_to: Vec<NodeId>,
}

/// A [`Request::Apply`] or [`Request::ApplyBatch`] read in place (an owner receives
/// writes more than anything but reads): their keys and values are not copied out of the
/// frame, only into the store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ApplyIn<'a> {
    /// A [`Request::Apply`].
    One(ApplyRef<'a>),
    /// A [`Request::ApplyBatch`].
    Batch(Vec<ApplyRef<'a>>),
}

impl<'a> ApplyIn<'a> {
    /// `body` read as a [`Request::Apply`] or [`Request::ApplyBatch`]; `None` for any
    /// other request, or a malformed one (decoding it as a [`Request`] then says why).
    pub(crate) fn decode(body: &'a [u8]) -> Option<ApplyIn<'a>> {
        match body.split_first() {
            Some((&APPLY_TAG, rest)) => decode_bulk_borrowed(rest).ok().map(ApplyIn::One),
            Some((&APPLY_BATCH_TAG, rest)) => decode_bulk_borrowed(rest).ok().map(ApplyIn::Batch),
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
    use crate::testkit::ids;
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

    /// A request of each kind.
    fn one_of_each(spec: &Spec) -> Vec<Request> {
        vec![
            Request::Define(spec.clone()),
            Request::Buckets,
            Request::Apply {
                spec: spec.clone(),
                entries: Vec::new(),
                sent_to: Vec::new(),
            },
            Request::Get {
                bucket: "bucket".into(),
                keys: vec!["a".into()],
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
        ]
    }

    #[test]
    fn writes_read_in_place_are_exactly_the_apply_requests_and_nothing_else_is() {
        let spec = Spec {
            name: "bucket".into(),
            options: CacheOptions::default(),
        };
        let entry = |key: &str, value: Option<&[u8]>, version: u64| WireEntry {
            key: key.into(),
            value: value.map(Bytes::copy_from_slice),
            version,
            expires: version / 2,
        };
        let entries = vec![
            entry("a", Some(b"one"), 1),
            entry("ключ", None, 7),
            entry("", Some(b""), u64::MAX),
        ];
        let written = |e: &WireEntryRef<'_>| (e.key.to_string(), e.value.map(|v| v.to_vec()));
        let wire = |e: &WireEntry| (e.key.clone(), e.value.as_ref().map(|v| v.to_vec()));
        let (two, three) = (ids(2), ids(3));
        let apply = Request::Apply {
            spec: spec.clone(),
            entries: entries.clone(),
            sent_to: two.clone(),
        };
        let bytes = encode_bulk(&apply).unwrap();
        let Some(ApplyIn::One(one)) = ApplyIn::decode(&bytes) else {
            panic!("an Apply is read in place");
        };
        assert_eq!(one.spec, spec);
        assert_eq!(one.sent_to, two);
        let read: Vec<_> = one.entries.iter().map(written).collect();
        assert_eq!(read, entries.iter().map(wire).collect::<Vec<_>>());
        for (r, e) in one.entries.iter().zip(&entries) {
            assert_eq!(r.written(), e.written());
            assert_eq!((r.version, r.expires), (e.version, e.expires));
        }
        let batch = Request::ApplyBatch(vec![
            ApplyPart {
                spec: spec.clone(),
                entries: entries[..1].to_vec(),
                sent_to: Vec::new(),
            },
            ApplyPart {
                spec: spec.clone(),
                entries: entries.clone(),
                sent_to: three.clone(),
            },
        ]);
        let bytes = encode_bulk(&batch).unwrap();
        let Some(ApplyIn::Batch(parts)) = ApplyIn::decode(&bytes) else {
            panic!("an ApplyBatch is read in place");
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].entries.len(), 1);
        assert_eq!(parts[1].sent_to, three);
        let read: Vec<_> = parts[1].entries.iter().map(written).collect();
        assert_eq!(read, entries.iter().map(wire).collect::<Vec<_>>());
        // Cut short, or with bytes after it: not read in place (decoding it as a
        // `Request` then says why).
        for request in [apply, batch] {
            let bytes = encode_bulk(&request).unwrap();
            assert_eq!(ApplyIn::decode(&bytes[..bytes.len() - 1]), None);
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(ApplyIn::decode(&longer), None);
        }
        // Every other request: never read as writes.
        let others = one_of_each(&spec)
            .into_iter()
            .filter(|r| !matches!(r, Request::Apply { .. } | Request::ApplyBatch(_)));
        for other in others {
            let bytes = encode_bulk(&other).unwrap();
            assert!(
                ![APPLY_TAG, APPLY_BATCH_TAG].contains(&bytes[0]),
                "{other:?}"
            );
            assert_eq!(ApplyIn::decode(&bytes), None, "{other:?}");
        }
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
        let others = one_of_each(&spec)
            .into_iter()
            .filter(|r| !matches!(r, Request::Get { .. }));
        for other in others {
            let bytes = encode_bulk(&other).unwrap();
            assert_ne!(bytes[0], GET_TAG, "{other:?}");
            assert_eq!(GetRef::decode(&bytes), None, "{other:?}");
        }
    }
}
