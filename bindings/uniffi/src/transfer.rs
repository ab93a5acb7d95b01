//! Verified chunk transfer of files and bytes (from `Node.transfer()`): send to peers,
//! publish and fetch, offers answered by a foreign handler or an inbox directory, and
//! the streams of received transfers and of progress. Paths are strings; durations are
//! whole milliseconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use memmesh::transfer as core;

use crate::error::MemmeshError;
use crate::parse_node_id;

/// What `Transfer.send` / `Transfer.publish` transfer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Source {
    /// A file, streamed from disk.
    Path {
        /// The file's path.
        path: String,
    },
    /// Bytes in memory.
    Bytes {
        /// The content.
        data: Vec<u8>,
    },
}

impl From<Source> for core::Source {
    fn from(s: Source) -> Self {
        match s {
            Source::Path { path } => core::Source::Path(PathBuf::from(path)),
            Source::Bytes { data } => core::Source::Bytes(data.into()),
        }
    }
}

/// Where an offered transfer goes: the answer of an [`OfferHandler`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Destination {
    /// Into this file (written beside it as `<path>.memmesh-partial` until verified).
    Path {
        /// The file's path.
        path: String,
    },
    /// Into memory (`Received.data`).
    Memory,
    /// Refused; the sender's result for this node is `Unauthorized` with the reason.
    Reject {
        /// Why, for the sender.
        reason: String,
    },
}

impl From<Destination> for core::Destination {
    fn from(d: Destination) -> Self {
        match d {
            Destination::Path { path } => core::Destination::Path(PathBuf::from(path)),
            Destination::Memory => core::Destination::Memory,
            Destination::Reject { reason } => core::Destination::Reject(reason),
        }
    }
}

/// An incoming offer, as shown to the offer handler.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Offer {
    /// The sender's node id.
    pub from: String,
    /// Identifies the content across attempts (hex); `Transfer.cancel` takes it.
    pub id: String,
    /// File name proposed by the sender.
    pub name: String,
    /// Total bytes.
    pub size: u64,
}

impl From<core::Offer> for Offer {
    fn from(o: core::Offer) -> Self {
        Self {
            from: o.from.to_string(),
            id: o.id,
            name: o.name,
            size: o.size,
        }
    }
}

/// A transfer received completely and verified.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Received {
    /// The offer it answered.
    pub offer: Offer,
    /// `"blake3:<hex>"` of the content.
    pub hash: String,
    /// Where it was written, for a file destination.
    pub path: Option<String>,
    /// The content, for a memory destination.
    pub data: Option<Vec<u8>>,
}

impl From<core::Received> for Received {
    fn from(r: core::Received) -> Self {
        Self {
            offer: r.offer.into(),
            hash: r.hash,
            path: r.path.map(|p| p.to_string_lossy().into_owned()),
            data: r.data.map(|d| d.to_vec()),
        }
    }
}

/// The outcome of sending to one peer (`Transfer.send` returns one per peer, in order).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransferResult {
    /// The peer's node id.
    pub peer: String,
    /// Bytes of the content (0 on failure).
    pub bytes: u64,
    /// `"blake3:<hex>"` confirmed by the receiver (`None` on failure).
    pub hash: Option<String>,
    /// Bytes actually streamed in the last attempt (less than `bytes` after a resume).
    pub sent: u64,
    /// How many attempts it took (a chunk reported corrupted is sent again).
    pub attempts: u32,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Why it failed (`None` when it succeeded). Errors are per peer, not thrown.
    pub error: Option<MemmeshError>,
}

impl From<core::TransferResult> for TransferResult {
    fn from(r: core::TransferResult) -> Self {
        Self {
            peer: r.peer.to_string(),
            bytes: r.bytes,
            hash: r.hash,
            sent: r.sent,
            attempts: r.attempts,
            duration_ms: millis(r.duration),
            error: r.error.map(MemmeshError::from),
        }
    }
}

/// Which way a transfer goes, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TransferDirection {
    /// This node sends it (`Transfer.send`, or serving a peer's fetch).
    Send,
    /// This node receives it (an accepted offer, or its own fetch).
    Receive,
}

impl From<core::Direction> for TransferDirection {
    fn from(d: core::Direction) -> Self {
        match d {
            core::Direction::Sending => TransferDirection::Send,
            core::Direction::Receiving => TransferDirection::Receive,
        }
    }
}

/// Progress of a transfer this node sends or receives (Swift: `TransferProgress`, so as
/// not to collide with `Foundation.Progress`).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Progress {
    /// The other peer's node id (the receiver when sending, the sender when receiving).
    pub peer: String,
    /// The name offered.
    pub name: String,
    /// Whether this node sends or receives it.
    pub direction: TransferDirection,
    /// Bytes done (verified ones skipped on resume count as done).
    pub done: u64,
    /// Total bytes.
    pub total: u64,
    /// Bytes per second that crossed the network in this attempt so far.
    pub rate: f64,
}

impl From<core::Progress> for Progress {
    fn from(p: core::Progress) -> Self {
        Self {
            peer: p.peer.to_string(),
            name: p.name,
            direction: p.direction.into(),
            done: p.done,
            total: p.total,
            rate: p.rate,
        }
    }
}

/// Decides where offered transfers go (see `Transfer.on_offer`); called from the node's
/// threads, once per offer.
///
/// Throwing (any error) rejects the offer, with the error's text as the reason.
#[uniffi::export(callback_interface)]
#[async_trait::async_trait]
pub trait OfferHandler: Send + Sync {
    /// Where the content of `offer` goes.
    async fn decide(&self, offer: Offer) -> Result<Destination, MemmeshError>;
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The transfer API of a node (from `Node.transfer()`). Keeps its node alive.
#[derive(Debug, uniffi::Object)]
pub struct Transfer {
    inner: core::Transfer,
    node: memmesh::Node,
}

impl Transfer {
    pub(crate) fn new(node: memmesh::Node) -> Result<Self, MemmeshError> {
        Ok(Self {
            inner: node.transfer()?,
            node,
        })
    }
}

#[uniffi::export]
impl Transfer {
    /// Sends `source` to every peer of `to` (node ids) in parallel and returns one
    /// result per peer, in the order of `to`. A peer that fails has its error in its
    /// result; the call itself throws only for bad input or a closed node.
    pub async fn send(
        &self,
        source: Source,
        to: Vec<String>,
    ) -> Result<Vec<TransferResult>, MemmeshError> {
        let to = memmesh::channel::parse_ids(&to)?;
        Ok(self
            .inner
            .send(source.into(), &to)
            .await?
            .into_iter()
            .map(TransferResult::from)
            .collect())
    }

    /// Offers `source` to peers, who fetch it by the returned id (`"blake3:<hex>"` of
    /// the content). Blocks this node holds can be fetched by their id without
    /// publishing.
    pub async fn publish(&self, source: Source) -> Result<String, MemmeshError> {
        // The core's `publish` opens and hashes a file with tokio's fs on the caller's
        // executor, which is foreign here (Swift's pool, Python's loop): run it on the
        // node's own runtime instead. Remove this once the core does that itself.
        let transfer = self.inner.clone();
        let source = core::Source::from(source);
        let task = self
            .node
            .runtime_handle()
            .spawn(async move { transfer.publish(source).await });
        match task.await {
            Ok(published) => Ok(published?),
            // Spawning after shutdown gives a task cancelled at once.
            Err(e) if e.is_cancelled() => Err(memmesh::Error::closed().into()),
            Err(e) => Err(MemmeshError::Internal {
                message: format!("the publish task failed: {e}"),
            }),
        }
    }

    /// Stops offering `id`; returns whether it was published.
    pub fn unpublish(&self, id: String) -> Result<bool, MemmeshError> {
        Ok(self.inner.unpublish(&id)?)
    }

    /// Fetches content `id` (published by the peer `from`, or a block it holds) into the
    /// file `into`, or into memory (`Received.data`) when `None`. An interrupted fetch
    /// into a file resumes after the chunks already verified. Throws `NotFound` if the
    /// peer offers nothing under `id`.
    #[uniffi::method(default(into = None))]
    pub async fn fetch(
        &self,
        id: String,
        from: String,
        into: Option<String>,
    ) -> Result<Received, MemmeshError> {
        let from = parse_node_id(&from)?;
        Ok(self
            .inner
            .fetch(&id, from, into.map(PathBuf::from))
            .await?
            .into())
    }

    /// Cancels the incoming transfer whose offer id is `offer_id` (`Offer.id`); the
    /// sender's result is `Closed` and the verified part is kept for a later resume.
    /// Returns whether such a transfer was running. (A sender cancels by cancelling its
    /// `send` call.)
    pub fn cancel(&self, offer_id: String) -> Result<bool, MemmeshError> {
        Ok(self.inner.cancel(&offer_id)?)
    }

    /// Decides where offers go with `handler` (replaces the inbox directory for every
    /// offer, and any previous handler).
    pub fn on_offer(&self, handler: Box<dyn OfferHandler>) {
        let handler: Arc<dyn OfferHandler> = Arc::from(handler);
        self.inner.on_offer(move |offer: core::Offer| {
            let handler = handler.clone();
            async move {
                match handler.decide(offer.into()).await {
                    Ok(destination) => destination.into(),
                    Err(e) => core::Destination::Reject(format!("the offer handler failed: {e}")),
                }
            }
        });
    }

    /// Removes the offer handler: offers go to the inbox directory, or are refused.
    pub fn clear_offer_handler(&self) {
        self.inner.clear_offer_handler();
    }

    /// Transfers this node receives from now on; `next()` throws `Closed` once the
    /// node shuts down.
    pub fn received(&self) -> Result<Arc<ReceivedEvents>, MemmeshError> {
        if self.node.is_closed() {
            return Err(memmesh::Error::closed().into());
        }
        Ok(Arc::new(ReceivedEvents(Subscription::new(
            self.inner.received(),
        ))))
    }

    /// Progress of the transfers this node sends and receives (including fetches and the
    /// fetches it serves), from now on; `next()` throws `Closed` once the node shuts down.
    pub fn progress(&self) -> Result<Arc<ProgressEvents>, MemmeshError> {
        if self.node.is_closed() {
            return Err(memmesh::Error::closed().into());
        }
        Ok(Arc::new(ProgressEvents(Subscription::new(
            self.inner.progress(),
        ))))
    }
}

/// The core's subscription (ends with `Closed` at shutdown), behind an async lock so
/// that the FFI object can be shared.
struct Subscription<T>(tokio::sync::Mutex<memmesh::transfer::events::Subscription<T>>);

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

impl<T: Clone> Subscription<T> {
    fn new(sub: memmesh::transfer::events::Subscription<T>) -> Self {
        Self(tokio::sync::Mutex::new(sub))
    }

    /// The next value; `Closed` at shutdown. Cancel-safe.
    async fn next(&self) -> Result<T, MemmeshError> {
        Ok(self.0.lock().await.next().await?)
    }

    fn missed(&self) -> u64 {
        self.0.try_lock().map(|s| s.missed()).unwrap_or(0)
    }
}

/// Transfers received by this node, from the moment `Transfer.received()` was called.
#[derive(Debug, uniffi::Object)]
pub struct ReceivedEvents(Subscription<core::Received>);

#[uniffi::export]
impl ReceivedEvents {
    /// The next transfer received and verified; throws `Closed` once the node shuts
    /// down. Cancelling the call loses nothing.
    pub async fn next(&self) -> Result<Received, MemmeshError> {
        Ok(self.0.next().await?.into())
    }

    /// How many deliveries this reader missed because it fell more than 256 behind.
    pub fn missed(&self) -> u64 {
        self.0.missed()
    }
}

/// Progress of the transfers this node sends and receives, from the moment
/// `Transfer.progress()` was called.
#[derive(Debug, uniffi::Object)]
pub struct ProgressEvents(Subscription<core::Progress>);

impl ProgressEvents {
    /// Reads `sub` (progress of a node's transfers or of its files).
    pub(crate) fn of(sub: memmesh::transfer::events::Subscription<core::Progress>) -> Self {
        ProgressEvents(Subscription::new(sub))
    }
}

#[uniffi::export]
impl ProgressEvents {
    /// The next progress report; throws `Closed` once the node shuts down. Cancelling
    /// the call loses nothing.
    pub async fn next(&self) -> Result<Progress, MemmeshError> {
        Ok(self.0.next().await?.into())
    }

    /// How many reports this reader missed because it fell more than 1024 behind (the
    /// next report carries the totals so far).
    pub fn missed(&self) -> u64 {
        self.0.missed()
    }
}
