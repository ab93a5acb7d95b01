//! Verified transfer of files and bytes: send to peers, publish and fetch, offers,
//! deliveries and progress (the native half of `node.transfer`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmesh::transfer::events::Subscription;
use memmesh::transfer::Source;
use memmesh::NodeId;
use napi::bindgen_prelude::{
    Buffer, Either, Env, Function, PromiseRaw, ToNapiValue, Uint8ArraySlice, Unknown,
};
use napi_derive::napi;

use crate::bytes::to_buffer;
use crate::error::{js_error, to_js};
use crate::handler::JsOfferHandler;
use crate::runtime::{cancellable, spawn_promise, Canceller};

/// An incoming offer, as an offer handler sees it.
#[napi(object, js_name = "TransferOffer")]
pub struct JsOffer {
    /// The sender's node id.
    pub from: String,
    /// Identifies the content across attempts (64 hex digits); what `cancel` takes.
    pub id: String,
    /// The file name proposed by the sender.
    pub name: String,
    /// Total bytes.
    pub size: f64,
}

impl From<memmesh::transfer::Offer> for JsOffer {
    fn from(o: memmesh::transfer::Offer) -> Self {
        JsOffer {
            from: o.from.to_string(),
            id: o.id,
            name: o.name,
            size: o.size as f64,
        }
    }
}

/// An offer handler's answer, read from the object it returns: exactly one of
/// `{ path }`, `{ memory: true }`, `{ reject: reason }`.
#[napi(object)]
pub struct OfferAnswer {
    /// Receive into this file.
    pub path: Option<String>,
    /// Receive into memory.
    pub memory: Option<bool>,
    /// Refuse, with this reason for the sender.
    pub reject: Option<String>,
}

/// A transfer received whole and verified.
#[napi(object, js_name = "TransferReceived", use_nullable = true)]
pub struct Received {
    /// The offer it answered.
    pub offer: JsOffer,
    /// `blake3:<hex>` of the content.
    pub hash: String,
    /// Where it was written, for a file destination.
    pub path: Option<String>,
    /// The content, for a memory destination.
    pub data: Option<Buffer>,
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl From<memmesh::transfer::Received> for Received {
    fn from(r: memmesh::transfer::Received) -> Self {
        Received {
            offer: r.offer.into(),
            hash: r.hash,
            path: r.path.as_deref().map(path_text),
            data: r.data.as_ref().map(to_buffer),
        }
    }
}

/// Why a send to one peer failed: the error's `.code` and message (the `memmesh`
/// package turns it into a `MemmeshError`).
#[napi(object)]
pub struct ErrorInfo {
    /// The `ErrorKind` name.
    pub code: String,
    /// What happened.
    pub message: String,
}

/// The outcome of sending to one peer.
#[napi(object, js_name = "NativeTransferResult", use_nullable = true)]
pub struct TransferResult {
    /// The peer's node id.
    pub peer: String,
    /// Bytes of the content (0 on failure).
    pub bytes: f64,
    /// `blake3:<hex>` confirmed by the receiver.
    pub hash: Option<String>,
    /// Bytes streamed in the last attempt (less than `bytes` after a resume).
    pub sent: f64,
    /// How many attempts it took.
    pub attempts: u32,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Why it failed, if it did.
    pub error: Option<ErrorInfo>,
}

impl From<memmesh::transfer::TransferResult> for TransferResult {
    fn from(r: memmesh::transfer::TransferResult) -> Self {
        TransferResult {
            peer: r.peer.to_string(),
            bytes: r.bytes as f64,
            hash: r.hash,
            sent: r.sent as f64,
            attempts: r.attempts,
            duration_ms: r.duration.as_secs_f64() * 1000.0,
            error: r.error.map(|e| ErrorInfo {
                code: e.kind().as_str().to_string(),
                message: e.message().to_string(),
            }),
        }
    }
}

/// Progress of a transfer this node sends or receives.
#[napi(object, js_name = "TransferProgress")]
pub struct Progress {
    /// The other peer's node id (the receiver when sending, the sender when receiving).
    pub peer: String,
    /// The name offered.
    pub name: String,
    /// `'send'` when this node sends it (a send, or a fetch it serves), `'receive'` when it
    /// receives it (an accepted offer, or its own fetch).
    #[napi(ts_type = "'send' | 'receive'")]
    pub direction: String,
    /// Bytes done (verified ones skipped on resume count as done).
    pub done: f64,
    /// Total bytes.
    pub total: f64,
    /// Bytes per second that crossed the network in this attempt so far.
    pub rate: f64,
}

impl From<memmesh::transfer::Progress> for Progress {
    fn from(p: memmesh::transfer::Progress) -> Self {
        Progress {
            peer: p.peer.to_string(),
            name: p.name,
            direction: p.direction.as_str().to_string(),
            done: p.done as f64,
            total: p.total as f64,
            rate: p.rate,
        }
    }
}

/// A string is a file path; bytes are sent as they are.
fn source(value: Either<String, Uint8ArraySlice<'_>>) -> Source {
    match value {
        Either::A(path) => Source::Path(PathBuf::from(path)),
        Either::B(bytes) => Source::Bytes(memmesh::Bytes::copy_from_slice(&bytes)),
    }
}

fn peer_id(id: &str) -> memmesh::Result<NodeId> {
    id.parse()
}

/// The transfer API of a node (the native half of `node.transfer`).
#[napi(js_name = "NativeTransfer")]
pub struct Transfer {
    inner: memmesh::transfer::Transfer,
    node: memmesh::Node,
}

impl Transfer {
    pub(crate) fn new(inner: memmesh::transfer::Transfer, node: memmesh::Node) -> Self {
        Self { inner, node }
    }
}

#[napi]
impl Transfer {
    /// Sends `source` (a file path, or bytes) to every peer of `to` in parallel and
    /// resolves with one result per peer, in order (a failed peer has `error` set).
    /// `canceller.cancel()` stops every send, which then rejects with `Closed`.
    #[napi(ts_return_type = "Promise<NativeTransferResult[]>", catch_unwind)]
    pub fn send<'env>(
        &self,
        env: &'env Env,
        source: Either<String, Uint8ArraySlice<'_>>,
        to: Vec<String>,
        canceller: Option<&Canceller>,
    ) -> napi::Result<PromiseRaw<'env, Vec<TransferResult>>> {
        let source = self::source(source);
        let to = to_js(env, memmesh::channel::parse_ids(&to))?;
        let registration = to_js(env, canceller.map(Canceller::registration).transpose())?;
        let transfer = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            cancellable(
                async move { transfer.send(source, &to).await },
                registration,
                "the send was cancelled",
            ),
            |results| Ok(results.into_iter().map(TransferResult::from).collect()),
        )
    }

    /// Offers `source` (a file path, or bytes) to peers, who fetch it by the id this
    /// resolves with (`blake3:<hex>` of the content).
    #[napi(ts_return_type = "Promise<string>", catch_unwind)]
    pub fn publish<'env>(
        &self,
        env: &'env Env,
        source: Either<String, Uint8ArraySlice<'_>>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let source = self::source(source);
        let transfer = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move { transfer.publish(source).await },
            Ok,
        )
    }

    /// Stops offering `id`; returns whether it was published.
    #[napi(catch_unwind)]
    pub fn unpublish(&self, env: &Env, id: String) -> napi::Result<bool> {
        to_js(env, self.inner.unpublish(&id))
    }

    /// Fetches content `id` (published by `peer`, or a block it holds) into the file
    /// `into`, or into memory when `into` is missing. `canceller.cancel()` stops it
    /// (it then rejects with `Closed`; a file keeps its verified part for a resume).
    #[napi(ts_return_type = "Promise<TransferReceived>", catch_unwind)]
    pub fn fetch<'env>(
        &self,
        env: &'env Env,
        id: String,
        peer: String,
        into: Option<String>,
        canceller: Option<&Canceller>,
    ) -> napi::Result<PromiseRaw<'env, Received>> {
        let peer = to_js(env, peer_id(&peer))?;
        let registration = to_js(env, canceller.map(Canceller::registration).transpose())?;
        let transfer = self.inner.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            cancellable(
                async move { transfer.fetch(&id, peer, into.map(PathBuf::from)).await },
                registration,
                "the fetch was cancelled",
            ),
            |r| Ok(Received::from(r)),
        )
    }

    /// Cancels the incoming transfer whose offer id is `offerId`; returns whether one
    /// was running (its sender gets a `Closed` error).
    #[napi(catch_unwind)]
    pub fn cancel(&self, env: &Env, offer_id: String) -> napi::Result<bool> {
        to_js(env, self.inner.cancel(&offer_id))
    }

    /// Decides where offers go with `handler(offer)`, which returns (or resolves with)
    /// `{ path }`, `{ memory: true }` or `{ reject: reason }`. `null` removes it (offers
    /// then go to the inbox directory, or are refused).
    #[napi(
        ts_args_type = "handler: ((offer: TransferOffer) => unknown) | null",
        catch_unwind
    )]
    pub fn on_offer(
        &self,
        env: &Env,
        handler: Option<Function<'_, JsOffer, Unknown<'static>>>,
    ) -> napi::Result<()> {
        match handler {
            Some(f) => {
                self.inner.on_offer(JsOfferHandler::new(&f)?);
                if self.node.is_closed() {
                    // A handler set during shutdown is not kept (it would keep the
                    // process alive).
                    self.inner.clear_offer_handler();
                    return Err(js_error(env, &memmesh::Error::closed()));
                }
                Ok(())
            }
            None => {
                self.inner.clear_offer_handler();
                Ok(())
            }
        }
    }

    /// Transfers this node receives from now on (not those it fetches).
    #[napi(catch_unwind)]
    pub fn received(&self) -> ReceivedStream {
        ReceivedStream(Stream::new(self.inner.received(), self.node.clone()))
    }

    /// Progress of the transfers this node sends and receives from now on (including
    /// fetches and the fetches it serves).
    #[napi(catch_unwind)]
    pub fn progress(&self) -> ProgressStream {
        ProgressStream(Stream::new(self.inner.progress(), self.node.clone()))
    }
}

/// A core subscription read one item at a time from JavaScript; `missed` is updated
/// after each read, so it can be read without waiting for a pending one.
struct Stream<T> {
    sub: Arc<tokio::sync::Mutex<Subscription<T>>>,
    missed: Arc<AtomicU64>,
    node: memmesh::Node,
}

impl<T: Clone + Send + 'static> Stream<T> {
    fn new(sub: Subscription<T>, node: memmesh::Node) -> Self {
        Self {
            sub: Arc::new(tokio::sync::Mutex::new(sub)),
            missed: Arc::new(AtomicU64::new(0)),
            node,
        }
    }

    fn next<'env, D, C>(&self, env: &'env Env, convert: C) -> napi::Result<PromiseRaw<'env, D>>
    where
        D: ToNapiValue + 'static,
        C: FnOnce(T) -> napi::Result<D> + Send + 'static,
    {
        let sub = self.sub.clone();
        let missed = self.missed.clone();
        spawn_promise(
            env,
            &self.node.runtime_handle(),
            async move {
                let mut sub = sub.lock().await;
                let next = sub.next().await;
                missed.store(sub.missed(), Ordering::Relaxed);
                next
            },
            convert,
        )
    }

    fn missed(&self) -> f64 {
        self.missed.load(Ordering::Relaxed) as f64
    }
}

/// Transfers received, one at a time (the native half of `transfer.received()`).
#[napi(js_name = "NativeReceivedStream")]
pub struct ReceivedStream(Stream<memmesh::transfer::Received>);

#[napi]
impl ReceivedStream {
    /// Resolves with the next transfer received; rejects with `Closed` once the node
    /// shuts down.
    #[napi(ts_return_type = "Promise<TransferReceived>", catch_unwind)]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Received>> {
        self.0.next(env, |r| Ok(Received::from(r)))
    }

    /// How many deliveries this reader missed by falling behind (more than 256).
    #[napi(getter, catch_unwind)]
    pub fn missed(&self) -> f64 {
        self.0.missed()
    }
}

/// Progress events, one at a time (the native half of `transfer.progress()`).
#[napi(js_name = "NativeProgressStream")]
pub struct ProgressStream(Stream<memmesh::transfer::Progress>);

impl ProgressStream {
    /// Reads `sub` (progress of `node`'s transfers or of its files).
    pub(crate) fn of(sub: Subscription<memmesh::transfer::Progress>, node: memmesh::Node) -> Self {
        ProgressStream(Stream::new(sub, node))
    }
}

#[napi]
impl ProgressStream {
    /// Resolves with the next progress event; rejects with `Closed` once the node
    /// shuts down.
    #[napi(ts_return_type = "Promise<TransferProgress>", catch_unwind)]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Progress>> {
        self.0.next(env, |p| Ok(Progress::from(p)))
    }

    /// How many progress events this reader missed by falling behind (more than 1024).
    #[napi(getter, catch_unwind)]
    pub fn missed(&self) -> f64 {
        self.0.missed()
    }
}
