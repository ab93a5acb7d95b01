//! Awaiting a handful of requests together without waking our own task for nothing.
//!
//! `futures::future::join_all` picks its strategy from its iterator's `size_hint`: a
//! length known to be at most 30 is polled in place; any other (a `flat_map` over
//! vectors has no upper bound) goes into a `FuturesOrdered`, whose `FuturesUnordered`
//! wakes its own task each time every future it polled stayed pending. A `get_many`
//! waiting for its one owner paid a spurious poll and a wake-up of another runtime
//! worker per round trip for that (3.3 context switches per call instead of 2.0, ~18 %
//! more CPU: bench/README, cache-bench).

use std::future::Future;

/// Awaits every future of `futs` and returns their outputs in order: one is awaited as it
/// is; several are polled in place by `join_all` (given a `Vec`, whose length it knows).
pub(crate) async fn join<F: Future>(mut futs: Vec<F>) -> Vec<F::Output> {
    if futs.len() == 1 {
        if let Some(only) = futs.pop() {
            return vec![only.await];
        }
    }
    futures::future::join_all(futs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Polls `fut` until it is ready; returns how often its waker was woken while the
    /// futures it waits for were all still pending (before `release` ran).
    fn spurious_wakes<F: Future>(fut: F, release: impl FnOnce()) -> (usize, F::Output) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = Box::pin(fut);
        for _ in 0..3 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        let spurious = count.0.load(Ordering::SeqCst);
        release();
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return (spurious, out);
            }
        }
    }

    #[test]
    fn pending_requests_do_not_wake_their_own_task() {
        for n in [1usize, 2, 5, 30] {
            let (senders, receivers): (Vec<_>, Vec<_>) = (0..n)
                .map(|_| tokio::sync::oneshot::channel::<usize>())
                .unzip();
            let (spurious, out) = spurious_wakes(join(receivers), move || {
                for (i, tx) in senders.into_iter().enumerate() {
                    let _ = tx.send(i);
                }
            });
            assert_eq!(spurious, 0, "{n} pending futures woke their task");
            let got: Vec<usize> = out.into_iter().map(|r| r.unwrap_or(usize::MAX)).collect();
            assert_eq!(got, (0..n).collect::<Vec<_>>(), "outputs in order");
        }
    }

    #[test]
    fn join_all_over_an_iterator_of_unknown_length_does_wake_its_own_task() {
        // What `join` avoids: the same receivers from an iterator of unknown length.
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..2)
            .map(|_| tokio::sync::oneshot::channel::<usize>())
            .unzip();
        let mut it = receivers.into_iter();
        let all = futures::future::join_all(std::iter::from_fn(move || it.next()));
        let (spurious, out) = spurious_wakes(all, move || {
            for tx in senders {
                let _ = tx.send(1);
            }
        });
        assert!(spurious > 0, "FuturesOrdered no longer wakes itself");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn nothing_to_join_is_ready_at_once() {
        let (spurious, out) = spurious_wakes_ready(join(Vec::<std::future::Ready<u8>>::new()));
        assert_eq!(spurious, 0);
        assert!(out.is_empty());
    }

    fn spurious_wakes_ready<F: Future>(fut: F) -> (usize, F::Output) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        match Box::pin(fut).as_mut().poll(&mut cx) {
            Poll::Ready(out) => (count.0.load(Ordering::SeqCst), out),
            Poll::Pending => panic!("an empty join is ready at once"),
        }
    }
}
