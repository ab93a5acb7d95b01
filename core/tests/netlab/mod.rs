//! A small network lab for partition tests: memmesh nodes in Linux network namespaces,
//! joined through bridges in a hub namespace, so a test can split, cut and heal the network
//! under running nodes. Also the checks those tests share (`check`).
//!
//! Topology: one hub namespace holding bridges `br0`, `br1`, …; one namespace per node
//! slot, whose veth `mm0` (10.79.0.<slot+1>/24, one subnet for all) has its peer `p<slot>`
//! in the hub, attached to a bridge. All ports on `br0` is a healthy network; a partition
//! puts the ports of each side on a bridge of its own (packets to the other side are
//! silently lost: the sender's `sendmsg` still succeeds, as on a real switch failure);
//! healing puts every port back on `br0`. This kernel has no netem, nft or iptables, and a
//! blackhole route makes `sendmsg` fail with EINVAL (which turns off quinn's GSO), hence
//! bridges.
//!
//! Namespaces are named `mmp-<pid>-<n>-<role>`: deleted on drop (also when a test panics),
//! and reaped by the next run if the process that created them is gone. The prefix differs
//! from mdns_netns.rs's `mmt`, so the two suites never reap each other's namespaces.
//!
//! Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's `ip`. Without them a test
//! fails with a clear message. `MEMMESH_SKIP_NETNS=1` turns every lab test into a loud
//! `SKIPPED:` line, even as root: these tests take minutes, and the main `cargo test` of
//! ci/test sets it while ci/test-netns runs them for real.
#![allow(dead_code)]

pub mod check;

use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use memmesh::{Node, NodeBuilder};

/// Where `ip netns add` keeps its namespaces.
const NETNS_DIR: &str = "/var/run/netns";
/// Prefix of every namespace this lab creates: `mmp-<pid>-<n>-<role>`.
const PREFIX: &str = "mmp";
/// The link interface inside each node namespace.
pub const VETH: &str = "mm0";

// ----------------------------------------------------------------------------------------
// Output that the test harness does not capture.

/// Writes a line straight to stderr (the harness only captures the print macros), so
/// SKIPPED lines and measurements are visible in a normal `cargo test` run.
pub fn say(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "{}", line.as_ref());
}

/// Logs of memmesh at `MEMMESH_LOG` (default `memmesh=warn`), into the test's output.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEMMESH_LOG")
        .unwrap_or_else(|_| "memmesh=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Namespaces are unavailable: fail, or skip loudly when `MEMMESH_SKIP_NETNS=1`.
pub fn unavailable(test: &str, why: &str) {
    if std::env::var("MEMMESH_SKIP_NETNS").as_deref() == Ok("1") {
        say(format!(
            "SKIPPED: {test}: network namespaces are unavailable ({why}); \
             MEMMESH_SKIP_NETNS=1 is set"
        ));
        return;
    }
    panic!(
        "{test}: network namespaces are unavailable: {why}\n\
         These tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2 (`ip`); CI runs them \
         as root through ci/test-netns. Set MEMMESH_SKIP_NETNS=1 to skip them explicitly."
    );
}

/// Whether namespace tests are skipped explicitly (`MEMMESH_SKIP_NETNS=1`).
pub fn skipping() -> bool {
    std::env::var("MEMMESH_SKIP_NETNS").as_deref() == Ok("1")
}

// ----------------------------------------------------------------------------------------
// Namespaces, bridges and ports.

/// Runs `ip` with `args`; the error names the command and what `ip` said.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (is iproute2 installed?): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes namespaces of this lab whose creating process is gone (a killed run).
fn reap_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let mut parts = name.split('-');
        if parts.next() != Some(PREFIX) {
            continue;
        }
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

static LABS: AtomicUsize = AtomicUsize::new(0);

/// Serialises namespace setup within a test binary: the very first `ip netns add` on a
/// machine bind-mounts /run/netns, and two doing it at once can stack two mounts.
static SETUP: Mutex<()> = Mutex::new(());

/// Node namespaces whose ports sit on bridges of a hub namespace; the test moves ports
/// between bridges to partition and heal the network. Everything is deleted on drop.
pub struct Lab {
    /// Every namespace created so far (hub first), deleted on drop in reverse order.
    created: Vec<String>,
    /// The hub namespace, holding the bridges and every node's port.
    hub: String,
    /// Node namespaces, by slot.
    slots: Vec<String>,
    /// How many bridges exist (`br0` .. `br<n-1>`).
    bridges: usize,
    /// The bridge each slot's port is on.
    on: Vec<usize>,
}

impl Lab {
    /// `n` node namespaces, all ports on `br0`. `None` if namespaces are unavailable and
    /// the test is skipped.
    pub fn new(test: &str, n: usize) -> Option<Lab> {
        if skipping() {
            say(format!(
                "SKIPPED: {test}: MEMMESH_SKIP_NETNS=1 is set (ci/test-netns runs it as root)"
            ));
            return None;
        }
        let guard = SETUP.lock().unwrap_or_else(|p| p.into_inner());
        reap_stale();
        let base = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            created: Vec::new(),
            hub: format!("{base}-hub"),
            slots: Vec::new(),
            bridges: 0,
            on: vec![0; n],
        };
        let built = lab.build(&base, n);
        drop(guard);
        match built {
            Ok(()) => Some(lab),
            Err(why) => {
                drop(lab);
                unavailable(test, &why);
                None
            }
        }
    }

    fn add_ns(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    fn build(&mut self, base: &str, n: usize) -> Result<(), String> {
        let hub = self.hub.clone();
        self.add_ns(&hub)?;
        self.ensure_bridge(0)?;
        for slot in 0..n {
            let ns = format!("{base}-n{slot}");
            self.add_ns(&ns)?;
            self.slots.push(ns.clone());
            let port = port(slot);
            // Both ends are created directly inside the namespaces: nothing touches the
            // host's namespace.
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", VETH, "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", self.ip(slot));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", VETH])?;
            ip(&["-n", &ns, "link", "set", VETH, "up"])?;
        }
        Ok(())
    }

    /// Creates bridges up to `br<index>` in the hub (no IGMP snooping, up).
    fn ensure_bridge(&mut self, index: usize) -> Result<(), String> {
        while self.bridges <= index {
            let br = format!("br{}", self.bridges);
            ip(&["-n", &self.hub, "link", "add", &br, "type", "bridge"])?;
            ip(&[
                "-n",
                &self.hub,
                "link",
                "set",
                &br,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["-n", &self.hub, "link", "set", &br, "up"])?;
            self.bridges += 1;
        }
        Ok(())
    }

    /// How many node slots the lab has.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The namespace of `slot`.
    pub fn ns(&self, slot: usize) -> &str {
        &self.slots[slot]
    }

    /// The address of `slot` on the link.
    pub fn ip(&self, slot: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 79, 0, slot as u8 + 1)
    }

    /// A listen address on `slot`'s link address (port chosen by the OS).
    pub fn listen(&self, slot: usize) -> String {
        format!("{}:0", self.ip(slot))
    }

    /// The bridge `slot`'s port is on (`0` is `br0`).
    pub fn bridge_of(&self, slot: usize) -> usize {
        self.on[slot]
    }

    /// Moves `slot`'s port onto bridge `br<bridge>` (one `ip` call: the kernel moves a
    /// port from one bridge to another at once).
    pub fn move_port(&mut self, slot: usize, bridge: usize) {
        if self.on[slot] == bridge {
            return;
        }
        self.ensure_bridge(bridge)
            .unwrap_or_else(|e| panic!("creating bridge br{bridge}: {e}"));
        let (port, br) = (port(slot), format!("br{bridge}"));
        ip(&["-n", &self.hub, "link", "set", &port, "master", &br])
            .unwrap_or_else(|e| panic!("moving {port} to {br}: {e}"));
        self.on[slot] = bridge;
    }

    /// Splits the network into `groups` (each slot in at most one; slots not named stay
    /// with the first group): group `k`'s ports go on bridge `br<k>`.
    pub fn split(&mut self, groups: &[Vec<usize>]) {
        let mut target = vec![0; self.len()];
        for (k, group) in groups.iter().enumerate() {
            for &slot in group {
                target[slot] = k;
            }
        }
        for (slot, bridge) in target.into_iter().enumerate() {
            self.move_port(slot, bridge);
        }
    }

    /// Cuts `slot` off from every other node: its port alone on a bridge of its own.
    pub fn cut(&mut self, slot: usize) {
        let used: Vec<usize> = (0..self.len())
            .filter(|&s| s != slot)
            .map(|s| self.on[s])
            .collect();
        if used.contains(&self.on[slot]) {
            let free = (0..).find(|b| !used.contains(b)).expect("a free bridge");
            self.move_port(slot, free);
        }
    }

    /// Heals the network: every port back on `br0`.
    pub fn heal(&mut self) {
        for slot in 0..self.len() {
            self.move_port(slot, 0);
        }
    }

    /// Whether every port is on `br0`.
    pub fn healed(&self) -> bool {
        self.on.iter().all(|&b| b == 0)
    }

    /// The current grouping, e.g. `"0 1 | 2"`.
    pub fn describe(&self) -> String {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (slot, &b) in self.on.iter().enumerate() {
            match groups.iter_mut().find(|(g, _)| *g == b) {
                Some((_, members)) => members.push(slot),
                None => groups.push((b, vec![slot])),
            }
        }
        groups
            .iter()
            .map(|(_, m)| {
                m.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// The hub-side port of `slot`.
fn port(slot: usize) -> String {
    format!("p{slot}")
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces (and the veth peers elsewhere).
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                say(format!("warning: could not delete namespace {ns}: {e}"));
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// Running code inside a namespace.

extern "C" {
    // From the C library std links anyway (declared here so core needs no new dependency).
    fn setns(fd: c_int, nstype: c_int) -> c_int;
}
/// `CLONE_NEWNET` from <sched.h>.
const CLONE_NEWNET: c_int = 0x4000_0000;

/// Moves the calling thread into the network namespace `ns`, then checks (by inode)
/// that it really is there before anything opens a socket.
fn enter_netns(ns: &str) -> Result<(), String> {
    let path = Path::new(NETNS_DIR).join(ns);
    let file = File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: setns only changes the calling thread's network namespace; `file` keeps the
    // descriptor valid for the duration of the call.
    if unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) } != 0 {
        return Err(format!("setns({ns}): {}", std::io::Error::last_os_error()));
    }
    let want = std::fs::metadata(&path).map_err(|e| e.to_string())?;
    let have = std::fs::metadata("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;
    if (want.dev(), want.ino()) != (have.dev(), have.ino()) {
        return Err(format!("this thread is not in namespace {ns} after setns"));
    }
    Ok(())
}

/// Runs `f` on a new thread inside namespace `ns` and returns its result. Threads and
/// sockets that `f` creates belong to `ns` for good.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = ns.to_string();
    std::thread::Builder::new()
        .name(format!("in-{name}"))
        .spawn(move || {
            enter_netns(&name).unwrap_or_else(|e| panic!("entering {name}: {e}"));
            f()
        })
        .expect("spawn a thread")
        .join()
        .unwrap_or_else(|_| panic!("the thread inside namespace {ns} panicked"))
}

/// A node for slot `slot` of `lab`: named `n<slot>`, on the slot's link address, no mDNS
/// (nothing multicast), one runtime thread, default membership timing, and `open` (no
/// cluster secret, so without it protected mode would refuse the other namespaces).
pub fn node_builder(lab: &Lab, slot: usize, bootstrap: &[String]) -> NodeBuilder {
    Node::builder()
        .name(format!("n{slot}"))
        .listen(lab.listen(slot))
        .open(true)
        .mdns(false)
        .threads(1)
        .bootstrap(bootstrap.iter().cloned())
}

/// Starts a node from a thread inside `ns` (its runtime threads and socket live there).
pub fn start_in(ns: &str, builder: NodeBuilder) -> Node {
    let name = ns.to_string();
    in_netns(ns, move || builder.start_blocking())
        .unwrap_or_else(|e| panic!("starting a node in {name}: {e}"))
}
