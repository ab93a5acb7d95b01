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
    /// returned future cancels the work.
    pub fn run<F, T>(&self, fut: F) -> RunFuture<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        RunFuture(self.handle.spawn(fut))
    }

    /// Polls `fut` wherever the returned future is awaited (no task, no thread hop), with
    /// this runtime as the tokio context of every poll, so the timers and tasks `fut`
    /// creates belong to the node runtime. For short work whose caller waits for it
    /// anyway (a request to a channel of this very node): a caller on a plain thread then
    /// pays no wake-up of a runtime thread. Dropping the returned future cancels the work.
    pub fn here<F: Future>(&self, fut: F) -> Here<F> {
        Here {
            handle: self.handle.clone(),
            fut: Box::pin(fut),
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

/// Work polled by its caller inside the node runtime's context (see [`NodeRuntime::here`]).
pub struct Here<F> {
    handle: Handle,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Here<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _context = this.handle.enter();
        this.fut.as_mut().poll(cx)
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

/// A task on the node runtime, awaited from anywhere; aborted if dropped early.
#[derive(Debug)]
pub struct RunFuture<T>(JoinHandle<Result<T>>);

impl<T> Future for RunFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Err(Error::closed()),
            Err(e) => Err(TaskPanicked(e).into()),
        })
    }
}

impl<T> Drop for RunFuture<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
