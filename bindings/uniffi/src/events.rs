//! The stream of membership events (`Node.events()`), read with `await events.next()`.

use futures::lock::Mutex;

use crate::error::MemmeshError;

/// A change in the membership.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Event {
    /// A member joined, or came back.
    PeerUp {
        /// The member's node id.
        id: String,
        /// Its name.
        name: String,
        /// Its addresses (`"ip:port"`).
        addrs: Vec<String>,
    },
    /// A member is suspected of failure.
    PeerSuspect {
        /// The member's node id.
        id: String,
    },
    /// A member is down (failed and not back within the grace period, or left).
    PeerDown {
        /// The member's node id.
        id: String,
    },
    /// The leader of the current view changed.
    LeaderChanged {
        /// The new leader (this node's own id when it leads).
        leader: String,
    },
    /// The reader fell behind and `missed` events were dropped for it; read
    /// `Node.peers()` to resynchronise.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}

impl From<memmesh::Event> for Event {
    fn from(e: memmesh::Event) -> Self {
        match e {
            memmesh::Event::PeerUp { id, name, addrs } => Event::PeerUp {
                id: id.to_string(),
                name,
                addrs: addrs.iter().map(ToString::to_string).collect(),
            },
            memmesh::Event::PeerSuspect { id } => Event::PeerSuspect { id: id.to_string() },
            memmesh::Event::PeerDown { id } => Event::PeerDown { id: id.to_string() },
            memmesh::Event::LeaderChanged { leader } => Event::LeaderChanged {
                leader: leader.to_string(),
            },
            memmesh::Event::Lagged { missed } => Event::Lagged { missed },
        }
    }
}

/// Membership events from the moment `Node.events()` was called.
#[derive(Debug, uniffi::Object)]
pub struct Events {
    inner: Mutex<memmesh::Events>,
}

impl Events {
    pub(crate) fn new(inner: memmesh::Events) -> Self {
        Self {
            inner: Mutex::new(inner),
        }
    }
}

#[uniffi::export]
impl Events {
    /// The next event; throws `Closed` once the node shuts down. Cancelling the call
    /// loses no event.
    pub async fn next(&self) -> Result<Event, MemmeshError> {
        let mut events = self.inner.lock().await;
        Ok(events.next().await?.into())
    }
}
