//! The HTTP listener of a node: bound at start on `http_listen`, served with axum on the
//! node's own runtime, stopped at shutdown (it registers as a [`Shutdown`] step).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::http::api::{Api, Sources};
use crate::http::{feed, routes};
use crate::node::shared::Shared;
use crate::service::Shutdown;
use crate::transfer::service::TransferService;

/// A running HTTP listener.
#[derive(Debug)]
pub struct HttpListener {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl HttpListener {
    /// The address it is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Shutdown for HttpListener {
    fn stop(&self) {
        self.cancel.cancel();
    }
}

/// Binds the listener's socket (before the node's runtime serves it, so that a busy
/// port fails the start at once).
pub(crate) fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let socket = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::from(e).context(format!("binding the HTTP listener on {addr}")))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| Error::from(e).context("configuring the HTTP listener"))?;
    Ok(socket)
}

/// Serves `socket` on the node's runtime with the state of `src` and the transfers'
/// progress of `transfers`; stopped by the node's shutdown.
pub(crate) fn start(
    shared: &Arc<Shared>,
    src: Sources,
    transfers: &TransferService,
    socket: std::net::TcpListener,
) -> Result<Arc<HttpListener>> {
    let handle = shared.runtime.handle().clone();
    let listener = {
        let _entered = handle.enter();
        tokio::net::TcpListener::from_std(socket)
            .map_err(|e| Error::from(e).context("starting the HTTP listener"))?
    };
    let addr = listener
        .local_addr()
        .map_err(|e| Error::from(e).context("reading the HTTP listener's address"))?;
    let cancel = shared.cancel.child_token();
    let api = Api::new(shared.clone(), src);
    let progress = transfers.transfers.progress.subscribe();
    handle.spawn(feed::relay_members(api.clone(), cancel.clone()));
    handle.spawn(feed::relay_transfers(api.clone(), progress, cancel.clone()));
    handle.spawn(feed::tick(api.clone(), cancel.clone()));
    handle.spawn(feed::relay_docs(api.clone(), cancel.clone()));
    let app = routes::router(api);
    let stop = cancel.clone();
    handle.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            warn!(error = %e, "the HTTP listener failed");
        }
    });
    info!(%addr, "HTTP management listener started");
    let running = Arc::new(HttpListener { addr, cancel });
    shared.services.on_shutdown(running.clone());
    Ok(running)
}
