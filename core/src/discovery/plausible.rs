//! Which advertised addresses are worth a dial at all. Pure logic.
//!
//! An mDNS record arrives over a local link, so a node it describes is on that link: an
//! address outside the networks of the interface it was heard on (or unspecified, multicast,
//! broadcast, a network's own address, an unscoped IPv6 link-local one, or of a family our
//! socket cannot reach) only makes the node send packets where a stranger says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One network of a local interface: an address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// An address of the interface.
    pub addr: IpAddr,
    /// The prefix length of its network (clamped to the family's width).
    pub prefix: u8,
}

impl Network {
    /// A network from an interface address and prefix length.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix: prefix.min(width),
        }
    }

    /// Whether `ip` is a usable host address of this network: inside it, and (IPv4 with
    /// room for hosts) neither its network address nor its broadcast address.
    pub fn hosts(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                if u32::from(net) & mask != u32::from(ip) & mask {
                    return false;
                }
                let host = u32::from(ip) & !mask;
                self.prefix >= 31 || (host != 0 && host != !mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask_v6(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// The networks of the interfaces mDNS runs on. Empty means unknown (listing the
/// interfaces failed): then only the other checks apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<Network>);

impl Networks {
    /// Whether `ip` is a host address of one of the networks (true when none is known).
    pub fn on_link(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n.hosts(ip))
    }
}

/// The networks of the interfaces mDNS runs on, with the interface each belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceNetworks(pub Vec<(String, Network)>);

impl InterfaceNetworks {
    /// The networks of the interfaces named (an address is checked against the link it
    /// was heard on). If none of them is known, all networks: an interface that just
    /// appeared is not a reason to drop an address.
    pub fn of(&self, names: &[&str]) -> Networks {
        let own: Vec<Network> = self
            .0
            .iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
            .map(|(_, n)| *n)
            .collect();
        if own.is_empty() {
            Networks(self.0.iter().map(|(_, n)| *n).collect())
        } else {
            Networks(own)
        }
    }
}

fn is_v6_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether `ip` can be what a node on the link listens on, as seen from our socket bound
/// to `local`.
pub fn plausible(ip: IpAddr, local: SocketAddr, networks: &Networks) -> bool {
    if ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    let family_ok = match (local.ip(), ip) {
        // An IPv4 socket reaches IPv4 only.
        (IpAddr::V4(_), IpAddr::V4(_)) => true,
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
        // A wildcard IPv6 socket is dual-stack; a specific IPv6 one reaches IPv6 only.
        (IpAddr::V6(l), IpAddr::V4(_)) => l.is_unspecified(),
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
    };
    if !family_ok {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => {
            // 0.0.0.0/8 means "this network": never a peer.
            if v4 == Ipv4Addr::BROADCAST || v4.octets()[0] == 0 {
                return false;
            }
        }
        IpAddr::V6(v6) => {
            // An advert's addresses lose their scope on the way to a dial, and an
            // unscoped link-local address cannot be dialled.
            if is_v6_link_local(&v6) {
                return false;
            }
        }
    }
    networks.on_link(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lan() -> Networks {
        Networks(vec![
            Network::new(ip("10.77.0.1"), 16),
            Network::new(ip("192.168.1.20"), 24),
            Network::new(ip("fd00::1"), 64),
            Network::new(ip("127.0.0.1"), 8),
        ])
    }

    #[test]
    fn networks_contain_their_hosts_only() {
        let n = Network::new(ip("192.168.1.20"), 24);
        assert!(n.hosts(ip("192.168.1.1")));
        assert!(n.hosts(ip("192.168.1.254")));
        assert!(!n.hosts(ip("192.168.1.0")), "the network's own address");
        assert!(!n.hosts(ip("192.168.1.255")), "the subnet broadcast");
        assert!(!n.hosts(ip("192.168.2.1")));
        assert!(!n.hosts(ip("fd00::1")), "another family");
        // Point-to-point and host routes: every address of the prefix is a host.
        assert!(Network::new(ip("10.0.0.0"), 31).hosts(ip("10.0.0.1")));
        assert!(Network::new(ip("10.0.0.7"), 32).hosts(ip("10.0.0.7")));
        assert!(!Network::new(ip("10.0.0.7"), 32).hosts(ip("10.0.0.8")));
        // Out-of-range prefixes are clamped, never a shift overflow.
        assert!(Network::new(ip("10.0.0.7"), 200).hosts(ip("10.0.0.7")));
        assert!(Network::new(ip("fd00::7"), 200).hosts(ip("fd00::7")));
        assert!(Network::new(ip("0.0.0.0"), 0).hosts(ip("8.8.8.8")));
        let v6 = Network::new(ip("fd00::1"), 64);
        assert!(v6.hosts(ip("fd00::abcd")));
        assert!(!v6.hosts(ip("fd00:0:0:1::1")));
    }

    #[test]
    fn implausible_addresses_are_dropped() {
        let v4: SocketAddr = "10.77.0.1:7400".parse().unwrap();
        let any4: SocketAddr = "0.0.0.0:7400".parse().unwrap();
        let any6: SocketAddr = "[::]:7400".parse().unwrap();
        let one6: SocketAddr = "[fd00::1]:7400".parse().unwrap();
        let nets = lan();
        assert!(plausible(ip("10.77.3.4"), v4, &nets));
        assert!(plausible(ip("192.168.1.7"), any4, &nets));
        assert!(
            plausible(ip("127.0.0.1"), v4, &nets),
            "loopback when lo is given"
        );
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.251",
            "239.1.2.3",
            "192.168.1.255",
            "10.77.255.255",
            "10.77.0.0",
            "8.8.8.8",
            "172.16.0.1",
        ] {
            assert!(!plausible(ip(bad), v4, &nets), "{bad}");
        }
        // Families our socket cannot reach, and unscoped link-local IPv6.
        assert!(!plausible(ip("fd00::2"), v4, &nets));
        assert!(plausible(ip("fd00::2"), any6, &nets));
        assert!(plausible(ip("10.77.0.9"), any6, &nets));
        assert!(!plausible(ip("10.77.0.9"), one6, &nets));
        assert!(plausible(ip("fd00::2"), one6, &nets));
        assert!(!plausible(ip("fe80::1"), any6, &nets));
        assert!(!plausible(ip("::"), any6, &nets));
        assert!(!plausible(ip("ff02::fb"), any6, &nets));
        assert!(!plausible(ip("2001:db8::1"), any6, &nets));
        // Checked against the link the address was heard on: loopback only over lo.
        let by_if = InterfaceNetworks(vec![
            ("eth0".into(), Network::new(ip("192.168.1.20"), 24)),
            ("lo".into(), Network::new(ip("127.0.0.1"), 8)),
        ]);
        assert!(plausible(ip("127.0.0.1"), any4, &by_if.of(&["lo"])));
        assert!(!plausible(ip("127.0.0.1"), any4, &by_if.of(&["eth0"])));
        assert!(plausible(ip("192.168.1.9"), any4, &by_if.of(&["eth0"])));
        assert!(!plausible(ip("192.168.1.9"), any4, &by_if.of(&["lo"])));
        assert!(plausible(
            ip("192.168.1.9"),
            any4,
            &by_if.of(&["lo", "eth0"])
        ));
        // An interface not (yet) listed: all networks.
        assert!(plausible(ip("192.168.1.9"), any4, &by_if.of(&["wlan9"])));
        assert!(plausible(ip("127.0.0.1"), any4, &by_if.of(&[])));
        // Unknown networks: only the other checks apply.
        let unknown = Networks::default();
        assert!(plausible(ip("8.8.8.8"), v4, &unknown));
        assert!(!plausible(ip("224.0.0.251"), v4, &unknown));
    }
}
