//! Streams of transfer events (received transfers, progress) that end at shutdown.

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// An async stream of `T` from the moment it was created; `Closed` once the node shuts
/// down. A reader that falls more than the backlog behind skips ahead and the count of
/// what it missed grows (see [`Subscription::missed`]).
#[derive(Debug)]
pub struct Subscription<T> {
    rx: broadcast::Receiver<T>,
    cancel: CancellationToken,
    missed: u64,
}

impl<T: Clone> Subscription<T> {
    pub(crate) fn new(rx: broadcast::Receiver<T>, cancel: CancellationToken) -> Self {
        Self {
            rx,
            cancel,
            missed: 0,
        }
    }

    /// The next item; `Closed` once the node shuts down. Cancel-safe.
    pub async fn next(&mut self) -> Result<T> {
        loop {
            tokio::select! {
                biased;
                r = self.rx.recv() => match r {
                    Ok(item) => return Ok(item),
                    Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                    Err(broadcast::error::RecvError::Closed) => return Err(Error::closed()),
                },
                _ = self.cancel.cancelled() => return Err(Error::closed()),
            }
        }
    }

    /// The next item if one is waiting, without blocking.
    pub fn try_next(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(item) => return Some(item),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// How many items this reader missed by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
