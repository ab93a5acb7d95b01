//! Draining a node (ADR 0025): the node stays up and keeps serving reads, but stops being
//! a placement target and hands its data off, so that an operator can then stop it
//! without losing anything.
//!
//! Draining is a runtime change of the node's advertised role, from member to client
//! (ADR 0024), under a renewed SWIM identity so that every peer learns it (a later rejoin
//! renews that identity and keeps the role). From then on:
//! - the cache's routing tables leave it out: the partitions it owned get new owners,
//!   which pull them from it as well as from the other replicas (it is "handing off" in
//!   their tables while it is live), and it keeps serving those pulls;
//! - every file stored here gets a copy on another member (as a restore places one), and
//!   it takes no new holds.
//!
//! [`DrainStatus`] says what is left; once both counts are zero the node may be stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info};

use crate::cache::hlc::wall_ms;
use crate::cache::routing::Table;
use crate::cache::service::CacheService;
use crate::error::Result;
use crate::files::service::FilesService;
use crate::membership::handle::Membership;
use crate::node::shared::Shared;
use crate::peer::Role;

/// How long the hand-off of files waits between rounds while some are still to move.
const FILES_ROUND: Duration = Duration::from_millis(500);

/// Where a node's drain stands (see [`Node::drain`](crate::Node::drain)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct DrainStatus {
    /// Whether the node was asked to drain.
    pub draining: bool,
    /// Cache partitions (summed over buckets) whose entries here are still owned by this
    /// node or not yet pulled by their new owners.
    pub partitions: u64,
    /// Files stored here that still need a copy on another member.
    pub files: u64,
}

impl DrainStatus {
    /// Whether nothing is left to hand off (the node may be stopped).
    pub fn done(&self) -> bool {
        self.draining && self.partitions == 0 && self.files == 0
    }
}

/// The drain of a node: started once, for good.
pub(crate) struct DrainService {
    shared: Arc<Shared>,
    membership: Arc<Membership>,
    cache: Arc<CacheService>,
    files: Arc<FilesService>,
    /// The routing table when the drain began (whose owners already held the data).
    before: Mutex<Option<Arc<Table>>>,
    /// Files still to move, as the last hand-off round counted.
    files_left: Arc<AtomicU64>,
}

impl std::fmt::Debug for DrainService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainService")
            .field("status", &self.status())
            .finish()
    }
}

impl DrainService {
    /// The drain of `shared`'s node.
    pub(crate) fn new(
        shared: Arc<Shared>,
        membership: Arc<Membership>,
        cache: Arc<CacheService>,
        files: Arc<FilesService>,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared,
            membership,
            cache,
            files,
            before: Mutex::new(None),
            files_left: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Starts draining (once; later calls only report) and returns the status. Runs on
    /// the node runtime.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<DrainStatus> {
        {
            let mut before = self.before.lock().unwrap_or_else(|p| p.into_inner());
            if before.is_some() {
                drop(before);
                return Ok(self.status());
            }
            *before = Some(self.cache.cache.table());
        }
        if !self.shared.config.role.holds_data() {
            return Ok(self.status()); // a client holds nothing for anyone
        }
        info!("draining: advertising the client role and handing data off");
        let files_now = self.files.handoff_left().await.unwrap_or(0);
        self.files_left.store(files_now as u64, Ordering::Release);
        self.shared.members.set_draining();
        self.membership.set_role(Role::Client).await?;
        self.shared.members.notify_changed();
        self.cache.cache.changed.notify_one();
        let this = self.clone();
        self.shared.runtime.handle().spawn(async move {
            this.hand_off_files().await;
        });
        Ok(self.status())
    }

    /// Places copies of the files stored here until none is left to move (or the node
    /// shuts down).
    async fn hand_off_files(self: Arc<Self>) {
        loop {
            if self.shared.is_closed() {
                return;
            }
            match self.files.clone().hand_off().await {
                Ok(left) => {
                    self.files_left.store(left as u64, Ordering::Release);
                    if left == 0 {
                        info!("draining: every file stored here has a copy elsewhere");
                        return;
                    }
                }
                Err(e) => debug!(error = %e, "draining: handing files off"),
            }
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return,
                _ = tokio::time::sleep(FILES_ROUND) => {}
            }
        }
    }

    /// Where the drain stands.
    pub(crate) fn status(&self) -> DrainStatus {
        let before = self
            .before
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(before) = before else {
            return DrainStatus::default();
        };
        let now = wall_ms();
        let partitions = self
            .cache
            .cache
            .buckets()
            .iter()
            .map(|b| b.handoff_left(&before, now) as u64)
            .sum();
        DrainStatus {
            draining: true,
            partitions,
            files: self.files_left.load(Ordering::Acquire),
        }
    }
}
