//! The application's stream of membership events.

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::membership::view::Event;

/// An async stream of [`Event`]s, from the moment it was created. A slow reader that
/// falls more than 1024 events behind gets [`Event::Lagged`] and continues from there.
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<Event>,
    cancel: CancellationToken,
}

impl Events {
    pub(crate) fn new(rx: broadcast::Receiver<Event>, cancel: CancellationToken) -> Self {
        Self { rx, cancel }
    }

    /// The next event; `Closed` once the node shuts down. Cancel-safe.
    pub async fn next(&mut self) -> Result<Event> {
        tokio::select! {
            biased;
            r = self.rx.recv() => match r {
                Ok(e) => Ok(e),
                Err(broadcast::error::RecvError::Lagged(missed)) => Ok(Event::Lagged { missed }),
                Err(broadcast::error::RecvError::Closed) => Err(Error::closed()),
            },
            _ = self.cancel.cancelled() => Err(Error::closed()),
        }
    }
}
