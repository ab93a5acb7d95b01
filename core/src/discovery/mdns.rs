//! mDNS advertisement and browsing with `mdns-sd`.
//!
//! The daemon can be restricted to named interfaces (`mdns_interfaces`), so tests and
//! benchmarks keep multicast on loopback or inside network namespaces they create.
//! The browse thread ([`Browser`]) only moves records into a bounded queue; the dial task
//! (`crate::discovery::dialer`) reads them and dials what the admission allows.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mdns_sd::{IfKind, ResolvedService, ServiceDaemon, ServiceInfo};
use tokio::sync::Notify;

use crate::discovery::advert::{self, SERVICE_TYPE};
use crate::discovery::browse::Browser;
use crate::discovery::dialer::DialTask;
use crate::discovery::error::DiscoveryError;
use crate::discovery::limits::MAX_RECORDS_QUEUED;
use crate::discovery::queue::NewestQueue;
use crate::error::Result;
use crate::node::shared::Shared;
use crate::service::Shutdown;

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

impl Mdns {
    /// Advertises this node and dials the nodes of the same cluster that appear.
    pub fn start(shared: &Arc<Shared>) -> Result<Mdns> {
        let daemon = ServiceDaemon::new().map_err(DiscoveryError::Mdns)?;
        if let Some(names) = &shared.config.mdns_interfaces {
            daemon
                .disable_interface(IfKind::All)
                .map_err(DiscoveryError::Mdns)?;
            for name in names {
                daemon
                    .enable_interface(IfKind::Name(name.clone()))
                    .map_err(DiscoveryError::Mdns)?;
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
            .map_err(DiscoveryError::Mdns)?;
        if ips.is_empty() {
            info = info.enable_addr_auto();
        }
        // The instance name is our 52-character NodeId: no conflict to probe for, and
        // probing would delay the first answer by 750 ms.
        info.set_requires_probe(false);
        daemon.register(info).map_err(DiscoveryError::Mdns)?;

        let records: Arc<NewestQueue<Box<ResolvedService>>> =
            Arc::new(NewestQueue::new(MAX_RECORDS_QUEUED));
        let wake = Arc::new(Notify::new());
        let browser = {
            let (records, wake) = (records.clone(), wake.clone());
            Browser::start(daemon.clone(), move |batch| {
                records.push_all(batch);
                wake.notify_one();
            })?
        };
        let task = DialTask::new(shared, records, wake, browser.replay());
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

/// A running [`Mdns`] as the node's shutdown sees it: stopped (and dropped) once, when the
/// node's tasks are cancelled.
pub(crate) struct Running(Mutex<Option<Mdns>>);

impl Running {
    /// Hands `mdns` to the node's shutdown.
    pub(crate) fn new(mdns: Mdns) -> Arc<Self> {
        Arc::new(Self(Mutex::new(Some(mdns))))
    }
}

impl Shutdown for Running {
    fn stop(&self) {
        let mdns = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mdns) = mdns {
            mdns.stop();
        }
    }
}
