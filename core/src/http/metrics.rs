//! The Prometheus metrics of one node: a registry per node (several nodes in one process
//! never mix), with counters the HTTP front keeps itself (membership events, transfer
//! bytes, HTTP requests) and a collector that reads the node's own counters at each
//! scrape (service frames, peers' bytes, cache buckets, members, files, documents).

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::cache::CacheStats;

/// Labels: `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// What the collector reports, read from the node just before a scrape is encoded.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// This node's id and name (`memmesh_node_info`).
    pub node: (String, String),
    /// Request frames handled and failed, per service.
    pub frames: Vec<(String, u64, u64)>,
    /// Bytes sent and received per connected peer.
    pub peers: Vec<(String, u64, u64)>,
    /// Each cache bucket's counters on this node.
    pub buckets: Vec<(String, CacheStats)>,
    /// Members per state (`alive`, `suspect`, `down`).
    pub members: Vec<(&'static str, u64)>,
    /// Transfers in progress and their summed rate (bytes/s), per direction.
    pub transfers: Vec<(&'static str, u64, f64)>,
    /// Bytes of RAM lent and used.
    pub memory: (u64, u64),
    /// Files stored (with a data dir).
    pub files: Option<u64>,
    /// Bytes of stored files on disk (with a data dir).
    pub files_bytes: Option<u64>,
    /// Documents held (with a data dir).
    pub documents: Option<u64>,
}

/// The metrics of one node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    snapshot: Arc<Mutex<Snapshot>>,
    /// Membership events seen, by event (`up`, `suspect`, `down`, `leader`, `lagged`).
    pub member_events: Family<Labels, Counter>,
    /// Bytes of transfers reported done, by direction (`send`, `receive`).
    pub transfer_bytes: Family<Labels, Counter>,
    /// HTTP requests served by this API, by route and status class.
    pub http_requests: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry with every metric of a node registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let member_events = Family::<Labels, Counter>::default();
        let transfer_bytes = Family::<Labels, Counter>::default();
        let http_requests = Family::<Labels, Counter>::default();
        registry.register(
            "memmesh_membership_events",
            "Membership events seen by this node, by event",
            member_events.clone(),
        );
        registry.register(
            "memmesh_transfer_bytes",
            "Bytes of transfers (sent, received, fetched, served) done, by direction",
            transfer_bytes.clone(),
        );
        registry.register(
            "memmesh_http_requests",
            "Requests served by the HTTP management API, by route and status class",
            http_requests.clone(),
        );
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(NodeCollector(snapshot.clone())));
        Metrics {
            registry,
            snapshot,
            member_events,
            transfer_bytes,
            http_requests,
        }
    }

    /// The text exposition of every metric, with `snapshot` as the node's current state.
    pub fn encode(&self, snapshot: Snapshot) -> Result<String, std::fmt::Error> {
        // One scrape at a time sees its own snapshot.
        let mut held = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        *held = snapshot;
        let mut out = String::new();
        // The collector locks the snapshot too: hand it over for the encoding.
        drop(held);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[derive(Debug)]
struct NodeCollector(Arc<Mutex<Snapshot>>);

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge_i(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
    if let [(labels, v)] = rows {
        if labels.is_empty() {
            // A metric without labels (`name value`, not `name{} value`).
            return ConstGauge::new(*v).encode(m);
        }
    }
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge_f(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, ConstGauge::new(0f64).metric_type())?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for NodeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let node: Labels = vec![("id", s.node.0.clone()), ("name", s.node.1.clone())];
        gauge_i(
            &mut e,
            "memmesh_node_info",
            "This node's id and name",
            &[(node, 1)],
        )?;
        let service = |f: &(String, u64, u64), pick: fn(&(String, u64, u64)) -> u64| {
            (vec![("service", f.0.clone())], pick(f))
        };
        let rows: Vec<_> = s.frames.iter().map(|f| service(f, |f| f.1)).collect();
        counter(
            &mut e,
            "memmesh_service_requests",
            "Request frames from peers handled, by service",
            &rows,
        )?;
        let rows: Vec<_> = s.frames.iter().map(|f| service(f, |f| f.2)).collect();
        counter(
            &mut e,
            "memmesh_service_errors",
            "Request frames from peers whose handling failed, by service",
            &rows,
        )?;
        let peer = |p: &(String, u64, u64), v: u64| (vec![("peer", p.0.clone())], v);
        let rows: Vec<_> = s.peers.iter().map(|p| peer(p, p.1)).collect();
        counter(
            &mut e,
            "memmesh_peer_sent_bytes",
            "UDP bytes sent on the open connection to each peer",
            &rows,
        )?;
        let rows: Vec<_> = s.peers.iter().map(|p| peer(p, p.2)).collect();
        counter(
            &mut e,
            "memmesh_peer_received_bytes",
            "UDP bytes received on the open connection from each peer",
            &rows,
        )?;
        let bucket = |b: &(String, CacheStats)| vec![("bucket", b.0.clone())];
        for (name, help, pick) in [
            (
                "memmesh_cache_hits",
                "Cache reads on this node answered with a value, by bucket",
                (|c: &CacheStats| c.hits) as fn(&CacheStats) -> u64,
            ),
            (
                "memmesh_cache_misses",
                "Cache reads on this node answered with no value, by bucket",
                |c| c.misses,
            ),
            (
                "memmesh_cache_evictions",
                "Cache entries removed by LRU to respect the bucket's limits, by bucket",
                |c| c.evicted,
            ),
            (
                "memmesh_cache_expirations",
                "Cache entries removed because their TTL passed, by bucket",
                |c| c.expired,
            ),
        ] {
            let rows: Vec<_> = s.buckets.iter().map(|b| (bucket(b), pick(&b.1))).collect();
            counter(&mut e, name, help, &rows)?;
        }
        let rows: Vec<_> = s
            .buckets
            .iter()
            .map(|b| (bucket(b), n(b.1.entries)))
            .collect();
        gauge_i(
            &mut e,
            "memmesh_cache_entries",
            "Live cache entries held on this node, by bucket",
            &rows,
        )?;
        let rows: Vec<_> = s
            .buckets
            .iter()
            .map(|b| (bucket(b), n(b.1.bytes)))
            .collect();
        gauge_i(
            &mut e,
            "memmesh_cache_bytes",
            "Bytes of cache entries held on this node, by bucket",
            &rows,
        )?;
        let rows: Vec<_> = s
            .members
            .iter()
            .map(|(state, c)| (vec![("state", state.to_string())], n(*c)))
            .collect();
        gauge_i(
            &mut e,
            "memmesh_members",
            "Peers known to this node, by membership state",
            &rows,
        )?;
        let rows: Vec<_> = s
            .transfers
            .iter()
            .map(|(d, c, _)| (vec![("direction", d.to_string())], n(*c)))
            .collect();
        gauge_i(
            &mut e,
            "memmesh_transfers_active",
            "Transfers in progress, by direction",
            &rows,
        )?;
        let rows: Vec<_> = s
            .transfers
            .iter()
            .map(|(d, _, r)| (vec![("direction", d.to_string())], *r))
            .collect();
        gauge_f(
            &mut e,
            "memmesh_transfer_rate_bytes_per_second",
            "Summed rate of the transfers in progress, by direction",
            &rows,
        )?;
        let one = |v: i64| vec![(Labels::new(), v)];
        gauge_i(
            &mut e,
            "memmesh_memory_quota_bytes",
            "Bytes of RAM this node lends (memory_quota)",
            &one(n(s.memory.0)),
        )?;
        gauge_i(
            &mut e,
            "memmesh_memory_used_bytes",
            "Bytes of the memory quota in use (blocks and cache)",
            &one(n(s.memory.1)),
        )?;
        if let Some(f) = s.files {
            gauge_i(
                &mut e,
                "memmesh_files",
                "Files stored on this node",
                &one(n(f)),
            )?;
        }
        if let Some(b) = s.files_bytes {
            gauge_i(
                &mut e,
                "memmesh_files_disk_used_bytes",
                "Bytes of stored files (ciphertext) on disk",
                &one(n(b)),
            )?;
        }
        if let Some(d) = s.documents {
            gauge_i(
                &mut e,
                "memmesh_documents",
                "Documents held on this node",
                &one(n(d)),
            )?;
        }
        Ok(())
    }
}
