//! The receiving side of channels: queue messages, answer requests.

use std::sync::Arc;

use bytes::Bytes;

use crate::channel::handler::{Message, Request};
use crate::error::{Error, ErrorKind, Result};
use crate::identity::NodeId;
use crate::node::shared::Shared;
use crate::wire::messages::ChannelOp;

/// Handles one channel frame from `from`.
pub async fn handle(
    shared: &Arc<Shared>,
    from: NodeId,
    name: &str,
    op: ChannelOp,
    data: Bytes,
) -> Result<Bytes> {
    let state = shared.channels.get(name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("node {} has no channel {name:?}", shared.id.short()),
        )
    })?;
    match op {
        ChannelOp::Send => {
            state
                .deliver(Message { from, data }, &shared.cancel)
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
