//! The receiving side of channels: queue messages, answer requests.

use bytes::Bytes;

use crate::channel::handler::{Message, Request};
use crate::channel::queue::DELIVERY_WAIT;
use crate::channel::registry::MAX_CHANNEL_NAME;
use crate::channel::service::ChannelService;
use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::wire::messages::ChannelOp;

/// Handles one channel frame from `from` (a peer, or this node itself). A message waits
/// for room in a full queue at most `DELIVERY_WAIT` (or this node's `send_timeout`, if
/// shorter), then is refused with `QuotaExceeded`.
pub async fn handle(
    shared: &ChannelService,
    from: NodeId,
    name: &str,
    op: ChannelOp,
    data: Bytes,
) -> Result<Bytes> {
    if name.is_empty() || name.len() > MAX_CHANNEL_NAME {
        return Err(Error::invalid(format!(
            "a channel name must be 1..={MAX_CHANNEL_NAME} bytes, got {}",
            name.len()
        )));
    }
    if data.len() > shared.config.max_message_size {
        return Err(Error::invalid(format!(
            "a message of {} bytes exceeds max_message_size ({} bytes)",
            data.len(),
            shared.config.max_message_size
        )));
    }
    let state = shared.channels.get(name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("node {} has no channel {name:?}", shared.id.short()),
        )
    })?;
    match op {
        ChannelOp::Send => {
            let wait = shared.config.send_timeout.min(DELIVERY_WAIT);
            state
                .deliver(
                    Message { from, data },
                    shared.config.max_message_size,
                    wait,
                    &shared.cancel,
                )
                .await?;
            Ok(Bytes::new())
        }
        ChannelOp::Request => {
            let handler = state.request_handler().ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "channel {name:?} on node {} has no request handler",
                        shared.id.short()
                    ),
                )
            })?;
            // A panicking handler becomes an error reply, not a dead task.
            let call = std::panic::AssertUnwindSafe(handler.handle(Request { from, data }));
            match futures::FutureExt::catch_unwind(call).await {
                Ok(result) => result,
                Err(_) => Err(Error::new(
                    ErrorKind::HandlerFailed,
                    format!("the request handler of channel {name:?} panicked"),
                )),
            }
        }
    }
}
