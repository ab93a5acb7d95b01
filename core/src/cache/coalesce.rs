//! The queue that coalesces concurrent writes to one peer into batched requests (ADR
//! 0021, fifth amendment). Pure: which writes travel together and when a write waits.
//!
//! A writer sends at once while fewer than [`MAX_IN_FLIGHT`] requests to that peer are
//! under way; otherwise its write waits in the peer's lane, and the sender whose request
//! comes back next takes everything waiting (up to one request's worth) in one request.
//! A lone writer therefore never waits for a timer, and under load the number of
//! requests per write falls as the load rises. The lane holds at most [`MAX_QUEUED`]
//! writes: past that a writer sends its own request, as without coalescing.

use std::collections::VecDeque;

use crate::cache::limits::MAX_BATCH;

/// Most batched requests under way to one peer at once.
pub const MAX_IN_FLIGHT: usize = 2;

/// Most writes waiting for one peer; past it a writer sends alone.
pub const MAX_QUEUED: usize = MAX_BATCH;

/// The size of one write, or of a request: entries and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Size {
    /// Entries.
    pub entries: usize,
    /// Bytes (keys, values and envelope, as the writer counts them).
    pub bytes: usize,
}

/// What a writer that just queued its write must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<T> {
    /// Become a sender: send these writes (its own among them) in one request, then
    /// ask [`Lane::next`] for more until it says none.
    Send(Vec<T>),
    /// Wait: a sender under way will take the write.
    Queued,
    /// The lane is full: send this write alone, outside the lane.
    Alone(T),
}

/// The writes waiting for one peer and the senders under way to it.
#[derive(Debug)]
pub struct Lane<T> {
    in_flight: usize,
    waiting: VecDeque<(T, Size)>,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Self {
            in_flight: 0,
            waiting: VecDeque::new(),
        }
    }
}

impl<T> Lane<T> {
    /// Queues `item` of `size`; a request carries at most `max` (the first write taken
    /// goes even if larger).
    pub fn push(&mut self, item: T, size: Size, max: Size) -> Admit<T> {
        if self.in_flight < MAX_IN_FLIGHT {
            self.in_flight += 1;
            self.waiting.push_back((item, size));
            return Admit::Send(self.take(max, |_| true));
        }
        if self.waiting.len() >= MAX_QUEUED {
            return Admit::Alone(item);
        }
        self.waiting.push_back((item, size));
        Admit::Queued
    }

    /// For a sender whose request came back: the next writes to send in one request,
    /// skipping those whose writer is gone (`live` false), or `None` when nothing waits
    /// (the sender is done).
    pub fn next(&mut self, max: Size, live: impl Fn(&T) -> bool) -> Option<Vec<T>> {
        let batch = self.take(max, live);
        if batch.is_empty() {
            self.in_flight = self.in_flight.saturating_sub(1);
            None
        } else {
            Some(batch)
        }
    }

    /// Whether no sender is under way and nothing waits (the lane may be dropped).
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.waiting.is_empty()
    }

    /// The writes at the front that fit in one request of `max`, in order.
    fn take(&mut self, max: Size, live: impl Fn(&T) -> bool) -> Vec<T> {
        let mut out = Vec::new();
        let mut total = Size::default();
        while let Some((item, size)) = self.waiting.pop_front() {
            if !live(&item) {
                continue;
            }
            let entries = total.entries.saturating_add(size.entries);
            let bytes = total.bytes.saturating_add(size.bytes);
            if !out.is_empty() && (entries > max.entries || bytes > max.bytes) {
                self.waiting.push_front((item, size));
                break;
            }
            total = Size { entries, bytes };
            out.push(item);
        }
        out
    }

    /// Writes waiting.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Size = Size {
        entries: 10,
        bytes: 1000,
    };

    fn one(bytes: usize) -> Size {
        Size { entries: 1, bytes }
    }

    #[test]
    fn a_lone_writer_sends_at_once_and_others_wait_while_senders_are_busy() {
        let mut lane = Lane::default();
        assert_eq!(lane.push(1, one(10), MAX), Admit::Send(vec![1]));
        assert_eq!(lane.push(2, one(10), MAX), Admit::Send(vec![2]));
        // MAX_IN_FLIGHT senders under way: the next writes wait.
        assert_eq!(lane.push(3, one(10), MAX), Admit::Queued);
        assert_eq!(lane.push(4, one(10), MAX), Admit::Queued);
        assert_eq!(lane.push(5, one(10), MAX), Admit::Queued);
        // The first sender back takes them all in one request, in order.
        assert_eq!(lane.next(MAX, |_| true), Some(vec![3, 4, 5]));
        // Nothing left: both senders finish, the lane is idle.
        assert_eq!(lane.next(MAX, |_| true), None);
        assert!(!lane.is_idle());
        assert_eq!(lane.next(MAX, |_| true), None);
        assert!(lane.is_idle());
        // Idle again: the next writer sends at once.
        assert_eq!(lane.push(6, one(10), MAX), Admit::Send(vec![6]));
    }

    #[test]
    fn a_request_carries_at_most_max_entries_and_bytes_but_always_one_write() {
        let mut lane = Lane::default();
        for i in 0..MAX_IN_FLIGHT {
            assert!(matches!(lane.push(i, one(1), MAX), Admit::Send(_)));
        }
        // Entries: 4 + 4 fit in 10, a third of 4 does not.
        let four = Size {
            entries: 4,
            bytes: 1,
        };
        for i in 10..13 {
            assert_eq!(lane.push(i, four, MAX), Admit::Queued);
        }
        assert_eq!(lane.next(MAX, |_| true), Some(vec![10, 11]));
        assert_eq!(lane.next(MAX, |_| true), Some(vec![12]));
        // Bytes: a write larger than a request goes alone, the next after it.
        assert_eq!(lane.push(20, one(5000), MAX), Admit::Queued);
        assert_eq!(lane.push(21, one(600), MAX), Admit::Queued);
        assert_eq!(lane.push(22, one(600), MAX), Admit::Queued);
        assert_eq!(lane.next(MAX, |_| true), Some(vec![20]));
        assert_eq!(lane.next(MAX, |_| true), Some(vec![21]));
        assert_eq!(lane.next(MAX, |_| true), Some(vec![22]));
        assert_eq!(lane.next(MAX, |_| true), None);
        assert_eq!(lane.next(MAX, |_| true), None);
        assert!(lane.is_idle());
    }

    #[test]
    fn writes_whose_writer_left_are_dropped_and_the_queue_is_bounded() {
        let mut lane = Lane::default();
        for i in 0..MAX_IN_FLIGHT {
            assert!(matches!(lane.push(i, one(1), MAX), Admit::Send(_)));
        }
        for i in 0..MAX_QUEUED {
            assert_eq!(lane.push(100 + i, one(1), MAX), Admit::Queued);
        }
        assert_eq!(
            lane.push(7, one(1), MAX),
            Admit::Alone(7),
            "full: send alone"
        );
        assert_eq!(lane.waiting(), MAX_QUEUED);
        // Writers 100..=104 gave up: they are skipped.
        let batch = lane.next(MAX, |&i| i > 104).unwrap_or_default();
        assert_eq!(batch, (105..115).collect::<Vec<_>>());
        // Everything gone: the sender finds nothing.
        assert_eq!(lane.next(MAX, |_| false), None);
        assert_eq!(lane.waiting(), 0);
    }
}
