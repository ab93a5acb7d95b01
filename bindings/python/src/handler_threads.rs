//! Threads that run plain Python handlers, each attached to the interpreter for its whole
//! life.
//!
//! A plain (not `async`) handler of the blocking API must run on a thread of its own: not
//! the caller's (its timeout and Ctrl-C must still work), not a runtime thread (it holds
//! the GIL). Run on tokio's blocking pool, every call created and destroyed a Python
//! thread state (in CPython 3.11 with its frame stack mapped and unmapped). These
//! threads attach once, run one job after another, and release the GIL while they wait;
//! so a call costs two thread wake-ups and no thread state.
//!
//! Nothing leaks: a thread idle for [`IDLE_EXIT`] detaches and exits (tokio's pool did the
//! same after 10 s), at most [`MAX_THREADS`] exist (beyond that, or after the interpreter
//! began to exit, [`submit`] gives the job back and the caller runs it the old way), and
//! at interpreter exit an `atexit` hook tells every idle thread to leave and waits a
//! moment for busy ones, so none wakes up inside a finalizing interpreter. A process
//! forked from this one starts with no threads (the pool notices the new process id).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Work for a handler thread, run with the GIL held.
pub type Job = Box<dyn for<'py> FnOnce(Python<'py>) + Send>;

/// How long a thread waits for its next job before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);
/// Most handler threads at once (tokio's blocking pool, the fallback, allows 512).
pub const MAX_THREADS: usize = 64;
/// How long interpreter exit waits for threads still running a handler.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// A message to an idle thread: a job, or `None` to exit.
type Mail = Option<Job>;

struct Pool {
    /// The process these threads belong to (a forked child has none of them).
    pid: u32,
    /// Idle threads, each by its id and mailbox; a thread is popped to get one job.
    idle: Vec<(u64, Sender<Mail>)>,
    /// Threads alive.
    live: usize,
    next_id: u64,
    /// The interpreter is exiting: no new threads, no idle ones.
    closed: bool,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    pid: 0,
    idle: Vec::new(),
    live: 0,
    next_id: 0,
    closed: false,
});
/// Signalled whenever a thread exits (interpreter exit waits on it).
static EXITED: Condvar = Condvar::new();

fn lock_pool() -> MutexGuard<'static, Pool> {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if pool.pid != pid {
        // First use, or a forked child: the parent's threads do not exist here.
        pool.pid = pid;
        pool.idle.clear();
        pool.live = 0;
    }
    pool
}

/// Runs `job` on a handler thread: an idle one, or a new one. Gives the job back if
/// there is none to be had ([`MAX_THREADS`] busy, the interpreter exiting, or the
/// system refusing a thread): the caller then runs it some other way.
pub fn submit(job: Job) -> Result<(), Job> {
    let mut pool = lock_pool();
    if pool.closed {
        return Err(job);
    }
    let mut job = job;
    while let Some((_, mailbox)) = pool.idle.pop() {
        match mailbox.send(Some(job)) {
            Ok(()) => return Ok(()),
            // That thread is gone (it cannot be: it leaves the idle list itself before
            // it exits); try the next.
            Err(mpsc::SendError(back)) => match back {
                Some(back) => job = back,
                None => return Ok(()),
            },
        }
    }
    if pool.live >= MAX_THREADS {
        return Err(job);
    }
    let id = pool.next_id;
    pool.next_id += 1;
    pool.live += 1;
    drop(pool);
    // The first job waits here, so that it can be taken back if no thread starts.
    let first = std::sync::Arc::new(Mutex::new(Some(job)));
    let (tx, rx) = mpsc::channel();
    let started = std::thread::Builder::new()
        .name("memmesh-py-handler".into())
        .spawn({
            let first = first.clone();
            move || run(id, tx, rx, &first)
        });
    if started.is_err() {
        let mut pool = lock_pool();
        pool.live = pool.live.saturating_sub(1);
        EXITED.notify_all();
        drop(pool);
        return match take(&first) {
            Some(job) => Err(job),
            None => Ok(()),
        };
    }
    Ok(())
}

fn take(slot: &Mutex<Option<Job>>) -> Option<Job> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A handler thread: attaches, runs its first job, then whatever it is sent, until it
/// has been idle for [`IDLE_EXIT`] or is told to exit.
fn run(id: u64, tx: Sender<Mail>, rx: Receiver<Mail>, first: &Mutex<Option<Job>>) {
    // Waited on with the GIL released (`detach` wants what it uses to be `Sync`).
    let rx = Mutex::new(rx);
    let recv = |timeout: Option<Duration>| {
        let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
        match timeout {
            Some(t) => rx.recv_timeout(t).map_err(|_| ()),
            None => rx.recv().map_err(|_| ()),
        }
    };
    // `None` only if the interpreter is gone: the job is dropped, which fails its call.
    let _ = Python::try_attach(|py| {
        let mut job = take(first);
        while let Some(work) = job.take() {
            // A job catches its own panics; this keeps the thread's books right if not.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(py)));
            if !park(id, &tx) {
                break;
            }
            job = match py.detach(|| recv(Some(IDLE_EXIT))) {
                Ok(mail) => mail,
                Err(_) => {
                    if unpark(id) {
                        break;
                    }
                    // A submitter took this thread off the idle list as it timed out:
                    // its job is on the way.
                    py.detach(|| recv(None)).ok().flatten()
                }
            };
        }
    });
    drop(take(first));
    let mut pool = lock_pool();
    unpark_locked(&mut pool, id);
    pool.live = pool.live.saturating_sub(1);
    EXITED.notify_all();
}

/// Puts this thread on the idle list; `false` if it should exit instead.
fn park(id: u64, tx: &Sender<Mail>) -> bool {
    let mut pool = lock_pool();
    if pool.closed {
        return false;
    }
    pool.idle.push((id, tx.clone()));
    true
}

/// Takes this thread off the idle list; `false` if a submitter already did.
fn unpark(id: u64) -> bool {
    unpark_locked(&mut lock_pool(), id)
}

fn unpark_locked(pool: &mut Pool, id: u64) -> bool {
    match pool.idle.iter().position(|(i, _)| *i == id) {
        Some(at) => {
            pool.idle.swap_remove(at);
            true
        }
        None => false,
    }
}

/// Interpreter exit (`atexit`): no more threads; the idle ones are told to leave, and
/// the busy ones get [`EXIT_WAIT`] to finish. The GIL is released meanwhile, since a
/// leaving thread needs it to drop its thread state.
#[pyfunction]
pub fn close_handler_threads(py: Python<'_>) {
    py.detach(|| {
        let mut pool = lock_pool();
        pool.closed = true;
        for (_, mailbox) in pool.idle.drain(..) {
            let _ = mailbox.send(None);
        }
        let deadline = Instant::now() + EXIT_WAIT;
        while pool.live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            pool = EXITED
                .wait_timeout(pool, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    });
}

/// Registers [`close_handler_threads`] with `atexit` (at module import).
pub fn register_exit(py: Python<'_>) -> PyResult<()> {
    let close = wrap_pyfunction!(close_handler_threads, py)?;
    py.import("atexit")?.call_method1("register", (close,))?;
    Ok(())
}

/// Handler threads alive now (not part of the API: for tests).
#[pyfunction]
#[pyo3(name = "_handler_threads")]
pub fn handler_threads() -> usize {
    lock_pool().live
}
