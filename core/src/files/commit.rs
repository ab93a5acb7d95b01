//! Group commit of the metadata: puts and deletes queue their rows, and one thread writes
//! every queued row in one redb write transaction (one fsync), after one fsync of the
//! contents directory that makes their content files' renames durable first. A caller
//! is answered only once its row is durable.
//!
//! Small files' sealed contents go to the value log (`valuelog.rs`): the committer
//! appends every queued one in one write and fdatasyncs it **before** the transaction
//! whose rows point at them is committed (the transaction is staged while the disk
//! writes). A batch of small puts only is durable through its log records, which carry
//! its rows: its callers are answered before its (deferred) commit, and readers wait for
//! that commit (`visible.rs`). After answering a batch it compacts at most one segment
//! that is less than half live (copies its live values to the active segment, synced,
//! then one transaction moves the pointers, then the old segment is unlinked).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use super::db::{Applied, Commit, Db, Op, Staged};
use super::error::FilesError;
use super::logfmt::{Loc, SEGMENT_HEADER};
use super::valuelog::ValueLog;

/// Most rows written in one transaction.
const MAX_BATCH: usize = 4096;
/// Most value log bytes appended by deferred commits before a durable one (bounds what
/// open replays).
pub const CHECKPOINT_BYTES: u64 = 16 << 20;
/// Longest time from the first deferred commit to the next durable one.
pub const CHECKPOINT_AFTER: Duration = Duration::from_secs(1);
/// A committer left idle this long after a deferred commit writes a durable one.
pub const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);

/// Whether a batch's metadata commit may be deferred (made durable by a later commit, its
/// rows safe meanwhile in their value log records): a pure decision over `now`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deferral {
    /// When the first commit deferred since the last durable one was made.
    since: Option<Instant>,
    /// Value log bytes appended by the commits deferred since the last durable one.
    bytes: u64,
}

impl Deferral {
    /// Whether a batch that appended `appended` bytes to the log is deferred: only a batch
    /// of small puts only (`pure`: every row it writes is in its log records; a delete, a
    /// large put, holders or tombstones have no record and are committed durably), and
    /// while the deferred bytes stay under [`CHECKPOINT_BYTES`] and the oldest deferred
    /// commit is younger than [`CHECKPOINT_AFTER`].
    pub fn defer(&self, pure: bool, appended: u64, now: Instant) -> bool {
        pure && self.bytes.saturating_add(appended) <= CHECKPOINT_BYTES
            && self
                .since
                .is_none_or(|t| now.saturating_duration_since(t) < CHECKPOINT_AFTER)
    }

    /// A commit of `appended` log bytes was deferred at `now`.
    pub fn deferred(&mut self, appended: u64, now: Instant) {
        self.since.get_or_insert(now);
        self.bytes = self.bytes.saturating_add(appended);
    }

    /// A durable commit was made (with the log's end as checkpoint).
    pub fn durable(&mut self) {
        *self = Deferral::default();
    }

    /// Whether a deferred commit waits for a durable one.
    pub fn pending(&self) -> bool {
        self.since.is_some()
    }
}

/// Log bytes between the ends `before` and `after` of an append (a roll in between
/// started a new segment).
fn appended(before: (u64, u64), after: (u64, u64)) -> u64 {
    if before.0 == after.0 {
        after.1.saturating_sub(before.1)
    } else {
        after.1.saturating_sub(SEGMENT_HEADER)
    }
}

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
        log: Arc<ValueLog>,
        usage: Arc<Mutex<Usage>>,
    ) -> Result<Committer, FilesError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let entered = Arc::new(AtomicUsize::new(0));
        let counted = entered.clone();
        let thread = std::thread::Builder::new()
            .name("memmesh-files-commit".into())
            .spawn(move || {
                run(&db, &contents, &log, &usage, &rx, &counted);
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
/// How long a waiting batch sleeps before it takes what has arrived and looks again at
/// the count of puts on their way (while more than [`GATHER_WAKE`] are on their way).
const GATHER_STEP: Duration = Duration::from_micros(50);
/// At most this many puts on their way, a waiting batch blocks on the queue instead (woken
/// by the next arrival, looking again every 100 µs): a few callers' batches are not
/// delayed by a sleep, and a large batch pays at most this many wake-ups for its last
/// puts.
const GATHER_WAKE: usize = 8;
/// How often a batch blocked on the queue looks again at the count of puts on their way.
const GATHER_WAKE_STEP: Duration = Duration::from_micros(100);

/// Whether a batch holding `queued` inlined puts should wait (at most [`GATHER_MAX`]) for
/// more before it is committed: while fewer are queued than have entered the store
/// (`entered`: puts between their start and their return, see [`Committer::enter`]).
/// Those are sealing their contents (bounded CPU work, no I/O) or were just answered by
/// the previous commit and are about to put again: one commit for all of them instead of
/// two half-size ones taking turns. A lone caller never waits.
pub fn gather_more(queued: usize, entered: usize) -> bool {
    queued < entered.min(MAX_BATCH)
}

/// Takes the next batch after its `first` job: every job queued and, while
/// [`gather_more`] says so and for at most [`GATHER_MAX`], the jobs still arriving.
///
/// While more than [`GATHER_WAKE`] puts are on their way, the thread sleeps
/// [`GATHER_STEP`] at a time and then takes every job that arrived meanwhile, rather than
/// blocking on the queue: a sender then finds no receiver to wake, so a batch of 64 puts
/// costs a few wake-ups of this thread instead of one per put (each a futex call for the
/// sender and a task switch on a 2-core machine). For the last few it blocks on the
/// queue, as a batch of a few callers does throughout.
fn next_batch(rx: &mpsc::Receiver<Job>, entered: &AtomicUsize, first: Job) -> Vec<Job> {
    let inlined = |job: &Job| usize::from(matches!(job.op, Op::PutInline { .. }));
    let mut queued = inlined(&first);
    let mut batch = Vec::with_capacity(64);
    batch.push(first);
    let mut deadline = None;
    loop {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    queued += inlined(&job);
                    batch.push(job);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return batch,
            }
        }
        let entered_now = entered.load(Ordering::Acquire);
        if batch.len() >= MAX_BATCH || !gather_more(queued, entered_now) {
            break;
        }
        let until = *deadline.get_or_insert_with(|| Instant::now() + GATHER_MAX);
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if entered_now.min(MAX_BATCH).saturating_sub(queued) > GATHER_WAKE {
            std::thread::sleep(left.min(GATHER_STEP));
            continue;
        }
        match rx.recv_timeout(left.min(GATHER_WAKE_STEP)) {
            Ok(job) => {
                queued += inlined(&job);
                batch.push(job);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    batch
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
    log: &ValueLog,
    usage: &Mutex<Usage>,
    rx: &mpsc::Receiver<Job>,
    entered: &AtomicUsize,
) -> u64 {
    let mut transactions = 0;
    let mut deferral = Deferral::default();
    loop {
        let first = if deferral.pending() {
            match rx.recv_timeout(CHECKPOINT_IDLE) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    checkpoint(db, log, &mut deferral);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let mut batch = next_batch(rx, entered, first);
        transactions += 1;
        let result = commit(db, contents, log, &mut batch, &mut deferral);
        match result {
            Ok(Outcome { applied, deferred }) => {
                {
                    let mut u = usage.lock().unwrap_or_else(|p| p.into_inner());
                    for (job, a) in batch.iter().zip(&applied) {
                        if a.kept {
                            continue;
                        }
                        match (&job.op, a.previous) {
                            (
                                Op::Put { .. } | Op::PutInline { .. } | Op::PutLogged { .. },
                                None,
                            ) => {
                                u.files += 1;
                                u.used += job.stored;
                            }
                            (
                                Op::Put { .. } | Op::PutInline { .. } | Op::PutLogged { .. },
                                Some(prev),
                            ) => {
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
                                | Op::Relocate { .. }
                                | Op::Ack { .. }
                                | Op::Expire { .. },
                                _,
                            ) => {}
                        }
                    }
                }
                // Readers wait for a deferred batch's commit from before its callers
                // hear of it until it is made (`visible.rs`).
                let announced = deferred.as_ref().map(|_| db.visibility().announce());
                for (job, a) in batch.into_iter().zip(applied) {
                    let _ = job.reply.send(Ok(a));
                }
                if let (Some(d), Some(announced)) = (deferred, announced) {
                    finish(db, log, d, announced, &mut deferral);
                }
                if let Err(e) = compact(db, log, &mut deferral) {
                    tracing::warn!(error = %e, "files: compacting the value log failed");
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
    if deferral.pending() {
        checkpoint(db, log, &mut deferral);
    }
    transactions
}

/// Makes the deferred commits durable: an empty durable commit with the log's end as
/// checkpoint. On failure they stay deferred (their rows are in the log either way).
fn checkpoint(db: &Db, log: &ValueLog, deferral: &mut Deferral) {
    match db.apply_at(std::iter::empty(), Commit::Durable(Some(log.end()))) {
        Ok(_) => deferral.durable(),
        Err(e) => tracing::warn!(error = %e, "files: a metadata checkpoint failed"),
    }
}

/// A batch committed, or staged: what each op did, and for a deferred batch the
/// transaction still to commit once its callers are answered ([`finish`]).
struct Outcome {
    applied: Vec<Applied>,
    deferred: Option<Deferred>,
}

/// A deferred batch's transaction, staged: committed after its callers are answered.
struct Deferred {
    staged: Staged,
    /// Its ops, for a durable commit if the deferred one fails.
    ops: Vec<Op>,
    /// Where the log ended after its records.
    after: (u64, u64),
    /// Log bytes it appended, and when.
    bytes: u64,
    at: Instant,
    /// Log values it made live and freed.
    added: Vec<Loc>,
    freed: Vec<Loc>,
}

fn commit(
    db: &Db,
    contents: &std::path::Path,
    log: &ValueLog,
    batch: &mut [Job],
    deferral: &mut Deferral,
) -> Result<Outcome, FilesError> {
    if let Some(why) = db.visibility().failure() {
        return Err(FilesError::Commit(why));
    }
    // Inlined puts have no content file: a batch of them needs no directory sync.
    if batch.iter().any(|j| matches!(j.op, Op::Put { .. })) {
        crate::durable::sync_dir(contents).map_err(FilesError::io("syncing", contents))?;
    }
    // Small files' contents, with their rows: appended to the value log and synced before
    // the transaction that points at them.
    let items: Vec<(&[u8; 32], &[u8], &[u8])> = batch
        .iter()
        .filter_map(|j| match &j.op {
            Op::PutInline { id, row, content } => Some((id, &content[..], &row[..])),
            _ => None,
        })
        .collect();
    let before = log.end();
    let locs = match log.write(&items) {
        Ok(locs) => locs,
        Err(e) => {
            take_back(log, before);
            return Err(e);
        }
    };
    let after = log.end();
    let wrote = !locs.is_empty();
    let pure = batch.iter().all(|j| matches!(j.op, Op::PutInline { .. }));
    let now = Instant::now();
    let bytes = appended(before, after);
    let defer = deferral.defer(pure, bytes, now);
    let mut locs = locs.into_iter();
    // Each row moves to its `PutLogged` (the job keeps an empty one: only its kind is
    // looked at after this).
    let logged: Vec<Option<Op>> = batch
        .iter_mut()
        .map(|j| match &mut j.op {
            Op::PutInline { id, row, .. } => locs.next().map(|loc| Op::PutLogged {
                id: *id,
                row: std::mem::take(row),
                loc,
            }),
            _ => None,
        })
        .collect();
    let ops = batch
        .iter()
        .zip(&logged)
        .map(|(j, l)| l.as_ref().unwrap_or(&j.op));
    let how = if defer {
        Commit::Deferred
    } else {
        Commit::Durable(Some(after))
    };
    // Staged while the disk writes the records; committed only once they are synced (a
    // row is never visible before its put is durable).
    let mut staged = match db.stage(ops, how) {
        Ok(staged) => staged,
        Err(e) => {
            take_back(log, before);
            return Err(e);
        }
    };
    if wrote {
        if let Err(e) = log.sync() {
            drop(staged);
            take_back(log, before);
            return Err(e);
        }
    }
    let mut added = Vec::new();
    let mut freed = Vec::new();
    for (op, a) in logged.iter().zip(&staged.applied) {
        if let (Some(Op::PutLogged { loc, .. }), false) = (op, a.kept) {
            added.push(*loc);
        }
        freed.extend(a.freed);
    }
    if defer {
        // Durable already (the log's records carry the rows): answered before the commit.
        let applied = std::mem::take(&mut staged.applied);
        let deferred = Deferred {
            staged,
            ops: logged.into_iter().flatten().collect(),
            after,
            bytes,
            at: now,
            added,
            freed,
        };
        return Ok(Outcome {
            applied,
            deferred: Some(deferred),
        });
    }
    let applied = match staged.commit() {
        Ok(applied) => applied,
        Err(e) => {
            take_back(log, before);
            return Err(e);
        }
    };
    deferral.durable();
    log.committed(&added, &freed);
    Ok(Outcome {
        applied,
        deferred: None,
    })
}

/// Commits a deferred batch whose callers were answered (announced as `announced`), then
/// lets readers see it. If that commit fails, its ops are committed durably instead; if
/// that fails too, the store stops (every later read and write fails): its rows are safe
/// in the value log and written again at the next open.
fn finish(db: &Db, log: &ValueLog, d: Deferred, announced: u64, deferral: &mut Deferral) {
    match d.staged.commit() {
        Ok(_) => deferral.deferred(d.bytes, d.at),
        Err(e) => {
            tracing::warn!(error = %e, rows = d.ops.len(), "files: a deferred metadata commit failed; committing it durably");
            if let Err(e) = db.apply_at(&d.ops, Commit::Durable(Some(d.after))) {
                tracing::error!(error = %e, "files: the store stops: rows answered could not be committed");
                db.visibility().fail(format!(
                    "the metadata of puts already answered could not be committed ({e}); \
                     they are in the value log and are written again when the store is \
                     opened next: restart the node"
                ));
                return;
            }
            deferral.durable();
        }
    }
    db.visibility().reached(announced);
    log.committed(&d.added, &d.freed);
}

/// Cuts the log back to `before` after a failed commit, so that its records are not
/// replayed at open (a caller told the put failed never finds it stored later).
fn take_back(log: &ValueLog, before: (u64, u64)) {
    if let Err(e) = log.cut(before) {
        tracing::warn!(error = %e, "files: taking back the value log records of a failed commit");
    }
}

/// Compacts at most one value log segment that is less than half live: its live values
/// are appended to the active segment (synced), one transaction moves their pointers, and
/// the segment, left with no live value, is removed. A crash before the transaction
/// leaves the old pointers (the copies are cut at the next open); after it, the old
/// segment is removed at the next open.
fn compact(db: &Db, log: &ValueLog, deferral: &mut Deferral) -> Result<(), FilesError> {
    let Some(segment) = log.compaction_candidate() else {
        return Ok(());
    };
    let values = db.logged_in(segment)?;
    let mut sealed = Vec::with_capacity(values.len());
    for (_, loc) in &values {
        sealed.push(log.read_raw(loc)?);
    }
    // Copies carry no row: their files' rows are durable already.
    let items: Vec<(&[u8; 32], &[u8], &[u8])> = values
        .iter()
        .zip(&sealed)
        .map(|((id, _), s)| (id, &s[..], &[][..]))
        .collect();
    let before = log.end();
    let to = log.append(&items)?;
    let ops: Vec<Op> = values
        .iter()
        .zip(&to)
        .map(|((id, from), to)| Op::Relocate {
            id: *id,
            from: *from,
            to: *to,
        })
        .collect();
    let applied = match db.apply_at(&ops, Commit::Durable(Some(log.end()))) {
        Ok(applied) => applied,
        Err(e) => {
            take_back(log, before);
            return Err(e);
        }
    };
    deferral.durable();
    let mut added: Vec<Loc> = Vec::new();
    let mut freed: Vec<Loc> = Vec::new();
    for (a, to) in applied.iter().zip(&to) {
        if !a.kept {
            added.push(*to);
        }
        freed.extend(a.freed);
    }
    log.committed(&added, &freed);
    tracing::debug!(
        segment,
        moved = added.len(),
        "files: value log segment compacted"
    );
    Ok(())
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
                loc: None,
            }
            .encode(&[i; 32], &key)
            .unwrap();
            let op = Op::Put { id: [i; 32], row };
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
        let (log, _) = ValueLog::open(&dir.join("log"), &Default::default()).unwrap();
        let syncs = crate::durable::dir_syncs_on_this_thread();
        let entered = AtomicUsize::new(0);
        assert_eq!(
            run(&db, &dir, &log, &usage, &rx, &entered),
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

    /// Commits a batch as `run` does, the callers' answers aside: a deferred batch is
    /// announced, then finished.
    fn commit_all(
        db: &Db,
        contents: &std::path::Path,
        log: &ValueLog,
        batch: &mut [Job],
        deferral: &mut Deferral,
    ) -> Result<Vec<Applied>, FilesError> {
        let Outcome { applied, deferred } = commit(db, contents, log, batch, deferral)?;
        if let Some(d) = deferred {
            let announced = db.visibility().announce();
            finish(db, log, d, announced, deferral);
        }
        Ok(applied)
    }

    fn job(op: Op) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            op,
            stored: 0,
            reply,
        }
    }

    #[test]
    fn small_contents_go_to_the_log_and_survive_deletes_and_compaction() {
        let dir = std::env::temp_dir().join(format!("memmesh-compact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir).unwrap();
        let (log, _) = ValueLog::open(&dir.join("log"), &Default::default()).unwrap();
        let key = StorageKey::from_bytes(&[1; 32]).unwrap();
        const BIG: usize = 6 << 20;
        let put = |i: u8| {
            let row = Record {
                size: 1,
                stored: BIG as u64,
                created: 0,
                name: None,
                content_type: None,
                loc: None,
            }
            .encode(&[i; 32], &key)
            .unwrap();
            job(Op::PutInline {
                id: [i; 32],
                row,
                content: vec![i; BIG].into(),
            })
        };
        // Three values fill the first segment past its limit; the fourth starts another.
        for i in 1..=3 {
            commit_all(&db, &dir, &log, &mut [put(i)], &mut Deferral::default()).unwrap();
        }
        commit_all(&db, &dir, &log, &mut [put(4)], &mut Deferral::default()).unwrap();
        let first = db.logged(&[1; 32]).unwrap().unwrap().segment;
        assert_eq!(db.logged(&[3; 32]).unwrap().unwrap().segment, first);
        assert_eq!(db.logged(&[4; 32]).unwrap().unwrap().segment, first + 1);
        assert!(
            db.inline(&[1; 32]).unwrap().is_none(),
            "not in the inline table"
        );
        assert_eq!(log.compaction_candidate(), None);
        // Two of the three deleted: the first segment is a third live, so it is compacted.
        commit_all(
            &db,
            &dir,
            &log,
            &mut [
                job(Op::Delete { id: [1; 32] }),
                job(Op::Delete { id: [2; 32] }),
            ],
            &mut Deferral::default(),
        )
        .unwrap();
        assert_eq!(log.compaction_candidate(), Some(first));
        compact(&db, &log, &mut Deferral::default()).unwrap();
        let moved = db.logged(&[3; 32]).unwrap().unwrap();
        assert_eq!(moved.segment, first + 1);
        assert_eq!(log.read(&[3; 32], &moved).unwrap().unwrap(), vec![3; BIG]);
        assert!(!dir
            .join("log")
            .join(crate::files::logfmt::segment_name(first))
            .exists());
        assert_eq!(log.compaction_candidate(), None);
        // At the next open, nothing is cut and both values read back.
        drop(log);
        let (logged, bad) = db.all_logged().unwrap();
        assert!(bad.is_empty());
        let (log, lost) = ValueLog::open(&dir.join("log"), &logged).unwrap();
        assert!(lost.is_empty());
        for i in [3u8, 4] {
            let at = db.logged(&[i; 32]).unwrap().unwrap();
            assert_eq!(log.read(&[i; 32], &at).unwrap().unwrap(), vec![i; BIG]);
        }
        assert_eq!(
            log.segments(),
            vec![(first + 1, moved.end(), 2 * BIG as u64)]
        );
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A deferred batch is answered before its transaction is committed: a read begun
    /// after the answer waits for that commit and then sees the rows.
    #[test]
    fn a_read_after_a_deferred_batch_was_answered_waits_for_its_commit() {
        let dir = std::env::temp_dir().join(format!("memmesh-visible-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Arc::new(Db::open(&dir).unwrap());
        let (log, _) = ValueLog::open(&dir.join("log"), &Default::default()).unwrap();
        let key = StorageKey::from_bytes(&[1; 32]).unwrap();
        let row = Record {
            size: 3,
            stored: 3,
            created: 1,
            name: None,
            content_type: None,
            loc: None,
        }
        .encode(&[7; 32], &key)
        .unwrap();
        let mut deferral = Deferral::default();
        let mut batch = [job(Op::PutInline {
            id: [7; 32],
            row,
            content: vec![7; 3].into(),
        })];
        let Outcome { applied, deferred } =
            commit(&db, &dir, &log, &mut batch, &mut deferral).unwrap();
        assert!(!applied[0].kept);
        let deferred = deferred.expect("a batch of small puts only is deferred");
        // Not committed yet, and nothing announced: a read does not wait, nor see it.
        assert!(db.get(&[7; 32]).unwrap().is_none());
        let announced = db.visibility().announce();
        let reader = {
            let db = db.clone();
            std::thread::spawn(move || db.get(&[7; 32]).unwrap())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "the read went on before the commit");
        finish(&db, &log, deferred, announced, &mut deferral);
        assert!(reader.join().unwrap().is_some(), "seen once committed");
        assert!(deferral.pending(), "deferred: a durable commit comes later");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_batches_of_small_puts_are_deferred_and_never_for_long() {
        let t0 = Instant::now();
        let mut d = Deferral::default();
        assert!(!d.pending());
        // Anything but small puts only: durable.
        assert!(!d.defer(false, 100, t0));
        assert!(d.defer(true, 100, t0));
        d.deferred(100, t0);
        assert!(d.pending());
        // Bounded by bytes and by the age of the oldest deferred commit.
        assert!(d.defer(true, CHECKPOINT_BYTES - 100, t0));
        assert!(!d.defer(true, CHECKPOINT_BYTES - 99, t0));
        assert!(d.defer(true, 1, t0 + CHECKPOINT_AFTER / 2));
        d.deferred(1, t0 + CHECKPOINT_AFTER / 2);
        assert!(!d.defer(true, 1, t0 + CHECKPOINT_AFTER));
        d.durable();
        assert!(!d.pending());
        assert!(d.defer(true, 1, t0 + CHECKPOINT_AFTER));
        assert_eq!(appended((3, 100), (3, 250)), 150);
        assert_eq!(appended((3, 100), (4, SEGMENT_HEADER + 50)), 50);
    }

    /// Copies a store's metadata and log while it is open, as a crash would leave them:
    /// a deferred commit is not in the copy's database, and is written again from the log.
    #[test]
    fn a_deferred_commit_lost_in_a_crash_is_replayed_from_the_log() {
        let base = std::env::temp_dir().join(format!("memmesh-defer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (dir, copy) = (base.join("live"), base.join("copy"));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir).unwrap();
        let (log, _) = ValueLog::open(&dir.join("log"), &Default::default()).unwrap();
        db.apply_at(std::iter::empty(), Commit::Durable(Some(log.end())))
            .unwrap();
        let key = StorageKey::from_bytes(&[1; 32]).unwrap();
        let put = |i: u8| {
            let row = Record {
                size: 3,
                stored: 3,
                created: u64::from(i),
                name: Some(format!("file {i}")),
                content_type: None,
                loc: None,
            }
            .encode(&[i; 32], &key)
            .unwrap();
            job(Op::PutInline {
                id: [i; 32],
                row,
                content: vec![i; 3].into(),
            })
        };
        let mut deferral = Deferral::default();
        // A durable batch (a delete of nothing with a put), then two deferred ones.
        commit_all(
            &db,
            &dir,
            &log,
            &mut [put(1), job(Op::Delete { id: [9; 32] })],
            &mut deferral,
        )
        .unwrap();
        assert!(!deferral.pending());
        commit_all(&db, &dir, &log, &mut [put(2), put(3)], &mut deferral).unwrap();
        commit_all(&db, &dir, &log, &mut [put(4)], &mut deferral).unwrap();
        assert!(deferral.pending());
        for i in 1..=4u8 {
            assert!(db.get(&[i; 32]).unwrap().is_some(), "visible at once");
        }
        // The crash: the files as they are on disk now.
        std::fs::create_dir_all(copy.join("log")).unwrap();
        std::fs::copy(
            dir.join(super::super::db::DB_FILE),
            copy.join(super::super::db::DB_FILE),
        )
        .unwrap();
        for e in std::fs::read_dir(dir.join("log")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join("log").join(e.file_name())).unwrap();
        }
        let crashed = Db::open(&copy).unwrap();
        assert!(crashed.get(&[1; 32]).unwrap().is_some(), "durable");
        assert!(
            crashed.get(&[2; 32]).unwrap().is_none() && crashed.get(&[4; 32]).unwrap().is_none(),
            "deferred commits are not in the crashed copy"
        );
        assert_eq!(crashed.replay(&copy.join("log")).unwrap(), 3);
        for i in 1..=4u8 {
            assert_eq!(
                crashed.get(&[i; 32]).unwrap(),
                db.get(&[i; 32]).unwrap(),
                "{i}"
            );
        }
        let (logged, bad) = crashed.all_logged().unwrap();
        assert!(bad.is_empty());
        let (copied_log, lost) = ValueLog::open(&copy.join("log"), &logged).unwrap();
        assert!(lost.is_empty());
        for i in 1..=4u8 {
            let at = crashed.logged(&[i; 32]).unwrap().unwrap();
            assert_eq!(copied_log.read(&[i; 32], &at).unwrap().unwrap(), vec![i; 3]);
        }
        // Replayed again (a crash before the next checkpoint): the same rows, kept.
        assert_eq!(crashed.replay(&copy.join("log")).unwrap(), 3);
        // A durable commit moves the checkpoint: nothing left to replay.
        checkpoint(&db, &log, &mut deferral);
        assert!(!deferral.pending());
        assert_eq!(db.replay(&dir.join("log")).unwrap(), 0);
        drop((db, log, crashed, copied_log));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
