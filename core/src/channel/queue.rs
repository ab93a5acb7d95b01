//! A channel's incoming-message queue, bounded by count and by bytes, per channel and per
//! node. Pure logic: no waiting here (see `registry` for the waiting side).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::channel::handler::Message;

/// Default most bytes queued in one channel (messages nobody has read yet, overhead
/// included). Never below one message of `max_message_size`.
pub const CHANNEL_QUEUE_BYTES: u64 = 64 * 1024 * 1024;
/// Default most bytes queued in all the channels of a node together. Never below one
/// message of `max_message_size`.
pub const NODE_QUEUE_BYTES: u64 = 256 * 1024 * 1024;
/// Bytes charged per queued message on top of its payload (the message, its sender id and
/// its queue slot), so that many empty messages are bounded too.
pub const MESSAGE_OVERHEAD: u64 = 96;
/// Longest a message waits for room in a full queue before the sender is refused with
/// `QuotaExceeded` (the receiving node's `send_timeout` when that is shorter).
pub const DELIVERY_WAIT: Duration = Duration::from_secs(10);

/// What a queued message costs against the byte bounds.
pub fn message_cost(len: usize) -> u64 {
    (len as u64).saturating_add(MESSAGE_OVERHEAD)
}

/// The bounds a delivery is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages in one channel.
    pub count: usize,
    /// Most bytes in one channel.
    pub bytes: u64,
    /// Most bytes in all channels of the node.
    pub node_bytes: u64,
}

impl QueueLimits {
    /// The limits for a node with a per-channel count of `count` and messages of at most
    /// `max_message_size` bytes (each byte bound admits at least one such message).
    pub fn new(count: usize, max_message_size: usize) -> Self {
        let one = message_cost(max_message_size);
        Self {
            count: count.max(1),
            bytes: CHANNEL_QUEUE_BYTES.max(one),
            node_bytes: NODE_QUEUE_BYTES.max(one),
        }
    }
}

/// Bytes queued in all channels of a node.
#[derive(Debug, Default)]
pub struct NodeQueueBytes {
    used: AtomicU64,
}

impl NodeQueueBytes {
    /// Takes `cost` bytes if that keeps the total within `limit`.
    fn try_take(&self, cost: u64, limit: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(cost).filter(|&next| next <= limit)
            })
            .is_ok()
    }

    fn give(&self, cost: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(cost))
            });
    }

    /// Bytes queued in all channels.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The channel holds `count` messages already.
    Count,
    /// The channel holds its byte bound already.
    Bytes,
    /// All channels of the node hold the node's byte bound already.
    NodeBytes,
}

impl Full {
    /// Says which bound is reached, for the sender.
    pub fn describe(self, limits: &QueueLimits) -> String {
        match self {
            Full::Count => format!("it holds {} unread messages", limits.count),
            Full::Bytes => format!("it holds {} bytes of unread messages", limits.bytes),
            Full::NodeBytes => format!(
                "the node's channels hold {} bytes of unread messages",
                limits.node_bytes
            ),
        }
    }
}

/// One channel's queued messages and their bytes.
#[derive(Debug, Default)]
pub struct Queue {
    items: VecDeque<Message>,
    bytes: u64,
}

impl Queue {
    /// Queues `message` if the channel and the node have room for it, or says which bound
    /// is reached (and queues nothing).
    pub fn try_push(
        &mut self,
        message: Message,
        limits: &QueueLimits,
        node: &NodeQueueBytes,
    ) -> Result<(), (Message, Full)> {
        let cost = message_cost(message.data.len());
        if self.items.len() >= limits.count {
            return Err((message, Full::Count));
        }
        if self.bytes.saturating_add(cost) > limits.bytes {
            return Err((message, Full::Bytes));
        }
        if !node.try_take(cost, limits.node_bytes) {
            return Err((message, Full::NodeBytes));
        }
        self.bytes += cost;
        self.items.push_back(message);
        Ok(())
    }

    /// Takes the oldest message, giving its bytes back.
    pub fn pop(&mut self, node: &NodeQueueBytes) -> Option<Message> {
        let m = self.items.pop_front()?;
        let cost = message_cost(m.data.len());
        self.bytes = self.bytes.saturating_sub(cost);
        node.give(cost);
        Some(m)
    }

    /// Drops every message, giving their bytes back.
    pub fn clear(&mut self, node: &NodeQueueBytes) {
        node.give(self.bytes);
        self.bytes = 0;
        self.items.clear();
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes queued (overhead included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use bytes::Bytes;

    fn msg(len: usize) -> Message {
        Message {
            from: Keypair::generate().unwrap().node_id(),
            data: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn a_channel_is_bounded_by_count_and_by_bytes() {
        let node = NodeQueueBytes::default();
        let limits = QueueLimits {
            count: 3,
            bytes: message_cost(100) * 2,
            node_bytes: u64::MAX,
        };
        let mut q = Queue::default();
        q.try_push(msg(100), &limits, &node).unwrap();
        q.try_push(msg(100), &limits, &node).unwrap();
        assert_eq!(
            q.try_push(msg(1), &limits, &node).unwrap_err().1,
            Full::Bytes
        );
        assert_eq!(q.len(), 2);
        assert_eq!(node.used(), message_cost(100) * 2);
        q.pop(&node).unwrap();
        q.try_push(msg(0), &limits, &node).unwrap();
        q.try_push(msg(0), &limits, &node).unwrap();
        assert_eq!(
            q.try_push(msg(0), &limits, &node).unwrap_err().1,
            Full::Count
        );
        q.clear(&node);
        assert_eq!((q.len(), q.bytes(), node.used()), (0, 0, 0));
    }

    #[test]
    fn the_node_bound_is_shared_by_every_channel() {
        let node = NodeQueueBytes::default();
        let limits = QueueLimits {
            count: 100,
            bytes: u64::MAX,
            node_bytes: message_cost(10) * 3,
        };
        let (mut a, mut b) = (Queue::default(), Queue::default());
        a.try_push(msg(10), &limits, &node).unwrap();
        a.try_push(msg(10), &limits, &node).unwrap();
        b.try_push(msg(10), &limits, &node).unwrap();
        let (back, why) = b.try_push(msg(10), &limits, &node).unwrap_err();
        assert_eq!(why, Full::NodeBytes);
        assert_eq!(back.data.len(), 10, "a refused message is handed back");
        assert!(why.describe(&limits).contains("node"));
        a.pop(&node);
        b.try_push(back, &limits, &node).unwrap();
        assert_eq!((a.len(), b.len()), (1, 2));
    }

    #[test]
    fn limits_always_admit_one_largest_message() {
        let l = QueueLimits::new(0, 1 << 30);
        assert_eq!(l.count, 1);
        assert!(l.bytes >= message_cost(1 << 30));
        assert!(l.node_bytes >= message_cost(1 << 30));
        let d = QueueLimits::new(1024, 8 << 20);
        assert_eq!(
            (d.bytes, d.node_bytes),
            (CHANNEL_QUEUE_BYTES, NODE_QUEUE_BYTES)
        );
        assert_eq!(message_cost(usize::MAX), u64::MAX);
    }
}
