//! The anchor of part (a): two `automerge` crate documents (the version core uses)
//! syncing through Automerge's own sync protocol in memory, in one thread: no network,
//! no node, no persistence. Every message is encoded and decoded, as between two nodes.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use automerge::sync::{Message, State, SyncDoc};
use automerge::AutoCommit;

/// Most messages one in-memory sync may take before it is declared stuck.
const MAX_MESSAGES: usize = 10_000;

/// What one in-memory sync took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncFigures {
    /// From the first message generated until neither side had more to send.
    pub time: Duration,
    /// Encoded sync message bytes, both directions.
    pub bytes: u64,
    /// Messages, both directions.
    pub messages: u64,
}

/// Loads `saved` (a document in the standard Automerge format) into one document and
/// syncs an empty document with it in memory until neither has more to send; checks that
/// both end with the same heads. Loading is not timed.
pub fn sync_in_memory(saved: &[u8]) -> Result<SyncFigures> {
    let mut full = AutoCommit::load(saved).context("loading the source document")?;
    let mut fresh = AutoCommit::new();
    let (mut full_state, mut fresh_state) = (State::new(), State::new());
    let (mut bytes, mut messages) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        let mut quiet = true;
        for forward in [true, false] {
            let sent = if forward {
                pass(&mut full, &mut full_state, &mut fresh, &mut fresh_state)?
            } else {
                pass(&mut fresh, &mut fresh_state, &mut full, &mut full_state)?
            };
            if let Some(len) = sent {
                quiet = false;
                bytes += len as u64;
                messages += 1;
            }
        }
        if quiet {
            break;
        }
        if messages as usize > MAX_MESSAGES {
            bail!("the in-memory sync sent {messages} messages without finishing");
        }
    }
    let time = start.elapsed();
    ensure!(
        full.get_heads() == fresh.get_heads(),
        "the in-memory sync ended with different heads"
    );
    Ok(SyncFigures {
        time,
        bytes,
        messages,
    })
}

/// One message from `from` to `to`, encoded and decoded on the way; its length, `None`
/// if `from` had nothing to send.
fn pass(
    from: &mut AutoCommit,
    from_state: &mut State,
    to: &mut AutoCommit,
    to_state: &mut State,
) -> Result<Option<usize>> {
    let Some(msg) = from.sync().generate_sync_message(from_state) else {
        return Ok(None);
    };
    let encoded = msg.encode();
    let decoded = Message::decode(&encoded).context("decoding a sync message")?;
    to.sync()
        .receive_sync_message(to_state, decoded)
        .context("applying a sync message")?;
    Ok(Some(encoded.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ROOT;

    #[test]
    fn an_empty_document_catches_up_in_memory() {
        let mut doc = AutoCommit::new();
        for i in 0..50i64 {
            doc.put(ROOT, format!("k{}", i % 7), i).unwrap();
            doc.commit();
        }
        let figures = sync_in_memory(&doc.save()).unwrap();
        assert!(figures.messages >= 2, "{figures:?}");
        assert!(figures.bytes > 0, "{figures:?}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(sync_in_memory(b"not automerge").is_err());
    }
}
