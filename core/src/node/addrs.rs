//! The addresses a node tells peers it can be reached at.

use std::net::SocketAddr;

/// `local` itself when bound to a specific IP; when bound to all interfaces, one address
/// per non-loopback interface IP (loopback only if there is nothing else), since
/// `0.0.0.0` means nothing to a peer and `127.0.0.1` means the peer itself.
pub fn advertised(local: SocketAddr) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let mut out: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| local.is_ipv6() || ip.is_ipv4())
        .filter(|ip| !matches!(ip, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .map(|ip| SocketAddr::new(ip, local.port()))
        .collect();
    out.sort_by_key(|a| (a.ip().is_loopback(), a.is_ipv6(), *a));
    out.dedup();
    if out.iter().any(|a| !a.ip().is_loopback()) {
        out.retain(|a| !a.ip().is_loopback());
    }
    if out.is_empty() {
        out.push(local);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_addresses_are_kept_and_wildcards_expanded() {
        let a: SocketAddr = "127.0.0.1:7400".parse().unwrap();
        assert_eq!(advertised(a), vec![a]);
        let all = advertised("0.0.0.0:7400".parse().unwrap());
        assert!(!all.is_empty());
        assert!(all
            .iter()
            .all(|x| x.port() == 7400 && !x.ip().is_unspecified()));
    }
}
