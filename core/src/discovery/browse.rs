//! Keeps an mdns-sd browse of memmesh's service type running, whatever the LAN does.
//!
//! mdns-sd delivers a browse's events through a channel of 1000, and ends the subscription
//! for good when that channel is full. So a dedicated thread reads the events as fast as
//! they come (the callback must be quick: it only queues work), and when mdns-sd ends the
//! browse anyway it is started again after a wait that backs off
//! ([`crate::discovery::restart`]); each start replays mdns-sd's cache, so nothing that is
//! still advertised is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mdns_sd::{RecvTimeoutError, ResolvedService, ServiceDaemon, ServiceEvent};
use tracing::{debug, warn};

use crate::discovery::advert::SERVICE_TYPE;
use crate::discovery::restart::Restart;
use crate::error::{Error, ErrorKind, Result};

/// How often an idle reader looks whether it was asked to stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// A browse of `_memmesh._udp.local.` on a thread of its own; stopped by
/// [`Browser::stop`] (or, without waiting, on drop).
pub struct Browser {
    daemon: ServiceDaemon,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    restarts: Arc<AtomicU64>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("restarts", &self.restarts())
            .finish()
    }
}

impl Browser {
    /// Browses with `daemon` and calls `on_record` with every resolved record, on a
    /// dedicated thread, until stopped or the daemon shuts down.
    pub fn start(
        daemon: ServiceDaemon,
        on_record: impl FnMut(Box<ResolvedService>) + Send + 'static,
    ) -> Result<Browser> {
        let (stop, stopped) = mpsc::channel();
        let restarts = Arc::new(AtomicU64::new(0));
        let thread = {
            let daemon = daemon.clone();
            let restarts = restarts.clone();
            std::thread::Builder::new()
                .name("memmesh-mdns-browse".into())
                .spawn(move || run(&daemon, &stopped, on_record, &restarts))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("starting the mDNS browse thread: {e}"),
                    )
                })?
        };
        Ok(Browser {
            daemon,
            stop: Some(stop),
            thread: Some(thread),
            restarts,
        })
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

/// Whether the owner asked to stop (or is gone).
fn stop_asked(stopped: &mpsc::Receiver<()>) -> bool {
    !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty))
}

fn run(
    daemon: &ServiceDaemon,
    stopped: &mpsc::Receiver<()>,
    mut on_record: impl FnMut(Box<ResolvedService>),
    restarts: &AtomicU64,
) {
    let mut restart = Restart::default();
    loop {
        let started = Instant::now();
        match daemon.browse(SERVICE_TYPE) {
            Ok(events) => loop {
                if stop_asked(stopped) {
                    return;
                }
                match events.recv_timeout(STOP_POLL) {
                    Ok(ServiceEvent::ServiceResolved(svc)) => on_record(svc),
                    Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            },
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
