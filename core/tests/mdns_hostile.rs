//! mDNS discovery on a hostile LAN, inside Linux network namespaces created by the test.
//!
//! An attacker on the link registers more than a thousand fake memmesh services with the
//! victim's (public) cluster tag and addresses on the link where nothing answers. Before
//! issue 12 (defect 9) the victim dialled them one at a time (5 s each), mdns-sd dropped
//! the browse subscription when its 1000-event channel filled, and the discovery loop then
//! ended for good: a real node that appeared later was never found.
//!
//! Like `mdns_netns.rs`, every node and mDNS daemon is created from a thread that entered
//! one of the test's namespaces (a bridge in a hub namespace joins them), mDNS is
//! restricted to the link interface, and no multicast reaches the host's own interfaces.
//! The namespaces are deleted on drop; ones left by a killed run are reaped by the next.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's `ip`; without them each test
//! fails with a clear message, unless `MEMMESH_SKIP_NETNS=1` is set (a loud `SKIPPED:` line).
//! Run it serially (`-- --test-threads=1`): each test floods its link with thousands of mDNS
//! packets, and the deadlines assume the machine is not also running the other tests.
//!
//! Timing is printed, never asserted: conditions are polled with generous deadlines.
//!
//! - `a_flood_of_fake_adverts_does_not_silence_discovery`: 1,100 fakes, then a real node
//!   appears and the victim connects to it; a while later another one, found as well.
//! - `a_browse_dropped_by_a_stalled_reader_is_restarted`: the browse shell itself, with a
//!   consumer that stalls under the flood so mdns-sd really drops the subscription; the
//!   browse is restarted and an advert published afterwards is still delivered.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use memmesh::discovery::advert::{txt_properties, SERVICE_TYPE, TXT_ID};
use memmesh::discovery::browse::Browser;
use memmesh::discovery::limits::REPLAY_AFTER_DROPS;
use memmesh::{Node, NodeBuilder, NodeId, PeerState};

/// Where `ip netns add` keeps its namespaces.
const NETNS_DIR: &str = "/var/run/netns";
/// Prefix of every namespace these tests create: `mmh-<pid>-<n>-<role>`.
const PREFIX: &str = "mmh";
/// The link interface inside each namespace.
const VETH: &str = "mm0";
/// How many fake services the attacker registers (mdns-sd's event channel holds 1000).
const FAKES: usize = 1100;
/// How long an "eventually" may take (a real node is normally found within a second).
const DEADLINE: Duration = Duration::from_secs(90);
/// How long the flood is given to reach the victim before the real node appears.
const FLOOD: Duration = Duration::from_secs(120);

// ----------------------------------------------------------------------------------------
// Output that the test harness does not capture.

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
// Namespaces on one bridge.

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
static SETUP: Mutex<()> = Mutex::new(());

/// `n` namespaces on one bridge (in a hub namespace); slot `s` has 10.77.0.<s+1>/16 on
/// `mm0`. The /16 leaves room for a thousand distinct addresses where nothing answers.
struct Lab {
    created: Vec<String>,
    slots: Vec<String>,
}

impl Lab {
    fn new(test: &str, n: usize) -> Option<Lab> {
        // Skipped explicitly even where namespaces work: the main `cargo test` of ci/test
        // sets it, and ci/test-netns runs these tests on their own.
        if std::env::var("MEMMESH_SKIP_NETNS").as_deref() == Ok("1") {
            say(format!(
                "SKIPPED: {test}: MEMMESH_SKIP_NETNS=1 is set (ci/test-netns runs it as root)"
            ));
            return None;
        }
        let guard = SETUP.lock().unwrap_or_else(|p| p.into_inner());
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

    fn add_ns(&mut self, name: String) -> Result<String, String> {
        ip(&["netns", "add", &name])?;
        self.created.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn build(&mut self, n: usize) -> Result<(), String> {
        let base = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        for slot in 0..n {
            let ns = self.add_ns(format!("{base}-n{slot}"))?;
            self.slots.push(ns);
        }
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
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", VETH, "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let cidr = format!("{}/16", self.ip(slot));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", VETH])?;
            ip(&["-n", &ns, "link", "set", VETH, "multicast", "on"])?;
            ip(&["-n", &ns, "link", "set", VETH, "up"])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", VETH])?;
        }
        Ok(())
    }

    fn ns(&self, slot: usize) -> &str {
        &self.slots[slot]
    }

    fn ip(&self, slot: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, slot as u8 + 1)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                say(format!("warning: could not delete namespace {ns}: {e}"));
            }
        }
    }
}

/// An address on the link where nothing answers: 10.77.<1..>.<1..=200>, distinct per `i`.
fn unreachable(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1 + (i / 200) as u8, 1 + (i % 200) as u8)
}

// ----------------------------------------------------------------------------------------
// Running code inside a namespace.

extern "C" {
    fn setns(fd: c_int, nstype: c_int) -> c_int;
}
/// `CLONE_NEWNET` from <sched.h>.
const CLONE_NEWNET: c_int = 0x4000_0000;

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

/// A memmesh node in a namespace: mDNS on the link only, or off.
fn node(name: &str, lab: &Lab, slot: usize, secret: &str, mdns: bool) -> Node {
    let builder: NodeBuilder = Node::builder()
        .name(name)
        .listen(format!("{}:0", lab.ip(slot)))
        .cluster_secret(secret)
        .mdns(mdns)
        .mdns_interfaces([VETH])
        .threads(1)
        .request_timeout(Duration::from_secs(2));
    in_netns(lab.ns(slot), move || builder.start_blocking())
        .unwrap_or_else(|e| panic!("starting node {name}: {e}"))
}

/// An mDNS daemon created inside `ns` (so its sockets live there), restricted to the link.
fn daemon_in(ns: &str) -> ServiceDaemon {
    in_netns(ns, || {
        let d = ServiceDaemon::new().expect("an mdns-sd daemon");
        d.disable_interface(mdns_sd::IfKind::All)
            .expect("disable all interfaces");
        d.enable_interface(mdns_sd::IfKind::Name(VETH.to_string()))
            .expect("enable the link");
        d
    })
}

fn shutdown(daemon: &ServiceDaemon) {
    if let Ok(status) = daemon.shutdown() {
        let _ = status.recv_timeout(Duration::from_secs(5));
    }
}

/// Registers `info` (no name probing), retrying while the daemon's command queue is full.
fn register(daemon: &ServiceDaemon, mut info: ServiceInfo) {
    info.set_requires_probe(false);
    loop {
        match daemon.register(info.clone()) {
            Ok(()) => return,
            Err(mdns_sd::Error::Again) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("registering {}: {e}", info.get_fullname()),
        }
    }
}

/// The advert a node with `id`, cluster `tag`, reachable at `addr:port` publishes.
fn advert(id: &NodeId, tag: &str, host: &str, addr: Ipv4Addr, port: u16) -> ServiceInfo {
    let props = txt_properties(id, tag, port);
    ServiceInfo::new(
        SERVICE_TYPE,
        &id.to_string(),
        host,
        &[IpAddr::V4(addr)][..],
        port,
        &props[..],
    )
    .expect("a service info")
}

/// A fake node id (never a real key: nobody can answer for it).
fn fake_id(n: usize) -> NodeId {
    let mut bytes = [0xfa_u8; 32];
    bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
    bytes[8..16].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    NodeId::from_bytes(bytes)
}

/// Registers `FAKES` fake services with cluster `tag`, each on its own host name and
/// unreachable address.
fn flood(attacker: &ServiceDaemon, tag: &str, first: usize) -> HashSet<String> {
    let mut ids = HashSet::new();
    for i in first..first + FAKES {
        let id = fake_id(i);
        let info = advert(&id, tag, &format!("fake-{i}.local."), unreachable(i), 7400);
        register(attacker, info);
        ids.insert(id.to_string());
    }
    ids
}

/// Browses from `ns` with a plain mdns-sd browser and counts the adverts of `ids` it
/// resolves, until `want` of them are seen or `deadline` passes.
fn count_seen(ns: &str, ids: HashSet<String>, want: usize, deadline: Duration) -> usize {
    let daemon = daemon_in(ns);
    let events = daemon.browse(SERVICE_TYPE).expect("browse");
    let mut seen = HashSet::new();
    let end = Instant::now() + deadline;
    while seen.len() < want {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(svc)) => {
                if let Some(id) = svc.get_property_val_str(TXT_ID) {
                    if ids.contains(id) {
                        seen.insert(id.to_string());
                    }
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    shutdown(&daemon);
    seen.len()
}

fn connected(node: &Node, peer: NodeId) -> bool {
    node.peers()
        .iter()
        .any(|p| p.id == peer && p.connected && p.state == PeerState::Alive)
}

fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn peers_text(node: &Node) -> String {
    let peers: Vec<String> = node
        .peers()
        .iter()
        .map(|p| {
            format!(
                "{} {} {}{}",
                p.name,
                p.id.short(),
                p.state.as_str(),
                if p.connected { "+connected" } else { "" },
            )
        })
        .collect();
    format!("{} sees [{}]", node.name(), peers.join("; "))
}

// ----------------------------------------------------------------------------------------
// Tests.

/// A real node that does not browse itself (mDNS off) and whose advert a separate mdns-sd
/// responder in its namespace publishes: exactly the records the node would publish, so
/// the only way the victim can connect to it is by its own discovery.
struct Advertised {
    node: Node,
    responder: ServiceDaemon,
}

fn advertised_node(name: &str, lab: &Lab, slot: usize, secret: &str, tag: &str) -> Advertised {
    let node = node(name, lab, slot, secret, false);
    assert_eq!(node.cluster_tag(), tag);
    let responder = daemon_in(lab.ns(slot));
    let host = format!("{name}-{}.local.", node.id().short().to_lowercase());
    register(
        &responder,
        advert(&node.id(), tag, &host, lab.ip(slot), node.addr().port()),
    );
    Advertised { node, responder }
}

#[test]
fn a_flood_of_fake_adverts_does_not_silence_discovery() {
    let test = "a_flood_of_fake_adverts_does_not_silence_discovery";
    init_tracing();
    // 0 victim, 1 attacker, 2 and 3 real nodes that appear later.
    let Some(lab) = Lab::new(test, 4) else { return };
    let secret = "hostile-lan-secret";
    let victim = node("victim", &lab, 0, secret, true);
    let tag = victim.cluster_tag().to_string();

    // The attacker registers FAKES services with the victim's public tag; a plain browser
    // in the victim's namespace checks that they really reach it.
    let attacker = daemon_in(lab.ns(1));
    let started = Instant::now();
    let ids = flood(&attacker, &tag, 0);
    // More than mdns-sd's channel of 1000 (one record may be missed on a busy link).
    let seen = count_seen(lab.ns(0), ids, 1001, FLOOD);
    say(format!(
        "{test}: {seen} of {FAKES} fake adverts (at least) resolved in the victim's namespace \
         after {} ms",
        started.elapsed().as_millis()
    ));
    assert!(
        seen > 1000,
        "only {seen} of {FAKES} fake adverts reached the victim's namespace: the flood \
         did not happen, so this test would prove nothing"
    );

    // A real node appears: the victim must still find it and connect.
    let b = advertised_node("b", &lab, 2, secret, &tag);
    let appeared = Instant::now();
    assert!(
        eventually(DEADLINE, || connected(&victim, b.node.id())),
        "the victim did not connect to a real node advertised after {FAKES} fake adverts \
         within {DEADLINE:?}: {}",
        peers_text(&victim)
    );
    say(format!(
        "{test}: the victim connected to the real node {} ms after it was advertised",
        appeared.elapsed().as_millis()
    ));
    assert!(
        eventually(DEADLINE, || connected(&b.node, victim.id())),
        "{}",
        peers_text(&b.node)
    );

    // The victim's discovery is still alive a while later: the fakes' dials keep failing
    // meanwhile, and (adverts were dropped from its full waiting set) it replays mdns-sd's
    // cache. Another node is found too.
    std::thread::sleep(REPLAY_AFTER_DROPS + Duration::from_secs(5));
    let c = advertised_node("c", &lab, 3, secret, &tag);
    let appeared = Instant::now();
    assert!(
        eventually(DEADLINE, || connected(&victim, c.node.id())),
        "the victim's discovery died: a node advertised later was not connected within \
         {DEADLINE:?}: {}",
        peers_text(&victim)
    );
    say(format!(
        "{test}: the victim connected to a later node {} ms after it was advertised",
        appeared.elapsed().as_millis()
    ));
    // Nothing fake ever got in.
    assert!(
        victim
            .peers()
            .iter()
            .all(|p| p.id == b.node.id() || p.id == c.node.id()),
        "{}",
        peers_text(&victim)
    );

    shutdown(&attacker);
    for a in [&b, &c] {
        shutdown(&a.responder);
    }
    for n in [&victim, &b.node, &c.node] {
        n.shutdown_blocking().unwrap();
    }
}

#[test]
fn a_browse_dropped_by_a_stalled_reader_is_restarted() {
    let test = "a_browse_dropped_by_a_stalled_reader_is_restarted";
    init_tracing();
    // 0 browses, 1 floods.
    let Some(lab) = Lab::new(test, 2) else { return };
    // A consumer that stalls for its first records (50 ms each) while the flood arrives:
    // mdns-sd's 1000-event channel fills and it drops the subscription, as it would for a
    // node whose reader fell behind.
    const STALLED: usize = 300;
    let daemon = daemon_in(lab.ns(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    let browser = {
        let (handled, seen) = (handled.clone(), seen.clone());
        Browser::start(daemon.clone(), move |batch| {
            for svc in batch {
                if handled.fetch_add(1, Ordering::Relaxed) < STALLED {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if let Some(id) = svc.get_property_val_str(TXT_ID) {
                    seen.lock().unwrap().insert(id.to_string());
                }
            }
        })
        .expect("start browsing")
    };

    let attacker = daemon_in(lab.ns(1));
    let started = Instant::now();
    flood(&attacker, "any-cluster", 0);
    assert!(
        eventually(FLOOD, || browser.restarts() > 0),
        "the browse was never dropped and restarted ({} records handled): the flood did \
         not overflow mdns-sd's channel, so this test would prove nothing",
        handled.load(Ordering::Relaxed)
    );
    say(format!(
        "{test}: the browse was dropped and restarted {} ms after the flood began \
         ({} records handled)",
        started.elapsed().as_millis(),
        handled.load(Ordering::Relaxed)
    ));

    // Published after the restart: still delivered.
    let late = fake_id(1_000_000);
    register(
        &attacker,
        advert(&late, "any-cluster", "late.local.", unreachable(5000), 7400),
    );
    let published = Instant::now();
    let late_text = late.to_string();
    assert!(
        eventually(DEADLINE, || seen.lock().unwrap().contains(&late_text)),
        "an advert published after the browse was restarted was never delivered \
         ({} restarts, {} records handled)",
        browser.restarts(),
        handled.load(Ordering::Relaxed)
    );
    say(format!(
        "{test}: an advert published after the restart was delivered {} ms later \
         ({} restarts in all)",
        published.elapsed().as_millis(),
        browser.restarts()
    ));

    browser.stop();
    shutdown(&daemon);
    shutdown(&attacker);
}
