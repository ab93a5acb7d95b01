//! The RESP listener of a node: bound at start on `redis_listen`, served on the node's
//! own runtime, stopped at shutdown (it registers as a [`Shutdown`] step).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::cache::service::CacheService;
use crate::channel::service::ChannelService;
use crate::error::{Error, Result};
use crate::node::shared::Shared;
use crate::resp::front::Front;
use crate::resp::limits::RespLimits;
use crate::resp::pubsub;
use crate::service::Shutdown;

/// A running RESP listener.
#[derive(Debug)]
pub struct RedisListener {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl RedisListener {
    /// The address it is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Shutdown for RedisListener {
    fn stop(&self) {
        self.cancel.cancel();
    }
}

/// Binds the listener's socket (before the node's runtime serves it, so that a busy
/// port fails the start at once).
pub(crate) fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let socket = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::from(e).context(format!("binding the Redis listener on {addr}")))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| Error::from(e).context("configuring the Redis listener"))?;
    Ok(socket)
}

/// Serves `socket` on the node's runtime with the cache of `cache` and pub/sub on
/// `channels`; stopped by the node's shutdown.
pub(crate) fn start(
    shared: &Arc<Shared>,
    cache: Arc<CacheService>,
    channels: Arc<ChannelService>,
    socket: std::net::TcpListener,
    limits: RespLimits,
) -> Result<Arc<RedisListener>> {
    let handle = shared.runtime.handle().clone();
    let listener = {
        let _entered = handle.enter();
        tokio::net::TcpListener::from_std(socket)
            .map_err(|e| Error::from(e).context("starting the Redis listener"))?
    };
    let addr = listener
        .local_addr()
        .map_err(|e| Error::from(e).context("reading the Redis listener's address"))?;
    let cancel = shared.cancel.child_token();
    // Messages published through other nodes' fronts arrive on this channel.
    let mesh = channels
        .channels
        .get_or_create(pubsub::MESH_CHANNEL, shared.config.channel_queue)?;
    let front = Front::new(
        cache,
        channels,
        shared.config.redis_password.clone(),
        limits,
        shared.config.redis_allow_flush,
        addr,
    );
    handle.spawn(relay(front.clone(), mesh, cancel.clone()));
    handle.spawn(accept_loop(front, listener, cancel.clone()));
    info!(%addr, "Redis protocol listener started");
    let running = Arc::new(RedisListener { addr, cancel });
    shared.services.on_shutdown(running.clone());
    Ok(running)
}

/// Hands the messages other nodes publish to this node's subscribers.
async fn relay(
    front: Arc<Front>,
    mesh: Arc<crate::channel::registry::ChannelState>,
    cancel: CancellationToken,
) {
    while let Ok(m) = mesh.next(&cancel).await {
        match pubsub::decode(&m.data) {
            Some((false, channel, payload)) => {
                front.subs.deliver(&channel, &payload);
            }
            Some((true, channel, payload)) => {
                front.subs.deliver_shard(&channel, &payload);
            }
            None => debug!(from = %m.from.short(), "a malformed pub/sub message was dropped"),
        }
    }
}

async fn accept_loop(
    front: Arc<Front>,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = cancel.cancelled() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted.
                warn!(error = %e, "accepting a Redis client failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admitted) = front.admit(peer.ip()) else {
            debug!(%peer, "refusing a Redis client: too many connections");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    stream.write_all(b"-ERR max number of clients reached\r\n"),
                )
                .await;
            });
            continue;
        };
        tokio::spawn(crate::resp::conn::serve(
            front.clone(),
            stream,
            peer,
            cancel.clone(),
            admitted,
        ));
    }
}
