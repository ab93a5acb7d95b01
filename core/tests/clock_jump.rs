//! Nodes whose wall clock jumps (issue 11): membership must stay converged, or re-converge,
//! and every acknowledged write and delete must read right from every node.
//!
//! The node whose clock jumps runs in a child process under libfaketime: this test binary
//! re-executes itself with `--exact clock_jump_child_node`, `MEMMESH_CLOCKJUMP_CHILD=1` and
//! `LD_PRELOAD=<libfaketime.so.1>`. Only `CLOCK_REALTIME` is faked
//! (`FAKETIME_DONT_FAKE_MONOTONIC=1`: memmesh's timers use the monotonic clock), by the
//! offset in the file named by `FAKETIME_TIMESTAMP_FILE` (`+3600`, `-3600`: seconds from
//! the real time), re-read on every call (`FAKETIME_NO_CACHE=1`); the parent rewrites that
//! file to step the child's clock, then reads the child's clock through its `wall` probe to
//! confirm the step. The child answers probes on the `probe` channel (netlab/check.rs
//! `serve_probe`): its membership view, what IT reads for a list of keys, and writes and
//! deletes made through it (`set`, `del`), recorded by the parent like any other. The
//! invariants are those of partition_netns.rs: membership converges (`converge`), every
//! acknowledged write and delete reads right from every node (`reconcile`). Everything runs
//! on 127.0.0.1 (no namespaces, no root); times are printed, never asserted. The two tests
//! run one at a time (they time failure detection).
//!
//! - `a_node_whose_clock_jumps_forward_and_back_stays_a_member`: a and b in this process,
//!   c the child, replicas 2; writes start 32 s after the cluster formed, once writes reach
//!   a key's owners only (not also its owners before c joined). Writers through all three;
//!   c's clock jumps 1 h ahead while they write. Then c, still ahead, writes fresh keys,
//!   its clock steps back 2 h (to 1 h behind), and right after each of c's writes was
//!   acknowledged, a overwrites or deletes the fresh keys it does not own (so its HLC never
//!   observed their stamps) and b those it does not own (it did observe later stamps of
//!   c): these later writes must win although c stamped the others in the future (ADR
//!   0010, *Clocks*). Then writers through all three again, a and b overwriting and
//!   deleting keys c wrote while ahead. After each step membership is converged and the
//!   data reconciled; no node may ever report another down.
//! - `a_node_restarted_with_its_clock_set_back_rejoins`: a and b in this process, c the
//!   child with a data dir (it keeps its NodeId). c is killed (SIGKILL) while a and b write,
//!   and restarted with the same data dir and port and its clock 1 h behind: it must rejoin
//!   (its persisted generation beats the one the cluster remembers, ADR 0008), and read
//!   every write made meanwhile.
//! - `clock_jump_child_node`: the child's side (does nothing unless
//!   `MEMMESH_CLOCKJUMP_CHILD` is set).
//!
//! libfaketime comes with Debian's `faketime` package (ci/test installs it when
//! missing). The tests look for `libfaketime.so.1` in the usual library directories, or
//! take it from `MEMMESH_FAKETIME_LIB`; without it they fail with a message saying how to
//! install it, unless `MEMMESH_SKIP_FAKETIME=1`, which turns them into loud `SKIPPED:`
//! lines.

mod netlab;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memmesh::{Bytes, Cache, CacheOptions, Node, NodeId, PeerState};
use netlab::check::{
    apply, converge, first_line, reconcile, serve_probe, EventLog, History, Names, Op, Plan, Probe,
    Writer, WriterStats, CONVERGE_DEADLINE, DATA_DEADLINE, PROBE_CHANNEL,
};
use netlab::{init_tracing, say};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Set in the child's environment: run the node.
const CHILD_ENV: &str = "MEMMESH_CLOCKJUMP_CHILD";
/// The address the child bootstraps from.
const BOOTSTRAP_ENV: &str = "MEMMESH_CLOCKJUMP_BOOTSTRAP";
/// The child's data dir, if it has one.
const DATA_DIR_ENV: &str = "MEMMESH_CLOCKJUMP_DATA_DIR";
/// The child's listen address (default `127.0.0.1:0`).
const LISTEN_ENV: &str = "MEMMESH_CLOCKJUMP_LISTEN";
/// Where libfaketime is, if not in the usual places.
const LIB_ENV: &str = "MEMMESH_FAKETIME_LIB";
/// `1` skips the tests loudly when libfaketime is missing.
const SKIP_ENV: &str = "MEMMESH_SKIP_FAKETIME";
/// The line the child prints once it serves probes: `MMCLOCK READY <id> <addr>`.
const READY: &str = "MMCLOCK READY";
/// The bucket written to.
const BUCKET: &str = "clock";
/// One hour, the size of every clock step here (in seconds).
const HOUR: i64 = 3600;
/// How far the child's clock may be from the offset asked for (the time a probe takes,
/// and then some).
const CLOCK_SLACK_MS: i64 = 60_000;
/// How long after the last membership change writes reach a key's owners only (30 s,
/// core/src/cache/state.rs `TRANSITION`, and some slack).
const SETTLED: Duration = Duration::from_secs(32);
/// Keys each of a and b overwrites or deletes right after c wrote them (case 1).
const FRESH: usize = 12;

extern "C" {
    // From the C library std links anyway (declared here so core needs no new dependency).
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
}
const SIGKILL: c_int = 9;
/// `PR_SET_PDEATHSIG` from <sys/prctl.h>.
const PR_SET_PDEATHSIG: c_int = 1;

/// The two tests one at a time: each times failure detection on a possibly small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options() -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas: 2,
        ..CacheOptions::default()
    })
}

fn secs(t: Instant, since: Instant) -> f64 {
    t.duration_since(since).as_secs_f64()
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ----------------------------------------------------------------------------------------
// libfaketime.

/// libfaketime's library: `MEMMESH_FAKETIME_LIB`, or the first found in the usual library
/// directories. `None` (after a SKIPPED line) if it is missing and `MEMMESH_SKIP_FAKETIME=1`;
/// a panic telling how to install it if it is missing otherwise.
fn faketime_lib(test: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(LIB_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{test}: {LIB_ENV}={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let mut candidates = Vec::new();
    for dir in ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64"] {
        let dir = Path::new(dir);
        candidates.push(dir.join("faketime/libfaketime.so.1"));
        candidates.push(dir.join("libfaketime.so.1"));
        // Multiarch directories: /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1.
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut subdirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            subdirs.sort();
            for sub in subdirs {
                candidates.push(sub.join("faketime/libfaketime.so.1"));
            }
        }
    }
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        say(format!(
            "SKIPPED: {test}: libfaketime is not installed; {SKIP_ENV}=1 is set"
        ));
        return None;
    }
    panic!(
        "{test}: libfaketime (libfaketime.so.1) is not installed. It fakes the wall clock of \
         the node whose clock jumps. Install it with `apt-get install -y faketime` (Debian, \
         Ubuntu; ci/test-netns does it when missing), or point {LIB_ENV} at the library. \
         Set {SKIP_ENV}=1 to skip these tests explicitly."
    );
}

/// The file the child's libfaketime reads its clock offset from; removed on drop.
struct Clock {
    path: PathBuf,
}

impl Clock {
    /// A new file with offset `offset` seconds.
    fn new(label: &str, offset: i64) -> Clock {
        let path =
            std::env::temp_dir().join(format!("memmesh-clock-{}-{label}.rc", std::process::id()));
        let clock = Clock { path };
        clock.set(offset);
        clock
    }

    /// Sets the offset (seconds from the real time), atomically: a reader sees the old
    /// file or the new one, never a partial one.
    fn set(&self, offset: i64) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, format!("{offset:+}\n"))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.path.display()));
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How far `probe`'s wall clock is from this process's, in milliseconds; waits (≤ 10 s)
/// until it is within [`CLOCK_SLACK_MS`] of `want` seconds, and panics if it never is
/// (libfaketime is not in effect).
async fn clock_offset(test: &str, probe: &Probe, want: i64) -> i64 {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let before = wall_ms();
        let theirs = probe.wall_ms().await;
        let after = wall_ms();
        let offset = theirs.map(|t| t as i64 - (before + after) / 2);
        if let Ok(o) = offset {
            if (o - want * 1000).abs() <= CLOCK_SLACK_MS {
                return o;
            }
        }
        assert!(
            Instant::now() < end,
            "{test}: {}'s clock is not {want:+} s from ours: {offset:?} ms (is libfaketime in \
             effect?)",
            probe.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----------------------------------------------------------------------------------------
// The child.

/// The child's side: a node named `c` that bootstraps from the parent's (with a data dir
/// and a listen address if given), opens the bucket, answers probes, and runs until its
/// stdin closes. Returns at once unless `MEMMESH_CLOCKJUMP_CHILD` is set.
#[test]
fn clock_jump_child_node() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // Killed with the parent.
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets this process's parent-death signal.
    unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL) };
    init_tracing();
    let bootstrap = std::env::var(BOOTSTRAP_ENV).expect("the bootstrap address in the env");
    let listen = std::env::var(LISTEN_ENV).unwrap_or_else(|_| "127.0.0.1:0".into());
    let mut builder = Node::builder()
        .name("c")
        .listen(listen)
        .mdns(false)
        .threads(1)
        .bootstrap([bootstrap]);
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        builder = builder.data_dir(PathBuf::from(dir));
    }
    let node = builder.start_blocking().expect("starting the child's node");
    let log = Arc::new(EventLog::record(&node, Instant::now()));
    let cache = futures::executor::block_on(node.cache(BUCKET, options()))
        .expect("opening the bucket in the child");
    serve_probe(&node, cache, log).expect("serving probes");
    println!("{READY} {} {}", node.id(), node.addr());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let _ = node.shutdown_blocking();
}

/// The child process running [`clock_jump_child_node`]; shut down (or killed) on drop.
struct ChildNode {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildNode {
    /// Starts the child under libfaketime `lib` reading its offset from `clock`, waits until
    /// it serves probes and returns it with its node's id and address.
    fn spawn(
        lib: &Path,
        clock: &Clock,
        bootstrap: &str,
        data_dir: Option<&Path>,
        listen: Option<&str>,
    ) -> (ChildNode, NodeId, SocketAddr) {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = Command::new(exe);
        cmd.args([
            "--exact",
            "clock_jump_child_node",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env(BOOTSTRAP_ENV, bootstrap)
        .env("LD_PRELOAD", lib)
        .env("FAKETIME_TIMESTAMP_FILE", &clock.path)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        // FAKETIME would take precedence over the file.
        .env_remove("FAKETIME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Some(dir) = data_dir {
            cmd.env(DATA_DIR_ENV, dir);
        }
        if let Some(addr) = listen {
            cmd.env(LISTEN_ENV, addr);
        }
        let mut child = cmd.spawn().expect("starting the child process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the child's stdout to the end (the harness prints there too).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness's `test clock_jump_child_node ... ` precedes it on the line.
                if let Some((_, rest)) = line.split_once(READY) {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let mut node = ChildNode { child, stdin };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(rest) => {
                let (id, addr) = rest.split_once(' ').expect("`<id> <addr>` after READY");
                let id = id.parse().expect("the child's node id");
                let addr = addr.parse().expect("the child's address");
                (node, id, addr)
            }
            Err(_) => panic!(
                "the child node did not start within 30 s (exit status: {:?})",
                node.child.try_wait()
            ),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child at once (no goodbye) and reaps it, which frees its port.
    fn kill(mut self) {
        // SAFETY: a signal to our own child, not reaped before `wait` below.
        unsafe { kill(self.pid() as c_int, SIGKILL) };
        let _ = self.child.wait();
        forget_faketime_shm(self.pid());
    }
}

/// Removes the semaphore and shared memory libfaketime created for the (reaped) process
/// `pid`: it removes them at exit, but not when killed, and a later process with the same
/// pid could not start under libfaketime while they exist ("shm_open failed: File
/// exists").
fn forget_faketime_shm(pid: u32) {
    for name in [
        format!("/dev/shm/faketime_shm_{pid}"),
        format!("/dev/shm/sem.faketime_sem_{pid}"),
    ] {
        let _ = std::fs::remove_file(name);
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // Closing stdin asks it to shut down gracefully; kill it if it does not.
        drop(self.stdin.take());
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: a signal to our own child, not reaped before `wait` below.
        unsafe { kill(self.pid() as c_int, SIGKILL) };
        let _ = self.child.wait();
        forget_faketime_shm(self.pid());
    }
}

// ----------------------------------------------------------------------------------------
// Writing through any node.

/// Writes through `probe` as a [`Writer`] would (see [`Plan`]: new keys, an existing key
/// deleted or overwritten after every third, churn on its own keys), until `until`.
/// Returns what it did and the new keys it wrote.
async fn write_through(
    probe: &Probe,
    history: &History,
    plan: Plan,
    until: Instant,
) -> (WriterStats, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut stats = WriterStats {
        label: plan.label.clone(),
        ..WriterStats::default()
    };
    let mut count = |r: Result<(), String>| match r {
        Ok(()) => stats.ok += 1,
        Err(e) => {
            stats.failed += 1;
            stats.last_error = Some(e);
        }
    };
    let mut existing = plan.existing.iter().enumerate();
    let mut own: Vec<String> = Vec::new();
    let mut seq = 0u64;
    while Instant::now() < until {
        let key = format!("{}-{}", plan.label, own.len());
        let value = Bytes::from(format!("{key}={}#0", plan.label));
        count(probe.apply(history, &key, Op::Set(value)).await);
        own.push(key);
        if own.len().is_multiple_of(3) {
            if let Some((i, key)) = existing.next() {
                seq += 1;
                let op = if i % 2 == 0 {
                    Op::Delete
                } else {
                    Op::Set(Bytes::from(format!("{key}={}#{seq}", plan.label)))
                };
                count(probe.apply(history, key, op).await);
            }
        }
        if plan.churn && rng.random_bool(0.2) {
            let key = own[rng.random_range(0..own.len())].clone();
            seq += 1;
            let op = if rng.random_bool(0.5) {
                Op::Delete
            } else {
                Op::Set(Bytes::from(format!("{key}={}#{seq}", plan.label)))
            };
            count(probe.apply(history, &key, op).await);
        }
        tokio::time::sleep(plan.pace).await;
    }
    (stats, own)
}

/// Writers through every probe at once until `until` (writer `i` with `plans[i]`),
/// while `meanwhile` runs. Returns each writer's stats and new keys.
async fn write_all(
    probes: &[Probe],
    history: &History,
    plans: Vec<Plan>,
    until: Instant,
    meanwhile: impl std::future::Future<Output = ()>,
) -> Vec<(WriterStats, Vec<String>)> {
    let writers = futures::future::join_all(
        probes
            .iter()
            .zip(plans)
            .map(|(p, plan)| write_through(p, history, plan, until)),
    );
    tokio::join!(writers, meanwhile).0
}

fn stats_line(done: &[(WriterStats, Vec<String>)]) -> String {
    done.iter()
        .map(|(s, _)| s.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prints the outcome of a check with the time since `since` (an instant and what
/// happened then); records a failure.
fn check_and_report(
    test: &str,
    what: &str,
    result: Result<Duration, String>,
    since: (Instant, &str),
    failures: &mut Vec<String>,
) -> bool {
    match result {
        Ok(_) => {
            say(format!(
                "{test}: {what} {} ms after {}",
                since.0.elapsed().as_millis(),
                since.1
            ));
            true
        }
        Err(e) => {
            say(format!("{test}: FAILED: {what}: {}", first_line(&e)));
            failures.push(format!("{what}: {e}"));
            false
        }
    }
}

/// Membership converged, then the data reconciled (if membership did).
async fn settle(
    test: &str,
    probes: &[Probe],
    history: &History,
    since: (Instant, &str),
    failures: &mut Vec<String>,
) {
    let converged = check_and_report(
        test,
        "membership converged",
        converge(probes, CONVERGE_DEADLINE).await,
        since,
        failures,
    );
    let deadline = if converged {
        DATA_DEADLINE
    } else {
        Duration::ZERO
    };
    check_and_report(
        test,
        &format!(
            "every acknowledged write and delete ({}) read right from every node",
            history.counts()
        ),
        reconcile(probes, history, deadline).await,
        since,
        failures,
    );
}

async fn start(name: &str, bootstrap: Vec<String>) -> (Node, Cache) {
    let node = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1)
        .bootstrap(bootstrap)
        .start()
        .await
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let cache = node
        .cache(BUCKET, options())
        .await
        .unwrap_or_else(|e| panic!("bucket on {name}: {e}"));
    (node, cache)
}

/// The events of the child, as it rendered them (times from its start), with names.
async fn child_events(probes: &[Probe], child: &Probe) -> String {
    match child.child_events().await {
        Ok(mut text) => {
            for p in probes {
                text = text.replace(&p.id().short(), &p.name());
            }
            text
        }
        Err(e) => format!("unavailable: {e}"),
    }
}

// ----------------------------------------------------------------------------------------
// Case 1: a clock that jumps forward, then back.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_jumps_forward_and_back_stays_a_member() {
    let test = "a_node_whose_clock_jumps_forward_and_back_stays_a_member";
    let Some(lib) = faketime_lib(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let t0 = Instant::now();
    let (a, ca) = start("a", vec![]).await;
    let (b, cb) = start("b", vec![a.addr().to_string()]).await;
    let logs = [EventLog::record(&a, t0), EventLog::record(&b, t0)];
    let clock = Clock::new("jump", 0);
    let (c, c_id, _) = ChildNode::spawn(&lib, &clock, &a.addr().to_string(), None, None);
    let probes = vec![
        Probe::Local {
            node: a.clone(),
            cache: ca.clone(),
        },
        Probe::Local {
            node: b.clone(),
            cache: cb.clone(),
        },
        Probe::Remote {
            name: "c".into(),
            id: c_id,
            via: a.channel(PROBE_CHANNEL).expect("a's probe channel"),
        },
    ];
    let names = Names::of(&probes);
    if let Err(e) = converge(&probes, CONVERGE_DEADLINE).await {
        panic!("{test}: the cluster never formed: {e}");
    }
    let formed = Instant::now();
    let offset = clock_offset(test, &probes[2], 0).await;
    say(format!(
        "{test}: {:.2}s 3 nodes formed a cluster (c in pid {} under {}, clock {offset:+} ms); \
         writes start {} s later",
        t0.elapsed().as_secs_f64(),
        c.pid(),
        lib.display(),
        SETTLED.as_secs()
    ));
    // For 30 s after a membership change, writes also go to the partitions' previous
    // owners (core/src/cache/state.rs `TRANSITION`): before c joined, a and b owned
    // everything, so each would apply (and its clock observe) every write. Wait that out,
    // so that only a key's owners see its writes, as in a settled cluster.
    tokio::time::sleep_until((formed + SETTLED).into()).await;
    let history = History::default();
    let mut failures = Vec::new();
    let plan = |label: &str, existing: Vec<String>, seed: u64| Plan {
        existing,
        churn: true,
        seed,
        ..Plan::new(label)
    };

    // Before any jump: writers through all three, for 3 s.
    let done = write_all(
        &probes,
        &history,
        vec![
            plan("a0", vec![], 1),
            plan("b0", vec![], 2),
            plan("c0", vec![], 3),
        ],
        Instant::now() + Duration::from_secs(3),
        async {},
    )
    .await;
    say(format!(
        "{test}: {:.2}s before the jump: {}",
        t0.elapsed().as_secs_f64(),
        stats_line(&done)
    ));
    if let Err(e) = reconcile(&probes, &history, DATA_DEADLINE).await {
        panic!("{test}: the writes before any jump did not reconcile: {e}");
    }
    let pre: Vec<String> = done.iter().flat_map(|(_, k)| k.clone()).collect();

    // c's clock jumps 1 h ahead while all three write (1 s into 5 s of writing).
    let done = write_all(
        &probes,
        &history,
        vec![
            plan("a1", pre.iter().step_by(3).cloned().collect(), 4),
            plan("b1", pre.iter().skip(1).step_by(3).cloned().collect(), 5),
            plan("c1", pre.iter().skip(2).step_by(3).cloned().collect(), 6),
        ],
        Instant::now() + Duration::from_secs(5),
        async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            clock.set(HOUR);
            let jumped = Instant::now();
            let offset = clock_offset(test, &probes[2], HOUR).await;
            say(format!(
                "{test}: {:.2}s c's clock jumped forward: {offset:+} ms from ours",
                secs(jumped, t0)
            ));
        },
    )
    .await;
    say(format!(
        "{test}: {:.2}s while c was 1 h ahead: {}",
        t0.elapsed().as_secs_f64(),
        stats_line(&done)
    ));
    settle(
        test,
        &probes,
        &history,
        (Instant::now(), "the writers stopped"),
        &mut failures,
    )
    .await;
    let ahead_a: Vec<String> = done[0].1.clone();
    let ahead_b: Vec<String> = done[1].1.clone();
    let ahead_c: Vec<String> = done[2].1.clone();

    // Fresh conflicts. c, still ahead, writes keys that a owns (with c), then keys that a
    // does not own (owned by b and c): a's clock observes the stamps of the first (a
    // applies them), not those of the second. Then c's clock steps back 2 h (to 1 h
    // behind), and a overwrites or deletes the keys it does not own, then b the keys a owns
    // (b owns none of them; it applied c's later writes and a's). Each of these writes is
    // made after c's was acknowledged: it must win, though its writer's HLC may be behind
    // c's stamp (ADR 0010, *Clocks*: an owner holding a newer version makes the writer
    // stamp the write again past it).
    let (mut for_a, mut for_b) = (Vec::new(), Vec::new());
    for i in 0.. {
        if for_a.len() == FRESH && for_b.len() == FRESH {
            break;
        }
        // An owner with its partition synced answers from its replica (`try_get_local`).
        let key = format!("fresh-{i}");
        let (on_a, on_b) = (
            ca.try_get_local(&key).is_some(),
            cb.try_get_local(&key).is_some(),
        );
        if for_a.len() < FRESH && !on_a && on_b {
            for_a.push(key); // owned by b and c
        } else if for_b.len() < FRESH && on_a && !on_b {
            for_b.push(key); // owned by a and c
        }
    }
    let (fresh_a, fresh_b) = (History::default(), History::default());
    let mut c_failed = 0;
    for (keys, h) in [(&for_b, &fresh_b), (&for_a, &fresh_a)] {
        for key in keys {
            let value = Bytes::from(format!("{key}=c-ahead"));
            if probes[2].apply(h, key, Op::Set(value)).await.is_err() {
                c_failed += 1;
            }
        }
    }
    clock.set(-HOUR);
    let stepped = Instant::now();
    let offset = clock_offset(test, &probes[2], -HOUR).await;
    say(format!(
        "{test}: {:.2}s c wrote {} fresh keys ({c_failed} failed), then its clock stepped back \
         2 h: {offset:+} ms from ours",
        secs(stepped, t0),
        for_a.len() + for_b.len(),
    ));
    for (probe, keys, h) in [
        (&probes[0], &for_a, &fresh_a),
        (&probes[1], &for_b, &fresh_b),
    ] {
        let mut failed = 0;
        for (i, key) in keys.iter().enumerate() {
            let op = if i % 3 == 2 {
                Op::Delete
            } else {
                Op::Set(Bytes::from(format!("{key}={}-later", probe.name())))
            };
            failed += usize::from(probe.apply(h, key, op).await.is_err());
        }
        say(format!(
            "{test}: {:.2}s {} overwrote or deleted {} of them ({failed} failed)",
            t0.elapsed().as_secs_f64(),
            probe.name(),
            keys.len()
        ));
    }
    for (who, cache, h, seen) in [
        ("a", &ca, &fresh_a, "had not applied c's writes of them"),
        ("b", &cb, &fresh_b, "had applied later writes of c"),
    ] {
        let owned = h
            .expected()
            .iter()
            .filter(|e| cache.try_get_local(&e.key).is_some())
            .count();
        match reconcile(&probes, h, DATA_DEADLINE).await {
            Ok(_) => say(format!(
                "{test}: {who}'s later writes ({who} {seen}; owner of {owned}) won on every \
                 node {} ms after the step back",
                stepped.elapsed().as_millis()
            )),
            Err(e) => {
                let e = format!(
                    "{who}'s writes, each made after c's write of the key was acknowledged \
                     (c stamped those while 1 h ahead), lost to them; {who} {seen} (owner of \
                     {owned} of the keys):\n{e}"
                );
                say(format!("{test}: FAILED: {}", first_line(&e)));
                failures.push(e);
            }
        }
    }

    // c now 1 h behind: writers through all three again, a and b overwriting and deleting
    // keys c wrote while ahead, c overwriting and deleting keys a and b wrote then.
    let c_existing: Vec<String> = ahead_a
        .iter()
        .zip(&ahead_b)
        .flat_map(|(x, y)| [x.clone(), y.clone()])
        .collect();
    let done = write_all(
        &probes,
        &history,
        vec![
            plan("a2", ahead_c.iter().step_by(2).cloned().collect(), 7),
            plan(
                "b2",
                ahead_c.iter().skip(1).step_by(2).cloned().collect(),
                8,
            ),
            plan("c2", c_existing, 9),
        ],
        Instant::now() + Duration::from_secs(5),
        async {},
    )
    .await;
    say(format!(
        "{test}: {:.2}s while c was 1 h behind: {}",
        t0.elapsed().as_secs_f64(),
        stats_line(&done)
    ));
    settle(
        test,
        &probes,
        &history,
        (Instant::now(), "the writers stopped"),
        &mut failures,
    )
    .await;

    // Nobody was ever reported down: c stayed a member through both steps.
    for (node, log) in [&a, &b].into_iter().zip(&logs) {
        say(format!(
            "{test}: events of {}: {}",
            node.name(),
            log.render(&names)
        ));
        let downs: Vec<String> = log.downs().iter().map(|id| names.get(id)).collect();
        if !downs.is_empty() {
            failures.push(format!(
                "{} reported {} down: {}",
                node.name(),
                downs.join(", "),
                log.render(&names)
            ));
        }
    }
    let events = child_events(&probes, &probes[2]).await;
    say(format!("{test}: events of c (its own clock): {events}"));
    if events.contains("down ") {
        failures.push(format!("c reported a peer down: {events}"));
    }
    drop(probes);
    drop(c);
    for node in [&a, &b] {
        let _ = node.shutdown().await;
    }
    assert!(
        failures.is_empty(),
        "{test}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ----------------------------------------------------------------------------------------
// Case 2: a restart with the clock set back.

/// The generation the node with `dir` last started with (membership's file there), if any.
fn stored_generation(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("generation"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Polls until `node` lists `peer` in `state` (≤ `deadline`); returns how long that took.
async fn wait_for_state(
    node: &Node,
    peer: NodeId,
    state: PeerState,
    deadline: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if node
            .peers()
            .iter()
            .any(|p| p.id == peer && p.state == state)
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_its_clock_set_back_rejoins() {
    let test = "a_node_restarted_with_its_clock_set_back_rejoins";
    let Some(lib) = faketime_lib(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let t0 = Instant::now();
    let (a, ca) = start("a", vec![]).await;
    let (b, cb) = start("b", vec![a.addr().to_string()]).await;
    let logs = [EventLog::record(&a, t0), EventLog::record(&b, t0)];
    let dir = std::env::temp_dir().join(format!("memmesh-clock-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let clock = Clock::new("restart", 0);
    let bootstrap = a.addr().to_string();
    let (c, c_id, c_addr) = ChildNode::spawn(&lib, &clock, &bootstrap, Some(&dir), None);
    let probes = vec![
        Probe::Local {
            node: a.clone(),
            cache: ca.clone(),
        },
        Probe::Local {
            node: b.clone(),
            cache: cb.clone(),
        },
        Probe::Remote {
            name: "c".into(),
            id: c_id,
            via: a.channel(PROBE_CHANNEL).expect("a's probe channel"),
        },
    ];
    let names = Names::of(&probes);
    if let Err(e) = converge(&probes, CONVERGE_DEADLINE).await {
        panic!("{test}: the cluster never formed: {e}");
    }
    let offset = clock_offset(test, &probes[2], 0).await;
    let first_generation = stored_generation(&dir);
    say(format!(
        "{test}: {:.2}s 3 nodes formed a cluster (c in pid {} at {c_addr}, clock {offset:+} \
         ms, generation {first_generation:?})",
        t0.elapsed().as_secs_f64(),
        c.pid()
    ));

    // Keys written through a and through c before the restart.
    let history = History::default();
    let existing: Vec<String> = (0..200).map(|k| format!("pre-{k}")).collect();
    for (i, key) in existing.iter().enumerate() {
        let value = Bytes::from(format!("{key}=pre"));
        let result = if i % 4 == 3 {
            probes[2].apply(&history, key, Op::Set(value)).await
        } else {
            apply(&ca, &history, key, Op::Set(value)).await
        };
        if let Err(e) = result {
            panic!("{test}: writing {key} before the restart failed: {e}");
        }
    }
    if let Err(e) = reconcile(&probes, &history, DATA_DEADLINE).await {
        panic!("{test}: the keys written before the restart did not reconcile: {e}");
    }

    // c is killed (no goodbye); a and b write while it is down.
    c.kill();
    let killed = Instant::now();
    say(format!(
        "{test}: {:.2}s c killed (SIGKILL)",
        secs(killed, t0)
    ));
    let writers: Vec<Writer> = [(&ca, "a"), (&cb, "b")]
        .into_iter()
        .enumerate()
        .map(|(i, (cache, label))| {
            let plan = Plan {
                existing: existing.iter().skip(i).step_by(2).cloned().collect(),
                churn: true,
                seed: i as u64,
                ..Plan::new(label)
            };
            Writer::spawn(cache.clone(), history.clone(), plan)
        })
        .collect();
    for node in [&a, &b] {
        match wait_for_state(node, c_id, PeerState::Down, CONVERGE_DEADLINE).await {
            Some(_) => say(format!(
                "{test}: {:.2}s {} lists c as down ({} ms after the kill)",
                t0.elapsed().as_secs_f64(),
                node.name(),
                killed.elapsed().as_millis()
            )),
            None => panic!(
                "{test}: {} never listed c as down after the kill: {:?}",
                node.name(),
                node.peers()
            ),
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // c restarts with the same data dir (same NodeId) and port, its clock 1 h behind,
    // while a and b keep writing.
    clock.set(-HOUR);
    let restarted = Instant::now();
    let (c, c2_id, _) = ChildNode::spawn(
        &lib,
        &clock,
        &bootstrap,
        Some(&dir),
        Some(&c_addr.to_string()),
    );
    assert_eq!(c2_id, c_id, "{test}: the restarted c has another NodeId");
    say(format!(
        "{test}: {:.2}s c restarted (pid {}, generation {first_generation:?} -> {:?}); so \
         far: {}",
        secs(restarted, t0),
        c.pid(),
        stored_generation(&dir),
        history.counts()
    ));
    // Its rejoin as a and b see it (their own views, no probe).
    for node in [&a, &b] {
        match wait_for_state(node, c_id, PeerState::Alive, CONVERGE_DEADLINE).await {
            Some(_) => say(format!(
                "{test}: {} lists c as alive {} ms after the restart",
                node.name(),
                restarted.elapsed().as_millis()
            )),
            None => say(format!(
                "{test}: {} does not list c as alive {} ms after the restart",
                node.name(),
                restarted.elapsed().as_millis()
            )),
        }
    }
    // A probe asked right after the restart may have gone out over a's connection to the
    // killed c, and waits for QUIC's idle timeout (10 s) before it is retried.
    let asked = Instant::now();
    let offset = clock_offset(test, &probes[2], -HOUR).await;
    say(format!(
        "{test}: c's clock: {offset:+} ms from ours (read in {} ms)",
        asked.elapsed().as_millis()
    ));
    // a and b write on while c rejoins, and 1 s longer.
    let mut failures = Vec::new();
    let converged = check_and_report(
        test,
        "membership converged (c rejoined)",
        converge(&probes, CONVERGE_DEADLINE).await,
        (restarted, "c restarted"),
        &mut failures,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lines = Vec::new();
    for w in writers {
        lines.push(w.stop().await.to_string());
    }
    say(format!("{test}: writers: {}", lines.join("; ")));
    // c, 1 h behind, writes new keys (and deletes some) too.
    if converged {
        let (stats, _) = write_through(
            &probes[2],
            &history,
            Plan {
                churn: true,
                seed: 7,
                ..Plan::new("c-behind")
            },
            Instant::now() + Duration::from_secs(2),
        )
        .await;
        say(format!("{test}: writer: {stats}"));
    }
    check_and_report(
        test,
        &format!(
            "every acknowledged write and delete ({}) read right from every node (c included)",
            history.counts()
        ),
        reconcile(
            &probes,
            &history,
            if converged {
                DATA_DEADLINE
            } else {
                Duration::ZERO
            },
        )
        .await,
        (restarted, "c restarted"),
        &mut failures,
    );
    for (node, log) in [&a, &b].into_iter().zip(&logs) {
        say(format!(
            "{test}: events of {}: {}",
            node.name(),
            log.render(&names)
        ));
        if !log.down_then_up(c_id) {
            failures.push(format!(
                "{} did not see c go down and then up again: {}",
                node.name(),
                log.render(&names)
            ));
        }
    }
    say(format!(
        "{test}: events of the restarted c (its own clock): {}",
        child_events(&probes, &probes[2]).await
    ));
    drop(probes);
    drop(c);
    for node in [&a, &b] {
        let _ = node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{test}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
