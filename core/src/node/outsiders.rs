//! Redialling a lost trusted outsider (ADR 0028, amendment): the I/O of one attempt, at
//! the addresses the known-peers table remembers for it. When to attempt is decided by
//! [`OutsiderRedial`](crate::discovery::outsider_redial::OutsiderRedial).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tracing::{debug, info};

use crate::identity::NodeId;
use crate::node::connect;
use crate::node::shared::Shared;

/// The outsiders being dialled right now (at most one attempt per outsider at a time).
#[derive(Debug, Default, Clone)]
pub(crate) struct Dialling(Arc<Mutex<HashSet<NodeId>>>);

impl Dialling {
    /// Marks `id` as being dialled; `false` if it already is.
    fn begin(&self, id: NodeId) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(id)
    }

    fn end(&self, id: &NodeId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// Dials outsider `id` (pinned: only that key may answer; the handshake skips the
/// cluster secret because `id` is in `trusted_peers`) at each of `addrs` in turn until
/// one connects, in a task of its own; nothing if an attempt is already under way.
pub(crate) fn dial(shared: &Arc<Shared>, dialling: &Dialling, id: NodeId, addrs: Vec<SocketAddr>) {
    if !dialling.begin(id) {
        return;
    }
    let shared = shared.clone();
    let dialling = dialling.clone();
    shared.runtime.handle().clone().spawn(async move {
        for addr in addrs {
            if shared.is_closed() || shared.pool.live(&id).is_some() {
                break;
            }
            match connect::dial(&shared, addr, Some(id)).await {
                Ok(_) => {
                    info!(%addr, peer = %id.short(), "reconnected to a trusted outsider");
                    break;
                }
                Err(e) => {
                    debug!(%addr, peer = %id.short(), error = %e.chain(), "trusted outsider redial failed")
                }
            }
        }
        dialling.end(&id);
    });
}
