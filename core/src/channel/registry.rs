//! The per-node table of channels and each channel's incoming side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::channel::error::ChannelError;
use crate::channel::handler::{Message, MessageHandler, RequestHandler};
use crate::channel::queue::{NodeQueueBytes, Queue, QueueLimits};
use crate::error::{Error, Result};

/// Longest channel name accepted, in bytes.
pub const MAX_CHANNEL_NAME: usize = 255;

/// What the channels of one node share: the bytes queued in all of them, and a signal
/// that some channel made room.
#[derive(Debug, Default)]
pub struct NodeQueues {
    bytes: NodeQueueBytes,
    room: Notify,
}

impl NodeQueues {
    /// Bytes queued in all channels of the node.
    pub fn bytes(&self) -> u64 {
        self.bytes.used()
    }
}

/// One channel's incoming side: a queue bounded by count and bytes (per channel and per
/// node), and an optional request handler.
pub struct ChannelState {
    name: String,
    capacity: usize,
    queue: Mutex<Queue>,
    node: Arc<NodeQueues>,
    /// A message was queued.
    ready: Notify,
    /// A message was taken.
    room: Notify,
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

impl Drop for ChannelState {
    fn drop(&mut self) {
        let node = self.node.clone();
        self.lock_queue().clear(&node.bytes);
        node.room.notify_waiters();
    }
}

impl ChannelState {
    fn new(name: &str, capacity: usize, node: Arc<NodeQueues>) -> Self {
        Self {
            name: name.to_string(),
            capacity,
            queue: Mutex::new(Queue::default()),
            node,
            ready: Notify::new(),
            room: Notify::new(),
            request_handler: RwLock::new(None),
            message_task: Mutex::new(None),
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The channel name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages and bytes (overhead included) waiting to be read.
    pub fn queued(&self) -> (usize, u64) {
        let q = self.lock_queue();
        (q.len(), q.bytes())
    }

    /// Queues an incoming message of at most `max_message_size` bytes. While the channel
    /// (or the node's channels together) is full, waits up to `wait` for a reader to make
    /// room (backpressure), then refuses with `QuotaExceeded`: the message is queued or
    /// refused, never dropped. A `wait` too long for the clock means no deadline.
    pub async fn deliver(
        &self,
        message: Message,
        max_message_size: usize,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let limits = QueueLimits::new(self.capacity, max_message_size);
        let deadline = tokio::time::Instant::now().checked_add(wait);
        let mut message = message;
        loop {
            let room = self.room.notified();
            let node_room = self.node.room.notified();
            tokio::pin!(room, node_room);
            room.as_mut().enable();
            node_room.as_mut().enable();
            let pushed = self
                .lock_queue()
                .try_push(message, &limits, &self.node.bytes);
            let why = match pushed {
                Ok(()) => {
                    self.ready.notify_waiters();
                    return Ok(());
                }
                Err((back, why)) => {
                    message = back;
                    why
                }
            };
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut room => {}
                _ = &mut node_room => {}
                _ = cancel.cancelled() => return Err(Error::closed()),
                _ = expired => {
                    return Err(ChannelError::Full {
                        name: self.name.clone(),
                        why: why.describe(&limits),
                        wait,
                    }
                    .into())
                }
            }
        }
    }

    /// Takes the next queued message, waiting for one (cancel-safe: dropping this future
    /// loses nothing).
    pub async fn next(&self, cancel: &CancellationToken) -> Result<Message> {
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let taken = self.lock_queue().pop(&self.node.bytes);
            if let Some(m) = taken {
                self.room.notify_waiters();
                self.node.room.notify_waiters();
                return Ok(m);
            }
            tokio::select! {
                _ = &mut ready => {}
                _ = cancel.cancelled() => return Err(Error::closed()),
            }
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
    node: Arc<NodeQueues>,
}

impl ChannelRegistry {
    /// The channel called `name`, created with a queue of `capacity` if new.
    pub fn get_or_create(&self, name: &str, capacity: usize) -> Result<Arc<ChannelState>> {
        if name.is_empty() || name.len() > MAX_CHANNEL_NAME {
            return Err(ChannelError::NameLength(name.len()).into());
        }
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(ChannelState::new(name, capacity, self.node.clone())))
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

    /// What all channels of the node share (their queued bytes).
    pub fn node(&self) -> &NodeQueues {
        &self.node
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
