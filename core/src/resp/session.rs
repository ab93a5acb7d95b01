//! What one RESP connection remembers between commands.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::resp::pubsub::{Delivery, Mailbox};
use crate::resp::write::Protocol;

/// The state of one client connection.
#[derive(Debug)]
pub struct Session {
    /// `CLIENT ID`.
    pub id: u64,
    /// The peer's address.
    pub peer: SocketAddr,
    /// RESP2 until `HELLO 3`.
    pub proto: Protocol,
    /// Whether `AUTH` succeeded (always true when no password is set).
    pub authed: bool,
    /// The selected database (`SELECT`).
    pub db: u32,
    /// `CLIENT SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME` / `LIB-VER`.
    pub lib: (Option<Bytes>, Option<Bytes>),
    /// The channels subscribed to (`SUBSCRIBE`).
    pub channels: BTreeSet<Bytes>,
    /// The patterns subscribed to (`PSUBSCRIBE`).
    pub patterns: BTreeSet<Bytes>,
    /// The sharded channels subscribed to (`SSUBSCRIBE`).
    pub shards: BTreeSet<Bytes>,
    /// Where published messages for this client go (its connection writes them).
    pub mailbox: Mailbox,
}

impl Session {
    /// A new session for a client at `peer`, its published messages sent to `deliveries`.
    pub fn new(
        id: u64,
        peer: SocketAddr,
        needs_auth: bool,
        deliveries: mpsc::Sender<Delivery>,
    ) -> Self {
        Self {
            id,
            peer,
            proto: Protocol::Resp2,
            authed: !needs_auth,
            db: 0,
            name: None,
            lib: (None, None),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shards: BTreeSet::new(),
            mailbox: Mailbox::new(deliveries),
        }
    }

    /// How many channels and patterns this client is subscribed to (the count
    /// `SUBSCRIBE` and `PSUBSCRIBE` replies carry; sharded channels are counted apart).
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// How many sharded channels this client is subscribed to (the count `SSUBSCRIBE`
    /// replies carry).
    pub fn shard_subscriptions(&self) -> usize {
        self.shards.len()
    }

    /// Whether the client subscribes to anything: a RESP2 client then may only run
    /// pub/sub commands and `PING`.
    pub fn in_pubsub(&self) -> bool {
        self.subscriptions() + self.shard_subscriptions() > 0
    }
}
