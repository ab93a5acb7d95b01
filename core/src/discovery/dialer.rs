//! The dial task of mDNS discovery: the I/O shell around
//! [`Admission`](crate::discovery::admission::Admission).
//!
//! It reads the records the browse thread queued, drops addresses that cannot be a node
//! on the link ([`plausible`]), offers the adverts to the admission, starts the dials it
//! hands out (each on its own task, reporting how it ended), and asks the browse to
//! replay mdns-sd's cache some time after adverts had to be dropped.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mdns_sd::{ResolvedService, ScopedIp};
use tokio::sync::Notify;
use tracing::debug;

use crate::discovery::admission::{Admission, Dial, Outcome};
use crate::discovery::advert::{self, Advert, TXT_CLUSTER, TXT_ID};
use crate::discovery::browse::Replay;
use crate::discovery::limits::{
    DIAL_TIMEOUT, MAX_ADDRS_READ_PER_RECORD, NETWORKS_REFRESH, RECORDS_PER_TURN, REPLAY_AFTER_DROPS,
};
use crate::discovery::plausible::{plausible, InterfaceNetworks, Network};
use crate::discovery::queue::NewestQueue;
use crate::discovery::rate::after;
use crate::error::ErrorKind;
use crate::node::connect;
use crate::node::shared::Shared;

/// The admission, shared by the dial task and the dials it starts.
type AdmissionRef = Arc<Mutex<Admission>>;

fn lock(a: &Mutex<Admission>) -> MutexGuard<'_, Admission> {
    a.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads records into adverts, dropping what cannot be a node on the link.
struct Intake {
    local: SocketAddr,
    interfaces: Option<Vec<String>>,
    networks: InterfaceNetworks,
    refreshed: Option<Instant>,
}

impl Intake {
    /// The networks of the interfaces mDNS runs on, re-read every `NETWORKS_REFRESH`.
    fn networks(&mut self, now: Instant) -> &InterfaceNetworks {
        let stale = self
            .refreshed
            .is_none_or(|at| now.saturating_duration_since(at) >= NETWORKS_REFRESH);
        if stale {
            self.networks = local_networks(self.interfaces.as_deref());
            self.refreshed = Some(now);
        }
        &self.networks
    }

    /// The advert in `svc`, with its plausible addresses only (each checked against the
    /// networks of the link it was heard on); `None` if it has none or is malformed.
    fn read(&mut self, svc: &ResolvedService, now: Instant) -> Option<Advert> {
        let local = self.local;
        let networks = self.networks(now);
        let ips: Vec<IpAddr> = svc
            .get_addresses()
            .iter()
            .filter_map(|a| {
                let heard_on: Vec<&str> = match a {
                    ScopedIp::V4(v4) => {
                        v4.interface_ids().iter().map(|i| i.name.as_str()).collect()
                    }
                    ScopedIp::V6(v6) => vec![v6.scope_id().name.as_str()],
                    _ => Vec::new(),
                };
                let ip = a.to_ip_addr();
                plausible(ip, local, &networks.of(&heard_on)).then_some(ip)
            })
            .take(MAX_ADDRS_READ_PER_RECORD)
            .collect();
        match advert::parse(
            svc.get_property_val_str(TXT_ID),
            svc.get_property_val_str(TXT_CLUSTER),
            svc.port,
            ips,
        ) {
            Ok(ad) => Some(ad),
            Err(e) => {
                debug!(name = %svc.fullname, error = %e.chain(), "ignoring mDNS record");
                None
            }
        }
    }
}

/// The networks of the interfaces named (all interfaces if `None`); empty if they cannot
/// be listed.
fn local_networks(names: Option<&[String]>) -> InterfaceNetworks {
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return InterfaceNetworks::default();
    };
    InterfaceNetworks(
        interfaces
            .into_iter()
            .filter(|i| names.is_none_or(|n| n.contains(&i.name)))
            .map(|i| {
                let net = match i.addr {
                    if_addrs::IfAddr::V4(a) => Network::new(IpAddr::V4(a.ip), a.prefixlen),
                    if_addrs::IfAddr::V6(a) => Network::new(IpAddr::V6(a.ip), a.prefixlen),
                };
                (i.name, net)
            })
            .collect(),
    )
}

/// The task that turns records into dials.
pub(crate) struct DialTask {
    admission: AdmissionRef,
    records: Arc<NewestQueue<Box<ResolvedService>>>,
    wake: Arc<Notify>,
    /// Asks the browse to replay mdns-sd's cache.
    replay: Replay,
    /// Adverts or records dropped (a full waiting set or queue) since the last replay.
    dropped: u64,
    /// The record queue's drop count already accounted for.
    records_dropped: u64,
    last_replay: Instant,
    intake: Intake,
}

impl DialTask {
    /// The task for `shared`'s node, reading `records` (pushed with a `wake`).
    pub(crate) fn new(
        shared: &Shared,
        records: Arc<NewestQueue<Box<ResolvedService>>>,
        wake: Arc<Notify>,
        replay: Replay,
    ) -> Self {
        let now = Instant::now();
        Self {
            admission: Arc::new(Mutex::new(Admission::new(
                shared.id,
                shared.hello.key.tag(),
                now,
            ))),
            records,
            wake,
            replay,
            dropped: 0,
            records_dropped: 0,
            last_replay: now,
            intake: Intake {
                local: shared.local_addr,
                interfaces: shared.config.mdns_interfaces.clone(),
                networks: InterfaceNetworks::default(),
                refreshed: None,
            },
        }
    }

    /// When to ask for a replay: some time after the last one, if anything was dropped.
    fn replay_at(&mut self) -> Option<Instant> {
        let total = self.records.dropped();
        self.dropped = self
            .dropped
            .saturating_add(total.saturating_sub(self.records_dropped));
        self.records_dropped = total;
        (self.dropped > 0).then(|| after(self.last_replay, REPLAY_AFTER_DROPS))
    }

    /// Reads queued records, starts the dials the admission allows, and sleeps until a
    /// record arrives, a dial ends, or the admission may allow more.
    pub(crate) async fn run(mut self, shared: Arc<Shared>) {
        loop {
            let batch = self.records.take(RECORDS_PER_TURN);
            let more = !self.records.is_empty();
            if !batch.is_empty() {
                let now = Instant::now();
                let adverts: Vec<Advert> = batch
                    .iter()
                    .filter_map(|svc| self.intake.read(svc, now))
                    .collect();
                let mut a = lock(&self.admission);
                for ad in adverts {
                    let id = ad.id;
                    let connected = shared.pool.live(&id).is_some();
                    let verdict = a.offer(ad, connected, now);
                    debug!(peer = %id.short(), ?verdict, "mDNS record");
                }
            }
            let now = Instant::now();
            let (dials, wake_at) = {
                let mut a = lock(&self.admission);
                let mut dials = Vec::new();
                while let Some(d) = a.next(now, |id| shared.pool.live(id).is_some()) {
                    dials.push(d);
                }
                self.dropped = self.dropped.saturating_add(a.take_dropped());
                (dials, a.next_wake(now))
            };
            let replay_at = self.replay_at();
            if replay_at.is_some_and(|at| at <= now) {
                debug!(dropped = self.dropped, "asking mDNS to replay its cache");
                self.replay.request();
                self.dropped = 0;
                self.last_replay = now;
            }
            let wake_at = match (wake_at, self.replay_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for d in dials {
                shared.runtime.handle().spawn(dial(
                    shared.clone(),
                    self.admission.clone(),
                    self.wake.clone(),
                    d,
                ));
            }
            if more {
                // Records still wait: let other tasks run, then read on.
                tokio::task::yield_now().await;
                if shared.cancel.is_cancelled() {
                    return;
                }
                continue;
            }
            // Never spin: a timer at least a little in the future.
            let floor = tokio::time::Instant::now() + std::time::Duration::from_millis(10);
            let timer = async {
                match wake_at {
                    Some(at) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(at).max(floor))
                            .await
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = timer => {}
            }
        }
    }
}

/// Dials one advert's addresses in turn until one connects, and reports the outcome.
async fn dial(shared: Arc<Shared>, admission: AdmissionRef, wake: Arc<Notify>, d: Dial) {
    let per_addr = DIAL_TIMEOUT.min(shared.config.connect_timeout);
    let mut outcome = Outcome::default();
    for addr in &d.addrs {
        if shared.cancel.is_cancelled() {
            break;
        }
        if shared.pool.live(&d.id).is_some() {
            break;
        }
        match tokio::time::timeout(per_addr, connect::dial(&shared, *addr, Some(d.id))).await {
            Ok(Ok(_)) => {
                debug!(peer = %d.id.short(), %addr, "connected to a peer found by mDNS");
                outcome.reached = Some(*addr);
                break;
            }
            Ok(Err(e)) if e.kind() == ErrorKind::Unauthorized => {
                debug!(peer = %d.id.short(), %addr, error = %e.chain(), "a node answered for an mDNS record that is not its own");
                outcome.refused.push(*addr);
            }
            Ok(Err(e)) => {
                debug!(peer = %d.id.short(), %addr, error = %e.chain(), "mDNS peer not reachable");
                outcome.failed.push(*addr);
            }
            Err(_) => {
                debug!(peer = %d.id.short(), %addr, "mDNS peer did not answer in {per_addr:?}");
                outcome.failed.push(*addr);
            }
        }
    }
    outcome.connected = shared.pool.live(&d.id).is_some();
    if outcome.reached.is_none() && !outcome.connected {
        debug!(peer = %d.id.short(), "a peer found by mDNS could not be reached");
    }
    lock(&admission).finished(&d.id, &outcome, Instant::now());
    wake.notify_one();
}
