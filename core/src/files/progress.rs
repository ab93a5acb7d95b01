//! Progress of files crossing the network (issue 14): a put's replicas, a holder's pull,
//! a get fetched from another node. The events are the transfer engine's own
//! [`Progress`] (bytes done / total per peer, the direction, the rate), re-emitted on the
//! store's channel with `name` set to the file id (`blake3:<hex>`), so that every
//! binding shows them with the types it already has for `transfer.progress()`.
//!
//! The transfer engine names a stored file it serves, and so a fetch of one, after the
//! first 12 hex digits of its id ([`transfer_name`]); while a files operation runs,
//! [`Relay::during`] passes the transfer events bearing that name on, and ends with a
//! last event (everything done) for each peer the operation completed with.

use std::collections::HashMap;
use std::future::Future;

use tokio::sync::broadcast;

use super::id::FileId;
use crate::identity::NodeId;
use crate::service::{Direction, Progress};

/// How many events a slow reader of [`crate::Files::progress`] may fall behind.
pub const CHANNEL: usize = 1024;

/// The name the transfer engine gives a stored file when it serves it (and so the name
/// a fetch of it reports): `file-` and the first 12 hex digits of its id.
pub fn transfer_name(id: &FileId) -> String {
    let hex = data_encoding::HEXLOWER.encode(id.digest());
    format!("file-{}", &hex[..12])
}

/// Passes the transfer engine's progress events of one file on to the store's channel.
#[derive(Clone)]
pub(crate) struct Relay {
    /// The transfer engine's progress channel (`None`: nothing crosses the network).
    from: Option<broadcast::Sender<Progress>>,
    /// The store's channel.
    to: broadcast::Sender<Progress>,
}

impl Relay {
    pub(crate) fn new(
        from: Option<broadcast::Sender<Progress>>,
        to: broadcast::Sender<Progress>,
    ) -> Self {
        Relay { from, to }
    }

    /// Runs `op` on file `id` (`total` bytes), relaying the transfer events of `id` as
    /// they come; when `op` is done, relays what is still queued and reports each peer
    /// in the list `op` returns with everything done, in `direction`, if its last event
    /// did not say so already.
    pub(crate) async fn during<T, Fut>(
        &self,
        id: FileId,
        total: u64,
        direction: Direction,
        op: Fut,
        completed: impl FnOnce(&T) -> Vec<NodeId>,
    ) -> T
    where
        Fut: Future<Output = T>,
    {
        let name = transfer_name(&id);
        let mut last: HashMap<(NodeId, Direction), u64> = HashMap::new();
        let out = match &self.from {
            None => op.await,
            Some(from) => {
                let mut rx = from.subscribe();
                tokio::pin!(op);
                let out = loop {
                    tokio::select! {
                        biased;
                        out = &mut op => break out,
                        event = rx.recv() => match event {
                            Ok(p) => self.pass(&name, &id, p, &mut last),
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => break op.await,
                        },
                    }
                };
                loop {
                    match rx.try_recv() {
                        Ok(p) => self.pass(&name, &id, p, &mut last),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
                out
            }
        };
        for peer in completed(&out) {
            if last.get(&(peer, direction)) != Some(&total) {
                // Nobody listening is fine.
                let _ = self.to.send(Progress {
                    peer,
                    name: id.to_string(),
                    direction,
                    done: total,
                    total,
                    rate: 0.0,
                });
            }
        }
        out
    }

    fn pass(
        &self,
        name: &str,
        id: &FileId,
        p: Progress,
        last: &mut HashMap<(NodeId, Direction), u64>,
    ) {
        if p.name != name {
            return;
        }
        last.insert((p.peer, p.direction), p.done);
        // Nobody listening is fine.
        let _ = self.to.send(Progress {
            name: id.to_string(),
            ..p
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(peer: NodeId, name: &str, done: u64) -> Progress {
        Progress {
            peer,
            name: name.to_string(),
            direction: Direction::Sending,
            done,
            total: 100,
            rate: 1.0,
        }
    }

    #[tokio::test]
    async fn relays_the_file_s_events_and_completes_each_peer() {
        let id = FileId::from_digest([7; 32]);
        let other = FileId::from_digest([8; 32]);
        let (a, b) = (NodeId::from_bytes([1; 32]), NodeId::from_bytes([2; 32]));
        let from = broadcast::channel(16).0;
        let to = broadcast::channel(16).0;
        let mut rx = to.subscribe();
        let relay = Relay::new(Some(from.clone()), to);
        let sender = from.clone();
        let name = transfer_name(&id);
        let other_name = transfer_name(&other);
        let out = relay
            .during(
                id,
                100,
                Direction::Sending,
                async move {
                    sender.send(event(a, &name, 40)).unwrap();
                    sender.send(event(a, &other_name, 50)).unwrap();
                    sender.send(event(a, &name, 100)).unwrap();
                    sender.send(event(b, &name, 60)).unwrap();
                    vec![a, b]
                },
                |peers: &Vec<NodeId>| peers.clone(),
            )
            .await;
        assert_eq!(out, vec![a, b]);
        let mut got = Vec::new();
        while let Ok(p) = rx.try_recv() {
            assert_eq!(p.name, id.to_string());
            got.push((p.peer, p.done));
        }
        assert_eq!(got, vec![(a, 40), (a, 100), (b, 60), (b, 100)]);
    }

    #[tokio::test]
    async fn without_a_transfer_engine_reports_only_the_end() {
        let id = FileId::from_digest([7; 32]);
        let peer = NodeId::from_bytes([1; 32]);
        let to = broadcast::channel(16).0;
        let mut rx = to.subscribe();
        Relay::new(None, to)
            .during(id, 5, Direction::Receiving, async {}, |_| vec![peer])
            .await;
        let p = rx.try_recv().unwrap();
        assert_eq!(
            (p.peer, p.done, p.total, p.direction),
            (peer, 5, 5, Direction::Receiving)
        );
        assert!(rx.try_recv().is_err());
    }
}
