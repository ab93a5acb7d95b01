//! When the metadata's readers may look: a batch of small puts is answered once its
//! value log records are synced, before its (deferred) redb transaction is committed
//! (ADR 0016, amendment "Answered before the deferred commit"), so a read begun after a
//! put returned waits for that commit. The committer announces each such batch before it
//! answers it and marks it reached once committed; a reader waits until every batch
//! announced when it began is reached. Reads while nothing is pending cost two atomic
//! loads.
//!
//! A deferred commit that fails after its callers were answered leaves rows that only the
//! value log holds (written again at the next open): the store is then marked failed, and
//! every read and write after it gets that error instead of a view without them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use super::error::FilesError;

/// Announced and reached batches, and a failure that stops the store.
#[derive(Debug, Default)]
pub struct Visibility {
    /// The last batch announced (answered before its commit).
    announced: AtomicU64,
    /// The last announced batch committed (every one before it is too).
    reached: AtomicU64,
    /// Why the store stopped, once a batch answered could not be committed.
    failed: Mutex<Option<String>>,
    /// Wakes readers waiting for a batch.
    changed: Condvar,
}

impl Visibility {
    /// A batch about to be answered before its commit: its number, for [`Visibility::reached`].
    pub fn announce(&self) -> u64 {
        self.announced.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Batch `batch` (and every one announced before it) is committed.
    pub fn reached(&self, batch: u64) {
        let _guard = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        self.reached.fetch_max(batch, Ordering::AcqRel);
        self.changed.notify_all();
    }

    /// A batch answered could not be committed: every read and write from now on fails
    /// with `why`.
    pub fn fail(&self, why: String) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.get_or_insert(why);
        self.changed.notify_all();
    }

    /// Why the store stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until every batch announced so far is committed (at once when none is
    /// pending); the store's failure if one was.
    pub fn wait(&self) -> Result<(), FilesError> {
        let target = self.announced.load(Ordering::Acquire);
        if self.reached.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(why) = failed.as_ref() {
                return Err(FilesError::Commit(why.clone()));
            }
            if self.reached.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            failed = self.changed.wait(failed).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn nothing_pending_reads_at_once() {
        let v = Visibility::default();
        assert!(v.wait().is_ok());
        let b = v.announce();
        v.reached(b);
        assert!(v.wait().is_ok());
    }

    #[test]
    fn a_read_waits_for_the_batch_announced_before_it() {
        let v = Arc::new(Visibility::default());
        let b = v.announce();
        let reader = {
            let v = v.clone();
            std::thread::spawn(move || {
                v.wait().unwrap();
                v.reached.load(Ordering::Acquire)
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "the read went on before the commit");
        v.reached(b);
        assert_eq!(reader.join().unwrap(), b);
    }

    #[test]
    fn a_later_batch_reached_covers_the_earlier_ones() {
        let v = Visibility::default();
        let first = v.announce();
        let second = v.announce();
        v.reached(second);
        assert!(v.wait().is_ok());
        // A late mark of an earlier batch does not go back.
        v.reached(first);
        assert_eq!(v.reached.load(Ordering::Acquire), second);
    }

    #[test]
    fn a_failed_batch_stops_every_read_after_it() {
        let v = Arc::new(Visibility::default());
        let _b = v.announce();
        let reader = {
            let v = v.clone();
            std::thread::spawn(move || v.wait())
        };
        std::thread::sleep(Duration::from_millis(20));
        v.fail("the disk is full".into());
        let err = reader.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("the disk is full"), "{err}");
        assert!(v.wait().is_err(), "sticky");
        assert_eq!(v.failure().as_deref(), Some("the disk is full"));
    }
}
