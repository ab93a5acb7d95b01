//! The per-node table of channels and each channel's incoming side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::channel::handler::{Message, MessageHandler, RequestHandler};
use crate::error::{Error, Result};

/// Longest channel name accepted, in bytes.
pub const MAX_CHANNEL_NAME: usize = 255;

/// One channel's incoming side: a bounded message queue and an optional request handler.
pub struct ChannelState {
    name: String,
    inbox_tx: mpsc::Sender<Message>,
    inbox_rx: tokio::sync::Mutex<mpsc::Receiver<Message>>,
    request_handler: RwLock<Option<Arc<dyn RequestHandler>>>,
    message_task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for ChannelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelState")
            .field("name", &self.name)
            .finish()
    }
}

impl ChannelState {
    fn new(name: &str, capacity: usize) -> Self {
        let (inbox_tx, inbox_rx) = mpsc::channel(capacity);
        Self {
            name: name.to_string(),
            inbox_tx,
            inbox_rx: tokio::sync::Mutex::new(inbox_rx),
            request_handler: RwLock::new(None),
            message_task: Mutex::new(None),
        }
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues an incoming message, waiting while the queue is full (backpressure).
    pub async fn deliver(&self, message: Message, cancel: &CancellationToken) -> Result<()> {
        tokio::select! {
            sent = self.inbox_tx.send(message) => sent.map_err(|_| Error::closed()),
            _ = cancel.cancelled() => Err(Error::closed()),
        }
    }

    /// Takes the next queued message (cancel-safe: dropping this future loses nothing).
    pub async fn next(&self, cancel: &CancellationToken) -> Result<Message> {
        let mut rx = tokio::select! {
            rx = self.inbox_rx.lock() => rx,
            _ = cancel.cancelled() => return Err(Error::closed()),
        };
        tokio::select! {
            m = rx.recv() => m.ok_or_else(Error::closed),
            _ = cancel.cancelled() => Err(Error::closed()),
        }
    }

    /// The current request handler.
    pub fn request_handler(&self) -> Option<Arc<dyn RequestHandler>> {
        self.request_handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets (or clears) the request handler.
    pub fn set_request_handler(&self, handler: Option<Arc<dyn RequestHandler>>) {
        *self
            .request_handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = handler;
    }

    /// Replaces the task that feeds messages to a [`MessageHandler`].
    pub fn set_message_task(&self, task: Option<tokio::task::AbortHandle>) {
        let old = std::mem::replace(
            &mut *self.message_task.lock().unwrap_or_else(|p| p.into_inner()),
            task,
        );
        if let Some(old) = old {
            old.abort();
        }
    }
}

/// Runs `handler` over every message of `state` until shutdown.
pub async fn drain_into(
    state: Arc<ChannelState>,
    handler: Arc<dyn MessageHandler>,
    cancel: CancellationToken,
) {
    while let Ok(message) = state.next(&cancel).await {
        handler.handle(message).await;
    }
}

/// Channels by name.
#[derive(Debug, Default)]
pub struct ChannelRegistry {
    channels: Mutex<HashMap<String, Arc<ChannelState>>>,
}

impl ChannelRegistry {
    /// The channel called `name`, created with a queue of `capacity` if new.
    pub fn get_or_create(&self, name: &str, capacity: usize) -> Result<Arc<ChannelState>> {
        if name.is_empty() || name.len() > MAX_CHANNEL_NAME {
            return Err(Error::invalid(format!(
                "a channel name must be 1..={MAX_CHANNEL_NAME} bytes, got {}",
                name.len()
            )));
        }
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(ChannelState::new(name, capacity)))
            .clone())
    }

    /// The channel called `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<ChannelState>> {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Removes every channel (shutdown).
    pub fn clear(&self) {
        let drained: Vec<_> = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in drained {
            s.set_message_task(None);
            s.set_request_handler(None);
        }
    }
}
