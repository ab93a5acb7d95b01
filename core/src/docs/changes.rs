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
    /// The paths the change touched, in the string form `get` and `put` take (sorted): a
    /// map key's path for a put, delete or increment there, a list's or text's own path
    /// for anything done to its elements or characters, never a path inside another one
    /// listed (see `delta.rs`). At most [`super::delta::MAX_PATHS`].
    pub paths: Vec<String>,
    /// Whether the change touched more paths than `paths` lists.
    pub paths_truncated: bool,
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
/// ([`super::Docs::changes`]), or of one ([`super::Doc::changes`]). Ends (`None`) when
/// the node shuts down.
#[derive(Debug)]
pub struct DocChanges {
    rx: broadcast::Receiver<DocChange>,
    stop: CancellationToken,
    only: Option<DocId>,
}

impl DocChanges {
    /// Every change `rx` brings (of the document `only`, if given) until `stop`.
    pub(crate) fn new(
        rx: broadcast::Receiver<DocChange>,
        stop: CancellationToken,
        only: Option<DocId>,
    ) -> DocChanges {
        DocChanges { rx, stop, only }
    }

    /// Whether the subscription wants `c`.
    fn wants(&self, c: &DocChange) -> bool {
        self.only.is_none_or(|id| id == c.id)
    }

    /// The next event, or `None` once the node has shut down. A subscription to one
    /// document skips the changes of others; its [`ChangeEvent::Lagged`] counts every
    /// event dropped (of any document), as the node cannot tell which were its own.
    pub async fn next(&mut self) -> Option<ChangeEvent> {
        loop {
            // Biased, the stop first: once the node has shut down the subscription ends,
            // even with events still buffered (an unbiased select picks at random).
            let got = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return None,
                r = self.rx.recv() => r,
            };
            match got {
                Ok(c) if self.wants(&c) => return Some(ChangeEvent::Change(c)),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => return Some(ChangeEvent::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting (never waits), for poll-style consumers.
    pub fn try_next(&mut self) -> Option<ChangeEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(c) if self.wants(&c) => return Some(ChangeEvent::Change(c)),
                Ok(_) => continue,
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    return Some(ChangeEvent::Lagged(n))
                }
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(b: u8) -> DocChange {
        DocChange {
            id: DocId([b; 16]),
            heads: vec![],
            paths: vec![],
            paths_truncated: false,
            origin: ChangeOrigin::Local,
        }
    }

    #[test]
    fn a_subscription_to_one_document_skips_the_others() {
        let (tx, rx) = broadcast::channel(8);
        let mut one = DocChanges::new(rx, CancellationToken::new(), Some(DocId([2; 16])));
        let mut all = DocChanges::new(tx.subscribe(), CancellationToken::new(), None);
        for b in [1, 2, 3, 2] {
            tx.send(change(b)).unwrap();
        }
        let mut got = Vec::new();
        while let Some(ChangeEvent::Change(c)) = one.try_next() {
            got.push(c.id.0[0]);
        }
        assert_eq!(got, vec![2, 2]);
        let mut n = 0;
        while all.try_next().is_some() {
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn lagging_is_told_and_a_stopped_node_ends_the_subscription() {
        let (tx, rx) = broadcast::channel(2);
        let stop = CancellationToken::new();
        let mut one = DocChanges::new(rx, stop.clone(), Some(DocId([1; 16])));
        for _ in 0..4 {
            tx.send(change(1)).unwrap();
        }
        assert_eq!(one.try_next(), Some(ChangeEvent::Lagged(2)));
        stop.cancel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(one.next()), None);
    }
}
