//! The node's own tokio runtime: isolated from the host application's runtime and
//! threads, created at start and torn down (threads joined) at shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::error::{Classify, Error, ErrorKind, Result};

/// How long shutdown waits for runtime threads to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Owns the node's runtime.
#[derive(Debug)]
pub struct NodeRuntime {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
}

impl NodeRuntime {
    /// Builds a multi-thread runtime with `threads` workers named after the node.
    pub fn new(threads: usize, label: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads.max(4))
            .thread_name(format!("memmesh-{label}"))
            .enable_all()
            .build()
            .map_err(|e| Error::from(e).context("creating the node runtime"))?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Mutex::new(Some(runtime)),
            handle,
        })
    }

    /// The runtime handle (spawning on it after shutdown yields cancelled tasks).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `fut` on the node runtime and awaits it from any executor. Dropping the
    /// returned future cancels the work; a panic in it becomes an `Internal` error.
    ///
    /// A caller that already runs in this runtime's context (a task of the node, a
    /// handler, a blocking-pool thread of the node) polls `fut` in place: spawning would
    /// only add a task, a wake-up of another worker and a join (ADR 0005). Any other
    /// caller (a host language's thread, another runtime) gets a task on the node runtime.
    pub fn run<F, T>(&self, fut: F) -> RunFuture<F, T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let here = Handle::try_current().is_ok_and(|h| h.id() == self.handle.id());
        if here {
            RunFuture::Here {
                fut: futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(fut)),
            }
        } else {
            RunFuture::Task {
                task: AbortOnDrop(self.handle.spawn(fut)),
            }
        }
    }

    /// Polls `fut` wherever the returned future is awaited (no task, no thread hop), with
    /// this runtime as the tokio context of every poll, so the timers and tasks `fut`
    /// creates belong to the node runtime. For short work whose caller waits for it
    /// anyway (a request to a channel of this very node): a caller on a plain thread then
    /// pays no wake-up of a runtime thread. Dropping the returned future cancels the work.
    pub fn here<F: Future>(&self, fut: F) -> Here<F> {
        Here {
            handle: self.handle.clone(),
            fut,
        }
    }

    /// Takes the runtime out and shuts it down on a helper thread, so this works from
    /// any context (inside or outside an async runtime). Returns that thread, if the
    /// runtime was still running.
    pub fn shutdown(&self) -> Option<std::thread::JoinHandle<()>> {
        let rt = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        std::thread::Builder::new()
            .name("memmesh-shutdown".into())
            .spawn(move || rt.shutdown_timeout(SHUTDOWN_GRACE))
            .ok()
    }

    /// Whether the runtime has been shut down.
    pub fn is_shut_down(&self) -> bool {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// Shuts down without waiting (used from `Drop`).
    pub fn shutdown_background(&self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

pin_project_lite::pin_project! {
    /// Work polled by its caller inside the node runtime's context (see
    /// [`NodeRuntime::here`]).
    pub struct Here<F> {
        handle: Handle,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Here<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _context = this.handle.enter();
        this.fut.poll(cx)
    }
}

impl<F> std::fmt::Debug for Here<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Here")
    }
}

/// A task on the node runtime panicked (tokio's join error is the source).
#[derive(Debug, thiserror::Error)]
#[error("a memmesh task panicked: {0}")]
pub struct TaskPanicked(#[source] pub tokio::task::JoinError);

impl Classify for TaskPanicked {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

pin_project_lite::pin_project! {
    /// Work on the node runtime, awaited from anywhere; cancelled if dropped early.
    #[project = RunProj]
    pub enum RunFuture<F, T> {
        /// A task on the node runtime (aborted on drop).
        Task { task: AbortOnDrop<T> },
        /// Polled in place by a caller already in the node runtime (see
        /// [`NodeRuntime::run`]); inline, not boxed.
        Here {
            #[pin]
            fut: futures::future::CatchUnwind<std::panic::AssertUnwindSafe<F>>,
        },
    }
}

impl<F, T> std::fmt::Debug for RunFuture<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFuture::Task { .. } => f.write_str("RunFuture::Task"),
            RunFuture::Here { .. } => f.write_str("RunFuture::Here"),
        }
    }
}

impl<F, T> Future for RunFuture<F, T>
where
    F: Future<Output = Result<T>>,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match self.project() {
            RunProj::Task { task } => Pin::new(&mut task.0).poll(cx).map(|joined| match joined {
                Ok(result) => result,
                Err(e) if e.is_cancelled() => Err(Error::closed()),
                Err(e) => Err(TaskPanicked(e).into()),
            }),
            RunProj::Here { fut } => fut.poll(cx).map(|done| match done {
                Ok(result) => result,
                Err(panic) => Err(WorkPanicked(panic_message(&*panic)).into()),
            }),
        }
    }
}

/// A task's handle that aborts the task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop<T>(JoinHandle<Result<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Work polled in place (see [`NodeRuntime::run`]) panicked.
#[derive(Debug, thiserror::Error)]
#[error("a memmesh task panicked: {0}")]
pub struct WorkPanicked(pub String);

impl Classify for WorkPanicked {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The message of a panic's payload, if it is a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_polled_in_place_only_from_inside_the_node_runtime() {
        let rt = std::sync::Arc::new(NodeRuntime::new(1, "test").unwrap());
        let outside = rt.run(async { Ok(1) });
        assert!(matches!(outside, RunFuture::Task { .. }));
        assert_eq!(futures::executor::block_on(outside).unwrap(), 1);
        // Another runtime's task is outside too.
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let rt2 = rt.clone();
        let r = other.block_on(async move {
            let f = rt2.run(async { Ok(2) });
            (matches!(f, RunFuture::Task { .. }), f.await.unwrap())
        });
        assert_eq!(r, (true, 2));
        // A task of the node runtime polls in place, and so does its blocking pool.
        let rt2 = rt.clone();
        let inside = rt.handle().spawn(async move {
            let f = rt2.run(async { Ok(3) });
            (matches!(f, RunFuture::Here { .. }), f.await.unwrap())
        });
        assert_eq!(futures::executor::block_on(inside).unwrap(), (true, 3));
        let rt2 = rt.clone();
        let blocking = rt.handle().spawn_blocking(move || {
            let f = rt2.run(async { Ok(4) });
            (
                matches!(f, RunFuture::Here { .. }),
                futures::executor::block_on(f).unwrap(),
            )
        });
        assert_eq!(futures::executor::block_on(blocking).unwrap(), (true, 4));
        rt.shutdown_background();
    }

    #[test]
    fn a_panic_becomes_an_internal_error_and_dropping_cancels_either_way() {
        let rt = std::sync::Arc::new(NodeRuntime::new(1, "test").unwrap());
        let rt2 = rt.clone();
        let (here, task) = futures::executor::block_on(rt.handle().spawn(async move {
            let here = rt2.run(async { panic!("boom here") as Result<()> }).await;
            let task = tokio::task::spawn_blocking(move || {
                futures::executor::block_on(
                    std::thread::spawn(move || {
                        rt2.run(async { panic!("boom task") as Result<()> })
                    })
                    .join()
                    .unwrap(),
                )
            })
            .await
            .unwrap();
            (here, task)
        }))
        .unwrap();
        for (e, what) in [(here.unwrap_err(), "boom here"), (task.unwrap_err(), "")] {
            assert_eq!(e.kind(), ErrorKind::Internal);
            assert!(e.message().contains(what), "{}", e.message());
        }
        // Dropping the future drops the work (its guard) in both forms.
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let rt2 = rt.clone();
        let dropped = futures::executor::block_on(rt.handle().spawn(async move {
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let guard = Flag(flag.clone());
            let f = rt2.run(async move {
                let _g = guard;
                std::future::pending::<()>().await;
                Ok(())
            });
            let _ = tokio::time::timeout(Duration::from_millis(20), f).await;
            flag.load(std::sync::atomic::Ordering::SeqCst)
        }))
        .unwrap();
        assert!(dropped);
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Flag(flag.clone());
        let f = rt.run(async move {
            let _g = guard;
            std::future::pending::<()>().await;
            Ok(())
        });
        drop(f);
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while !flag.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
        rt.shutdown_background();
    }
}
