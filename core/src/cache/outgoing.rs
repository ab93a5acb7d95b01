//! Writes encoded straight from the writer's entries. A write to a peer is an `Apply`
//! request (or a part of an `ApplyBatch`); building one as a [`Request`] of
//! [`WireEntry`]s copied every key of the write first. An [`OutPart`] shares the write
//! plan's entries instead and names the ones it carries, and [`Outgoing`] serializes
//! them as exactly the bytes `Request::Apply` / `Request::ApplyBatch` would be: the
//! receiver decodes them as it always has (the tests compare the two byte for byte).
//!
//! [`Request`]: crate::cache::messages::Request
//! [`WireEntry`]: crate::cache::messages::WireEntry

use std::sync::Arc;

use serde::ser::{Error as _, SerializeSeq, SerializeStruct, SerializeStructVariant};
use serde::{Serialize, Serializer};

use crate::cache::messages::Spec;
use crate::cache::store::EntryView;
use crate::identity::NodeId;

/// The index of `Request::Apply` among the request's variants (the tests check it).
const APPLY_VARIANT: u32 = 2;
/// The index of `Request::ApplyBatch` among the request's variants.
const APPLY_BATCH_VARIANT: u32 = 9;

/// One write to one peer: what an `ApplyPart` carries, its entries shared with the plan
/// that wrote them.
#[derive(Debug, Clone)]
pub(crate) struct OutPart {
    /// The bucket.
    pub spec: Arc<Spec>,
    /// The write's entries (some of them go elsewhere).
    entries: Arc<Vec<EntryView>>,
    /// The entries of `entries` this part carries, in order (every one in range).
    idx: Vec<usize>,
    /// Nodes the writer (or a forwarder) sent these entries to.
    pub sent_to: Vec<NodeId>,
}

impl OutPart {
    /// The part carrying `entries[i]` for each `i` of `idx` (indexes out of range are
    /// left out).
    pub(crate) fn new(
        spec: Arc<Spec>,
        entries: Arc<Vec<EntryView>>,
        mut idx: Vec<usize>,
        sent_to: Vec<NodeId>,
    ) -> Self {
        idx.retain(|&i| i < entries.len());
        Self {
            spec,
            entries,
            idx,
            sent_to,
        }
    }

    /// The entries it carries, in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &EntryView> {
        self.idx.iter().filter_map(|&i| self.entries.get(i))
    }

    /// How many entries it carries.
    pub(crate) fn len(&self) -> usize {
        self.idx.len()
    }
}

/// Serialized as `ApplyPart`.
impl Serialize for OutPart {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ApplyPart", 3)?;
        st.serialize_field("spec", &*self.spec)?;
        st.serialize_field("entries", &Entries(self))?;
        st.serialize_field("sent_to", &self.sent_to)?;
        st.end()
    }
}

/// A part's entries, serialized as `Vec<WireEntry>`.
struct Entries<'a>(&'a OutPart);

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for &i in &self.0.idx {
            let e = self
                .0
                .entries
                .get(i)
                .ok_or_else(|| S::Error::custom("a part names an entry it does not hold"))?;
            seq.serialize_element(&EntryRef(e))?;
        }
        seq.end()
    }
}

/// An entry serialized as `WireEntry` (its value as `serde_bytes` bytes).
struct EntryRef<'a>(&'a EntryView);

impl Serialize for EntryRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut st = s.serialize_struct("WireEntry", 4)?;
        st.serialize_field("key", e.key.as_str())?;
        st.serialize_field("value", &e.value.as_deref().map(serde_bytes::Bytes::new))?;
        st.serialize_field("version", &e.version)?;
        st.serialize_field("expires", &e.expires)?;
        st.end()
    }
}

/// A write request to a peer: one part travels as `Request::Apply`, several as
/// `Request::ApplyBatch`.
pub(crate) enum Outgoing<'a> {
    /// `Request::Apply`.
    One(&'a OutPart),
    /// `Request::ApplyBatch`.
    Batch(&'a [OutPart]),
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Outgoing::One(part) => {
                let mut st = s.serialize_struct_variant("Request", APPLY_VARIANT, "Apply", 3)?;
                st.serialize_field("spec", &*part.spec)?;
                st.serialize_field("entries", &Entries(part))?;
                st.serialize_field("sent_to", &part.sent_to)?;
                st.end()
            }
            Outgoing::Batch(parts) => {
                s.serialize_newtype_variant("Request", APPLY_BATCH_VARIANT, "ApplyBatch", parts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::messages::{ApplyPart, Request, WireEntry};
    use crate::cache::partition::partition_of;
    use crate::cache::CacheOptions;
    use crate::testkit::ids;
    use crate::wire::codec::{decode_bulk, encode_bulk};
    use bytes::Bytes;

    fn entries() -> Arc<Vec<EntryView>> {
        let view = |key: &str, value: Option<&[u8]>, version: u64, expires: u64| EntryView {
            partition: partition_of(key),
            key: key.to_string(),
            value: value.map(Bytes::copy_from_slice),
            version,
            expires,
        };
        Arc::new(vec![
            view("a", Some(b"one"), 1, 0),
            view("", Some(b""), u64::MAX, u64::MAX),
            view("ключ", None, 300, 7),
            view(&"k".repeat(300), Some(&[9u8; 1000]), 1 << 40, 1 << 20),
        ])
    }

    fn spec() -> Arc<Spec> {
        Arc::new(Spec {
            name: "bucket".into(),
            options: CacheOptions {
                ttl: Some(std::time::Duration::from_millis(1500)),
                max_entries: Some(10),
                max_bytes: None,
                replicas: 3,
            },
        })
    }

    /// The `ApplyPart` a part stands for, built the old way (every key copied).
    fn copied(part: &OutPart) -> ApplyPart {
        ApplyPart {
            spec: (*part.spec).clone(),
            entries: part.entries().map(WireEntry::from).collect(),
            sent_to: part.sent_to.clone(),
        }
    }

    #[test]
    fn a_part_encodes_exactly_as_the_request_of_copied_entries_and_decodes_as_it() {
        let all = entries();
        for idx in [vec![0], vec![2, 0, 3], vec![0, 1, 2, 3], vec![]] {
            let part = OutPart::new(spec(), all.clone(), idx.clone(), ids(3));
            let old = copied(&part);
            assert_eq!(old.entries.len(), idx.len());
            // One part: `Request::Apply`.
            let one = Request::Apply {
                spec: old.spec.clone(),
                entries: old.entries.clone(),
                sent_to: old.sent_to.clone(),
            };
            let bytes = encode_bulk(&Outgoing::One(&part)).unwrap();
            assert_eq!(bytes, encode_bulk(&one).unwrap(), "{idx:?}");
            assert_eq!(decode_bulk::<Request>(&bytes).unwrap(), one);
            // The part alone: `ApplyPart`.
            assert_eq!(encode_bulk(&part).unwrap(), encode_bulk(&old).unwrap());
        }
        // Several parts: `Request::ApplyBatch`, in order.
        let parts = vec![
            OutPart::new(spec(), all.clone(), vec![3, 1], ids(2)),
            OutPart::new(spec(), all.clone(), vec![0], Vec::new()),
            OutPart::new(spec(), all.clone(), vec![2], ids(5)),
        ];
        let batch = Request::ApplyBatch(parts.iter().map(copied).collect());
        let bytes = encode_bulk(&Outgoing::Batch(&parts)).unwrap();
        assert_eq!(bytes, encode_bulk(&batch).unwrap());
        assert_eq!(decode_bulk::<Request>(&bytes).unwrap(), batch);
        assert_eq!(
            encode_bulk(&Outgoing::Batch(&[])).unwrap(),
            encode_bulk(&Request::ApplyBatch(Vec::new())).unwrap()
        );
    }

    #[test]
    fn indexes_out_of_range_are_left_out() {
        let all = entries();
        let part = OutPart::new(spec(), all.clone(), vec![1, 4, usize::MAX, 0], ids(1));
        assert_eq!(part.len(), 2);
        let keys: Vec<&str> = part.entries().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["", "a"]);
        let bytes = encode_bulk(&Outgoing::One(&part)).unwrap();
        match decode_bulk::<Request>(&bytes).unwrap() {
            Request::Apply { entries, .. } => assert_eq!(entries.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
