//! What an HTTP client may use on a node.

use std::time::Duration;

/// The largest request body accepted (no route takes a body today).
pub const MAX_BODY: usize = 4096;
/// Requests served at once; more wait for a slot up to [`QUEUE_WAIT`], then get 503.
pub const MAX_IN_FLIGHT: usize = 64;
/// Live feeds (`/events`) open at once; more are refused with 429.
pub const MAX_FEEDS: usize = 16;
/// How long a request waits for a free slot.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Events a slow feed reader may fall behind before it skips ahead.
pub const FEED_BACKLOG: usize = 256;
/// How often the feed sends the node's stats (`stats` events).
pub const TICK: Duration = Duration::from_secs(1);
