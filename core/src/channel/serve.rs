//! The receiving side of channels: queue messages, answer requests.

use bytes::Bytes;

use crate::channel::error::ChannelError;
use crate::channel::handler::{Message, Request};
use crate::channel::queue::DELIVERY_WAIT;
use crate::channel::registry::MAX_CHANNEL_NAME;
use crate::channel::service::ChannelService;
use crate::error::Result;
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
        return Err(ChannelError::NameLength(name.len()).into());
    }
    if data.len() > shared.config.max_message_size {
        return Err(ChannelError::ReceivedTooLarge {
            len: data.len(),
            max: shared.config.max_message_size,
        }
        .into());
    }
    let state = shared
        .channels
        .get(name)
        .ok_or_else(|| ChannelError::NoChannel {
            node: shared.id.short(),
            name: name.to_string(),
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
            let handler =
                state
                    .request_handler()
                    .ok_or_else(|| ChannelError::NoRequestHandler {
                        name: name.to_string(),
                        node: shared.id.short(),
                    })?;
            // A panicking handler becomes an error reply, not a dead task.
            let call = std::panic::AssertUnwindSafe(handler.handle(Request { from, data }));
            match futures::FutureExt::catch_unwind(call).await {
                Ok(result) => result,
                Err(_) => Err(ChannelError::HandlerPanicked {
                    name: name.to_string(),
                }
                .into()),
            }
        }
    }
}
