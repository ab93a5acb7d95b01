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
    /// Chunk bytes this node streamed (sent or served), in all.
    streamed: AtomicU64,
    /// Once `streamed` passes this, the connection to the receiving peer is closed, once
    /// (`u64::MAX`: never).
    cut_after: AtomicU64,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            corrupt_chunk: AtomicU64::new(u64::MAX),
            streamed: AtomicU64::new(0),
            cut_after: AtomicU64::new(u64::MAX),
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

impl Transfer {
    /// Test hook: the chunk bytes this node streamed so far (sent, or served to a fetch),
    /// resumed chunks not included. Only with the `test-hooks` feature.
    #[doc(hidden)]
    pub fn streamed_bytes_for_tests(&self) -> u64 {
        self.shared.transfers.hooks.streamed.load(Ordering::SeqCst)
    }

    /// Test hook: once this node has streamed more than `bytes` chunk bytes in all (see
    /// [`Transfer::streamed_bytes_for_tests`]), closes its connection to the peer it
    /// streams to, once, as a lost link would. Only with the `test-hooks` feature.
    #[doc(hidden)]
    pub fn cut_connection_after_for_tests(&self, bytes: u64) {
        self.shared
            .transfers
            .hooks
            .cut_after
            .store(bytes, Ordering::SeqCst);
    }
}

/// Counts `len` chunk bytes streamed to `peer`, and closes the connection to it if the
/// hook of [`Transfer::cut_connection_after_for_tests`] asks for it now.
pub(crate) fn streamed(shared: &TransferService, peer: &crate::identity::NodeId, len: u64) {
    let hooks = &shared.transfers.hooks;
    let total = hooks.streamed.fetch_add(len, Ordering::SeqCst) + len;
    let cut = hooks.cut_after.load(Ordering::SeqCst);
    if total > cut
        && hooks
            .cut_after
            .compare_exchange(cut, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        if let Some(conn) = shared.node.pool.live(peer) {
            conn.close(0u32.into(), b"cut by a test hook");
        }
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
