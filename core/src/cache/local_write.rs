//! Writes whose only target is this node (a lone member, or `replicas` 1 and this node
//! the owner): applied to the bucket's store at once, as the cache service would apply
//! them, without a write plan, a request to this node's own service, wire copies of the
//! values or a forward plan. Same outcome as the general path (`client::write_entries`):
//! the same store checks and quota charge, and an entry that loses to a newer version
//! held (or to a clear, `Store::clear_before`) is stamped again past it.

use std::sync::Arc;

use crate::cache::bucket::Bucket;
use crate::cache::error::CacheError;
use crate::cache::hlc::wall_ms;
use crate::cache::plan::MAX_RESTAMPS;
use crate::cache::routing::only_target;
use crate::cache::service::CacheService;
use crate::cache::store::{Charge, EntryView};
use crate::error::{Error, Result};

/// Applies `entries` here if this node is the only target of every one of them, and
/// returns, per entry, whether a live value existed before (`Ok(Err(entries))`, handing
/// them back untouched, when another node must have some of them). Entries applied
/// before an error (a quota exceeded) stay applied, as with the general path.
pub(crate) fn write_alone(
    shared: &Arc<CacheService>,
    b: &Arc<Bucket>,
    entries: Vec<EntryView>,
) -> Result<std::result::Result<Vec<bool>, Vec<EntryView>>> {
    {
        let (table, previous) = (shared.cache.table(), shared.cache.previous());
        let alone = entries.iter().all(|e| {
            only_target(
                &shared.id,
                &table,
                previous.as_deref(),
                e.partition,
                b.options.replicas,
            )
        });
        if !alone || entries.is_empty() {
            return Ok(Err(entries));
        }
    }
    let now = wall_ms();
    let mut existed = Vec::with_capacity(entries.len());
    let mut store = b.store();
    store.warm(entries.iter().map(|e| e.key.as_str()));
    for mut e in entries {
        let mut restamps = 0;
        loop {
            let applied = store.apply(&e, now, Charge::Enforce)?;
            match applied.superseded_by {
                Some(v) if restamps < MAX_RESTAMPS => {
                    restamps += 1;
                    e.version = shared.cache.hlc.after_at(v, now).map_err(|source| {
                        Error::from(CacheError::CannotWritePast {
                            owner: shared.id.short().to_string(),
                            key: e.key.clone(),
                            source,
                        })
                    })?;
                }
                _ => {
                    existed.push(applied.existed);
                    break;
                }
            }
        }
    }
    Ok(Ok(existed))
}
