//! Running work on asyncio event loops from the node runtime, without ever making a
//! runtime thread wait for the GIL.
//!
//! Runtime threads [`post`] jobs into one process-wide outbox (a mutex-guarded vector;
//! no GIL). A dedicated thread, `memmesh-py-waker`, takes everything queued, attaches
//! to Python once, and hands each loop its jobs in one batch with
//! `loop.call_soon_threadsafe(run_batch, batch)`. So under load many results cross in
//! one wake-up, and a busy event loop (holding the GIL) delays only the waker thread,
//! never the node's networking.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

/// An asyncio event loop, shareable without the GIL.
pub type EventLoop = Arc<Py<PyAny>>;

/// Work to run on an event loop's thread, with the GIL; it gets the loop.
pub type Job = Box<dyn for<'py> FnOnce(Python<'py>, &Bound<'py, PyAny>) + Send>;

/// Jobs waiting for the waker thread, each with its loop.
struct Outbox {
    queue: Mutex<Vec<(EventLoop, Job)>>,
    /// The waker thread (`None` if it could not be started: posters then deliver).
    waker: Option<Thread>,
}

static OUTBOX: OnceLock<Outbox> = OnceLock::new();

fn outbox() -> &'static Outbox {
    OUTBOX.get_or_init(|| {
        let waker = std::thread::Builder::new()
            .name("memmesh-py-waker".into())
            .spawn(wake_loops)
            .map(|handle| handle.thread().clone())
            .ok();
        Outbox {
            queue: Mutex::new(Vec::new()),
            waker,
        }
    })
}

/// Queues `job` to run on `event_loop`'s thread. Callable from any thread; never
/// blocks on the GIL.
pub fn post(event_loop: EventLoop, job: Job) {
    let outbox = outbox();
    let was_empty = {
        let mut queue = outbox.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.push((event_loop, job));
        queue.len() == 1
    };
    if was_empty {
        match &outbox.waker {
            Some(waker) => waker.unpark(),
            None => {
                deliver(outbox);
            }
        }
    }
}

/// The waker thread: whenever jobs are queued, hands them to their loops.
fn wake_loops() {
    let outbox = loop {
        // `post` initialises the outbox before it can unpark this thread.
        match OUTBOX.get() {
            Some(o) => break o,
            None => std::thread::park(),
        }
    };
    loop {
        if !deliver(outbox) {
            std::thread::park();
        }
    }
}

/// Takes every queued job and schedules one batch per loop. Returns whether there was
/// anything to deliver.
fn deliver(outbox: &Outbox) -> bool {
    let jobs = std::mem::take(&mut *outbox.queue.lock().unwrap_or_else(|p| p.into_inner()));
    if jobs.is_empty() {
        return false;
    }
    // `None` only while the interpreter shuts down: then no loop runs any more.
    let _ = Python::try_attach(|py| {
        let mut batches: Vec<(EventLoop, Vec<Job>)> = Vec::new();
        for (event_loop, job) in jobs {
            match batches.iter_mut().find(|(l, _)| l.is(&event_loop)) {
                Some((_, batch)) => batch.push(job),
                None => batches.push((event_loop, vec![job])),
            }
        }
        for (event_loop, jobs) in batches {
            schedule(py, event_loop, jobs);
        }
    });
    true
}

/// The jobs for one loop, run by [`run_batch`] on that loop's thread.
#[pyclass(frozen, module = "memmesh._native")]
struct Batch {
    event_loop: EventLoop,
    jobs: Mutex<Vec<Job>>,
}

static RUN_BATCH: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();

fn schedule(py: Python<'_>, event_loop: EventLoop, jobs: Vec<Job>) {
    let run = match RUN_BATCH
        .get_or_try_init(py, || wrap_pyfunction!(run_batch, py).map(Bound::unbind))
    {
        Ok(run) => run,
        Err(e) => return e.write_unraisable(py, None),
    };
    let batch = Batch {
        event_loop: event_loop.clone(),
        jobs: Mutex::new(jobs),
    };
    // Fails only if the loop is closed: its jobs are dropped, which resolves the calls
    // waiting on them with an error (nobody on that loop waits any more).
    let _ = event_loop.call_method1(py, pyo3::intern!(py, "call_soon_threadsafe"), (run, batch));
}

/// Runs a batch of jobs (on its loop's thread).
#[pyfunction]
fn run_batch(py: Python<'_>, batch: &Bound<'_, Batch>) {
    let batch = batch.get();
    let jobs = std::mem::take(&mut *batch.jobs.lock().unwrap_or_else(|p| p.into_inner()));
    let event_loop = batch.event_loop.bind(py);
    for job in jobs {
        job(py, event_loop);
    }
}
