//! What a node advertises over mDNS, and how an advertisement is read back. Pure logic.

use std::net::{IpAddr, SocketAddr};

use crate::discovery::error::DiscoveryError;
use crate::error::Result;
use crate::identity::NodeId;

/// The DNS-SD service type of memmesh.
pub const SERVICE_TYPE: &str = "_memmesh._udp.local.";

/// TXT key: the node id (base32 text).
pub const TXT_ID: &str = "id";
/// TXT key: the public cluster tag (derived from the secret, never the secret).
pub const TXT_CLUSTER: &str = "cluster";
/// TXT key: the QUIC port.
pub const TXT_PORT: &str = "port";
/// TXT key: the advertisement format version.
pub const TXT_VERSION: &str = "v";

/// A node found on the local network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// The advertised node.
    pub id: NodeId,
    /// Its cluster tag.
    pub cluster: String,
    /// Addresses to dial, IPv4 first.
    pub addrs: Vec<SocketAddr>,
}

/// The TXT properties a node publishes.
pub fn txt_properties(id: &NodeId, cluster: &str, port: u16) -> Vec<(String, String)> {
    vec![
        (TXT_VERSION.to_string(), "1".to_string()),
        (TXT_ID.to_string(), id.to_string()),
        (TXT_CLUSTER.to_string(), cluster.to_string()),
        (TXT_PORT.to_string(), port.to_string()),
    ]
}

/// Reads an advertisement from its TXT values, SRV port and resolved addresses.
/// Anything missing or malformed is an error (a stranger's bad record is just ignored).
pub fn parse(
    id: Option<&str>,
    cluster: Option<&str>,
    srv_port: u16,
    ips: impl IntoIterator<Item = IpAddr>,
) -> Result<Advert> {
    let id: NodeId = id.ok_or(DiscoveryError::NoId)?.parse()?;
    let cluster = cluster.ok_or(DiscoveryError::NoCluster)?.to_string();
    if srv_port == 0 {
        return Err(DiscoveryError::PortZero.into());
    }
    let mut addrs: Vec<SocketAddr> = ips
        .into_iter()
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .map(|ip| SocketAddr::new(ip, srv_port))
        .collect();
    addrs.sort_by_key(|a| (a.is_ipv6(), *a));
    addrs.dedup();
    if addrs.is_empty() {
        return Err(DiscoveryError::NoAddress.into());
    }
    Ok(Advert { id, cluster, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn adverts_round_trip_and_reject_bad_records() {
        let id = Keypair::generate().unwrap().node_id();
        let txt = txt_properties(&id, "abcd", 7400);
        let get = |k: &str| {
            txt.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let ips: Vec<IpAddr> = vec!["fe80::1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let ad = parse(get(TXT_ID), get(TXT_CLUSTER), 7400, ips.clone()).unwrap();
        assert_eq!(ad.id, id);
        assert_eq!(ad.cluster, "abcd");
        assert_eq!(ad.addrs[0], "10.0.0.2:7400".parse().unwrap());
        assert!(parse(None, Some("x"), 1, ips.clone()).is_err());
        assert!(parse(Some("nope"), Some("x"), 1, ips.clone()).is_err());
        assert!(parse(get(TXT_ID), None, 1, ips.clone()).is_err());
        assert!(parse(get(TXT_ID), Some("x"), 0, ips).is_err());
        assert!(parse(get(TXT_ID), Some("x"), 1, vec!["0.0.0.0".parse().unwrap()]).is_err());
    }
}
