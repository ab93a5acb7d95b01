//! Keeps an mdns-sd browse of memmesh's service type running, whatever the LAN does.
//!
//! mdns-sd delivers a browse's events through a channel of 1000, and ends the subscription
//! for good when that channel is full. So a dedicated thread reads the events as fast as
//! they come (the callback must be quick: it only queues work), and when mdns-sd ends the
//! browse anyway it is started again after a wait that backs off
//! ([`crate::discovery::restart`]). Each start makes mdns-sd replay its cache, so nothing
//! still advertised is lost; a consumer that had to drop records can ask for such a
//! replay ([`Replay`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mdns_sd::{RecvTimeoutError, ResolvedService, ServiceDaemon, ServiceEvent};
use tracing::{debug, warn};

use crate::discovery::advert::SERVICE_TYPE;
use crate::discovery::error::DiscoveryError;
use crate::discovery::restart::Restart;
use crate::error::Result;

/// How often an idle reader looks whether it was asked to stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// A browse of `_memmesh._udp.local.` on a thread of its own; stopped by
/// [`Browser::stop`] (or, without waiting, on drop).
pub struct Browser {
    daemon: ServiceDaemon,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    restarts: Arc<AtomicU64>,
    replay: Replay,
}

/// Asks a [`Browser`] to start its browse again at once, so mdns-sd replays every record
/// it still holds (for records the consumer had to drop).
#[derive(Debug, Clone, Default)]
pub struct Replay(Arc<AtomicBool>);

impl Replay {
    /// Requests a replay; the browse thread starts a new browse at its next event or poll.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn asked(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("restarts", &self.restarts())
            .finish()
    }
}

impl Browser {
    /// Browses with `daemon` and calls `on_records` with the resolved records, in batches
    /// of what arrived together, on a dedicated thread, until stopped or the daemon shuts
    /// down. It must be quick (queue them): mdns-sd waits for nobody.
    pub fn start(
        daemon: ServiceDaemon,
        on_records: impl FnMut(Vec<Box<ResolvedService>>) + Send + 'static,
    ) -> Result<Browser> {
        let (stop, stopped) = mpsc::channel();
        let restarts = Arc::new(AtomicU64::new(0));
        let replay = Replay::default();
        let thread = {
            let daemon = daemon.clone();
            let restarts = restarts.clone();
            let replay = replay.clone();
            std::thread::Builder::new()
                .name("memmesh-mdns-browse".into())
                .spawn(move || run(&daemon, &stopped, &replay, on_records, &restarts))
                .map_err(DiscoveryError::BrowseThread)?
        };
        Ok(Browser {
            daemon,
            stop: Some(stop),
            thread: Some(thread),
            restarts,
            replay,
        })
    }

    /// A handle that asks this browser to replay mdns-sd's cache.
    pub fn replay(&self) -> Replay {
        self.replay.clone()
    }

    /// How many times the browse ended and was started again.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Stops browsing and waits for the thread to finish.
    pub fn stop(mut self) {
        self.stop.take();
        let _ = self.daemon.stop_browse(SERVICE_TYPE);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Dropping the sender is the stop signal; the thread notices within STOP_POLL.
        self.stop.take();
    }
}

/// How long after a browse starts its channel is read without sleeping at most, and how
/// long it must stay quiet before the reader goes back to sleeping until the next event.
const HOT_MAX: Duration = Duration::from_millis(500);
const HOT_QUIET: Duration = Duration::from_millis(10);

/// The busy-reading phase at the start of a browse: until the first event (mdns-sd sends
/// `SearchStarted`, then its cache) and then until the channel stays quiet, at most
/// `HOT_MAX` in all.
struct Hot {
    until: Instant,
    last: Option<Instant>,
}

impl Hot {
    fn new(started: Instant) -> Self {
        Self {
            until: started + HOT_MAX,
            last: None,
        }
    }

    fn on(&self, now: Instant) -> bool {
        now < self.until
            && self
                .last
                .is_none_or(|last| now.saturating_duration_since(last) < HOT_QUIET)
    }

    fn got(&mut self, now: Instant) {
        self.last = Some(now);
    }
}

/// Whether the owner asked to stop (or is gone).
fn stop_asked(stopped: &mpsc::Receiver<()>) -> bool {
    !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty))
}

/// The record in `event`, if it is a resolved one.
fn resolved(event: ServiceEvent) -> Option<Box<ResolvedService>> {
    match event {
        ServiceEvent::ServiceResolved(svc) => Some(svc),
        _ => None,
    }
}

fn run(
    daemon: &ServiceDaemon,
    stopped: &mpsc::Receiver<()>,
    replay: &Replay,
    mut on_records: impl FnMut(Vec<Box<ResolvedService>>),
    restarts: &AtomicU64,
) {
    let mut restart = Restart::default();
    loop {
        let started = Instant::now();
        match daemon.browse(SERVICE_TYPE) {
            Ok(events) => {
                // A new browse makes mdns-sd replay its whole cache into the channel at
                // once (two events per record, in one go). So the channel is emptied in
                // one step each time (`drain` swaps its queue out under one lock), and
                // while events come the reader does not sleep between them.
                let mut hot = Hot::new(started);
                let replaying = loop {
                    if stop_asked(stopped) {
                        return;
                    }
                    if replay.asked() {
                        break true;
                    }
                    let drained: Vec<ServiceEvent> = events.drain().collect();
                    if !drained.is_empty() {
                        hot.got(Instant::now());
                        let batch: Vec<Box<ResolvedService>> =
                            drained.into_iter().filter_map(resolved).collect();
                        if !batch.is_empty() {
                            on_records(batch);
                        }
                        continue;
                    }
                    if hot.on(Instant::now()) {
                        if events.is_disconnected() && events.is_empty() {
                            break false;
                        }
                        std::thread::yield_now();
                        continue;
                    }
                    match events.recv_timeout(STOP_POLL) {
                        Ok(event) => {
                            hot.got(Instant::now());
                            if let Some(svc) = resolved(event) {
                                on_records(vec![svc]);
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break false,
                    }
                };
                if replaying {
                    // The new browse replaces this one in the daemon, which replays its
                    // cache into the new channel.
                    debug!("replaying the mDNS cache");
                    continue;
                }
            }
            Err(mdns_sd::Error::DaemonShutdown) => return,
            Err(e) => debug!(error = %e, "the mDNS browse could not start"),
        }
        if stop_asked(stopped) {
            return;
        }
        let wait = restart.ended(started, Instant::now());
        restarts.fetch_add(1, Ordering::Relaxed);
        warn!(
            after_ms = wait.as_millis() as u64,
            "the mDNS browse ended (its event queue overflowed, or the daemon refused it); \
             starting it again"
        );
        match stopped.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
