//! files-bench's network lab for (c), replicas across network namespaces: one namespace
//! per node (`mmfb-<pid>-<i>`, veth `mmfb0` with 10.203.0.<i+1>/24, MTU 1500) whose peer
//! (`mmfbp<i>`) sits on a bridge in a hub namespace (`mmfb-<pid>-h`), so that every node
//! reaches every other one as on a switch. Nothing outside these namespaces is touched (no
//! real interface, no route of the host, no mDNS). The nodes run as child processes of
//! the bench binary (`ip netns exec`), as transfer-bench's do.
//!
//! Needs root. The namespaces are deleted when the [`Lab`] is dropped, on SIGINT, SIGTERM
//! or SIGHUP (after [`crate::transfer::netns::delete_namespaces_on_signal`]), and by the
//! next run if the process that created them is gone.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};

use crate::transfer::netns::{self, delete, delete_on_signal, forget_on_signal, ip, listed};

/// Prefix of every namespace this lab creates.
const PREFIX: &str = "mmfb-";
/// The interface of each node namespace.
pub const VETH: &str = "mmfb0";
/// The bridge in the hub namespace.
const BRIDGE: &str = "mmfbbr";
/// The MTU of every link.
pub const MTU: u32 = 1500;

/// Node namespaces joined by a bridge.
#[derive(Debug)]
pub struct Lab {
    hub: String,
    nodes: Vec<String>,
}

/// Deletes namespaces of this lab left by runs whose process is gone.
fn remove_stale() {
    for name in listed().unwrap_or_default() {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            delete(&name);
        }
    }
}

impl Lab {
    /// Creates `n` (1..=200) node namespaces on one bridge (needs root and `ip`).
    pub fn create(n: usize) -> Result<Lab> {
        ensure!((1..=200).contains(&n), "a lab has 1..=200 nodes");
        netns::available().map_err(|why| anyhow::anyhow!("cannot create namespaces: {why}"))?;
        remove_stale();
        let pid = std::process::id();
        let mut lab = Lab {
            hub: format!("{PREFIX}{pid}-h"),
            nodes: Vec::new(),
        };
        let mtu = MTU.to_string();
        delete_on_signal(&lab.hub);
        ip(&["netns", "add", &lab.hub])?;
        ip(&["-n", &lab.hub, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &lab.hub, "link", "set", BRIDGE, "mtu", &mtu, "up"])?;
        for i in 0..n {
            let ns = format!("{PREFIX}{pid}-{i}");
            delete_on_signal(&ns);
            ip(&["netns", "add", &ns])?;
            lab.nodes.push(ns.clone());
            let port = format!("mmfbp{i}");
            ip(&[
                "-n", &lab.hub, "link", "add", &port, "type", "veth", "peer", "name", VETH,
                "netns", &ns,
            ])?;
            ip(&["-n", &lab.hub, "link", "set", &port, "mtu", &mtu])?;
            ip(&["-n", &lab.hub, "link", "set", &port, "master", BRIDGE])?;
            ip(&["-n", &lab.hub, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", lab.ip(i));
            ip(&["-n", &ns, "link", "set", VETH, "mtu", &mtu])?;
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", VETH])?;
            ip(&["-n", &ns, "link", "set", VETH, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    /// The address of node `i`.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 203, 0, (i + 1) as u8)
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// `ip netns exec <ns of node i> <program>`.
    pub fn command(&self, i: usize, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(i)]).arg(program);
        c
    }

    /// The MTU node `i` uses to reach node `j`.
    pub fn mtu(&self, i: usize, j: usize) -> Result<u32> {
        let route = ip(&[
            "-n",
            self.ns(i),
            "-o",
            "route",
            "get",
            &self.ip(j).to_string(),
        ])?;
        let dev = word_after(&route, "dev")
            .ok_or_else(|| anyhow::anyhow!("no route from node {i} to node {j}"))?;
        let link = ip(&["-n", self.ns(i), "-o", "link", "show", "dev", &dev])?;
        word_after(&link, "mtu")
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no MTU in {link:?}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.hub)) {
            delete(ns);
            forget_on_signal(ns);
        }
    }
}

fn word_after(text: &str, key: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == key)?;
    words.next().map(str::to_string)
}
