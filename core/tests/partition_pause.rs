//! A node whose process is paused (SIGSTOP) for 6 s while the others write, then resumed
//! (SIGCONT): it must rejoin, and read every write made meanwhile from its own cache.
//!
//! The paused node runs in a child process: this test binary re-executes itself with
//! `--exact pause_child_node` and `MEMMESH_PARTITION_CHILD=1`; that test function returns
//! at once in a normal run. The child answers probes on the `probe` channel
//! (netlab/check.rs `serve_probe`): its membership view, and what IT reads for a list of
//! keys, so the checks see the resumed node's own reads. Everything runs on 127.0.0.1 (no
//! namespaces, no root); the invariants are those of partition_netns.rs: membership
//! converges, every acknowledged write and delete reads right from every node. Times are
//! printed, never asserted.
//!
//! - `a_node_paused_for_6s_rejoins_and_reads_every_write_made_meanwhile`: 3 nodes (the
//!   child is the third), replicas 2, 200 new keys plus deletes and overwrites of existing
//!   keys written through the two others while the child is stopped.
//! - `pause_child_node`: the child's side (does nothing unless `MEMMESH_PARTITION_CHILD`).

mod netlab;

use std::io::{BufRead, BufReader, Read};
use std::os::raw::c_int;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmesh::{Bytes, CacheOptions, Node, NodeId};
use netlab::check::{
    apply, converge, first_line, reconcile, serve_probe, EventLog, History, Names, Op, Plan, Probe,
    Writer, CONVERGE_DEADLINE, DATA_DEADLINE, PROBE_CHANNEL,
};
use netlab::{init_tracing, say};

/// Set in the child's environment: run the node.
const CHILD_ENV: &str = "MEMMESH_PARTITION_CHILD";
/// The address the child bootstraps from.
const BOOTSTRAP_ENV: &str = "MEMMESH_PARTITION_BOOTSTRAP";
/// The line the child prints once it serves probes: `MMCHILD READY <id>`.
const READY: &str = "MMCHILD READY";
/// The bucket written to.
const BUCKET: &str = "pause";
/// How long the child stays stopped.
const PAUSE: Duration = Duration::from_secs(6);

extern "C" {
    // From the C library std links anyway (declared here so core needs no new dependency).
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
}
const SIGKILL: c_int = 9;
const SIGCONT: c_int = 18;
const SIGSTOP: c_int = 19;
/// `PR_SET_PDEATHSIG` from <sys/prctl.h>.
const PR_SET_PDEATHSIG: c_int = 1;

fn options() -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas: 2,
        ..CacheOptions::default()
    })
}

fn signal(pid: u32, sig: c_int) {
    // SAFETY: kill only sends a signal; `pid` is our own child, not yet reaped.
    if unsafe { kill(pid as c_int, sig) } != 0 {
        panic!(
            "kill({pid}, {sig}) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The child's side: a node that bootstraps from the parent's, opens the bucket, answers
/// probes, and runs until its stdin closes. Returns at once unless `MEMMESH_PARTITION_CHILD`
/// is set.
#[test]
fn pause_child_node() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // Killed with the parent, even while stopped.
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets this process's parent-death signal.
    unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL) };
    init_tracing();
    let bootstrap = std::env::var(BOOTSTRAP_ENV).expect("the bootstrap address in the env");
    let node = Node::builder()
        .name("c")
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1)
        .bootstrap([bootstrap])
        .start_blocking()
        .expect("starting the child's node");
    let log = Arc::new(EventLog::record(&node, Instant::now()));
    let cache = futures::executor::block_on(node.cache(BUCKET, options()))
        .expect("opening the bucket in the child");
    serve_probe(&node, cache, log).expect("serving probes");
    println!("{READY} {}", node.id());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let _ = node.shutdown_blocking();
}

/// The child process running [`pause_child_node`]; continued and killed on drop.
struct ChildNode {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildNode {
    /// Starts the child with `bootstrap`, waits until it serves probes and returns it
    /// with its node's id.
    fn spawn(bootstrap: &str) -> (ChildNode, NodeId) {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "pause_child_node",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env(BOOTSTRAP_ENV, bootstrap)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the child process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the child's stdout to the end (the harness prints there too).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness's `test pause_child_node ... ` precedes it on the line.
                if let Some((_, id)) = line.split_once(READY) {
                    let _ = tx.send(id.trim().to_string());
                }
            }
        });
        let mut node = ChildNode { child, stdin };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(id) => {
                let id = id.parse().expect("the child's node id");
                (node, id)
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
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        // SAFETY: signals to our own child, which is not reaped before `wait` below.
        unsafe { kill(self.pid() as c_int, SIGCONT) };
        // Closing stdin asks it to shut down gracefully; kill it if it does not.
        drop(self.stdin.take());
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { kill(self.pid() as c_int, SIGKILL) };
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paused_for_6s_rejoins_and_reads_every_write_made_meanwhile() {
    let test = "a_node_paused_for_6s_rejoins_and_reads_every_write_made_meanwhile";
    init_tracing();
    let t0 = Instant::now();
    let start = |name: &str, bootstrap: Vec<String>| {
        Node::builder()
            .name(name)
            .listen("127.0.0.1:0")
            .mdns(false)
            .threads(1)
            .bootstrap(bootstrap)
            .start()
    };
    let a = start("a", vec![]).await.expect("starting a");
    let b = start("b", vec![a.addr().to_string()])
        .await
        .expect("starting b");
    let logs = [EventLog::record(&a, t0), EventLog::record(&b, t0)];
    let ca = a.cache(BUCKET, options()).await.expect("bucket on a");
    let cb = b.cache(BUCKET, options()).await.expect("bucket on b");
    let (c, c_id) = ChildNode::spawn(&a.addr().to_string());
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
        panic!("{test}: the cluster never formed (before the pause): {e}");
    }
    say(format!(
        "{test}: 3 nodes (c in pid {}) formed a cluster in {:.2}s",
        c.pid(),
        t0.elapsed().as_secs_f64()
    ));

    // Existing keys, readable from c before the pause.
    let history = History::default();
    // Enough keys to touch most of the 271 partitions.
    let existing: Vec<String> = (0..300).map(|k| format!("pre-{k}")).collect();
    for key in &existing {
        let value = Bytes::from(format!("{key}=pre"));
        if let Err(e) = apply(&ca, &history, key, Op::Set(value)).await {
            panic!("{test}: writing {key} before the pause failed: {e}");
        }
    }
    if let Err(e) = reconcile(&probes, &history, DATA_DEADLINE).await {
        panic!("{test}: the existing keys were not readable before the pause: {e}");
    }
    // Before the pause, c must hold its partitions fully (answer from its own replica):
    // otherwise it would still be pulling and consulting others when it resumes, and the
    // test would not see whether a resumed node serves a stale replica as current.
    let settled = Instant::now() + DATA_DEADLINE;
    loop {
        let mut copies = vec![0usize; existing.len()];
        for p in &probes {
            let held = p.holds(&existing).await.unwrap_or_default();
            for (n, h) in copies.iter_mut().zip(held) {
                *n += usize::from(h);
            }
        }
        if copies.iter().all(|&n| n >= 2) {
            break;
        }
        assert!(
            Instant::now() < settled,
            "{test}: the existing keys never had 2 fully synced owners before the pause"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // c stops; 100 new keys through each of a and b, plus deletes and overwrites.
    signal(c.pid(), SIGSTOP);
    let stopped = Instant::now();
    say(format!(
        "{test}: {:.2}s c stopped",
        t0.elapsed().as_secs_f64()
    ));
    let writers: Vec<Writer> = [(&ca, "a"), (&cb, "b")]
        .into_iter()
        .enumerate()
        .map(|(i, (cache, label))| {
            let plan = Plan {
                existing: existing.iter().skip(i).step_by(2).cloned().collect(),
                pace: Duration::from_millis(5),
                limit: Some(100),
                ..Plan::new(label)
            };
            Writer::spawn(cache.clone(), history.clone(), plan)
        })
        .collect();
    tokio::time::sleep(PAUSE.saturating_sub(stopped.elapsed())).await;
    let during = history.counts();
    signal(c.pid(), SIGCONT);
    let resumed = Instant::now();
    say(format!(
        "{test}: {:.2}s c continued; while it was stopped: {during}",
        t0.elapsed().as_secs_f64()
    ));
    let mut lines = Vec::new();
    for w in writers {
        lines.push(w.finish().await.to_string());
    }
    say(format!("{test}: writers: {}", lines.join("; ")));
    say(format!("{test}: history: {}", history.counts()));

    let mut failures = Vec::new();
    let data_deadline = match converge(&probes, CONVERGE_DEADLINE).await {
        Ok(_) => {
            say(format!(
                "{test}: membership converged {} ms after SIGCONT",
                resumed.elapsed().as_millis()
            ));
            DATA_DEADLINE
        }
        Err(e) => {
            say(format!("{test}: FAILED: {}", first_line(&e)));
            failures.push(e);
            Duration::ZERO
        }
    };
    match reconcile(&probes, &history, data_deadline).await {
        Ok(_) => say(format!(
            "{test}: every acknowledged write and delete read right from every node (c \
             included) {} ms after SIGCONT",
            resumed.elapsed().as_millis()
        )),
        Err(e) => {
            say(format!("{test}: FAILED: {}", first_line(&e)));
            failures.push(e);
        }
    }
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
    // The child's own log (times from its start; ids in short form).
    match probes[2].child_events().await {
        Ok(mut text) => {
            for p in &probes {
                text = text.replace(&p.id().short(), &p.name());
            }
            say(format!("{test}: events of c (its own clock): {text}"));
        }
        Err(e) => say(format!("{test}: c's events are unavailable: {e}")),
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
