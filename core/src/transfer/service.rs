//! The transfer service on a node: the runtime it runs on, its receiving state, and the
//! content another service lends it to serve fetches from (blocks, by id).

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::service::{
    BoxFuture, ChunkWriter, Content, Fetcher, Shutdown, StoredContent, StreamHandler,
};
use crate::transfer::error::TransferError;
use crate::transfer::{fetch, receive, TransferState};
use crate::wire::Service;

/// The transfer service: the node's runtime plus its transfers. Derefs to the runtime
/// ([`Shared`]).
pub struct TransferService {
    /// The runtime every service runs on.
    pub(crate) node: Arc<Shared>,
    /// Incoming transfers: offer handler, inbox, deliveries.
    pub(crate) transfers: TransferState,
    /// Content held by other services that a fetch may ask for by its hash.
    content: Option<Arc<dyn Content>>,
    /// Stored files a fetch may ask for by their hash.
    stored: Option<Arc<dyn StoredContent>>,
}

impl std::fmt::Debug for TransferService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferService")
            .field("node", &self.node.id)
            .field("transfers", &self.transfers)
            .finish()
    }
}

impl TransferService {
    /// The transfer service of the node `node`, delivering into `inbox` when no offer
    /// handler is set, and serving fetches of `content` (blocks) and `stored` (files)
    /// too.
    pub(crate) fn new(
        node: Arc<Shared>,
        inbox: Option<PathBuf>,
        content: Option<Arc<dyn Content>>,
        stored: Option<Arc<dyn StoredContent>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            node,
            transfers: TransferState::new(inbox),
            content,
            stored,
        })
    }

    /// The store holding the file whose hash is `id`, if one does.
    pub(crate) fn stored(&self, id: &[u8; 32]) -> Option<Arc<dyn StoredContent>> {
        self.stored.as_ref().filter(|s| s.holds(id)).cloned()
    }

    /// Content another service holds under the BLAKE3 hash `id`.
    pub(crate) fn content(&self, id: &[u8; 32]) -> Option<Bytes> {
        self.content.as_ref()?.by_digest(id)
    }
}

impl Deref for TransferService {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.node
    }
}

impl StreamHandler for TransferService {
    fn serve(
        self: Arc<Self>,
        from: NodeId,
        service: Service,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            match service {
                Service::Transfer(offer) => receive::serve(self, from, offer, send, recv).await,
                Service::Fetch { id } => fetch::serve(self, from, id, send, recv).await,
                _ => {}
            }
        })
    }
}

impl Fetcher for Arc<TransferService> {
    fn fetch_into(
        &self,
        digest: [u8; 32],
        peer: NodeId,
        into: Box<dyn ChunkWriter>,
    ) -> BoxFuture<'static, crate::error::Result<u64>> {
        let shared = self.clone();
        Box::pin(async move {
            if shared.is_closed() {
                return Err(crate::error::Error::closed());
            }
            let received =
                fetch::fetch_to(&shared, digest, peer, fetch::FetchInto::Writer(into)).await?;
            Ok(received.offer.size)
        })
    }

    fn fetch_to_path(
        &self,
        digest: [u8; 32],
        peer: NodeId,
        path: std::path::PathBuf,
    ) -> BoxFuture<'static, crate::error::Result<std::path::PathBuf>> {
        let shared = self.clone();
        Box::pin(async move {
            if shared.is_closed() {
                return Err(crate::error::Error::closed());
            }
            let received =
                fetch::fetch_to(&shared, digest, peer, fetch::FetchInto::Path(path)).await?;
            received
                .path
                .ok_or_else(|| TransferError::Bug("a fetch into a path delivered no path").into())
        })
    }
}

impl Shutdown for TransferService {
    fn release(&self) {
        self.transfers.clear_handler();
    }
}
