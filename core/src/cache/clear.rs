//! Clearing a bucket on every member (Redis's `FLUSHDB`, ADR 0021): one `Clear` request
//! per member, stamped once with this node's clock, retried for the members that did not
//! answer until the request timeout.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tracing::debug;

use crate::cache::bucket::Bucket;
use crate::cache::client::{call_within, check_open, unexpected, WRITE_ATTEMPT};
use crate::cache::messages::{Request, Response};
use crate::cache::retry::{Next, Retry};
use crate::cache::service::CacheService;
use crate::cache::CacheError;
use crate::error::{Error, Result};
use crate::identity::NodeId;

/// Clears `b` on every member of this node's routing table: what was written before the
/// clear's stamp is dropped everywhere, what is written after it stays. Returns once every
/// member has cleared; fails (the kind of the last failure) if one has not by the request
/// timeout, having cleared those that answered.
pub(crate) async fn clear(shared: &Arc<CacheService>, b: &Arc<Bucket>) -> Result<()> {
    check_open(shared)?;
    let version = shared.cache.hlc.now();
    let mut retry = Retry::new(Instant::now(), shared.config.request_timeout);
    let mut done: BTreeSet<NodeId> = BTreeSet::new();
    loop {
        let todo: Vec<NodeId> = shared
            .cache
            .table()
            .members
            .iter()
            .filter(|m| !done.contains(*m))
            .copied()
            .collect();
        // A client's table is empty until it knows a member (ADR 0024): nobody cleared.
        let mut last_err: Option<Error> = (todo.is_empty() && done.is_empty())
            .then(|| CacheError::NoOwnerAnswered(b.name.clone()).into());
        if todo.is_empty() && last_err.is_none() {
            return Ok(());
        }
        let asks = todo.into_iter().map(|m| {
            let req = Request::Clear {
                bucket: b.name.clone(),
                version,
            };
            async move { (m, call_within(shared, m, req, WRITE_ATTEMPT).await) }
        });
        for (m, reply) in futures::future::join_all(asks).await {
            match reply {
                Ok(Response::Done) => {
                    done.insert(m);
                }
                Ok(_) => last_err = Some(unexpected("clear")),
                Err(e) if Retry::is_final(e.kind()) => return Err(e),
                Err(e) => {
                    debug!(peer = %m.short(), error = %e, "cache clear not acknowledged yet");
                    last_err = Some(e);
                }
            }
        }
        if let Some(e) = last_err {
            match retry.after_failure(Instant::now()) {
                Next::GiveUp => return Err(CacheError::NotAcknowledged { source: e }.into()),
                Next::Wait(pause) => tokio::time::sleep(pause).await,
            }
        }
    }
}
