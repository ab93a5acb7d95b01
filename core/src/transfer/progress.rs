//! Progress events of one transfer, sent or received, at most every
//! [`PROGRESS_EVERY`] and once at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::identity::NodeId;
use crate::transfer::service::TransferService;
use crate::transfer::{Direction, Progress};

/// Least interval between two progress events of one transfer.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Emits the progress of one transfer on the node's progress channel.
pub(crate) struct Reporter<'a> {
    shared: &'a Arc<TransferService>,
    peer: NodeId,
    name: &'a str,
    total: u64,
    direction: Direction,
    began: Instant,
    reported: Instant,
}

impl<'a> Reporter<'a> {
    /// A reporter for `total` bytes of `name` exchanged with `peer`.
    pub(crate) fn new(
        shared: &'a Arc<TransferService>,
        peer: NodeId,
        name: &'a str,
        total: u64,
        direction: Direction,
    ) -> Self {
        let now = Instant::now();
        Self {
            shared,
            peer,
            name,
            total,
            direction,
            began: now,
            reported: now,
        }
    }

    fn emit(&self, done: u64, moved: u64) {
        let secs = self.began.elapsed().as_secs_f64().max(1e-6);
        // Nobody listening is fine.
        let _ = self.shared.transfers.progress.send(Progress {
            peer: self.peer,
            name: self.name.to_string(),
            direction: self.direction,
            done,
            total: self.total,
            rate: moved as f64 / secs,
        });
    }

    /// `done` bytes of the whole are done, `moved` of them crossed the network in this
    /// attempt; reported if the last report is old enough.
    pub(crate) fn update(&mut self, done: u64, moved: u64) {
        if self.reported.elapsed() >= PROGRESS_EVERY {
            self.reported = Instant::now();
            self.emit(done, moved);
        }
    }

    /// The transfer is complete: a last report with everything done.
    pub(crate) fn finish(&self, moved: u64) {
        self.emit(self.total, moved);
    }
}
