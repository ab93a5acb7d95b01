//! Membership on the wire: SWIM packets and full-state syncs sent to peers, and the
//! membership frames peers send served (handed to the [`Membership`](crate::membership::handle::Membership) handle).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use foca::Member;
use tracing::trace;

use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::membership::codec::decode_sync;
use crate::membership::handle::Membership;
use crate::membership::member::MemberId;
use crate::node::connect::{connection, connection_within};
use crate::node::shared::Shared;
use crate::service::{BoxFuture, FrameHandler, ServiceError};
use crate::transport::rpc::call;
use crate::transport::trust::Trust;
use crate::wire::codec::encode_bulk;
use crate::wire::messages::MembershipOp;
use crate::wire::{Service, StreamHeader};

/// Longest dial a SWIM packet may wait for.
const SWIM_DIAL: Duration = Duration::from_secs(2);

fn header(op: MembershipOp) -> StreamHeader {
    StreamHeader::new(Service::Membership { op })
}

/// Sends one SWIM packet; failures are normal (that is what SWIM detects) and only logged.
pub(crate) async fn send_packet(shared: Arc<Shared>, to: MemberId, data: Bytes) {
    let conn = match shared.pool.live(&to.id) {
        Some(c) => c,
        None => {
            if shared.pool.is_dialling(&to.id) {
                return; // a dial is already under way; SWIM tolerates a lost packet
            }
            let max_dial = shared.config.connect_timeout.min(SWIM_DIAL);
            match connection_within(&shared, to.id, max_dial).await {
                Ok(c) => c,
                Err(e) => {
                    trace!(peer = %to.id.short(), error = %e, "SWIM packet not sent");
                    return;
                }
            }
        }
    };
    if let Err(e) = call(&conn, &header(MembershipOp::Packet), &data, shared.limits()).await {
        trace!(peer = %to.id.short(), error = %e, "SWIM packet not delivered");
    }
}

/// Exchanges full states with `peer`: sends ours, returns theirs.
pub(crate) async fn sync_with(
    shared: &Arc<Shared>,
    peer: NodeId,
    ours: &[Member<MemberId>],
) -> Result<Vec<Member<MemberId>>> {
    let conn = connection(shared, peer).await?;
    let body = encode_bulk(&ours).map_err(Error::from)?;
    let reply = call(&conn, &header(MembershipOp::Sync), &body, shared.limits()).await?;
    decode_sync(&reply)
}

/// Serves a membership frame from the authenticated peer `from`.
pub(crate) async fn serve(
    membership: &Membership,
    from: NodeId,
    op: MembershipOp,
    body: Bytes,
) -> Result<Bytes> {
    match op {
        MembershipOp::Packet => {
            membership.packet(from, body)?;
            Ok(Bytes::new())
        }
        MembershipOp::Sync => {
            let ours = membership.sync(from, &body).await?;
            Ok(Bytes::from(encode_bulk(&ours)?))
        }
    }
}

impl FrameHandler for Membership {
    fn handle(
        self: Arc<Self>,
        from: NodeId,
        _trust: Trust,
        service: Service,
        body: Bytes,
    ) -> BoxFuture<'static, Result<Bytes>> {
        Box::pin(async move {
            match service {
                Service::Membership { op } => serve(&self, from, op, body).await,
                _ => Err(ServiceError::NotMine("membership").into()),
            }
        })
    }
}
