//! mDNS discovery between nodes that live in Linux network namespaces created by the test.
//!
//! Each test builds its own link (a veth pair, or a bridge in a hub namespace for three
//! nodes), starts every node on a thread that has entered one of those namespaces (`setns`;
//! the node's runtime threads, its QUIC socket and the mDNS daemon are all created from
//! that thread, so they live there too), and restricts mDNS to the namespace's veth. No
//! multicast ever reaches the host's own interfaces. The namespaces are deleted on drop,
//! also when an assertion fails; namespaces left by a killed run are reaped by the next.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's `ip`. Without them each test
//! fails with a clear message, unless `MEMMESH_SKIP_NETNS=1` is set, which turns it into a
//! loud `SKIPPED:` line. The python-zeroconf interop test also needs a Python with
//! `zeroconf`: `MEMMESH_ZEROCONF_PYTHON` (set by `ci/test-netns`, then required), else
//! `target/ci-venv/bin/python` if it has zeroconf, else it is skipped loudly.
//!
//! Timing is printed, never asserted: conditions are polled with generous deadlines. The
//! nodes start together, so the printed time includes mdns-sd's 750 ms name probing
//! (bench/discovery/mdns-discovery.sh measures both that and joining a running node).
//!
//! - `two_nodes_in_namespaces_find_each_other_over_a_veth`: discovery, addresses,
//!   requests both ways, and the connection stays up afterwards.
//! - `a_node_with_another_secret_is_seen_but_never_connected`: three namespaces on a
//!   bridge; the other cluster's advert is visible on the link, yet never connected.
//! - `mdns_stays_off_the_interfaces_it_is_not_given`: a watcher on a second link of the
//!   node's namespace hears no mDNS, and does hear a node that is given that link.
//! - `python_zeroconf_reads_the_advertisement_of_a_node`: interop with python-zeroconf
//!   (tests/netns/zeroconf_browse.py): instance name, SRV port, address, TXT v/id/cluster/port.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::raw::{c_char, c_int, c_uint};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memmesh::discovery::advert::{SERVICE_TYPE, TXT_CLUSTER, TXT_ID};
use memmesh::{Node, NodeBuilder, NodeId, PeerState};

/// Where `ip netns add` keeps its namespaces.
const NETNS_DIR: &str = "/var/run/netns";
/// Prefix of every namespace these tests create: `mmt-<pid>-<n>-<role>`.
const PREFIX: &str = "mmt";
/// The link interface inside each node namespace.
const VETH: &str = "mm0";
/// How long discovery may take before a test gives up (the target is 500 ms).
const DEADLINE: Duration = Duration::from_secs(30);
/// How long a "never" or "stays" condition is watched.
const WATCH: Duration = Duration::from_secs(5);

// ----------------------------------------------------------------------------------------
// Output that the test harness does not capture.

/// Writes a line straight to stderr (the harness only captures the print macros), so
/// SKIPPED lines and measurements are visible in a normal `cargo test` run.
fn say(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "{}", line.as_ref());
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEMMESH_LOG")
        .unwrap_or_else(|_| "memmesh=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Namespaces are unavailable: fail, or skip loudly when `MEMMESH_SKIP_NETNS=1`.
fn unavailable(test: &str, why: &str) {
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

// ----------------------------------------------------------------------------------------
// Namespaces and links.

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

/// Deletes namespaces of this test suite whose creating process is gone (a killed run).
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

/// Serialises namespace setup within this test binary: the very first `ip netns add` on a
/// machine bind-mounts /run/netns, and two doing it at once can stack two mounts (hiding
/// the namespaces created under the first).
static SETUP: Mutex<()> = Mutex::new(());

fn setup_lock() -> std::sync::MutexGuard<'static, ()> {
    SETUP.lock().unwrap_or_else(|p| p.into_inner())
}

/// Namespaces joined by one link, with one "slot" per node: a namespace and its address
/// (10.77.0.<slot+1>/24 on `mm0`). Everything is deleted on drop.
struct Lab {
    /// Every namespace created so far (slots, then the hub), deleted on drop.
    created: Vec<String>,
    /// Node namespaces, by slot.
    slots: Vec<String>,
}

impl Lab {
    /// `n` namespaces on one link: a veth pair for two, a bridge in a hub namespace for
    /// more. `None` if namespaces are unavailable and the test is skipped.
    fn new(test: &str, n: usize) -> Option<Lab> {
        // Skipped explicitly even where namespaces work: the main `cargo test` of ci/test
        // sets it, and ci/test-netns runs these tests on their own.
        if std::env::var("MEMMESH_SKIP_NETNS").as_deref() == Ok("1") {
            say(format!(
                "SKIPPED: {test}: MEMMESH_SKIP_NETNS=1 is set (ci/test-netns runs it as root)"
            ));
            return None;
        }
        let guard = setup_lock();
        reap_stale();
        let mut lab = Lab {
            created: Vec::new(),
            slots: Vec::new(),
        };
        let built = lab.build(n);
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

    fn base() -> String {
        format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn add_ns(&mut self, name: String) -> Result<String, String> {
        ip(&["netns", "add", &name])?;
        self.created.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn build(&mut self, n: usize) -> Result<(), String> {
        assert!(n >= 2);
        let base = Self::base();
        for slot in 0..n {
            let ns = self.add_ns(format!("{base}-n{slot}"))?;
            self.slots.push(ns);
        }
        if n == 2 {
            // Both ends are created directly inside the namespaces: nothing touches the
            // host's namespace, not even for a moment.
            let (a, b) = (self.slots[0].clone(), self.slots[1].clone());
            ip(&[
                "-n", &a, "link", "add", VETH, "type", "veth", "peer", "name", VETH, "netns", &b,
            ])?;
        } else {
            let hub = self.add_ns(format!("{base}-hub"))?;
            ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
            // No IGMP snooping: the bridge floods multicast like a plain switch.
            ip(&[
                "-n",
                &hub,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["-n", &hub, "link", "set", "br0", "up"])?;
            for slot in 0..n {
                let port = format!("p{slot}");
                let ns = self.slots[slot].clone();
                ip(&[
                    "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", VETH,
                    "netns", &ns,
                ])?;
                ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
                ip(&["-n", &hub, "link", "set", &port, "up"])?;
            }
        }
        for slot in 0..n {
            let ns = self.slots[slot].clone();
            up_with_addr(&ns, VETH, &format!("{}/24", self.ip(slot)))?;
        }
        Ok(())
    }

    /// The namespace of `slot`.
    fn ns(&self, slot: usize) -> &str {
        &self.slots[slot]
    }

    /// The address of `slot` on the link.
    fn ip(&self, slot: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, slot as u8 + 1)
    }

    /// A listen address on `slot`'s link address (port chosen by the OS).
    fn listen(&self, slot: usize) -> String {
        format!("{}:0", self.ip(slot))
    }
}

/// Brings `dev` up in `ns` with `cidr`, multicast on, and a multicast route through it
/// (a namespace has no default route, and a multicast sender without one may fail).
fn up_with_addr(ns: &str, dev: &str, cidr: &str) -> Result<(), String> {
    ip(&["-n", ns, "addr", "add", cidr, "dev", dev])?;
    ip(&["-n", ns, "link", "set", dev, "multicast", "on"])?;
    ip(&["-n", ns, "link", "set", dev, "up"])?;
    ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
    Ok(())
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
    fn if_nametoindex(name: *const c_char) -> c_uint;
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
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
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

/// A node configured for a namespace: mDNS on, restricted to the link interface.
fn netns_node(name: &str, listen: &str, secret: &str) -> NodeBuilder {
    Node::builder()
        .name(name)
        .listen(listen)
        .cluster_secret(secret)
        .mdns(true)
        .mdns_interfaces([VETH])
        .threads(1)
        // Short request timeout: a replaced duplicate connection is retired after
        // request_timeout + 1 s, which the "stays connected" checks then cover.
        .request_timeout(Duration::from_secs(2))
}

/// Starts a node from a thread inside `ns`.
fn start_in(ns: &str, builder: NodeBuilder) -> Node {
    let name = ns.to_string();
    in_netns(ns, move || builder.start_blocking())
        .unwrap_or_else(|e| panic!("starting a node in {name}: {e}"))
}

// ----------------------------------------------------------------------------------------
// Conditions.

/// Whether `node` lists `peer` as a connected, alive peer.
fn connected(node: &Node, peer: NodeId) -> bool {
    node.peers()
        .iter()
        .any(|p| p.id == peer && p.connected && p.state == PeerState::Alive)
}

/// Polls `cond` until it holds or `deadline` passes.
fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Checks that `cond` holds throughout `window` (polled).
fn throughout(window: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + window;
    while Instant::now() < end {
        if !cond() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn peers_text(node: &Node) -> String {
    let peers: Vec<String> = node
        .peers()
        .iter()
        .map(|p| {
            format!(
                "{} {} {}{} {:?}",
                p.name,
                p.id.short(),
                p.state.as_str(),
                if p.connected { "+connected" } else { "" },
                p.addrs
            )
        })
        .collect();
    format!("{} sees [{}]", node.name(), peers.join("; "))
}

fn echo(node: &Node) {
    node.channel("echo")
        .unwrap()
        .on_request(|req: memmesh::Request| async move { Ok(req.data) });
}

fn request(from: &Node, to: NodeId, text: &str) -> memmesh::Result<String> {
    let reply = futures::executor::block_on(async {
        from.channel("echo")?
            .request(to, text.to_string(), Some(Duration::from_secs(10)))
            .await
    })?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

// ----------------------------------------------------------------------------------------
// Tests.

#[test]
fn two_nodes_in_namespaces_find_each_other_over_a_veth() {
    let test = "two_nodes_in_namespaces_find_each_other_over_a_veth";
    init_tracing();
    let Some(lab) = Lab::new(test, 2) else { return };
    // One node binds its link address, the other binds 0.0.0.0 (the advertisement then
    // carries the interface's addresses).
    let a = start_in(lab.ns(0), netns_node("a", &lab.listen(0), "veth-secret"));
    let started = Instant::now();
    let b = start_in(lab.ns(1), netns_node("b", "0.0.0.0:0", "veth-secret"));
    let found = eventually(DEADLINE, || connected(&a, b.id()) && connected(&b, a.id()));
    let took = started.elapsed();
    assert!(
        found,
        "the nodes did not find each other by mDNS within {DEADLINE:?}: {} / {}",
        peers_text(&a),
        peers_text(&b)
    );
    say(format!(
        "{test}: both nodes listed each other {} ms after the second one started \
         (both fresh: includes mDNS name probing)",
        took.as_millis()
    ));

    // Each lists the other with its address on the link.
    let b_seen_by_a = a.peers().into_iter().find(|p| p.id == b.id()).unwrap();
    assert_eq!(b_seen_by_a.name, "b");
    assert!(
        b_seen_by_a
            .addrs
            .iter()
            .any(|s| s.ip() == IpAddr::V4(lab.ip(1))),
        "{}",
        peers_text(&a)
    );
    let a_seen_by_b = b.peers().into_iter().find(|p| p.id == a.id()).unwrap();
    assert_eq!(a_seen_by_b.name, "a");
    assert!(
        a_seen_by_b.addrs.iter().any(|s| *s == a.addr()),
        "{}",
        peers_text(&b)
    );

    // The connection that discovery made carries requests both ways.
    echo(&a);
    echo(&b);
    assert_eq!(request(&a, b.id(), "a to b").unwrap(), "a to b");
    assert_eq!(request(&b, a.id(), "b to a").unwrap(), "b to a");

    // Both nodes may have dialled at the same moment; whatever duplicate connection that
    // made is retired, and they must stay connected afterwards.
    assert!(
        throughout(WATCH, || connected(&a, b.id()) && connected(&b, a.id())),
        "the peers lost their connection after discovery: {} / {}",
        peers_text(&a),
        peers_text(&b)
    );
    assert_eq!(request(&a, b.id(), "still there").unwrap(), "still there");

    a.shutdown_blocking().unwrap();
    b.shutdown_blocking().unwrap();
}

/// Browses for memmesh adverts with an mDNS stack of our own (mdns-sd, as a plain
/// browser) inside `ns`, until `done` holds for the adverts seen (id -> cluster tag) or
/// the deadline passes.
fn browse_in(
    ns: &str,
    deadline: Duration,
    done: impl Fn(&HashMap<String, String>) -> bool + Send + 'static,
) -> HashMap<String, String> {
    in_netns(ns, move || {
        let daemon = mdns_sd::ServiceDaemon::new().expect("mdns daemon");
        daemon
            .disable_interface(mdns_sd::IfKind::All)
            .expect("disable all");
        daemon
            .enable_interface(mdns_sd::IfKind::Name(VETH.to_string()))
            .expect("enable the veth");
        let events = daemon.browse(SERVICE_TYPE).expect("browse");
        let mut seen = HashMap::new();
        let end = Instant::now() + deadline;
        while !done(&seen) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Ok(mdns_sd::ServiceEvent::ServiceResolved(svc)) = events.recv_timeout(left) {
                if let (Some(id), Some(tag)) = (
                    svc.get_property_val_str(TXT_ID),
                    svc.get_property_val_str(TXT_CLUSTER),
                ) {
                    seen.insert(id.to_string(), tag.to_string());
                }
            }
        }
        if let Ok(status) = daemon.shutdown() {
            let _ = status.recv_timeout(Duration::from_secs(2));
        }
        seen
    })
}

#[test]
fn a_node_with_another_secret_is_seen_but_never_connected() {
    let test = "a_node_with_another_secret_is_seen_but_never_connected";
    init_tracing();
    let Some(lab) = Lab::new(test, 3) else { return };
    let a = start_in(lab.ns(0), netns_node("a", &lab.listen(0), "alpha"));
    let b = start_in(lab.ns(1), netns_node("b", &lab.listen(1), "alpha"));
    let c = start_in(lab.ns(2), netns_node("c", &lab.listen(2), "beta"));
    assert_eq!(a.cluster_tag(), b.cluster_tag());
    assert_ne!(a.cluster_tag(), c.cluster_tag());

    // The same secret: a and b find each other across the bridge.
    assert!(
        eventually(DEADLINE, || connected(&a, b.id()) && connected(&b, a.id())),
        "a and b (same secret) did not connect: {} / {}",
        peers_text(&a),
        peers_text(&b)
    );

    // c's advertisement does reach a's namespace (so a's node saw it and ignored it): an
    // independent browser in a's namespace resolves all three adverts with their tags.
    let ids: Vec<(String, String)> = [&a, &b, &c]
        .iter()
        .map(|n| (n.id().to_string(), n.cluster_tag().to_string()))
        .collect();
    let want = ids.clone();
    let seen = browse_in(lab.ns(0), DEADLINE, move |seen| {
        want.iter().all(|(id, _)| seen.contains_key(id))
    });
    for (id, tag) in &ids {
        assert_eq!(
            seen.get(id),
            Some(tag),
            "the advert of {id} was not seen in a's namespace: {seen:?}"
        );
    }

    // c is never connected, and a and b never even list it.
    let c_id = c.id();
    let isolated = || {
        !a.peers().iter().any(|p| p.id == c_id)
            && !b.peers().iter().any(|p| p.id == c_id)
            && !c.peers().iter().any(|p| p.connected)
    };
    assert!(
        throughout(WATCH, isolated),
        "a node of another cluster got in: {} / {} / {}",
        peers_text(&a),
        peers_text(&b),
        peers_text(&c)
    );
    assert!(connected(&a, b.id()) && connected(&b, a.id()));

    for n in [&a, &b, &c] {
        n.shutdown_blocking().unwrap();
    }
}

/// Counts mDNS packets (UDP 5353, IPv4 and IPv6 groups) arriving on `dev` in `ns`, on
/// a background thread inside that namespace.
struct MdnsWatcher {
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MdnsWatcher {
    fn start(ns: &str, dev: &str, ip: Ipv4Addr) -> MdnsWatcher {
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, dev) = (ns.to_string(), dev.to_string());
        let (tx, rx) = std::sync::mpsc::channel();
        let (c, s) = (count.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let socks = (|| -> Result<Vec<UdpSocket>, String> {
                enter_netns(&ns)?;
                let v4 = UdpSocket::bind("0.0.0.0:5353").map_err(|e| e.to_string())?;
                v4.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &ip)
                    .map_err(|e| format!("join v4: {e}"))?;
                let cname = CString::new(dev.as_str()).map_err(|e| e.to_string())?;
                // SAFETY: a valid NUL-terminated string for the duration of the call.
                let index = unsafe { if_nametoindex(cname.as_ptr()) };
                // IPv6-only, or it would clash with the IPv4 socket's port.
                let v6 = socket2::Socket::new(
                    socket2::Domain::IPV6,
                    socket2::Type::DGRAM,
                    Some(socket2::Protocol::UDP),
                )
                .map_err(|e| e.to_string())?;
                v6.set_only_v6(true).map_err(|e| e.to_string())?;
                let any6: std::net::SocketAddr = "[::]:5353".parse().unwrap();
                v6.bind(&any6.into()).map_err(|e| format!("bind v6: {e}"))?;
                let v6 = UdpSocket::from(v6);
                v6.join_multicast_v6(&"ff02::fb".parse::<Ipv6Addr>().unwrap(), index)
                    .map_err(|e| format!("join v6: {e}"))?;
                for s in [&v4, &v6] {
                    s.set_read_timeout(Some(Duration::from_millis(50)))
                        .map_err(|e| e.to_string())?;
                }
                Ok(vec![v4, v6])
            })();
            let socks = match socks {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut buf = [0u8; 9000];
            while !s.load(Ordering::Relaxed) {
                for sock in &socks {
                    if sock.recv_from(&mut buf).is_ok() {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("starting the mDNS watcher: {e}"),
            Err(_) => panic!("the mDNS watcher thread died"),
        }
        MdnsWatcher {
            count,
            stop,
            thread: Some(thread),
        }
    }

    fn packets(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for MdnsWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn mdns_stays_off_the_interfaces_it_is_not_given() {
    let test = "mdns_stays_off_the_interfaces_it_is_not_given";
    init_tracing();
    let Some(mut lab) = Lab::new(test, 2) else {
        return;
    };
    // A second link from a's namespace to a watcher namespace: `mm1` (10.78.0.1) <->
    // `mm0` (10.78.0.2) in the watcher, who counts every mDNS packet it receives.
    let watcher_ns = format!("{}-watch", lab.ns(0));
    let setup = (|| -> Result<(), String> {
        let _guard = setup_lock();
        lab.add_ns(watcher_ns.clone())?;
        ip(&[
            "-n",
            lab.ns(0),
            "link",
            "add",
            "mm1",
            "type",
            "veth",
            "peer",
            "name",
            VETH,
            "netns",
            &watcher_ns,
        ])?;
        ip(&["-n", lab.ns(0), "addr", "add", "10.78.0.1/24", "dev", "mm1"])?;
        ip(&["-n", lab.ns(0), "link", "set", "mm1", "up"])?;
        up_with_addr(&watcher_ns, VETH, "10.78.0.2/24")
    })();
    if let Err(why) = setup {
        unavailable(test, &why);
        return;
    }
    let watcher = MdnsWatcher::start(&watcher_ns, VETH, Ipv4Addr::new(10, 78, 0, 2));

    // a (restricted to mm0) and b discover each other over mm0.
    let a = start_in(lab.ns(0), netns_node("a", "0.0.0.0:0", "s"));
    let b = start_in(lab.ns(1), netns_node("b", &lab.listen(1), "s"));
    assert!(
        eventually(DEADLINE, || connected(&a, b.id()) && connected(&b, a.id())),
        "{} / {}",
        peers_text(&a),
        peers_text(&b)
    );
    // Announcements and queries are repeated for a while after start: watch a while more.
    std::thread::sleep(WATCH);
    assert_eq!(
        watcher.packets(),
        0,
        "mDNS packets left a's namespace through mm1, an interface it was not given"
    );

    // Control: a node in the same namespace that is given mm1 is heard by the watcher,
    // so the silence above was not a deaf watcher.
    let loud = start_in(
        lab.ns(0),
        Node::builder()
            .name("loud")
            .listen("10.78.0.1:0")
            // No secret: without open = true, protected mode would keep mDNS off.
            .open(true)
            .mdns(true)
            .mdns_interfaces(["mm1"])
            .threads(1),
    );
    assert!(
        eventually(DEADLINE, || watcher.packets() > 0),
        "the watcher heard nothing even from a node advertising on mm1"
    );
    for n in [&a, &b, &loud] {
        n.shutdown_blocking().unwrap();
    }
}

// ----------------------------------------------------------------------------------------
// Interop with python-zeroconf.

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_path_buf()
}

fn has_zeroconf(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import zeroconf"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python to run the zeroconf browser with, or `None` (skipped loudly).
fn zeroconf_python(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEMMESH_ZEROCONF_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            has_zeroconf(&p),
            "MEMMESH_ZEROCONF_PYTHON={} cannot import zeroconf",
            p.display()
        );
        return Some(p);
    }
    let venv = workspace_root().join("target/ci-venv/bin/python");
    if has_zeroconf(&venv) {
        return Some(venv);
    }
    say(format!(
        "SKIPPED: {test}: no Python with zeroconf (ci/test-netns installs it and sets \
         MEMMESH_ZEROCONF_PYTHON; or run `. ci/lib.sh; venv_pip zeroconf`)"
    ));
    None
}

/// Runs `cmd`, killing it after `limit`; returns (success, stdout, stderr).
fn run_with_limit(mut cmd: Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the zeroconf browser");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + limit;
    let ok = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    (ok, out_t.join().unwrap(), err_t.join().unwrap())
}

#[test]
fn python_zeroconf_reads_the_advertisement_of_a_node() {
    let test = "python_zeroconf_reads_the_advertisement_of_a_node";
    init_tracing();
    let Some(python) = zeroconf_python(test) else {
        return;
    };
    let Some(lab) = Lab::new(test, 2) else { return };
    // Bound to 0.0.0.0: the advertised address comes from the (restricted) interfaces.
    let node = start_in(lab.ns(0), netns_node("zc", "0.0.0.0:0", "zeroconf-secret"));
    let script = workspace_root().join("tests/netns/zeroconf_browse.py");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", lab.ns(1)])
        .arg(&python)
        .arg(&script)
        .args(["--interface", &lab.ip(1).to_string()])
        .args(["--id", &node.id().to_string()])
        .args(["--timeout", "30"]);
    let started = Instant::now();
    let (ok, out, err) = run_with_limit(cmd, Duration::from_secs(60));
    assert!(
        ok,
        "python-zeroconf did not resolve the node's advertisement:\nstdout:\n{out}\nstderr:\n{err}"
    );
    say(format!(
        "{test}: python-zeroconf resolved the advert {} ms after it started",
        started.elapsed().as_millis()
    ));

    // `key=value` lines; `address` repeats.
    let mut fields: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once('=') {
            fields.entry(k).or_default().push(v);
        }
    }
    let one = |k: &str| -> &str {
        match fields.get(k).map(|v| v.as_slice()) {
            Some([v]) => v,
            other => panic!("expected one `{k}` in the browser's output, got {other:?}:\n{out}"),
        }
    };
    let port = node.addr().port().to_string();
    assert_eq!(one("txt.v"), "1", "{out}");
    assert_eq!(one("txt.id"), node.id().to_string(), "{out}");
    assert_eq!(one("txt.cluster"), node.cluster_tag(), "{out}");
    assert_eq!(one("txt.port"), port, "{out}");
    assert_eq!(one("port"), port, "SRV port\n{out}");
    assert_eq!(
        one("name"),
        format!("{}.{SERVICE_TYPE}", node.id()),
        "instance name\n{out}"
    );
    let addrs = fields.get("address").cloned().unwrap_or_default();
    assert!(
        addrs.contains(&lab.ip(0).to_string().as_str()),
        "the advert does not carry the node's link address {}: {addrs:?}",
        lab.ip(0)
    );
    assert!(
        addrs.iter().all(|a| !a.starts_with("127.")),
        "the advert carries a loopback address: {addrs:?}"
    );
    node.shutdown_blocking().unwrap();
}
