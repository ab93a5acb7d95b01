//! Checks of what a user or a peer hands the cache. The client side (a user's call) and
//! the serving side (a peer's request) call the same functions, so a peer can never make
//! a node hold what its own user could not (limits in `limits.rs`).

use crate::cache::error::CacheError;
use crate::cache::limits::{ENTRY_ENVELOPE, MAX_BATCH, MAX_BUCKET_NAME_LEN, MAX_KEY_LEN};
use crate::cache::messages::{ApplyIn, ApplyRef, Request, RmwOp, WireEntry};
use crate::cache::partition::PARTITIONS;
use crate::error::Result;
use crate::identity::NodeId;

/// Checks a bucket name: 1..=[`MAX_BUCKET_NAME_LEN`] bytes.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_BUCKET_NAME_LEN {
        return Err(CacheError::NameLength(name.len()).into());
    }
    Ok(())
}

/// Checks a key: 1..=[`MAX_KEY_LEN`] bytes.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(CacheError::KeyLength(key.len()).into());
    }
    Ok(())
}

/// The most bytes a key and its value may take together on a node whose frames carry at
/// most `max_message_size` bytes: what is left after [`ENTRY_ENVELOPE`] (or half the
/// frame, for frames too small for the envelope), so one entry always fits in a request
/// and in a pull page.
pub fn max_entry_bytes(max_message_size: usize) -> usize {
    max_message_size
        .saturating_sub(ENTRY_ENVELOPE)
        .max(max_message_size / 2)
}

/// Checks one entry: its key, and its key and value together against
/// [`max_entry_bytes`]. `value_len` is `None` for a delete.
pub fn check_entry(key: &str, value_len: Option<usize>, max_message_size: usize) -> Result<()> {
    check_key(key)?;
    let size = key.len().saturating_add(value_len.unwrap_or(0));
    let max = max_entry_bytes(max_message_size);
    if size > max {
        return Err(CacheError::EntryTooLarge {
            key: truncated(key).to_string(),
            size,
            max,
            max_message_size,
        }
        .into());
    }
    Ok(())
}

/// Checks how many keys or entries one request carries: at most [`MAX_BATCH`].
pub fn check_count(what: &str, n: usize) -> Result<()> {
    if n > MAX_BATCH {
        return Err(CacheError::TooMany {
            what: what.to_string(),
            count: n,
        }
        .into());
    }
    Ok(())
}

/// Checks a list of partitions: at most [`PARTITIONS`] of them, each one that exists.
pub fn check_partitions(partitions: &[u16]) -> Result<()> {
    if partitions.len() > PARTITIONS {
        return Err(CacheError::TooManyPartitions(partitions.len()).into());
    }
    if let Some(p) = partitions.iter().find(|&&p| usize::from(p) >= PARTITIONS) {
        return Err(CacheError::UnknownPartition(*p).into());
    }
    Ok(())
}

/// Checks every length and count of a request from a peer (or from this node) with the
/// limits a user's call is held to. Versions are checked against the clock by the
/// handler, which has it.
pub fn check_request(req: &Request, max_message_size: usize) -> Result<()> {
    match req {
        Request::Define(spec) => check_name(&spec.name),
        Request::Buckets => Ok(()),
        Request::Apply {
            spec,
            entries,
            sent_to,
        } => check_apply(&spec.name, wire_sizes(entries), sent_to, max_message_size),
        Request::ApplyBatch(parts) => {
            check_batch(parts.iter().map(|p| p.entries.len()))?;
            parts.iter().try_for_each(|p| {
                check_apply(
                    &p.spec.name,
                    wire_sizes(&p.entries),
                    &p.sent_to,
                    max_message_size,
                )
            })
        }
        Request::Get { bucket, keys } | Request::Peek { bucket, keys } => check_read(bucket, keys),
        Request::Rmw { spec, key, op } => {
            check_name(&spec.name)?;
            check_key(key)?;
            match op {
                RmwOp::Incr(_) => Ok(()),
                RmwOp::Expire(_) => Ok(()),
            }
        }
        Request::Pull {
            bucket, partitions, ..
        } => {
            check_name(bucket)?;
            check_partitions(partitions)
        }
        Request::Count { bucket } | Request::Clear { bucket, .. } => check_name(bucket),
    }
}

/// Checks a read (a `Get` or a `Peek`): its bucket name, how many keys, each key.
pub fn check_read(bucket: &str, keys: &[impl AsRef<str>]) -> Result<()> {
    check_name(bucket)?;
    check_count("keys", keys.len())?;
    keys.iter().try_for_each(|k| check_key(k.as_ref()))
}

/// [`check_request`] of an `Apply` or `ApplyBatch` read in place: the same checks.
pub(crate) fn check_apply_in(req: &ApplyIn<'_>, max_message_size: usize) -> Result<()> {
    let sizes = |p: &ApplyRef<'_>| {
        let entries = p.entries.iter().map(|e| (e.key, e.value.map(|v| v.len())));
        check_apply(&p.spec.name, entries, &p.sent_to, max_message_size)
    };
    match req {
        ApplyIn::One(p) => sizes(p),
        ApplyIn::Batch(parts) => {
            check_batch(parts.iter().map(|p| p.entries.len()))?;
            parts.iter().try_for_each(sizes)
        }
    }
}

/// Each entry's key and value length (`None` for a delete).
fn wire_sizes(entries: &[WireEntry]) -> impl ExactSizeIterator<Item = (&str, Option<usize>)> {
    entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_ref().map(|v| v.len())))
}

/// Checks an `ApplyBatch` as a whole, from its parts' entry counts: one batch carries no
/// more entries than one `Apply` may (coalescing writes never lets a peer make a node do
/// more per request).
fn check_batch(counts: impl ExactSizeIterator<Item = usize>) -> Result<()> {
    check_count("parts", counts.len())?;
    check_count("entries", counts.fold(0usize, usize::saturating_add))
}

/// Checks one write (an `Apply`, or a part of an `ApplyBatch`): its entries' keys and
/// value lengths.
fn check_apply<'e>(
    bucket: &str,
    entries: impl ExactSizeIterator<Item = (&'e str, Option<usize>)>,
    sent_to: &[NodeId],
    max_message_size: usize,
) -> Result<()> {
    check_name(bucket)?;
    check_count("entries", entries.len())?;
    // Every node the write went to is a member; more than a request's worth of ids is
    // not a write any node makes.
    check_count("recipients", sent_to.len())?;
    for (key, value_len) in entries {
        check_entry(key, value_len, max_message_size)?;
    }
    Ok(())
}

/// [`check_entry`] for an entry on the wire.
pub fn check_wire_entry(e: &WireEntry, max_message_size: usize) -> Result<()> {
    check_entry(&e.key, e.value.as_ref().map(|v| v.len()), max_message_size)
}

/// The start of `key`, for error messages (a hostile key can be megabytes long).
fn truncated(key: &str) -> &str {
    let mut end = key.len().min(64);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::messages::{ApplyPart, Spec};
    use crate::error::ErrorKind;

    fn wire(key: &str, value_len: usize) -> WireEntry {
        WireEntry {
            key: key.into(),
            value: Some(bytes::Bytes::from(vec![0u8; value_len])),
            version: 1,
            expires: 0,
        }
    }

    #[test]
    fn keys_names_entries_counts_and_partitions_have_limits() {
        let kind = |r: Result<()>| r.unwrap_err().kind();
        assert!(check_key("k").is_ok() && check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert_eq!(kind(check_key("")), ErrorKind::InvalidInput);
        assert_eq!(
            kind(check_key(&"k".repeat(70_000))),
            ErrorKind::InvalidInput
        );
        assert_eq!(kind(check_name(&"n".repeat(256))), ErrorKind::InvalidInput);
        assert_eq!(kind(check_name("")), ErrorKind::InvalidInput);
        let max = 1 << 20;
        assert_eq!(max_entry_bytes(max), max - ENTRY_ENVELOPE);
        assert_eq!(max_entry_bytes(1000), 500);
        assert!(check_entry("k", Some(max_entry_bytes(max) - 1), max).is_ok());
        assert_eq!(
            kind(check_entry("k", Some(max_entry_bytes(max)), max)),
            ErrorKind::InvalidInput
        );
        assert!(check_entry("k", None, max).is_ok());
        assert!(check_count("keys", MAX_BATCH).is_ok());
        assert_eq!(
            kind(check_count("keys", MAX_BATCH + 1)),
            ErrorKind::InvalidInput
        );
        assert!(check_partitions(&[0, 270]).is_ok());
        assert_eq!(kind(check_partitions(&[271])), ErrorKind::InvalidInput);
        assert_eq!(
            kind(check_partitions(&vec![0; PARTITIONS + 1])),
            ErrorKind::InvalidInput
        );
        // A long key's error message does not repeat the key.
        let e = check_entry(&"é".repeat(40_000), Some(max), max).unwrap_err();
        assert!(e.message().len() < 400, "{}", e.message());
    }

    #[test]
    fn requests_are_checked_whole() {
        let spec = Spec {
            name: "b".into(),
            options: Default::default(),
        };
        let max = 1 << 20;
        let apply = |entries: Vec<WireEntry>| Request::Apply {
            spec: spec.clone(),
            entries,
            sent_to: vec![],
        };
        assert!(check_request(&apply(vec![wire("k", 10)]), max).is_ok());
        let part = |entries: Vec<WireEntry>| ApplyPart {
            spec: spec.clone(),
            entries,
            sent_to: vec![],
        };
        let batch = Request::ApplyBatch;
        assert!(check_request(
            &batch(vec![part(vec![wire("k", 10)]), part(vec![wire("j", 10)])]),
            max
        )
        .is_ok());
        for bad in [
            apply(vec![wire("k", 10), wire(&"k".repeat(70_000), 1)]),
            apply(vec![wire("k", max)]),
            apply((0..=MAX_BATCH).map(|i| wire(&i.to_string(), 1)).collect()),
            Request::Get {
                bucket: "b".into(),
                keys: vec!["".into()],
            },
            Request::Peek {
                bucket: "".into(),
                keys: vec!["k".into()],
            },
            Request::Rmw {
                spec: spec.clone(),
                key: "k".repeat(MAX_KEY_LEN + 1),
                op: RmwOp::Incr(1),
            },
            Request::Pull {
                bucket: "b".into(),
                partitions: vec![u16::MAX],
                cursor: 0,
                table: 0,
            },
            Request::Count {
                bucket: "b".repeat(1000),
            },
            batch(vec![part(vec![wire("k", 10)]), part(vec![wire("", 1)])]),
            // Each part within the limit, but more entries than one request may carry.
            batch(
                (0..=MAX_BATCH)
                    .map(|i| part(vec![wire(&i.to_string(), 1)]))
                    .collect(),
            ),
            batch(vec![ApplyPart {
                sent_to: vec![crate::testkit::ids(1)[0]; MAX_BATCH + 1],
                ..part(vec![wire("k", 1)])
            }]),
        ] {
            assert_eq!(
                check_request(&bad, max).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }
}
