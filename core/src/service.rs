//! Routing a service frame to the service it names. Every service shares the one
//! connection per peer; the [`Service`] tag in the stream header picks the handler.
//!
//! The runtime layer names no service: the `Node` (the API layer) constructs each service
//! and registers its handlers here at start ([`Services::serve`], [`Services::take_streams`],
//! [`Services::on_shutdown`]); a new service plugs in the same way without touching the
//! others.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::error::{Classify, Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::transport::trust::Trust;
use crate::wire::Service;

/// A frame that reached the wrong place (a peer's bug or a hostile frame).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A handler was given a frame of another service.
    #[error("not a {0} frame")]
    NotMine(&'static str),
    /// A transfer offer came as a request frame instead of on a stream of its own.
    #[error("a transfer offer must open its own stream")]
    OfferOnFrame,
    /// The peer's trust level does not allow the service (an outsider asked for anything
    /// but documents; ADR 0028).
    #[error("{trust} peers may not use this service (documents only)")]
    NotAllowed {
        /// The peer's trust level.
        trust: crate::transport::trust::Trust,
    },
}

impl Classify for ServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::NotAllowed { .. } => ErrorKind::Unauthorized,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The kind of service a stream header names: the key handlers are registered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Named channels.
    Channel,
    /// SWIM membership.
    Membership,
    /// Blocks in RAM.
    Blocks,
    /// The replicated cache.
    Cache,
    /// An offered transfer (takes the stream over).
    Transfer,
    /// A pull of published content (takes the stream over).
    Fetch,
    /// The goodbye of a node shutting down (served by the runtime itself).
    Goodbye,
    /// Document sync.
    Docs,
    /// Files held for other nodes: hold, has, forget (issue 14, ADR 0018).
    Files,
}

impl Kind {
    /// Every kind, in the order of [`Kind::index`].
    pub const ALL: [Kind; 9] = [
        Kind::Channel,
        Kind::Membership,
        Kind::Blocks,
        Kind::Cache,
        Kind::Transfer,
        Kind::Fetch,
        Kind::Goodbye,
        Kind::Docs,
        Kind::Files,
    ];

    /// Its place in [`Kind::ALL`] (the services table is an array: no hashing per frame).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind of `service`.
    pub fn of(service: &Service) -> Kind {
        match service {
            Service::Channel { .. } => Kind::Channel,
            Service::Membership { .. } => Kind::Membership,
            Service::Blocks { .. } => Kind::Blocks,
            Service::Cache => Kind::Cache,
            Service::Transfer(_) => Kind::Transfer,
            Service::Fetch { .. } => Kind::Fetch,
            Service::Goodbye => Kind::Goodbye,
            Service::Docs => Kind::Docs,
            Service::Files => Kind::Files,
        }
    }
}

/// A service that answers one request frame per stream.
pub trait FrameHandler: Send + Sync + 'static {
    /// Handles one frame for `service` from the authenticated peer `from`, which came on a
    /// connection of trust level `trust`, and returns the reply body.
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>>;
}

/// A service that takes a whole stream over (its first frame's header names it).
pub trait StreamHandler: Send + Sync + 'static {
    /// Serves the stream `from` opened for `service` until it ends.
    fn serve(
        self: Arc<Self>,
        from: NodeId,
        service: Service,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> BoxFuture<'static, ()>;
}

/// Content this node holds, by its BLAKE3 digest: what one service (blocks) lends another
/// (transfer's fetch serves a block by its id) without either naming the other.
pub trait Content: Send + Sync + 'static {
    /// The bytes whose BLAKE3 digest is `digest`, if held here.
    fn by_digest(&self, digest: &[u8; 32]) -> Option<Bytes>;
}

/// Stored files this node serves by their BLAKE3 digest: what the files store lends the
/// transfer service, so that a fetch streams a stored file's verified plaintext (read and
/// decrypted on a blocking thread) without either service naming the other.
pub trait StoredContent: Send + Sync + 'static {
    /// Whether the file whose BLAKE3 digest is `digest` is stored here.
    fn holds(&self, digest: &[u8; 32]) -> bool;
    /// The plaintext size of the stored file whose BLAKE3 digest is `digest` and a
    /// blocking reader of its plaintext, each segment authenticated as it is read (a read
    /// error means the stored copy is damaged). `None` if it is not stored here.
    fn open_stored(&self, digest: &[u8; 32]) -> Option<(u64, Box<dyn std::io::Read + Send>)>;
}

/// How much disk this node accepts for others' files: what the files store lends
/// membership, which advertises it (`Advert::disk_free`).
pub trait DiskFree: Send + Sync + 'static {
    /// Bytes: the disk quota minus what is used, bounded by the filesystem's free space
    /// minus a reserve (0 without a data dir).
    fn disk_free(&self) -> u64;
}

impl std::fmt::Debug for dyn DiskFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiskFree")
    }
}

/// Where a fetch lent to another service writes the verified chunks, in order. Called on
/// blocking threads.
pub trait ChunkWriter: Send + 'static {
    /// Takes the next verified chunk.
    fn write(&mut self, verified: &[u8]) -> Result<()>;
    /// Where this writer continues an earlier, interrupted fetch of the same content from
    /// the same peer: the state the transfer engine last gave [`ChunkWriter::checkpoint`]
    /// for the bytes it still holds durably. `usable(bytes, state)` says whether the
    /// engine can continue from `state` covering the first `bytes` (same content, size,
    /// chunk size and source); when it cannot, or nothing is held, the writer starts over
    /// from the first byte and returns `None`. Called once, before the first write, on a
    /// blocking thread. By default nothing is resumed.
    fn resume_point(&mut self, usable: &dyn Fn(u64, &[u8]) -> bool) -> Result<Option<Vec<u8>>> {
        let _ = usable;
        Ok(None)
    }
    /// Called after each verified chunk was written, with the engine's state covering
    /// every byte written so far (opaque to the writer): a writer that keeps partial
    /// content may make it durable and keep the state beside it, to resume from later.
    /// By default nothing is kept.
    fn checkpoint(&mut self, state: &[u8]) -> Result<()> {
        let _ = state;
        Ok(())
    }
    /// The whole was verified against the fetched id: make it durable (or hand it over).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Fetching verified content from a peer into a [`ChunkWriter`]: what the transfer
/// service lends the files service (replication and search pull through it).
pub trait Fetcher: Send + Sync + 'static {
    /// Fetches the content whose BLAKE3 digest is `digest` from `peer` into `into`;
    /// returns its size once the whole was verified and `into` finished.
    fn fetch_into(
        &self,
        digest: [u8; 32],
        peer: NodeId,
        into: Box<dyn ChunkWriter>,
    ) -> BoxFuture<'static, Result<u64>>;
    /// Fetches the content whose BLAKE3 digest is `digest` from `peer` into a new file at
    /// `path`, through the transfer engine's own partial file beside it, so that a fetch
    /// interrupted (a lost connection, a restart) resumes after its verified chunks when
    /// repeated from the same peer into the same path; returns where the verified whole
    /// was delivered (`path`, or `name (n).ext` if `path` was taken meanwhile: a file is
    /// never replaced).
    fn fetch_to_path(
        &self,
        digest: [u8; 32],
        peer: NodeId,
        path: std::path::PathBuf,
    ) -> BoxFuture<'static, Result<std::path::PathBuf>>;
}

/// What a service does when the node shuts down.
pub trait Shutdown: Send + Sync + 'static {
    /// Once the node's tasks are cancelled (e.g. stop announcing the node).
    fn stop(&self) {}
    /// When the node's tables are cleared: drop what the application registered (its
    /// handlers), which may hold node handles.
    fn release(&self) {}
}

#[derive(Default)]
struct Table {
    /// By [`Kind::index`].
    frames: [Option<Arc<dyn FrameHandler>>; Kind::ALL.len()],
    /// By [`Kind::index`].
    streams: [Option<Arc<dyn StreamHandler>>; Kind::ALL.len()],
    shutdown: Vec<Arc<dyn Shutdown>>,
}

/// Frames handled and failed for one kind.
#[derive(Default)]
struct Counter {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// The services registered on a node. Handlers hold their service (which holds the
/// node's `Shared`): [`Services::clear`] at shutdown breaks that cycle.
#[derive(Default)]
pub struct Services(Mutex<Table>, [Counter; Kind::ALL.len()]);

/// Request frames one service handled on this node, and how many of them failed (the
/// HTTP API's `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCount {
    /// Frames handled.
    pub requests: u64,
    /// Frames whose handling returned an error.
    pub errors: u64,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.table();
        let kinds = |held: &dyn Fn(usize) -> bool| -> Vec<Kind> {
            Kind::ALL.into_iter().filter(|k| held(k.index())).collect()
        };
        f.debug_struct("Services")
            .field("frames", &kinds(&|i| t.frames[i].is_some()))
            .field("streams", &kinds(&|i| t.streams[i].is_some()))
            .field("shutdown", &t.shutdown.len())
            .finish()
    }
}

impl Services {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the handler of request frames of `kind`.
    pub fn serve(&self, kind: Kind, handler: Arc<dyn FrameHandler>) {
        self.table().frames[kind.index()] = Some(handler);
    }

    /// Registers the handler that takes streams of `kind` over.
    pub fn take_streams(&self, kind: Kind, handler: Arc<dyn StreamHandler>) {
        self.table().streams[kind.index()] = Some(handler);
    }

    /// Registers shutdown steps (run in registration order).
    pub fn on_shutdown(&self, part: Arc<dyn Shutdown>) {
        self.table().shutdown.push(part);
    }

    /// The handler that takes streams for `service` over, if any.
    pub fn stream_handler(&self, service: &Service) -> Option<Arc<dyn StreamHandler>> {
        self.table().streams[Kind::of(service).index()].clone()
    }

    fn frame_handler(&self, kind: Kind) -> Option<Arc<dyn FrameHandler>> {
        self.table().frames[kind.index()].clone()
    }

    fn parts(&self) -> Vec<Arc<dyn Shutdown>> {
        self.table().shutdown.clone()
    }

    /// Runs every service's [`Shutdown::stop`].
    pub fn stop(&self) {
        for part in self.parts() {
            part.stop();
        }
    }

    /// Runs every service's [`Shutdown::release`].
    pub fn release(&self) {
        for part in self.parts() {
            part.release();
        }
    }

    /// The request frames handled per service so far (services that handled none are
    /// left out).
    pub fn frame_counts(&self) -> Vec<(Kind, FrameCount)> {
        Kind::ALL
            .into_iter()
            .map(|k| {
                let c = &self.1[k.index()];
                let count = FrameCount {
                    requests: c.requests.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                };
                (k, count)
            })
            .filter(|(_, c)| c.requests > 0)
            .collect()
    }

    fn count(&self, kind: Kind, failed: bool) {
        let c = &self.1[kind.index()];
        c.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets every handler (after shutdown).
    pub fn clear(&self) {
        let table = std::mem::take(&mut *self.table());
        drop(table);
    }
}

/// Handles one frame for `service` from `from` (on a connection of trust level `trust`)
/// and returns the reply body.
pub async fn handle(
    shared: &Arc<Shared>,
    from: NodeId,
    trust: Trust,
    service: Service,
    body: Bytes,
) -> Result<Bytes> {
    let kind = Kind::of(&service);
    let out = match kind {
        Kind::Goodbye => crate::node::goodbye::receive(shared, from),
        // Transfers never reach here: `serve_stream` hands their stream over whole.
        Kind::Transfer | Kind::Fetch => Err(ServiceError::OfferOnFrame.into()),
        _ => match shared.services.frame_handler(kind) {
            Some(handler) => handler.handle(from, trust, service, body).await,
            None => Err(Error::closed()),
        },
    };
    shared.services.count(kind, out.is_err());
    out
}

// ----- Progress events (the transfer engine's, relayed by the files store) -----

/// Which way a transfer goes, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// This node sends (`send`, or serving a peer's `fetch`).
    Sending,
    /// This node receives (an accepted offer, or its own `fetch`).
    Receiving,
}

impl Direction {
    /// `"send"` or `"receive"` (how the bindings spell it).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sending => "send",
            Direction::Receiving => "receive",
        }
    }
}

/// Progress of a transfer this node sends or receives, as reported by
/// `Transfer::progress` (and, for stored files, `Files::progress`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The other peer: the receiver when sending, the sender when receiving.
    pub peer: NodeId,
    /// The name offered.
    pub name: String,
    /// Whether this node sends or receives it.
    pub direction: Direction,
    /// Bytes done (verified ones skipped on resume count as done).
    pub done: u64,
    /// Total bytes.
    pub total: u64,
    /// Bytes per second that crossed the network in this attempt so far.
    pub rate: f64,
}

/// An async stream of `T` from the moment it was created; `Closed` once the node shuts
/// down. A reader that falls more than the backlog behind skips ahead and the count of
/// what it missed grows (see [`Subscription::missed`]).
#[derive(Debug)]
pub struct Subscription<T> {
    rx: tokio::sync::broadcast::Receiver<T>,
    cancel: tokio_util::sync::CancellationToken,
    missed: u64,
}

impl<T: Clone> Subscription<T> {
    pub(crate) fn new(
        rx: tokio::sync::broadcast::Receiver<T>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            rx,
            cancel,
            missed: 0,
        }
    }

    /// The next item; `Closed` once the node shuts down. Cancel-safe.
    pub async fn next(&mut self) -> Result<T> {
        loop {
            tokio::select! {
                biased;
                r = self.rx.recv() => match r {
                    Ok(item) => return Ok(item),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(Error::closed()),
                },
                _ = self.cancel.cancelled() => return Err(Error::closed()),
            }
        }
    }

    /// The next item if one is waiting, without blocking.
    pub fn try_next(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(item) => return Some(item),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// How many items this reader missed by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_place_in_the_table() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i, "{k:?}");
        }
    }

    #[test]
    fn frames_are_counted_per_kind_and_unused_kinds_left_out() {
        let s = Services::default();
        assert!(s.frame_counts().is_empty());
        s.count(Kind::Cache, false);
        s.count(Kind::Cache, true);
        s.count(Kind::Files, false);
        let c = FrameCount {
            requests: 2,
            errors: 1,
        };
        let f = FrameCount {
            requests: 1,
            errors: 0,
        };
        assert_eq!(s.frame_counts(), vec![(Kind::Cache, c), (Kind::Files, f)]);
    }
}
