//! Test hooks of transfers (damaging a chunk on the wire, a shorter idle timeout),
//! compiled only for tests (`cfg(test)`, or the `test-hooks` feature this crate's own
//! tests enable through its dev-dependency on itself): never in release builds or bindings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::transfer::service::TransferService;
use crate::transfer::Transfer;

/// The state of the hooks, held by the node's transfer state.
#[derive(Debug)]
pub(crate) struct Hooks {
    /// The index of a chunk to damage once on the wire (`u64::MAX`: none).
    corrupt_chunk: AtomicU64,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            corrupt_chunk: AtomicU64::new(u64::MAX),
        }
    }
}

impl Transfer {
    /// Test hook: damages chunk `index` of the next transfer sent, once, after its hash was
    /// computed, as corruption on the wire would. Only with the `test-hooks` feature.
    #[doc(hidden)]
    pub fn corrupt_chunk_once_for_tests(&self, index: u64) {
        self.shared
            .transfers
            .hooks
            .corrupt_chunk
            .store(index, Ordering::SeqCst);
    }

    /// Test hook: lowers the idle timeout of this node's transfer streams
    /// ([`crate::transfer::limits::IDLE_TIMEOUT`]). Only with the `test-hooks` feature.
    #[doc(hidden)]
    pub fn set_idle_timeout_for_tests(&self, idle: Duration) {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        self.shared.transfers.idle_ms.store(ms, Ordering::Relaxed);
    }
}

/// The hook of [`Transfer::corrupt_chunk_once_for_tests`], applied to chunk `index` on its
/// way out: returns `data`, damaged if the hook asks for this chunk (the hook is then spent).
pub(crate) fn damaged(shared: &TransferService, index: u64, data: Bytes) -> Bytes {
    let hook = &shared.transfers.hooks.corrupt_chunk;
    if data.is_empty()
        || hook
            .compare_exchange(index, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return data;
    }
    let mut damaged = data.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x5a;
    Bytes::from(damaged)
}
