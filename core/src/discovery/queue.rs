//! A bounded hand-off queue that keeps the newest items: when full, a push drops the
//! oldest. The mDNS browse thread pushes every record into one as fast as mdns-sd
//! delivers them (so mdns-sd's own channel of 1000 never fills because we are slow), and
//! the dial task takes them out at its own pace.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// Holds at most `capacity` items; pushing beyond drops the oldest.
#[derive(Debug)]
pub struct NewestQueue<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<T> {
    items: VecDeque<T>,
    dropped: u64,
}

impl<T> NewestQueue<T> {
    /// An empty queue of `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                dropped: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `item`, dropping the oldest one if the queue is full.
    pub fn push(&self, item: T) {
        let mut inner = self.lock();
        while inner.items.len() >= self.capacity {
            inner.items.pop_front();
            inner.dropped = inner.dropped.saturating_add(1);
        }
        inner.items.push_back(item);
    }

    /// Adds `items` in order, dropping the oldest ones beyond the capacity.
    pub fn push_all(&self, items: impl IntoIterator<Item = T>) {
        let mut inner = self.lock();
        for item in items {
            if inner.items.len() >= self.capacity {
                inner.items.pop_front();
                inner.dropped = inner.dropped.saturating_add(1);
            }
            inner.items.push_back(item);
        }
    }

    /// Takes up to `n` items, oldest first.
    pub fn take(&self, n: usize) -> Vec<T> {
        let mut inner = self.lock();
        let n = n.min(inner.items.len());
        inner.items.drain(..n).collect()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_keeps_the_newest_items() {
        let q = NewestQueue::new(3);
        for i in 0..10 {
            q.push(i);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 7);
        assert_eq!(q.take(2), vec![7, 8]);
        assert_eq!(q.take(5), vec![9]);
        assert!(q.is_empty());
        assert!(q.take(1).is_empty());
        q.push_all(0..5);
        assert_eq!(q.dropped(), 9);
        assert_eq!(q.take(9), vec![2, 3, 4]);
        let tiny = NewestQueue::new(0);
        tiny.push('a');
        tiny.push('b');
        assert_eq!(tiny.take(9), vec!['b']);
    }
}
