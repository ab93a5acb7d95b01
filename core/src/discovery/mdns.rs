//! mDNS advertisement and browsing with `mdns-sd`: the I/O shell around
//! [`Admission`](crate::discovery::admission::Admission).
//!
//! The daemon can be restricted to named interfaces (`mdns_interfaces`), so tests and
//! benchmarks keep multicast on loopback or inside network namespaces they create.
//! The browse thread ([`Browser`]) only moves records into a bounded queue; a task on the
//! node runtime reads them, drops addresses that cannot be a node on the link
//! ([`plausible`]), offers the adverts to the admission, and starts the dials it hands
//! out, each on its own task, reporting how they ended.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mdns_sd::{IfKind, ResolvedService, ServiceDaemon, ServiceInfo};
use tokio::sync::Notify;
use tracing::debug;

use crate::discovery::admission::{Admission, Dial, Outcome};
use crate::discovery::advert::{self, Advert, SERVICE_TYPE, TXT_CLUSTER, TXT_ID};
use crate::discovery::browse::Browser;
use crate::discovery::limits::{
    DIAL_TIMEOUT, MAX_ADDRS_READ_PER_RECORD, MAX_RECORDS_QUEUED, NETWORKS_REFRESH, RECORDS_PER_TURN,
};
use crate::discovery::plausible::{plausible, Network, Networks};
use crate::discovery::queue::NewestQueue;
use crate::error::{Error, ErrorKind, Result};
use crate::node::connect;
use crate::node::shared::Shared;

/// A running mDNS responder and browser; stopped by [`Mdns::stop`] or on drop.
pub struct Mdns {
    daemon: ServiceDaemon,
    browser: Mutex<Option<Browser>>,
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mdns")
    }
}

fn mdns_error(e: mdns_sd::Error) -> Error {
    Error::new(ErrorKind::Io, format!("mDNS: {e}"))
}

/// The admission, shared by the dial task and the dials it starts.
type AdmissionRef = Arc<Mutex<Admission>>;

fn lock(a: &Mutex<Admission>) -> MutexGuard<'_, Admission> {
    a.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mdns {
    /// Advertises this node and dials the nodes of the same cluster that appear.
    pub fn start(shared: &Arc<Shared>) -> Result<Mdns> {
        let daemon = ServiceDaemon::new().map_err(mdns_error)?;
        if let Some(names) = &shared.config.mdns_interfaces {
            daemon.disable_interface(IfKind::All).map_err(mdns_error)?;
            for name in names {
                daemon
                    .enable_interface(IfKind::Name(name.clone()))
                    .map_err(mdns_error)?;
            }
        }
        let port = shared.local_addr.port();
        let ip = shared.local_addr.ip();
        let instance = shared.id.to_string();
        let host = format!("memmesh-{}.local.", shared.id.short());
        let props = advert::txt_properties(&shared.id, shared.hello.key.tag(), port);
        let ips: Vec<IpAddr> = if ip.is_unspecified() {
            vec![]
        } else {
            vec![ip]
        };
        let mut info = ServiceInfo::new(SERVICE_TYPE, &instance, &host, &ips[..], port, &props[..])
            .map_err(mdns_error)?;
        if ips.is_empty() {
            info = info.enable_addr_auto();
        }
        // The instance name is our 52-character NodeId: no conflict to probe for, and
        // probing would delay the first answer by 750 ms.
        info.set_requires_probe(false);
        daemon.register(info).map_err(mdns_error)?;

        let records: Arc<NewestQueue<Box<ResolvedService>>> =
            Arc::new(NewestQueue::new(MAX_RECORDS_QUEUED));
        let wake = Arc::new(Notify::new());
        let browser = {
            let (records, wake) = (records.clone(), wake.clone());
            Browser::start(daemon.clone(), move |svc| {
                records.push(svc);
                wake.notify_one();
            })?
        };
        let task = DialTask {
            admission: Arc::new(Mutex::new(Admission::new(
                shared.id,
                shared.hello.key.tag(),
                Instant::now(),
            ))),
            records,
            wake,
            intake: Intake {
                local: shared.local_addr,
                interfaces: shared.config.mdns_interfaces.clone(),
                networks: Networks::default(),
                refreshed: None,
            },
        };
        shared.runtime.handle().spawn(task.run(shared.clone()));
        Ok(Mdns {
            daemon,
            browser: Mutex::new(Some(browser)),
        })
    }

    /// Withdraws the advertisement and stops browsing and the daemon thread.
    pub fn stop(&self) {
        let browser = self
            .browser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(b) = browser {
            b.stop();
        }
        if let Ok(status) = self.daemon.shutdown() {
            // Wait (briefly) for the daemon thread to finish so no thread outlives the node.
            let _ = status.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// Reads records into adverts, dropping what cannot be a node on the link.
struct Intake {
    local: SocketAddr,
    interfaces: Option<Vec<String>>,
    networks: Networks,
    refreshed: Option<Instant>,
}

impl Intake {
    /// The networks of the interfaces mDNS runs on, re-read every `NETWORKS_REFRESH`.
    fn networks(&mut self, now: Instant) -> &Networks {
        let stale = self
            .refreshed
            .is_none_or(|at| now.saturating_duration_since(at) >= NETWORKS_REFRESH);
        if stale {
            self.networks = local_networks(self.interfaces.as_deref());
            self.refreshed = Some(now);
        }
        &self.networks
    }

    /// The advert in `svc`, with its plausible addresses only; `None` if it has none or
    /// is malformed.
    fn read(&mut self, svc: &ResolvedService, now: Instant) -> Option<Advert> {
        let local = self.local;
        let networks = self.networks(now);
        let ips: Vec<IpAddr> = svc
            .get_addresses()
            .iter()
            .map(|a| a.to_ip_addr())
            .filter(|ip| plausible(*ip, local, networks))
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
                debug!(name = %svc.fullname, error = %e, "ignoring mDNS record");
                None
            }
        }
    }
}

/// The networks of the interfaces named (all interfaces if `None`); empty if they cannot
/// be listed.
fn local_networks(names: Option<&[String]>) -> Networks {
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Networks::default();
    };
    Networks(
        interfaces
            .into_iter()
            .filter(|i| names.is_none_or(|n| n.contains(&i.name)))
            .map(|i| match i.addr {
                if_addrs::IfAddr::V4(a) => Network::new(IpAddr::V4(a.ip), a.prefixlen),
                if_addrs::IfAddr::V6(a) => Network::new(IpAddr::V6(a.ip), a.prefixlen),
            })
            .collect(),
    )
}

/// The task that turns records into dials.
struct DialTask {
    admission: AdmissionRef,
    records: Arc<NewestQueue<Box<ResolvedService>>>,
    wake: Arc<Notify>,
    intake: Intake,
}

impl DialTask {
    /// Reads queued records, starts the dials the admission allows, and sleeps until a
    /// record arrives, a dial ends, or the admission may allow more.
    async fn run(mut self, shared: Arc<Shared>) {
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
                (dials, a.next_wake(now))
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
            Ok(Err(e)) => {
                debug!(peer = %d.id.short(), %addr, error = %e, "mDNS peer not reachable");
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
