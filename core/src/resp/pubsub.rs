//! Redis pub/sub on memmesh channels: the subscriptions of this node's clients, and how a
//! published message travels to the other nodes (one memmesh channel, [`MESH_CHANNEL`],
//! carrying the Redis channel name and the payload).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::resp::value::Value;

/// The memmesh channel every node with a RESP front opens to receive the messages
/// published through the others.
pub const MESH_CHANNEL: &str = "memmesh.redis.pubsub";

/// Most messages waiting for one subscriber; a subscriber that falls further behind
/// misses messages until it catches up (ADR 0021).
pub const SUBSCRIBER_QUEUE: usize = 4096;

/// A published message, to be written to a subscriber: (pattern matched, channel, payload).
pub type Delivery = (Option<Bytes>, Bytes, Bytes);

/// Encodes a message for [`MESH_CHANNEL`]: channel length (u32 BE), channel, payload.
pub fn encode(channel: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + channel.len() + payload.len());
    out.put_u32(channel.len() as u32);
    out.put_slice(channel);
    out.put_slice(payload);
    out.freeze()
}

/// Decodes what [`encode`] made, or `None` for a malformed message.
pub fn decode(msg: &Bytes) -> Option<(Bytes, Bytes)> {
    let len = u32::from_be_bytes(msg.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    if end > msg.len() {
        return None;
    }
    Some((msg.slice(4..end), msg.slice(end..)))
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
    channels: HashMap<Bytes, HashMap<u64, mpsc::Sender<Delivery>>>,
    patterns: HashMap<Bytes, HashMap<u64, mpsc::Sender<Delivery>>>,
}

/// The subscriptions of this node's RESP clients, by channel and by pattern.
#[derive(Default)]
pub struct Subscriptions(Mutex<Table>);

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.table();
        f.debug_struct("Subscriptions")
            .field("channels", &t.channels.len())
            .field("patterns", &t.patterns.len())
            .finish()
    }
}

impl Subscriptions {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes client `id` (whose deliveries go to `tx`) to `name`, a channel or a
    /// pattern.
    pub fn add(&self, pattern: bool, name: Bytes, id: u64, tx: mpsc::Sender<Delivery>) {
        let mut t = self.table();
        let map = if pattern {
            &mut t.patterns
        } else {
            &mut t.channels
        };
        map.entry(name).or_default().insert(id, tx);
    }

    /// Unsubscribes client `id` from `name`.
    pub fn remove(&self, pattern: bool, name: &Bytes, id: u64) {
        let mut t = self.table();
        let map = if pattern {
            &mut t.patterns
        } else {
            &mut t.channels
        };
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Hands a message published on `channel` to every local subscriber and returns how
    /// many took it. A subscriber with [`SUBSCRIBER_QUEUE`] messages unread misses this
    /// one.
    pub fn deliver(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let t = self.table();
        let mut n = 0;
        if let Some(subs) = t.channels.get(channel) {
            for tx in subs.values() {
                n += usize::from(
                    tx.try_send((None, channel.clone(), payload.clone()))
                        .is_ok(),
                );
            }
        }
        for (pattern, subs) in &t.patterns {
            if glob(pattern, channel) {
                for tx in subs.values() {
                    n += usize::from(
                        tx.try_send((Some(pattern.clone()), channel.clone(), payload.clone()))
                            .is_ok(),
                    );
                }
            }
        }
        n
    }
}

/// The push a subscriber receives for `d`.
pub fn message(d: Delivery) -> Value {
    match d {
        (None, channel, payload) => Value::Push(vec![
            Value::bulk("message"),
            Value::Bulk(channel),
            Value::Bulk(payload),
        ]),
        (Some(pattern), channel, payload) => Value::Push(vec![
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

    #[test]
    fn mesh_messages_round_trip_and_bad_ones_are_refused() {
        let m = encode(b"chan", b"payload");
        assert_eq!(
            decode(&m),
            Some((Bytes::from("chan"), Bytes::from("payload")))
        );
        assert_eq!(decode(&Bytes::from_static(b"\0\0\0\x09ab")), None);
        assert_eq!(decode(&Bytes::from_static(b"\0\0")), None);
    }
}
