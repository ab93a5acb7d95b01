//! Change subscriptions: every change to a document on this node (a local edit, an import
//! or merge, or changes a peer's sync brought) is announced on a bounded broadcast. A
//! slow subscriber never blocks the node: it loses the oldest events and is told how many
//! with [`ChangeEvent::Lagged`].

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::DocId;
use crate::identity::NodeId;

/// Events buffered per subscriber before the oldest are dropped.
pub const CHANGES_BUFFER: usize = 1024;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOrigin {
    /// An edit, import or merge on this node.
    Local,
    /// A sync exchange with this peer.
    Peer(NodeId),
}

/// One change to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocChange {
    /// The document.
    pub id: DocId,
    /// Its heads after the change (hex change hashes, sorted).
    pub heads: Vec<String>,
    /// Where the change came from.
    pub origin: ChangeOrigin,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeEvent {
    /// A change.
    Change(DocChange),
    /// The subscriber was too slow: this many events were dropped before the next one.
    Lagged(u64),
}

/// A subscription to the changes of every document on this node
/// ([`super::Docs::changes`]). Ends (`None`) when the node shuts down.
#[derive(Debug)]
pub struct DocChanges {
    rx: broadcast::Receiver<DocChange>,
    stop: CancellationToken,
}

impl DocChanges {
    pub(crate) fn new(rx: broadcast::Receiver<DocChange>, stop: CancellationToken) -> DocChanges {
        DocChanges { rx, stop }
    }

    /// The next event, or `None` once the node has shut down.
    pub async fn next(&mut self) -> Option<ChangeEvent> {
        let got = tokio::select! {
            r = self.rx.recv() => r,
            _ = self.stop.cancelled() => return None,
        };
        match got {
            Ok(c) => Some(ChangeEvent::Change(c)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(ChangeEvent::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting (never waits), for poll-style consumers.
    pub fn try_next(&mut self) -> Option<ChangeEvent> {
        match self.rx.try_recv() {
            Ok(c) => Some(ChangeEvent::Change(c)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(ChangeEvent::Lagged(n)),
            Err(_) => None,
        }
    }
}
