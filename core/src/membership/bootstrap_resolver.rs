//! The resolver of the bootstrap DNS names (ADR 0027): the I/O shell around
//! [`DnsSchedule`]. One task on the node's runtime asks `hickory-resolver` (system
//! configuration: `/etc/resolv.conf` and `/etc/hosts`) for each name when the schedule
//! says so, each lookup in a task of its own bounded by [`RESOLVE_TIMEOUT`], and hands the
//! addresses the names give to the membership actor, which dials new ones at once and
//! re-dials them all while the node is alone. Nothing here blocks the runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::membership::bootstrap_dns::{
    Answer, DnsName, DnsSchedule, ALONE_REFRESH, MAX_ADDRS_PER_NAME, MAX_SRV_TARGETS, MIN_REFRESH,
    REFRESH, RESOLVE_TIMEOUT,
};
use crate::membership::handle::Membership;
use crate::node::shared::Shared;

/// Longest the loop sleeps before it looks again whether this node is alone.
const RECHECK: Duration = Duration::from_secs(1);

/// Starts resolving `names` on `shared`'s runtime until the node shuts down (nothing
/// when `names` is empty).
pub(crate) fn start(shared: &Arc<Shared>, membership: &Arc<Membership>, names: Vec<DnsName>) {
    if names.is_empty() {
        return;
    }
    let shared = shared.clone();
    let membership = membership.clone();
    let handle = shared.runtime.handle().clone();
    handle.spawn(async move {
        let Some(resolver) = make_resolver().await else {
            return;
        };
        let cancel = shared.cancel.clone();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = run(shared, membership, resolver, names) => {}
        }
    });
}

/// A resolver with the system's configuration (read off the runtime: it is file I/O), or
/// the hosts file alone when there is none.
async fn make_resolver() -> Option<TokioResolver> {
    let conf = tokio::task::spawn_blocking(hickory_resolver::system_conf::read_system_conf)
        .await
        .ok()?;
    let mut builder = match conf {
        Ok((config, options)) => {
            let mut b = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            *b.options_mut() = options;
            b
        }
        Err(e) => {
            warn!(error = %e, "no DNS configuration (/etc/resolv.conf): bootstrap names resolve from /etc/hosts only");
            TokioResolver::builder_with_config(
                ResolverConfig::default(),
                TokioRuntimeProvider::default(),
            )
        }
    };
    let opts = builder.options_mut();
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.use_hosts_file = ResolveHosts::Always;
    // Answers are asked for again on the schedule: cache none longer than that.
    opts.positive_max_ttl = Some(REFRESH);
    opts.negative_max_ttl = Some(MIN_REFRESH);
    match builder.build() {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(error = %e, "no DNS resolver: bootstrap names are not resolved");
            None
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    membership: Arc<Membership>,
    resolver: TokioResolver,
    names: Vec<DnsName>,
) {
    let mut schedule = DnsSchedule::new(names);
    let names: Vec<DnsName> = schedule.names().cloned().collect();
    let mut warned = vec![false; names.len()];
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Answer)>();
    loop {
        let now = Instant::now();
        let alone = membership.alone(&shared.id);
        for i in schedule.due(now, alone) {
            let Some(name) = names.get(i).cloned() else {
                continue;
            };
            let resolver = resolver.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let answer =
                    match tokio::time::timeout(RESOLVE_TIMEOUT, resolve(&resolver, &name)).await {
                        Ok(answer) => answer,
                        Err(_) => Err((Answer::Failed, "timed out".to_string())),
                    };
                let _ = tx.send((
                    i,
                    answer.unwrap_or_else(|(a, why)| {
                        debug!(%name, why, "bootstrap name not resolved");
                        a
                    }),
                ));
            });
        }
        let wait = schedule
            .wait(now, alone)
            .unwrap_or(ALONE_REFRESH)
            .min(RECHECK);
        tokio::select! {
            got = rx.recv() => {
                let Some((i, answer)) = got else { return };
                let name = names.get(i).map(ToString::to_string).unwrap_or_default();
                let ok = matches!(&answer, Answer::Found { addrs, .. } if !addrs.is_empty());
                if let Some(w) = warned.get_mut(i) {
                    if !ok && !*w {
                        *w = true;
                        warn!(%name, "bootstrap name does not resolve (yet); retrying");
                    } else if ok && *w {
                        *w = false;
                    }
                }
                let change = schedule.answered(i, answer, Instant::now());
                if !change.is_empty() {
                    let all: Vec<SocketAddr> = schedule
                        .addrs()
                        .into_iter()
                        .filter(|a| !own(&shared, a))
                        .collect();
                    info!(
                        %name,
                        added = ?change.added,
                        removed = ?change.removed,
                        total = all.len(),
                        "bootstrap addresses from DNS changed"
                    );
                    membership.bootstrap_named(all);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Whether `addr` is this node's own.
fn own(shared: &Shared, addr: &SocketAddr) -> bool {
    *addr == shared.local_addr || shared.hello.addrs.contains(addr)
}

/// Resolves one name; an error carries the answer to record and why.
async fn resolve(resolver: &TokioResolver, name: &DnsName) -> Result<Answer, (Answer, String)> {
    match name {
        DnsName::Host { host, port } => {
            let lookup = resolver.lookup_ip(host.as_str()).await.map_err(classify)?;
            let ttl = lookup
                .valid_until()
                .saturating_duration_since(Instant::now());
            let addrs = lookup
                .iter()
                .take(MAX_ADDRS_PER_NAME)
                .map(|ip| SocketAddr::new(ip, *port))
                .collect();
            Ok(Answer::Found {
                addrs,
                ttl: Some(ttl),
            })
        }
        DnsName::Srv(srv) => {
            let lookup = resolver.srv_lookup(srv.as_str()).await.map_err(classify)?;
            let mut ttl = lookup
                .valid_until()
                .saturating_duration_since(Instant::now());
            let mut targets: Vec<(u16, u16, String, u16)> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) if !s.target.is_root() => Some((
                        s.priority,
                        u16::MAX - s.weight,
                        s.target.to_string(),
                        s.port,
                    )),
                    _ => None,
                })
                .collect();
            targets.sort();
            targets.dedup();
            targets.truncate(MAX_SRV_TARGETS);
            let lookups = targets.iter().map(|(_, _, target, port)| async move {
                match resolver.lookup_ip(target.as_str()).await {
                    Ok(l) => Some((l, *port)),
                    Err(e) => {
                        debug!(%target, error = %e, "SRV target not resolved");
                        None
                    }
                }
            });
            let mut addrs = Vec::new();
            for (l, port) in futures::future::join_all(lookups)
                .await
                .into_iter()
                .flatten()
            {
                ttl = ttl.min(l.valid_until().saturating_duration_since(Instant::now()));
                addrs.extend(l.iter().map(|ip| SocketAddr::new(ip, port)));
            }
            addrs.truncate(MAX_ADDRS_PER_NAME);
            Ok(Answer::Found {
                addrs,
                ttl: Some(ttl),
            })
        }
    }
}

/// No such name or record: gone; anything else: failed to ask.
fn classify(e: NetError) -> (Answer, String) {
    if e.is_no_records_found() || e.is_nx_domain() {
        (Answer::Gone, e.to_string())
    } else {
        (Answer::Failed, e.to_string())
    }
}
