//! Background writeback of a file being received, and its checkpoints. Without it the
//! kernel keeps a whole transfer dirty in the page cache (a GiB is far below the dirty
//! limits of a machine with a few GiB of RAM) and writes all of it in the final `fsync`,
//! after the network is done: disk and network then take turns instead of overlapping.
//! Syncing every [`WRITEBACK_STEP`] on another thread, while the next chunks arrive,
//! leaves the final sync little to do. Once a sync is done the resume state of what it
//! covered is written beside the file (atomically), so an interrupted transfer resumes
//! without re-reading the file, and never past what is on disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Result;
use crate::transfer::error::TransferError;

/// Bytes written between two background syncs.
pub(crate) const WRITEBACK_STEP: u64 = 32 << 20;

/// Syncs a file in the background as it grows, then records a checkpoint; one sync at
/// a time.
pub(crate) struct Writeback {
    file: Arc<std::fs::File>,
    /// Where checkpoints go.
    state: PathBuf,
    /// Bytes written since the last sync started.
    pending: u64,
    running: Option<JoinHandle<Result<()>>>,
}

impl Writeback {
    /// Writeback of `file` (shared, not reopened), with checkpoints written to `state`.
    pub(crate) fn new(file: Arc<std::fs::File>, state: PathBuf) -> Writeback {
        Writeback {
            file,
            state,
            pending: 0,
            running: None,
        }
    }

    /// Notes `n` more bytes written; starts a background sync once [`WRITEBACK_STEP`]
    /// bytes are pending and the previous sync has finished, followed by the checkpoint
    /// `checkpoint` makes of everything written so far. Returns the error of a finished
    /// sync (the kernel reports a write error once per open file, so it must not be
    /// dropped here).
    pub(crate) fn wrote(&mut self, n: u64, checkpoint: impl FnOnce() -> Vec<u8>) -> Result<()> {
        self.pending = self.pending.saturating_add(n);
        if self.running.as_ref().is_some_and(|r| !r.is_finished()) {
            return Ok(());
        }
        if let Some(done) = self.running.take() {
            outcome(done)?;
        }
        if self.pending >= WRITEBACK_STEP {
            let file = Arc::clone(&self.file);
            let (state, bytes) = (self.state.clone(), checkpoint());
            self.running = Some(
                std::thread::Builder::new()
                    .name("memmesh-writeback".into())
                    .spawn(move || {
                        file.sync_data()?;
                        crate::durable::write_atomic(&state, &bytes, false)
                    })?,
            );
            self.pending = 0;
        }
        Ok(())
    }

    /// Waits for a sync still running; returns its error.
    pub(crate) fn finish(&mut self) -> Result<()> {
        match self.running.take() {
            Some(running) => outcome(running),
            None => Ok(()),
        }
    }
}

fn outcome(sync: JoinHandle<Result<()>>) -> Result<()> {
    sync.join()
        .unwrap_or_else(|_| Err(TransferError::Bug("the writeback thread panicked").into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn syncs_in_steps_checkpoints_and_finishes() {
        let path = std::env::temp_dir().join(format!("memmesh-wb-{}", std::process::id()));
        let state = std::env::temp_dir().join(format!("memmesh-wb-{}.state", std::process::id()));
        let file = Arc::new(std::fs::File::create(&path).unwrap());
        let mut wb = Writeback::new(file.clone(), state.clone());
        let chunk = vec![7u8; 1 << 20];
        let mut started = 0;
        for i in 0..((3 * WRITEBACK_STEP) >> 20) {
            (&*file).write_all(&chunk).unwrap();
            let before = wb.pending;
            wb.wrote(chunk.len() as u64, || i.to_le_bytes().to_vec())
                .unwrap();
            if wb.pending < before + chunk.len() as u64 {
                started += 1;
            }
        }
        wb.finish().unwrap();
        assert!(wb.running.is_none());
        // At least one background sync ran; at most one per step.
        assert!((1..=3).contains(&started), "{started} syncs");
        // The last checkpoint is on disk, made when its sync started.
        let last = std::fs::read(&state).unwrap();
        assert_eq!(last.len(), 8);
        assert!(u64::from_le_bytes(last.try_into().unwrap()) >= 31);
        drop(wb);
        drop(file);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&state).unwrap();
    }
}
