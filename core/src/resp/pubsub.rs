//! Redis pub/sub on memmesh channels: the subscriptions of this node's clients, and how a
//! published message travels to the other nodes (one memmesh channel, [`MESH_CHANNEL`],
//! carrying the Redis channel name and the payload, and whether it was published with
//! `SPUBLISH`: sharded channels are a namespace of their own, as in Redis 7).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::resp::value::Value;

/// The memmesh channel every node with a RESP front opens to receive the messages
/// published through the others.
pub const MESH_CHANNEL: &str = "memmesh.redis.pubsub";

/// Most messages waiting for one subscriber; a subscriber that falls further behind (in
/// messages, or in bytes: [`RespLimits::max_output`](crate::resp::RespLimits)) is
/// disconnected (ADR 0021).
pub const SUBSCRIBER_QUEUE: usize = 4096;

/// What a client subscribes to: a channel (`SUBSCRIBE`), a pattern (`PSUBSCRIBE`) or a
/// sharded channel (`SSUBSCRIBE`, Redis 7), three separate namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    /// `SUBSCRIBE`: messages sent with `PUBLISH` on that channel.
    Channel,
    /// `PSUBSCRIBE`: messages sent with `PUBLISH` on a channel matching the glob.
    Pattern,
    /// `SSUBSCRIBE`: messages sent with `SPUBLISH` on that sharded channel.
    Shard,
}

/// How a delivered message reached a subscriber, which decides the push it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A `SUBSCRIBE`d channel: `message`.
    Channel,
    /// A `PSUBSCRIBE`d pattern (given): `pmessage`.
    Pattern(Bytes),
    /// An `SSUBSCRIBE`d sharded channel: `smessage`.
    Shard,
}

/// A published message, to be written to a subscriber: (how it matched, channel, payload).
pub type Delivery = (Via, Bytes, Bytes);

/// The bytes a delivery counts against a subscriber's output limit.
pub fn delivery_size(d: &Delivery) -> usize {
    let pattern = match &d.0 {
        Via::Pattern(p) => p.len(),
        Via::Channel | Via::Shard => 0,
    };
    pattern + d.1.len() + d.2.len()
}

/// Where the messages for one client go: its queue, the bytes waiting in it, and the
/// token that disconnects it when it falls too far behind.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// The client's queue, written out by its connection.
    pub tx: mpsc::Sender<Delivery>,
    /// Bytes queued and not yet written ([`delivery_size`]).
    pub pending: Arc<AtomicUsize>,
    /// Cancelled when the client overflowed: its connection closes.
    pub overflowed: CancellationToken,
}

impl Mailbox {
    /// A mailbox sending to `tx`.
    pub fn new(tx: mpsc::Sender<Delivery>) -> Self {
        Self {
            tx,
            pending: Arc::new(AtomicUsize::new(0)),
            overflowed: CancellationToken::new(),
        }
    }

    /// Queues `d` unless that would put more than `limit` bytes (or [`SUBSCRIBER_QUEUE`]
    /// messages) in waiting: then the client is marked overflowed. Whether it was queued.
    fn offer(&self, d: Delivery, limit: usize) -> bool {
        if self.overflowed.is_cancelled() {
            return false;
        }
        let size = delivery_size(&d);
        let before = self.pending.fetch_add(size, Ordering::AcqRel);
        if before.saturating_add(size) > limit || self.tx.try_send(d).is_err() {
            self.pending.fetch_sub(size, Ordering::AcqRel);
            if !self.tx.is_closed() {
                info!(
                    pending = before,
                    limit, "disconnecting a Redis subscriber over its output buffer limit"
                );
            }
            self.overflowed.cancel();
            return false;
        }
        true
    }

    /// Records that `d` was written to the client.
    pub fn written(&self, d: &Delivery) {
        self.pending.fetch_sub(delivery_size(d), Ordering::AcqRel);
    }
}

/// The bit of the length word that marks an `SPUBLISH`ed message. A channel name is far
/// shorter than 2 GiB, and a node that predates sharded channels reads the flagged length
/// as longer than the message and drops it as malformed.
const SHARD_FLAG: u32 = 1 << 31;

/// Encodes a message for [`MESH_CHANNEL`]: channel length (u32 BE, its top bit set for a
/// sharded channel), channel, payload.
pub fn encode(shard: bool, channel: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + channel.len() + payload.len());
    // Channel names are bounded by the bulk limit, far under 2^31 bytes.
    let len = (channel.len() as u32) & !SHARD_FLAG;
    out.put_u32(if shard { len | SHARD_FLAG } else { len });
    out.put_slice(channel);
    out.put_slice(payload);
    out.freeze()
}

/// Decodes what [`encode`] made: (sharded, channel, payload), or `None` for a malformed
/// message.
pub fn decode(msg: &Bytes) -> Option<(bool, Bytes, Bytes)> {
    let word = u32::from_be_bytes(msg.get(..4)?.try_into().ok()?);
    let shard = word & SHARD_FLAG != 0;
    let len = (word & !SHARD_FLAG) as usize;
    let end = 4usize.checked_add(len)?;
    if end > msg.len() {
        return None;
    }
    Some((shard, msg.slice(4..end), msg.slice(end..)))
}

/// Whether `text` matches the glob `pattern` as Redis's `PSUBSCRIBE` does: `*`, `?`,
/// `[abc]`, `[^a-z]` and `\` escapes. Linear memory, `O(len(pattern) × len(text))` time.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Dynamic programming over text positions: `now[i]` = the pattern so far matches
    // text[..i].
    let mut now = vec![false; text.len() + 1];
    now[0] = true;
    let mut p = 0;
    while p < pattern.len() {
        let mut next = vec![false; text.len() + 1];
        match pattern[p] {
            b'*' => {
                let mut any = false;
                for i in 0..=text.len() {
                    any |= now[i];
                    next[i] = any;
                }
                p += 1;
            }
            b'?' => {
                next[1..].copy_from_slice(&now[..text.len()]);
                p += 1;
            }
            b'[' => {
                let (class, used) = class(&pattern[p + 1..]);
                for i in 0..text.len() {
                    next[i + 1] = now[i] && class(text[i]);
                }
                p += 1 + used;
            }
            c => {
                let (c, used) = if c == b'\\' && p + 1 < pattern.len() {
                    (pattern[p + 1], 2)
                } else {
                    (c, 1)
                };
                for i in 0..text.len() {
                    next[i + 1] = now[i] && text[i] == c;
                }
                p += used;
            }
        }
        now = next;
    }
    now[text.len()]
}

/// A `[...]` class (the bytes after `[`): a predicate and the bytes it used (with `]`).
fn class(rest: &[u8]) -> (impl Fn(u8) -> bool + '_, usize) {
    let negate = rest.first() == Some(&b'^');
    let start = usize::from(negate);
    let mut end = start;
    while end < rest.len() && rest[end] != b']' {
        end += if rest[end] == b'\\' { 2 } else { 1 };
    }
    let end = end.min(rest.len());
    let body = &rest[start..end];
    let used = (end + 1).min(rest.len());
    let pred = move |c: u8| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if body[i] == b'\\' && i + 1 < body.len() {
                hit |= body[i + 1] == c;
                i += 2;
            } else if i + 2 < body.len() && body[i + 1] == b'-' {
                let (lo, hi) = (body[i].min(body[i + 2]), body[i].max(body[i + 2]));
                hit |= (lo..=hi).contains(&c);
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    (pred, used)
}

#[derive(Default)]
struct Table {
    channels: HashMap<Bytes, HashMap<u64, Mailbox>>,
    patterns: HashMap<Bytes, HashMap<u64, Mailbox>>,
    shards: HashMap<Bytes, HashMap<u64, Mailbox>>,
}

impl Table {
    fn map(&mut self, kind: SubKind) -> &mut HashMap<Bytes, HashMap<u64, Mailbox>> {
        match kind {
            SubKind::Channel => &mut self.channels,
            SubKind::Pattern => &mut self.patterns,
            SubKind::Shard => &mut self.shards,
        }
    }
}

/// The subscriptions of this node's RESP clients, by channel, by pattern and by sharded
/// channel.
pub struct Subscriptions {
    table: Mutex<Table>,
    /// Most bytes waiting for one subscriber.
    limit: usize,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Self::new(crate::resp::RespLimits::default().max_output)
    }
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.table();
        f.debug_struct("Subscriptions")
            .field("limit", &self.limit)
            .field("channels", &t.channels.len())
            .field("patterns", &t.patterns.len())
            .field("shards", &t.shards.len())
            .finish()
    }
}

impl Subscriptions {
    /// No subscriptions yet; a subscriber with more than `limit` bytes waiting is
    /// disconnected.
    pub fn new(limit: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            limit,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes client `id` (whose deliveries go to `mailbox`) to `name`, a channel, a
    /// pattern or a sharded channel.
    pub fn add(&self, kind: SubKind, name: Bytes, id: u64, mailbox: Mailbox) {
        let mut t = self.table();
        t.map(kind).entry(name).or_default().insert(id, mailbox);
    }

    /// Unsubscribes client `id` from `name`.
    pub fn remove(&self, kind: SubKind, name: &Bytes, id: u64) {
        let mut t = self.table();
        let map = t.map(kind);
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Hands a message published on `channel` to every local subscriber and returns how
    /// many took it. A subscriber over its output limit is disconnected instead.
    pub fn deliver(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let t = self.table();
        let mut n = 0;
        if let Some(subs) = t.channels.get(channel) {
            for m in subs.values() {
                n += usize::from(
                    m.offer((Via::Channel, channel.clone(), payload.clone()), self.limit),
                );
            }
        }
        for (pattern, subs) in &t.patterns {
            if glob(pattern, channel) {
                for m in subs.values() {
                    n += usize::from(m.offer(
                        (
                            Via::Pattern(pattern.clone()),
                            channel.clone(),
                            payload.clone(),
                        ),
                        self.limit,
                    ));
                }
            }
        }
        n
    }

    /// Hands a message published with `SPUBLISH` on the sharded `channel` to every local
    /// `SSUBSCRIBE`r and returns how many took it (patterns never match sharded channels).
    pub fn deliver_shard(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let t = self.table();
        let mut n = 0;
        if let Some(subs) = t.shards.get(channel) {
            for m in subs.values() {
                n += usize::from(
                    m.offer((Via::Shard, channel.clone(), payload.clone()), self.limit),
                );
            }
        }
        n
    }

    /// `PUBSUB CHANNELS [pattern]`: the channels with a subscriber on this node, matching
    /// `pattern` if given, sorted.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.names(SubKind::Channel, pattern)
    }

    /// `PUBSUB SHARDCHANNELS [pattern]`: the sharded channels with a subscriber on this
    /// node, matching `pattern` if given, sorted.
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.names(SubKind::Shard, pattern)
    }

    fn names(&self, kind: SubKind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = self
            .table()
            .map(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob(p, c)))
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// `PUBSUB NUMSUB`: how many clients of this node subscribe to `channel`.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.table().channels.get(channel).map_or(0, HashMap::len)
    }

    /// `PUBSUB SHARDNUMSUB`: how many clients of this node subscribe to the sharded
    /// `channel`.
    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.table().shards.get(channel).map_or(0, HashMap::len)
    }

    /// `PUBSUB NUMPAT`: how many patterns clients of this node subscribe to.
    pub fn numpat(&self) -> usize {
        self.table().patterns.len()
    }
}

/// The push a subscriber receives for `d`.
pub fn message(d: Delivery) -> Value {
    match d {
        (Via::Channel, channel, payload) => Value::Push(vec![
            Value::bulk("message"),
            Value::Bulk(channel),
            Value::Bulk(payload),
        ]),
        (Via::Shard, channel, payload) => Value::Push(vec![
            Value::bulk("smessage"),
            Value::Bulk(channel),
            Value::Bulk(payload),
        ]),
        (Via::Pattern(pattern), channel, payload) => Value::Push(vec![
            Value::bulk("pmessage"),
            Value::Bulk(pattern),
            Value::Bulk(channel),
            Value::Bulk(payload),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_redis() {
        for (p, t, want) in [
            ("news.*", "news.art", true),
            ("news.*", "news", false),
            ("*", "", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("[", "x", false),
        ] {
            assert_eq!(glob(p.as_bytes(), t.as_bytes()), want, "{p} ~ {t}");
        }
    }

    #[tokio::test]
    async fn a_subscriber_over_its_output_limit_is_disconnected() {
        let subs = Subscriptions::new(100);
        let (tx, mut rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let slow = Mailbox::new(tx);
        subs.add(SubKind::Channel, Bytes::from("c"), 1, slow.clone());
        let payload = Bytes::from(vec![b'x'; 40]);
        let chan = Bytes::from("c");
        // Two messages of 41 bytes fit in 100; the third does not.
        assert_eq!(subs.deliver(&chan, &payload), 1);
        assert_eq!(subs.deliver(&chan, &payload), 1);
        assert!(!slow.overflowed.is_cancelled());
        assert_eq!(subs.deliver(&chan, &payload), 0);
        assert!(slow.overflowed.is_cancelled());
        // Once overflowed, nothing more is queued even after it caught up.
        let d = rx.recv().await.expect("a queued message");
        slow.written(&d);
        assert_eq!(subs.deliver(&chan, &payload), 0);
        // A reader that keeps up is never disconnected.
        let (tx, mut rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let fast = Mailbox::new(tx);
        subs.add(SubKind::Channel, Bytes::from("d"), 2, fast.clone());
        for _ in 0..1000 {
            assert_eq!(subs.deliver(&Bytes::from("d"), &payload), 1);
            let d = rx.recv().await.expect("a message");
            fast.written(&d);
        }
        assert!(!fast.overflowed.is_cancelled());
        assert_eq!(
            subs.channels(None),
            vec![Bytes::from("c"), Bytes::from("d")]
        );
        assert_eq!(subs.channels(Some(b"d*")), vec![Bytes::from("d")]);
        assert_eq!(subs.numsub(b"c"), 1);
        assert_eq!(subs.numsub(b"nope"), 0);
        assert_eq!(subs.numpat(), 0);
    }

    #[tokio::test]
    async fn sharded_channels_are_a_namespace_of_their_own() {
        let subs = Subscriptions::new(1 << 20);
        let (tx, mut rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let m = Mailbox::new(tx);
        subs.add(SubKind::Shard, Bytes::from("s"), 1, m.clone());
        subs.add(SubKind::Pattern, Bytes::from("*"), 1, m.clone());
        let (chan, payload) = (Bytes::from("s"), Bytes::from("p"));
        // SPUBLISH reaches SSUBSCRIBErs only, never patterns.
        assert_eq!(subs.deliver_shard(&chan, &payload), 1);
        assert_eq!(
            rx.recv().await,
            Some((Via::Shard, chan.clone(), payload.clone()))
        );
        assert!(rx.try_recv().is_err());
        // PUBLISH on the same name reaches the pattern, not the sharded subscription.
        assert_eq!(subs.deliver(&chan, &payload), 1);
        let d = rx.recv().await.expect("a message");
        assert_eq!(d.0, Via::Pattern(Bytes::from("*")));
        assert_eq!(
            message((Via::Shard, chan.clone(), payload.clone())),
            Value::Push(vec![
                Value::bulk("smessage"),
                Value::Bulk(chan.clone()),
                Value::Bulk(payload.clone())
            ])
        );
        assert_eq!(subs.shard_channels(None), vec![chan.clone()]);
        assert_eq!(subs.channels(None), Vec::<Bytes>::new());
        assert_eq!(subs.shard_numsub(b"s"), 1);
        assert_eq!(subs.numsub(b"s"), 0);
        subs.remove(SubKind::Shard, &chan, 1);
        assert_eq!(subs.deliver_shard(&chan, &payload), 0);
        assert_eq!(subs.shard_channels(None), Vec::<Bytes>::new());
    }

    #[test]
    fn mesh_messages_round_trip_and_bad_ones_are_refused() {
        for shard in [false, true] {
            let m = encode(shard, b"chan", b"payload");
            assert_eq!(
                decode(&m),
                Some((shard, Bytes::from("chan"), Bytes::from("payload")))
            );
        }
        assert_eq!(decode(&Bytes::from_static(b"\0\0\0\x09ab")), None);
        assert_eq!(decode(&Bytes::from_static(b"\0\0")), None);
    }
}
