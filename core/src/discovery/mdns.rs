//! mDNS advertisement and browsing with `mdns-sd`.
//!
//! The daemon can be restricted to named interfaces (`mdns_interfaces`), so tests and
//! benchmarks keep multicast on loopback or inside network namespaces they create.

use std::net::IpAddr;
use std::sync::Arc;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use tracing::{debug, warn};

use crate::discovery::advert::{self, Advert, SERVICE_TYPE, TXT_CLUSTER, TXT_ID};
use crate::error::{Error, ErrorKind, Result};
use crate::node::connect;
use crate::node::shared::Shared;

/// A running mDNS responder and browser; stopped by [`Mdns::stop`] or on drop.
pub struct Mdns {
    daemon: ServiceDaemon,
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mdns")
    }
}

fn mdns_error(e: mdns_sd::Error) -> Error {
    Error::new(ErrorKind::Io, format!("mDNS: {e}"))
}

impl Mdns {
    /// Advertises this node and dials every node of the same cluster that appears.
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
        let events = daemon.browse(SERVICE_TYPE).map_err(mdns_error)?;
        let task_shared = shared.clone();
        shared.runtime.handle().spawn(async move {
            while let Ok(event) = events.recv_async().await {
                if let ServiceEvent::ServiceResolved(svc) = event {
                    let parsed = advert::parse(
                        svc.get_property_val_str(TXT_ID),
                        svc.get_property_val_str(TXT_CLUSTER),
                        svc.port,
                        svc.get_addresses().iter().map(|a| a.to_ip_addr()),
                    );
                    match parsed {
                        Ok(ad) => found(&task_shared, ad).await,
                        Err(e) => debug!(name = %svc.fullname, error = %e, "ignoring mDNS record"),
                    }
                }
            }
        });
        Ok(Mdns { daemon })
    }

    /// Withdraws the advertisement and stops the daemon thread.
    pub fn stop(&self) {
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

/// Dials a discovered node of our cluster unless it is us or already connected.
async fn found(shared: &Arc<Shared>, ad: Advert) {
    if ad.id == shared.id || ad.cluster != shared.hello.key.tag() {
        return;
    }
    if shared.pool.live(&ad.id).is_some() {
        return;
    }
    for addr in &ad.addrs {
        match connect::dial(shared, *addr, Some(ad.id)).await {
            Ok(_) => {
                debug!(peer = %ad.id.short(), %addr, "connected to a peer found by mDNS");
                return;
            }
            Err(e) => debug!(peer = %ad.id.short(), %addr, error = %e, "mDNS peer not reachable"),
        }
    }
    warn!(peer = %ad.id.short(), "a peer found by mDNS could not be reached");
}
