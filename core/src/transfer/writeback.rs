//! Background writeback of a file being received. Without it the kernel keeps a whole
//! transfer dirty in the page cache (a GiB is far below the dirty limits of a machine with
//! a few GiB of RAM) and writes all of it in the final `fsync`, after the network is done:
//! disk and network then take turns instead of overlapping. Syncing every
//! [`WRITEBACK_STEP`] on another thread, while the next chunks arrive, leaves the final
//! sync little to do.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes written between two background syncs.
pub(crate) const WRITEBACK_STEP: u64 = 32 << 20;

/// Syncs a file in the background as it grows; one sync at a time.
pub(crate) struct Writeback {
    file: Arc<std::fs::File>,
    /// Bytes written since the last sync started.
    pending: u64,
    running: Option<JoinHandle<io::Result<()>>>,
}

impl Writeback {
    /// Writeback of `file` (a second handle to it is kept).
    pub(crate) fn new(file: &std::fs::File) -> io::Result<Writeback> {
        Ok(Writeback {
            file: Arc::new(file.try_clone()?),
            pending: 0,
            running: None,
        })
    }

    /// Notes `n` more bytes written; starts a background sync once [`WRITEBACK_STEP`]
    /// bytes are pending and the previous sync has finished. Returns the error of a
    /// finished sync (the kernel reports a write error once per open file, so it must not
    /// be dropped here).
    pub(crate) fn wrote(&mut self, n: u64) -> io::Result<()> {
        self.pending += n;
        if self.running.as_ref().is_some_and(|r| !r.is_finished()) {
            return Ok(());
        }
        if let Some(done) = self.running.take() {
            outcome(done)?;
        }
        if self.pending >= WRITEBACK_STEP {
            let file = Arc::clone(&self.file);
            self.running = Some(
                std::thread::Builder::new()
                    .name("memmesh-writeback".into())
                    .spawn(move || file.sync_data())?,
            );
            self.pending = 0;
        }
        Ok(())
    }

    /// Waits for a sync still running; returns its error.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        match self.running.take() {
            Some(running) => outcome(running),
            None => Ok(()),
        }
    }
}

fn outcome(sync: JoinHandle<io::Result<()>>) -> io::Result<()> {
    sync.join()
        .unwrap_or_else(|_| Err(io::Error::other("the writeback thread panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn syncs_in_steps_and_finishes() {
        let path = std::env::temp_dir().join(format!("memmesh-wb-{}", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        let mut wb = Writeback::new(&file).unwrap();
        let chunk = vec![7u8; 1 << 20];
        let mut started = 0;
        for _ in 0..((3 * WRITEBACK_STEP) >> 20) {
            file.write_all(&chunk).unwrap();
            let before = wb.pending;
            wb.wrote(chunk.len() as u64).unwrap();
            if wb.pending < before + chunk.len() as u64 {
                started += 1;
            }
        }
        wb.finish().unwrap();
        assert!(wb.running.is_none());
        // At least one background sync ran; at most one per step.
        assert!((1..=3).contains(&started), "{started} syncs");
        drop(file);
        std::fs::remove_file(&path).unwrap();
    }
}
