//! Work its caller polls in place, finished on a task of its own if the caller drops it:
//! for a request that carries what others rely on (a write on its way to a replica), which
//! must not be cancelled with a caller that gives up, yet costs no task, no wake-up of
//! another worker and no hand-off of its answer when the caller waits for it, as it
//! nearly always does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tracing::warn;

/// `fut`, polled wherever this is awaited; dropped before it completed, it is spawned on
/// the runtime it was made in and runs to the end there.
pub(crate) struct FinishOnDrop<F: Future<Output = ()> + Send + 'static> {
    /// `None` once complete.
    fut: Option<Pin<Box<F>>>,
    /// Where the rest runs if the caller lets go (the runtime current when this was made).
    runtime: Option<Handle>,
}

impl<F: Future<Output = ()> + Send + 'static> FinishOnDrop<F> {
    /// Wraps `fut`; call from inside the runtime that is to finish it.
    pub(crate) fn new(fut: F) -> Self {
        FinishOnDrop {
            fut: Some(Box::pin(fut)),
            runtime: Handle::try_current().ok(),
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> Future for FinishOnDrop<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(());
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.fut = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> Drop for FinishOnDrop<F> {
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else {
            return;
        };
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn(fut)),
            // Only made outside a runtime (never by memmesh): nothing can run the rest.
            None => warn!("work dropped unfinished outside a runtime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn awaited_it_runs_in_place_and_dropped_midway_it_still_finishes() {
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let work = |done: Arc<AtomicUsize>, gate: Option<tokio::sync::oneshot::Receiver<()>>| async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            done.fetch_add(1, Ordering::SeqCst);
        };
        // Awaited: complete when the await returns, on the caller's task.
        FinishOnDrop::new(work(done.clone(), None)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
        // Polled once, then dropped while it waits: it goes on as a task.
        let mut f = Box::pin(FinishOnDrop::new(work(done.clone(), Some(rx))));
        assert!(futures::poll!(&mut f).is_pending());
        drop(f);
        assert_eq!(done.load(Ordering::SeqCst), 1);
        tx.send(()).unwrap();
        for _ in 0..200 {
            if done.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(done.load(Ordering::SeqCst), 2, "the dropped work finished");
        // Dropped once complete: nothing runs again.
        let mut f = Box::pin(FinishOnDrop::new(work(done.clone(), None)));
        assert!(futures::poll!(&mut f).is_ready());
        drop(f);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }
}
