//! The cache's typed errors. Each variant says which public [`ErrorKind`] it is
//! ([`Classify`]), so `?` turns it into an [`Error`] that keeps it (and its cause) while
//! users see the same kinds and messages as before.

use crate::cache::limits::{MAX_BATCH, MAX_BUCKET_NAME_LEN, MAX_KEY_LEN};
use crate::cache::partition::PARTITIONS;
use crate::cache::CacheOptions;
use crate::error::{Classify, Error, ErrorKind};

/// What went wrong in the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// `replicas` out of range.
    #[error("replicas must be 1..=16, got {0}")]
    Replicas(u32),
    /// A time to live of zero.
    #[error("ttl must be greater than zero")]
    ZeroTtl,
    /// `max_entries` or `max_bytes` set to zero.
    #[error("max_entries and max_bytes must be at least 1 when set")]
    ZeroLimit,
    /// A bucket opened (or defined by a peer) with options other than it has.
    #[error("cache bucket {name:?} exists with other options ({held:?}) than {asked:?}")]
    OptionsDiffer {
        /// The bucket.
        name: String,
        /// Its options.
        held: CacheOptions,
        /// The options asked for.
        asked: CacheOptions,
    },
    /// A bucket name of the wrong length.
    #[error("a cache bucket name must be 1..={MAX_BUCKET_NAME_LEN} bytes, got {0}")]
    NameLength(usize),
    /// A key of the wrong length.
    #[error("a cache key must be 1..={MAX_KEY_LEN} bytes, got {0}")]
    KeyLength(usize),
    /// A key and value too large for one message.
    #[error(
        "cache entry {key:?} has {size} bytes of key and value, more than the {max} a \
         message of at most {max_message_size} bytes (max_message_size) can carry"
    )]
    EntryTooLarge {
        /// The start of the key.
        key: String,
        /// Bytes of key and value.
        size: usize,
        /// The most allowed.
        max: usize,
        /// The node's `max_message_size`.
        max_message_size: usize,
    },
    /// Too many keys, entries or recipients in one request.
    #[error("a cache request may carry at most {MAX_BATCH} {what}, got {count}")]
    TooMany {
        /// What is counted.
        what: String,
        /// How many there were.
        count: usize,
    },
    /// A pull naming more partitions than exist.
    #[error("a pull names at most {PARTITIONS} partitions, got {0}")]
    TooManyPartitions(usize),
    /// A request naming a partition that does not exist.
    #[error("there is no cache partition {0} (there are {PARTITIONS})")]
    UnknownPartition(u16),
    /// An entry for a partition that does not exist, handed to a store.
    #[error("there is no cache partition {0}")]
    NoSuchPartition(u16),
    /// A key longer than a store can represent.
    #[error("a cache key of {0} bytes cannot be stored (at most {max})", max = u16::MAX)]
    KeyTooLongToStore(usize),
    /// A store holding as many entries (or deletes) as it can name.
    #[error("this cache bucket holds as many {0} as it can on this node")]
    StoreFull(&'static str),
    /// More buckets than `who` may make this node create.
    #[error(
        "this node holds {held} cache buckets, the most {who} can make it create \
         ({limit}); bucket {name:?} is refused"
    )]
    TooManyBuckets {
        /// Buckets held.
        held: usize,
        /// Who asks ("this node's user" or "peers").
        who: &'static str,
        /// The most they may make it hold.
        limit: usize,
        /// The bucket refused.
        name: String,
    },
    /// `ttl` of a key that does not exist.
    #[error("no key {key:?} in cache bucket {bucket:?}")]
    NoKey {
        /// The key.
        key: String,
        /// The bucket.
        bucket: String,
    },
    /// An `incr` past the range of an `i64`.
    #[error("incr of {key:?} by {by} overflows a 64-bit integer")]
    IncrOverflow {
        /// The key.
        key: String,
        /// The increment.
        by: i64,
    },
    /// An `incr` of a value that is not an integer.
    #[error("the value is not an integer (incr needs ASCII decimal)")]
    NotAnInteger,
    /// A version stamped further ahead of this node's clock than the drift bound.
    #[error(
        "cache version {stamp} is stamped {ahead} ms ahead of this node's clock, more than \
         the {max_ms} ms a peer's clock may be ahead (a clock is wrong, or the peer is hostile)"
    )]
    ClockAhead {
        /// The version.
        stamp: u64,
        /// How far ahead of the wall clock, in ms.
        ahead: u64,
        /// The drift bound, in ms.
        max_ms: u64,
    },
    /// A pull page larger than a page may be.
    #[error("a pulled page of {size} bytes is larger than the {max} a page may carry")]
    PageTooLarge {
        /// Its bytes.
        size: usize,
        /// The most a page may carry.
        max: usize,
    },
    /// A pull page whose next cursor does not move forward.
    #[error("a pulled page at cursor {at} names cursor {next} next: it must move forward")]
    CursorBackwards {
        /// The cursor asked for.
        at: u32,
        /// The cursor named next.
        next: u32,
    },
    /// No owner of a key's partition answered a read in time.
    #[error("no owner of the partition of {0:?} answered")]
    NoOwnerAnswered(String),
    /// The owners of a key disagree on its primary (the membership is settling).
    #[error("the owners of {0:?} do not agree yet on the primary")]
    NoPrimaryYet(String),
    /// A peer answered a cache request with a reply of another request.
    #[error("unexpected cache reply to {0}")]
    UnexpectedReply(&'static str),
    /// A client node asked for a partition pull: clients own no partitions (ADR 0024).
    #[error("node {0} is a client: it owns no cache partitions and pulls none")]
    PullByClient(String),
    /// A routing table without members (this node is always one).
    #[error("a routing table without members")]
    EmptyTable,
    /// An owner holds a version of a key that this node's clock refuses to pass.
    #[error("owner {owner} holds a version of {key:?} this node cannot write past: {}", source.message())]
    CannotWritePast {
        /// The owner (short id).
        owner: String,
        /// The key.
        key: String,
        /// Why the clock refused.
        source: Error,
    },
    /// A write that some owner did not acknowledge before the deadline (of the kind of
    /// the last failure).
    #[error("cache write not acknowledged by every owner: {}", source.message())]
    NotAcknowledged {
        /// The last failure.
        source: Error,
    },
}

impl Classify for CacheError {
    fn kind(&self) -> ErrorKind {
        use CacheError::*;
        match self {
            Replicas(_)
            | ZeroTtl
            | ZeroLimit
            | OptionsDiffer { .. }
            | NameLength(_)
            | KeyLength(_)
            | EntryTooLarge { .. }
            | TooMany { .. }
            | TooManyPartitions(_)
            | UnknownPartition(_)
            | NoSuchPartition(_)
            | KeyTooLongToStore(_)
            | IncrOverflow { .. }
            | NotAnInteger
            | ClockAhead { .. }
            | PageTooLarge { .. }
            | CursorBackwards { .. } => ErrorKind::InvalidInput,
            StoreFull(_) | TooManyBuckets { .. } => ErrorKind::QuotaExceeded,
            NoKey { .. } => ErrorKind::NotFound,
            PullByClient(_) => ErrorKind::Unauthorized,
            NoOwnerAnswered(_) | NoPrimaryYet(_) => ErrorKind::PeerUnavailable,
            UnexpectedReply(_) | EmptyTable => ErrorKind::Internal,
            CannotWritePast { .. } => ErrorKind::Corrupted,
            NotAcknowledged { source } => source.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_and_messages_are_the_ones_users_saw() {
        let e: Error = CacheError::Replicas(0).into();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::InvalidInput, "replicas must be 1..=16, got 0")
        );
        let e: Error = CacheError::NoKey {
            key: "k".into(),
            bucket: "b".into(),
        }
        .into();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::NotFound, "no key \"k\" in cache bucket \"b\"")
        );
        let e: Error = CacheError::StoreFull("entries").into();
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(
            e.message(),
            "this cache bucket holds as many entries as it can on this node"
        );
        let e: Error = CacheError::KeyTooLongToStore(70_000).into();
        assert_eq!(
            e.message(),
            "a cache key of 70000 bytes cannot be stored (at most 65535)"
        );
        assert!(e.downcast_ref::<CacheError>().is_some());
    }

    #[test]
    fn a_write_not_acknowledged_keeps_the_kind_and_the_cause_of_the_last_failure() {
        let last = Error::new(ErrorKind::Timeout, "peer abc did not answer");
        let e: Error = CacheError::NotAcknowledged {
            source: last.clone(),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "cache write not acknowledged by every owner: peer abc did not answer"
        );
        assert_eq!(e.source().map(|c| c.to_string()), Some(last.to_string()));
        let refused: Error = CacheError::ClockAhead {
            stamp: 1,
            ahead: 2,
            max_ms: 3,
        }
        .into();
        let e: Error = CacheError::CannotWritePast {
            owner: "abcd".into(),
            key: "k".into(),
            source: refused,
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert!(e.message().starts_with(
            "owner abcd holds a version of \"k\" this node cannot write past: cache version 1"
        ));
        // The message quotes the refusal already: the log line does not repeat it.
        assert_eq!(e.chain(), e.to_string());
    }
}
