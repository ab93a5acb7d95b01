//! Verified chunk transfer of files and blobs.
//!
//! `send` streams a file or bytes to peers in parallel, in 1 MiB chunks, each with its
//! BLAKE3 hash (its subtree of the content's BLAKE3 tree), then the hash of the whole; the
//! receiver verifies every chunk as it arrives, writes to a partial file of its own
//! (`<name>.memmesh-partial`, or a name of its key when that one is in use), and gives it
//! its final name only once the whole is verified, never replacing a file. An
//! interrupted transfer sent again resumes after the last verified chunk. `publish` /
//! `fetch` pull the same way (a block too, by its id). Progress events, cancellation from
//! either side. Budgets per peer and per node are in [`limits`]. The protocol is in
//! `docs/adr/0012-transfer.md`.

pub mod error;
pub mod events;
pub(crate) mod fetch;
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) mod hooks;
pub mod limits;
pub(crate) mod messages;
pub(crate) mod partials;
pub(crate) mod prefault;
pub(crate) mod progress;
pub(crate) mod receive;
pub(crate) mod send;
pub(crate) mod service;
pub(crate) mod sink;
pub(crate) mod source;
pub mod stack;
pub(crate) mod state;
pub mod tree;
pub mod verify;
pub(crate) mod writeback;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::node::guard::Guard;
use crate::transfer::service::TransferService;
pub use error::TransferError;

/// What to send.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, streamed from disk.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Bytes),
}

/// Where a received transfer goes (the answer of an offer handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Into this file (written beside it as `.memmesh-partial` until verified; if the
    /// name is taken by then, as `name (1).ext` and so on: see `Received::path`).
    Path(PathBuf),
    /// Into memory.
    Memory,
    /// Refused, with a reason for the sender.
    Reject(String),
}

/// An incoming offer, as shown to the offer handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The sender.
    pub from: NodeId,
    /// Identifies the content across attempts (hex).
    pub id: String,
    /// File name proposed by the sender.
    pub name: String,
    /// Total bytes.
    pub size: u64,
}

/// A transfer received completely and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The offer it answered.
    pub offer: Offer,
    /// `blake3:<hex>` of the content.
    pub hash: String,
    /// Where it was written, for a file destination (the name asked for, or
    /// `name (n).ext` if a file had that name: a delivered file is never replaced).
    pub path: Option<PathBuf>,
    /// The content, for a memory destination. Charged to the node's memory quota until
    /// every clone of it is dropped.
    pub data: Option<Bytes>,
}

/// The outcome of sending to one peer.
#[derive(Debug, Clone)]
pub struct TransferResult {
    /// The peer.
    pub peer: NodeId,
    /// Bytes of the content (0 on failure).
    pub bytes: u64,
    /// `blake3:<hex>` confirmed by the receiver.
    pub hash: Option<String>,
    /// Bytes actually streamed in the last attempt (less than `bytes` after a resume).
    pub sent: u64,
    /// How many attempts it took (a chunk reported corrupted is sent again).
    pub attempts: u32,
    /// How long it took.
    pub duration: Duration,
    /// Why it failed, if it did.
    pub error: Option<Error>,
}

// The progress types live with the service registry, where the files service reads
// them too (ci/check-layers.py: services import only what is below them).
pub use crate::service::{Direction, Progress};

/// Decides where an incoming transfer goes. Implemented for every
/// `Fn(Offer) -> impl Future<Output = Destination>`.
pub trait OfferHandler: Send + Sync + 'static {
    /// Where the content of `offer` goes.
    fn decide(
        &self,
        offer: Offer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Destination> + Send + 'static>>;
}

impl<F, Fut> OfferHandler for F
where
    F: Fn(Offer) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Destination> + Send + 'static,
{
    fn decide(
        &self,
        offer: Offer,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Destination> + Send + 'static>> {
        Box::pin(self(offer))
    }
}

/// Receiving-side state of a node.
pub struct TransferState {
    handler: RwLock<Option<Arc<dyn OfferHandler>>>,
    inbox: Option<PathBuf>,
    received: broadcast::Sender<Received>,
    pub(crate) progress: broadcast::Sender<Progress>,
    /// Transfers being received, by offer id: a serial (so that an attempt ending never
    /// unregisters a newer attempt at the same content) and the token `cancel` fires.
    incoming: std::sync::Mutex<
        std::collections::HashMap<[u8; 32], (u64, tokio_util::sync::CancellationToken)>,
    >,
    next_incoming: std::sync::atomic::AtomicU64,
    published: std::sync::Mutex<std::collections::HashMap<[u8; 32], (String, send::Prepared)>>,
    /// The partial files in use by running transfers.
    pub(crate) claims: Arc<partials::Claims>,
    /// Transfers pushed to this node, per peer and in all.
    pub(crate) incoming_slots: Arc<crate::slots::Slots<NodeId>>,
    /// Fetches this node serves, per peer and in all.
    pub(crate) served_slots: Arc<crate::slots::Slots<NodeId>>,
    /// [`limits::IDLE_TIMEOUT`], in milliseconds (lowered by a test hook, see [`hooks`]).
    idle_ms: std::sync::atomic::AtomicU64,
    /// Test hooks (see [`hooks`]).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) hooks: hooks::Hooks,
}

impl std::fmt::Debug for TransferState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferState")
            .field("inbox", &self.inbox)
            .finish()
    }
}

impl TransferState {
    /// State with an optional inbox directory.
    pub fn new(inbox: Option<PathBuf>) -> Self {
        Self {
            handler: RwLock::new(None),
            inbox,
            received: broadcast::channel(256).0,
            progress: broadcast::channel(1024).0,
            published: std::sync::Mutex::new(std::collections::HashMap::new()),
            incoming: std::sync::Mutex::new(std::collections::HashMap::new()),
            next_incoming: std::sync::atomic::AtomicU64::new(0),
            claims: Arc::default(),
            incoming_slots: crate::slots::Slots::new(
                "transfers",
                limits::MAX_INCOMING_PER_PEER,
                limits::MAX_INCOMING_PER_NODE,
            ),
            served_slots: crate::slots::Slots::new(
                "fetches",
                limits::MAX_SERVED_PER_PEER,
                limits::MAX_SERVED_PER_NODE,
            ),
            idle_ms: std::sync::atomic::AtomicU64::new(limits::IDLE_TIMEOUT.as_millis() as u64),
            #[cfg(any(test, feature = "test-hooks"))]
            hooks: hooks::Hooks::default(),
        }
    }

    /// How long a transfer stream may stay idle ([`limits::IDLE_TIMEOUT`]).
    pub(crate) fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Where the content of `offer` goes: the handler's answer, else the inbox, else
    /// refused.
    pub(crate) async fn decide(&self, offer: &Offer, deadline: Duration) -> Destination {
        let handler = self
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match (handler, &self.inbox) {
            (Some(h), _) => tokio::time::timeout(deadline, h.decide(offer.clone()))
                .await
                .unwrap_or_else(|_| {
                    Destination::Reject("the offer handler did not answer in time".into())
                }),
            (None, Some(dir)) => Destination::Path(dir.join(&offer.name)),
            (None, None) => {
                Destination::Reject("this node has no inbox and no offer handler".into())
            }
        }
    }

    /// Registers an incoming transfer; the token is cancelled by `Transfer::cancel`.
    /// Returns the registration's serial for [`TransferState::done_incoming`].
    pub(crate) fn incoming(&self, id: [u8; 32]) -> (u64, tokio_util::sync::CancellationToken) {
        let serial = self
            .next_incoming
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = tokio_util::sync::CancellationToken::new();
        self.incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (serial, token.clone()));
        (serial, token)
    }

    /// Unregisters the incoming transfer `id` if it is still registration `serial`.
    pub(crate) fn done_incoming(&self, id: &[u8; 32], serial: u64) {
        let mut incoming = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
        if incoming.get(id).is_some_and(|(s, _)| *s == serial) {
            incoming.remove(id);
        }
    }

    pub(crate) fn published(&self, id: &[u8; 32]) -> Option<(String, send::Prepared)> {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Drops the offer handler (shutdown: it may hold references into the host language).
    pub(crate) fn clear_handler(&self) {
        *self.handler.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(crate) fn deliver(&self, r: Received) {
        let _ = self.received.send(r);
    }
}

/// The transfer API of a node (`node.transfer()`).
#[derive(Clone)]
pub struct Transfer {
    shared: Arc<TransferService>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("node", &self.shared.id)
            .finish()
    }
}

impl Transfer {
    pub(crate) fn new(shared: Arc<TransferService>, guard: Arc<Guard>) -> Self {
        Self {
            shared,
            _guard: guard,
        }
    }

    /// Sends `source` to every peer of `to` in parallel; one result per peer, in order.
    pub async fn send(&self, source: Source, to: &[NodeId]) -> Result<Vec<TransferResult>> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let shared = self.shared.clone();
        let to = to.to_vec();
        self.shared
            .run(async move {
                // Bytes are hashed once for every peer.
                let source = send::Prepared::new(&source).await?;
                let sends = to.iter().map(|&p| send::send_to(&shared, &source, p));
                Ok(futures::future::join_all(sends).await)
            })
            .await
    }

    /// Offers `source` to peers that fetch it by the returned id (`blake3:<hex>` of the
    /// content; a file is read through once to compute it). Blocks this node holds can be
    /// fetched by their id without publishing.
    pub async fn publish(&self, source: Source) -> Result<String> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let shared = self.shared.clone();
        self.shared
            .run(async move {
                let source = send::Prepared::new(&source).await?;
                let (_, name, _) = send::Reader::open(&source).await?;
                let id = fetch::content_hash(&source).await?;
                shared
                    .transfers
                    .published
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, (name, source));
                Ok(format!("blake3:{}", data_encoding::HEXLOWER.encode(&id)))
            })
            .await
    }

    /// Stops offering `id`; returns whether it was published.
    pub fn unpublish(&self, id: &str) -> Result<bool> {
        let id = fetch::parse_id(id)?;
        Ok(self
            .shared
            .transfers
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .is_some())
    }

    /// Fetches content `id` (published by `from`, or a block it holds) into the file
    /// `into` (or `into (1).ext` and so on if a file has that name: an existing file is
    /// never replaced, see `Received::path`), or into memory when `None` (charged to the
    /// memory quota while the bytes are held). A fetch into a file that was interrupted
    /// resumes after the chunks already verified.
    pub async fn fetch(&self, id: &str, from: NodeId, into: Option<PathBuf>) -> Result<Received> {
        if self.shared.is_closed() {
            return Err(Error::closed());
        }
        let id = fetch::parse_id(id)?;
        let shared = self.shared.clone();
        self.shared
            .run(async move { fetch::fetch(&shared, id, from, into).await })
            .await
    }

    /// Cancels the incoming transfer with this offer id (`Offer::id`) from the moment the
    /// offer handler (or the inbox) accepted it until it completes; the sender gets a
    /// `Closed` error and the verified part is kept for a later resume. Returns whether
    /// such a transfer was running: when true, the content is not delivered, even if its
    /// last chunk was arriving at that moment. (To refuse an offer, return
    /// `Destination::Reject` from the offer handler; a sender cancels by dropping its
    /// `send` future.)
    pub fn cancel(&self, offer_id: &str) -> Result<bool> {
        let id = fetch::parse_id(offer_id)?;
        // Cancelled under the lock: once the receiving task unregistered the transfer
        // (and goes on to deliver it) no cancel can report true.
        let mut incoming = self
            .shared
            .transfers
            .incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(incoming.remove(&id).map(|(_, t)| t.cancel()).is_some())
    }

    /// Decides where offers go (replaces the inbox for every offer): a closure
    /// `|offer| async { Destination::… }` or any [`OfferHandler`].
    pub fn on_offer(&self, handler: impl OfferHandler) {
        *self
            .shared
            .transfers
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(handler));
    }

    /// Removes the offer handler (offers go to the inbox, or are refused).
    pub fn clear_offer_handler(&self) {
        *self
            .shared
            .transfers
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Progress of the transfers this node sends and receives (including fetches and the
    /// fetches it serves), from now on.
    pub fn progress(&self) -> events::Subscription<Progress> {
        events::Subscription::new(
            self.shared.transfers.progress.subscribe(),
            self.shared.cancel.clone(),
        )
    }

    /// Transfers received from now on.
    pub fn received(&self) -> events::Subscription<Received> {
        events::Subscription::new(
            self.shared.transfers.received.subscribe(),
            self.shared.cancel.clone(),
        )
    }
}
