//! Group commit of the metadata: puts and deletes queue their rows, and one thread writes
//! every queued row in one redb write transaction (one fsync), after one fsync of the
//! contents directory that makes their content files' renames durable first. A caller
//! is answered only once its row is durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use super::db::{Applied, Db, Op};
use super::error::FilesError;

/// Most rows written in one transaction.
const MAX_BATCH: usize = 4096;

/// The store's usage, kept by the committer as rows are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of content files with a row.
    pub used: u64,
    /// Rows.
    pub files: u64,
}

struct Job {
    op: Op,
    stored: u64,
    reply: oneshot::Sender<Result<Applied, String>>,
}

/// The committer thread and its queue.
pub struct Committer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    entered: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Committer")
    }
}

impl Committer {
    /// Starts the committer over `db`; `contents` is the directory synced before each
    /// batch that has puts; `usage` is updated after each commit.
    pub fn start(
        db: Arc<Db>,
        contents: PathBuf,
        usage: Arc<Mutex<Usage>>,
    ) -> Result<Committer, FilesError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let entered = Arc::new(AtomicUsize::new(0));
        let counted = entered.clone();
        let thread = std::thread::Builder::new()
            .name("memmesh-files-commit".into())
            .spawn(move || {
                run(&db, &contents, &usage, &rx, &counted);
            })
            .map_err(FilesError::io("starting the committer thread", "files"))?;
        Ok(Committer {
            tx: Mutex::new(Some(tx)),
            entered,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Counts an inlined put from its start until the guard is dropped (at its return), so
    /// that a batch waits for the puts on their way to the queue ([`gather_more`]).
    pub fn enter(&self) -> Entered<'_> {
        self.entered.fetch_add(1, Ordering::AcqRel);
        Entered(&self.entered)
    }

    /// Queues `op` and waits until it is durable. `stored` is the new row's content length
    /// (for a put).
    pub async fn submit(&self, op: Op, stored: u64) -> Result<Applied, FilesError> {
        let (reply, answer) = oneshot::channel();
        {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            let tx = tx.as_ref().ok_or(FilesError::Closed)?;
            tx.send(Job { op, stored, reply })
                .map_err(|_| FilesError::Closed)?;
        }
        match answer.await {
            Ok(Ok(applied)) => Ok(applied),
            Ok(Err(message)) => Err(FilesError::Commit(message)),
            Err(_) => Err(FilesError::Closed),
        }
    }

    /// Stops taking jobs, lets the thread finish the queued ones and waits for it.
    pub fn stop(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Longest a batch waits for puts still on their way to the queue.
const GATHER_MAX: Duration = Duration::from_millis(1);
/// How often a waiting batch looks at the count of puts on their way.
const GATHER_STEP: Duration = Duration::from_micros(100);

/// Whether a batch holding `queued` inlined puts should wait (at most [`GATHER_MAX`]) for
/// more before it is committed: while fewer are queued than have entered the store
/// (`entered`: puts between their start and their return, see [`Committer::enter`]).
/// Those are sealing their contents (bounded CPU work, no I/O) or were just answered by
/// the previous commit and are about to put again: one commit for all of them instead of
/// two half-size ones taking turns. A lone caller never waits.
pub fn gather_more(queued: usize, entered: usize) -> bool {
    queued < entered.min(MAX_BATCH)
}

/// Takes the next batch: blocks for one job, then takes every job queued and, while
/// [`gather_more`] says so and for at most [`GATHER_MAX`], the jobs still arriving.
/// `None` once every sender is gone.
fn next_batch(rx: &mpsc::Receiver<Job>, entered: &AtomicUsize) -> Option<Vec<Job>> {
    let first = rx.recv().ok()?;
    let inlined = |job: &Job| usize::from(matches!(job.op, Op::PutInline { .. }));
    let mut queued = inlined(&first);
    let mut batch = vec![first];
    let mut deadline = None;
    while batch.len() < MAX_BATCH {
        let job = match rx.try_recv() {
            Ok(job) => job,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                if !gather_more(queued, entered.load(Ordering::Acquire)) {
                    break;
                }
                let until = *deadline.get_or_insert_with(|| Instant::now() + GATHER_MAX);
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left.min(GATHER_STEP)) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        queued += inlined(&job);
        batch.push(job);
    }
    Some(batch)
}

/// A put counted by [`Committer::enter`] until this is dropped.
#[derive(Debug)]
pub struct Entered<'a>(&'a AtomicUsize);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves the queue until every sender is gone; returns how many transactions it wrote.
fn run(
    db: &Db,
    contents: &std::path::Path,
    usage: &Mutex<Usage>,
    rx: &mpsc::Receiver<Job>,
    entered: &AtomicUsize,
) -> u64 {
    let mut transactions = 0;
    while let Some(batch) = next_batch(rx, entered) {
        transactions += 1;
        let result = commit(db, contents, &batch);
        match result {
            Ok(applied) => {
                {
                    let mut u = usage.lock().unwrap_or_else(|p| p.into_inner());
                    for (job, a) in batch.iter().zip(&applied) {
                        if a.kept {
                            continue;
                        }
                        match (&job.op, a.previous) {
                            (Op::Put { .. } | Op::PutInline { .. }, None) => {
                                u.files += 1;
                                u.used += job.stored;
                            }
                            (Op::Put { .. } | Op::PutInline { .. }, Some(prev)) => {
                                u.used = u.used.saturating_sub(prev) + job.stored;
                            }
                            (Op::Delete { .. } | Op::Tombstone { .. }, Some(prev)) => {
                                u.files = u.files.saturating_sub(1);
                                u.used = u.used.saturating_sub(prev);
                            }
                            (
                                Op::Delete { .. }
                                | Op::Tombstone { .. }
                                | Op::Holders { .. }
                                | Op::Ack { .. }
                                | Op::Expire { .. },
                                _,
                            ) => {}
                        }
                    }
                }
                for (job, a) in batch.into_iter().zip(applied) {
                    let _ = job.reply.send(Ok(a));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = batch.len(), "files: a metadata commit failed");
                let message = e.to_string();
                for job in batch {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
    }
    transactions
}

fn commit(db: &Db, contents: &std::path::Path, batch: &[Job]) -> Result<Vec<Applied>, FilesError> {
    // Inlined puts have no content file: a batch of them needs no directory sync.
    if batch.iter().any(|j| matches!(j.op, Op::Put { .. })) {
        crate::durable::sync_dir(contents).map_err(FilesError::io("syncing", contents))?;
    }
    db.apply(batch.iter().map(|j| &j.op))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::db::Record;
    use crate::files::key::StorageKey;

    #[test]
    fn a_batch_waits_only_for_puts_on_their_way() {
        // A lone caller, or every entered put queued: commit at once.
        assert!(!gather_more(1, 1));
        assert!(!gather_more(64, 64));
        assert!(!gather_more(1, 0));
        // Puts entered but not queued yet (sealing, or answered and putting again): wait.
        assert!(gather_more(29, 64));
        assert!(gather_more(0, 1));
        // Never for more than a batch holds.
        assert!(gather_more(MAX_BATCH - 1, 10 * MAX_BATCH));
        assert!(!gather_more(MAX_BATCH, 10 * MAX_BATCH));
    }

    #[test]
    fn queued_rows_share_one_transaction_and_one_directory_sync() {
        let dir = std::env::temp_dir().join(format!("memmesh-commit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir).unwrap();
        let key = StorageKey::from_bytes(&[1; 32]).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut answers = Vec::new();
        for i in 0u8..10 {
            let (reply, answer) = oneshot::channel();
            let row = Record {
                size: 1,
                stored: 100,
                created: 0,
                name: None,
                content_type: None,
            }
            .encode(&[i; 32], &key)
            .unwrap();
            let op = Op::Put {
                id: [i; 32],
                row,
                holder: [0; 32],
            };
            tx.send(Job {
                op,
                stored: 100,
                reply,
            })
            .unwrap();
            answers.push(answer);
        }
        let (reply, answer) = oneshot::channel();
        tx.send(Job {
            op: Op::Delete { id: [3; 32] },
            stored: 0,
            reply,
        })
        .unwrap();
        answers.push(answer);
        drop(tx);
        let usage = Mutex::new(Usage::default());
        let syncs = crate::durable::dir_syncs_on_this_thread();
        let entered = AtomicUsize::new(0);
        assert_eq!(
            run(&db, &dir, &usage, &rx, &entered),
            1,
            "one transaction for all"
        );
        assert_eq!(crate::durable::dir_syncs_on_this_thread() - syncs, 1);
        for a in answers {
            assert!(futures::executor::block_on(a).unwrap().is_ok());
        }
        let u = *usage.lock().unwrap();
        assert_eq!(
            u,
            Usage {
                used: 900,
                files: 9
            }
        );
        assert_eq!(db.all_stored().unwrap().len(), 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
