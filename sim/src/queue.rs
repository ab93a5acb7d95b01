//! Virtual time and the event queue: events fire in order of their virtual time, ties in
//! the order they were scheduled, so a run depends on nothing but its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A virtual clock: a fixed real `Instant` taken once (the core's pure state machines
/// want `Instant`s) plus the virtual time elapsed since the start of the run. Only
/// differences of these instants are ever used, so the base does not affect a run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    elapsed: Duration,
}

impl Clock {
    /// A clock at virtual time zero.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// Virtual time since the start of the run.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The current virtual time as an `Instant`.
    pub fn now(&self) -> Instant {
        self.base + self.elapsed
    }

    /// Moves the clock to `elapsed` (never backwards).
    pub fn advance_to(&mut self, elapsed: Duration) {
        self.elapsed = self.elapsed.max(elapsed);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

struct Entry<E> {
    at: Duration,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    // Reversed: the heap pops the earliest (then the first scheduled) entry.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

/// Events ordered by virtual time, ties first-in first-out.
pub struct Queue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
}

impl<E> Queue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Schedules `event` at virtual time `at`.
    pub fn push(&mut self, at: Duration, event: E) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            event,
        });
    }

    /// The time of the next event.
    pub fn peek_time(&self) -> Option<Duration> {
        self.heap.peek().map(|e| e.at)
    }

    /// Takes the next event, with its time.
    pub fn pop(&mut self) -> Option<(Duration, E)> {
        self.heap.pop().map(|e| (e.at, e.event))
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_fifo() {
        let mut q = Queue::new();
        let ms = Duration::from_millis;
        q.push(ms(5), "c");
        q.push(ms(1), "a");
        q.push(ms(5), "d");
        q.push(ms(1), "b");
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
        let mut c = Clock::new();
        c.advance_to(ms(10));
        c.advance_to(ms(3));
        assert_eq!(c.elapsed(), ms(10));
    }
}
