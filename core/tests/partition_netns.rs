//! Real network partitions between memmesh nodes in Linux network namespaces: links cut,
//! the network split in two, a flapping link and a randomized soak, with writers on every
//! side, then the heal. The lab (netlab/mod.rs) joins each node's namespace to a bridge of
//! a hub namespace; a partition moves ports onto separate bridges (packets to the other
//! side vanish, `sendmsg` still succeeds), healing moves them all back.
//!
//! After every heal two invariants are polled until a deadline (netlab/check.rs):
//! membership converges (every node lists every other as alive, all agree on the leader,
//! the lowest id), then every acknowledged write is readable with its last acknowledged
//! value from every node and every acknowledged delete reads as absent. Writes that fail
//! during the split are allowed and counted, never checked. Times are printed, never
//! asserted. Default membership timing: a node cut for longer than ~2.5 s (1 s suspicion
//! after a missed probe, 0.5 s grace) is declared down; QUIC connections idle out after 10 s.
//!
//! - `a_1s_cut_is_shorter_than_failure_detection_and_changes_nothing`: the control, which
//!   proves the harness: nobody is declared down and nothing acknowledged is lost.
//! - `a_node_cut_off_for_6s_rejoins_and_loses_nothing`: 3 nodes, replicas 2, writers on
//!   both sides, existing keys deleted and overwritten on both sides during the cut.
//! - `a_node_cut_off_for_14s_past_the_quic_idle_timeout_rejoins_and_loses_nothing`: the
//!   same, long enough that every connection to the cut node is lost.
//! - `a_2_2_split_for_8s_heals_with_writers_on_both_sides`: 4 nodes split in halves.
//! - `a_flapping_link_settles_and_loses_nothing`: a node's link cut and restored 5 times,
//!   1.5-3 s each way (some cuts shorter, some longer than failure detection).
//! - `soak_random_partitions_cuts_and_restarts`: Jepsen-style. Random splits, cuts, flaps,
//!   heals and node restarts under continuous writers, with the invariants checked at
//!   random healed checkpoints and at the end. `MEMMESH_SOAK_SECS` (default 25, a smoke
//!   run), `MEMMESH_SOAK_SEED` (printed; default from the clock), `MEMMESH_SOAK_NODES`
//!   (default 4), `MEMMESH_SOAK_RESTARTS=0` to keep every node. By hand:
//!   `MEMMESH_SOAK_SECS=300 cargo test -p memmesh --test partition_netns soak -- --nocapture`
//!
//! A paused process (SIGSTOP) is tested on loopback by partition_pause.rs.
//!
//! Needs root and iproute2 (ci/test-netns runs them with `--test-threads=1`). With
//! `MEMMESH_SKIP_NETNS=1` every test prints a `SKIPPED:` line and passes at once.

mod netlab;

use std::time::{Duration, Instant};

use memmesh::{Bytes, Cache, CacheOptions, Node, PeerState};
use netlab::check::{
    apply, converge, first_line, reconcile, under_replicated, EventLog, History, Names, Op, Plan,
    Probe, Writer, CONVERGE_DEADLINE, DATA_DEADLINE,
};
use netlab::{init_tracing, node_builder, say, start_in, Lab};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The bucket every test writes to.
const BUCKET: &str = "partition";
/// Keys written before the fault, some deleted or overwritten during it.
const EXISTING: usize = 60;

fn options() -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas: 2,
        ..CacheOptions::default()
    })
}

/// Seconds since `t0`, for the printed timeline.
fn at(t0: Instant) -> String {
    format!("{:.2}s", t0.elapsed().as_secs_f64())
}

/// A duration as `123 ms`.
fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

// ----------------------------------------------------------------------------------------
// A cluster in the lab.

/// Nodes in the lab's namespaces, the test bucket open on each, their events recorded,
/// and the history of every cache operation.
struct Cluster {
    test: &'static str,
    t0: Instant,
    /// By slot (a restarted node replaces its slot's entry).
    nodes: Vec<Node>,
    caches: Vec<Cache>,
    logs: Vec<EventLog>,
    history: History,
    /// Last, so that it is dropped after the nodes.
    lab: Lab,
}

impl Cluster {
    /// Starts `n` nodes (slot 0 first, the others bootstrapping from it), waits until
    /// they all see each other, opens the bucket on each (node 0 defines it) and checks
    /// that membership converged. `None` if the test is skipped.
    async fn start(test: &'static str, n: usize) -> Option<Cluster> {
        init_tracing();
        let lab = Lab::new(test, n)?;
        let t0 = Instant::now();
        let first = start_in(lab.ns(0), node_builder(&lab, 0, &[]));
        let seed = vec![first.addr().to_string()];
        let mut nodes = vec![first];
        for slot in 1..n {
            nodes.push(start_in(lab.ns(slot), node_builder(&lab, slot, &seed)));
        }
        let logs = nodes
            .iter()
            .map(|node| EventLog::record(node, t0))
            .collect();
        let formed = Instant::now() + CONVERGE_DEADLINE;
        while !nodes.iter().all(|node| {
            let alive = node
                .peers()
                .iter()
                .filter(|p| p.state == PeerState::Alive)
                .count();
            alive == n - 1
        }) {
            assert!(
                Instant::now() < formed,
                "{test}: the cluster never formed (before any fault)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut caches = Vec::new();
        for node in &nodes {
            caches.push(
                node.cache(BUCKET, options())
                    .await
                    .expect("opening the bucket"),
            );
        }
        let cluster = Cluster {
            test,
            t0,
            nodes,
            caches,
            logs,
            history: History::default(),
            lab,
        };
        match converge(&cluster.probes(), CONVERGE_DEADLINE).await {
            Ok(_) => say(format!("{test}: {n} nodes formed a cluster at {}", at(t0))),
            Err(e) => panic!("{test}: the cluster never formed (before any fault): {e}"),
        }
        Some(cluster)
    }

    /// The nodes as the checks see them.
    fn probes(&self) -> Vec<Probe> {
        self.nodes
            .iter()
            .zip(&self.caches)
            .map(|(node, cache)| Probe::Local {
                node: node.clone(),
                cache: cache.clone(),
            })
            .collect()
    }

    /// The nodes' names by id.
    fn names(&self) -> Names {
        Names::of(&self.probes())
    }

    /// Writes the keys `pre-<k>` through node 0; every write must succeed (no fault yet).
    async fn write_existing(&self) -> Vec<String> {
        let keys: Vec<String> = (0..EXISTING).map(|k| format!("pre-{k}")).collect();
        for key in &keys {
            let value = Bytes::from(format!("{key}=pre"));
            if let Err(e) = apply(&self.caches[0], &self.history, key, Op::Set(value)).await {
                panic!("{}: writing {key} before any fault failed: {e}", self.test);
            }
        }
        keys
    }

    /// A writer on every node, writer `i` writing keys `n<i><label>-<j>`; it also deletes
    /// or overwrites the `existing` keys of index `k % n == i`, and, with `churn`, its own.
    fn writers(&self, label: &str, existing: &[String], churn: bool, seed: u64) -> Vec<Writer> {
        let n = self.nodes.len();
        (0..n)
            .map(|i| {
                let plan = Plan {
                    existing: existing.iter().skip(i).step_by(n).cloned().collect(),
                    churn,
                    seed: seed.wrapping_add(i as u64),
                    ..Plan::new(format!("n{i}{label}"))
                };
                Writer::spawn(self.caches[i].clone(), self.history.clone(), plan)
            })
            .collect()
    }

    /// Stops `writers` and prints what they did.
    async fn stop(&self, writers: Vec<Writer>) {
        let mut lines = Vec::new();
        for w in writers {
            lines.push(w.stop().await.to_string());
        }
        say(format!("{}: writers: {}", self.test, lines.join("; ")));
    }

    /// After a heal at `healed`: `writers` go on for `linger` (while views still differ)
    /// and are stopped, meanwhile membership convergence is polled; then data
    /// reconciliation (one pass only if membership did not converge). Prints the times;
    /// returns the failures.
    async fn check_heal(
        &self,
        healed: Instant,
        writers: Vec<Writer>,
        linger: Duration,
    ) -> Vec<String> {
        let test = self.test;
        let probes = self.probes();
        let mut failures = Vec::new();
        let (converged, ()) = tokio::join!(converge(&probes, CONVERGE_DEADLINE), async {
            tokio::time::sleep(linger).await;
            self.stop(writers).await;
        });
        say(format!("{test}: history: {}", self.history.counts()));
        let data_deadline = match converged {
            // Polling started at the heal.
            Ok(took) => {
                say(format!(
                    "{test}: membership converged {} after the heal",
                    ms(took)
                ));
                DATA_DEADLINE
            }
            Err(e) => {
                say(format!("{test}: FAILED: {}", first_line(&e)));
                failures.push(e);
                Duration::ZERO
            }
        };
        match reconcile(&probes, &self.history, data_deadline).await {
            Ok(took) => say(format!(
                "{test}: every acknowledged write and delete read right from every node {} \
                 after the heal (writers stopped {} after it; reads took {})",
                ms(healed.elapsed()),
                ms(linger),
                ms(took)
            )),
            Err(e) => {
                say(format!("{test}: FAILED: {}", first_line(&e)));
                failures.push(e);
            }
        }
        failures
    }

    /// Prints every node's events.
    fn print_events(&self) {
        let names = self.names();
        for (node, log) in self.nodes.iter().zip(&self.logs) {
            say(format!(
                "{}: events of {}: {}",
                self.test,
                node.name(),
                log.render(&names)
            ));
        }
    }

    /// Checks that every node of `a` saw every node of `b` go down, then up again, and
    /// the other way round.
    fn check_down_then_up(&self, a: &[usize], b: &[usize]) -> Vec<String> {
        let names = self.names();
        let mut failures = Vec::new();
        for (xs, ys) in [(a, b), (b, a)] {
            for &x in xs {
                for &y in ys {
                    let peer = self.nodes[y].id();
                    if !self.logs[x].down_then_up(peer) {
                        failures.push(format!(
                            "{} did not see {} go down and then up again: {}",
                            self.nodes[x].name(),
                            names.get(&peer),
                            self.logs[x].render(&names)
                        ));
                    }
                }
            }
        }
        failures
    }

    /// Shuts every node down.
    async fn shutdown(&self) {
        for node in &self.nodes {
            let _ = node.shutdown().await;
        }
    }
}

/// One step of a fault script.
#[derive(Debug, Clone)]
enum Step {
    /// The network split into these groups of slots.
    Split(Vec<Vec<usize>>),
    /// One slot cut off from all others.
    Cut(usize),
    /// Every port back on one bridge.
    Heal,
    /// Nothing changes for a while.
    Wait(Duration),
}

/// What the membership events must show.
enum EventCheck {
    /// Nobody was ever reported down.
    NoDowns,
    /// Each group's nodes saw the other group's nodes go down, then up again.
    DownThenUp(Vec<usize>, Vec<usize>),
    /// Printed only.
    Print,
}

/// Existing keys, writers on every node, the fault `script` (which must end with a heal),
/// then the invariants and the `events` check. Panics with every failure found.
async fn run(test: &'static str, n: usize, script: Vec<Step>, events: EventCheck) {
    let Some(mut cluster) = Cluster::start(test, n).await else {
        return;
    };
    let existing = cluster.write_existing().await;
    let writers = cluster.writers("", &existing, false, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = cluster.t0;
    let mut healed = Instant::now();
    for step in script {
        match &step {
            Step::Split(groups) => cluster.lab.split(groups),
            Step::Cut(slot) => cluster.lab.cut(*slot),
            Step::Heal => {
                cluster.lab.heal();
                healed = Instant::now();
            }
            Step::Wait(d) => {
                tokio::time::sleep(*d).await;
                continue;
            }
        }
        say(format!(
            "{test}: {} {step:?}: {}",
            at(t0),
            cluster.lab.describe()
        ));
    }
    assert!(cluster.lab.healed(), "{test}: the script must end healed");
    // Writers go on a moment across the heal, while the views still differ.
    let mut failures = cluster
        .check_heal(healed, writers, Duration::from_secs(1))
        .await;
    cluster.print_events();
    match events {
        EventCheck::NoDowns => {
            let names = cluster.names();
            for (node, log) in cluster.nodes.iter().zip(&cluster.logs) {
                let downs: Vec<String> = log.downs().iter().map(|id| names.get(id)).collect();
                if !downs.is_empty() {
                    failures.push(format!(
                        "{} reported {} down during a cut shorter than failure detection",
                        node.name(),
                        downs.join(", ")
                    ));
                }
            }
        }
        EventCheck::DownThenUp(a, b) => failures.extend(cluster.check_down_then_up(&a, &b)),
        EventCheck::Print => {}
    }
    cluster.shutdown().await;
    assert!(
        failures.is_empty(),
        "{test}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ----------------------------------------------------------------------------------------
// The cases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1s_cut_is_shorter_than_failure_detection_and_changes_nothing() {
    run(
        "a_1s_cut_is_shorter_than_failure_detection_and_changes_nothing",
        3,
        vec![Step::Cut(2), Step::Wait(Duration::from_secs(1)), Step::Heal],
        EventCheck::NoDowns,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_for_6s_rejoins_and_loses_nothing() {
    run(
        "a_node_cut_off_for_6s_rejoins_and_loses_nothing",
        3,
        vec![Step::Cut(2), Step::Wait(Duration::from_secs(6)), Step::Heal],
        EventCheck::DownThenUp(vec![0, 1], vec![2]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_for_14s_past_the_quic_idle_timeout_rejoins_and_loses_nothing() {
    run(
        "a_node_cut_off_for_14s_past_the_quic_idle_timeout_rejoins_and_loses_nothing",
        3,
        vec![
            Step::Cut(2),
            Step::Wait(Duration::from_secs(14)),
            Step::Heal,
        ],
        EventCheck::DownThenUp(vec![0, 1], vec![2]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_2_split_for_8s_heals_with_writers_on_both_sides() {
    run(
        "a_2_2_split_for_8s_heals_with_writers_on_both_sides",
        4,
        vec![
            Step::Split(vec![vec![0, 1], vec![2, 3]]),
            Step::Wait(Duration::from_secs(8)),
            Step::Heal,
        ],
        EventCheck::DownThenUp(vec![0, 1], vec![2, 3]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link_settles_and_loses_nothing() {
    let test = "a_flapping_link_settles_and_loses_nothing";
    // Fixed periods (from a seeded generator), so every run flaps the same way.
    let mut rng = StdRng::seed_from_u64(4);
    let mut script = Vec::new();
    for _ in 0..5 {
        let down = Duration::from_millis(rng.random_range(1500..=3000));
        let up = Duration::from_millis(rng.random_range(1500..=3000));
        script.extend([Step::Cut(2), Step::Wait(down), Step::Heal, Step::Wait(up)]);
    }
    // The last heal is the one the checks time from.
    script.pop();
    run(test, 3, script, EventCheck::Print).await;
}

// ----------------------------------------------------------------------------------------
// The soak.

/// A number from the environment, or `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_random_partitions_cuts_and_restarts() {
    let test = "soak_random_partitions_cuts_and_restarts";
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = env_u64("MEMMESH_SOAK_SEED", clock % 1_000_000);
    let secs = env_u64("MEMMESH_SOAK_SECS", 25);
    let n = env_u64("MEMMESH_SOAK_NODES", 4).clamp(3, 8) as usize;
    let restarts = std::env::var("MEMMESH_SOAK_RESTARTS").as_deref() != Ok("0");
    let Some(mut cluster) = Cluster::start(test, n).await else {
        return;
    };
    let repro = format!(
        "MEMMESH_SOAK_SEED={seed} MEMMESH_SOAK_SECS={secs} MEMMESH_SOAK_NODES={n}{}",
        if restarts {
            ""
        } else {
            " MEMMESH_SOAK_RESTARTS=0"
        }
    );
    say(format!("{test}: {repro}"));
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = cluster.t0;
    let end = t0 + Duration::from_secs(secs);
    let mut epoch = 0u64;
    let mut writers = cluster.writers("e0", &[], true, seed);
    let (mut actions, mut checkpoints, mut restarted) = (0usize, 0usize, 0usize);
    let mut since_restart = 2usize;
    let mut failures = Vec::new();
    while Instant::now() < end && failures.is_empty() {
        actions += 1;
        let roll = rng.random_range(0..100);
        let hold = if rng.random_bool(0.15) {
            Duration::from_millis(rng.random_range(11_000..=14_000))
        } else {
            Duration::from_millis(rng.random_range(1_000..=8_000))
        };
        match roll {
            0..30 => {
                let mut slots: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    slots.swap(i, rng.random_range(0..=i));
                }
                let cut = rng.random_range(1..n);
                cluster
                    .lab
                    .split(&[slots[..cut].to_vec(), slots[cut..].to_vec()]);
                say(format!(
                    "{test}: {} split {} (hold {})",
                    at(t0),
                    cluster.lab.describe(),
                    ms(hold)
                ));
                tokio::time::sleep(hold).await;
            }
            30..55 => {
                let slot = rng.random_range(0..n);
                cluster.lab.cut(slot);
                say(format!(
                    "{test}: {} cut n{slot}: {} (hold {})",
                    at(t0),
                    cluster.lab.describe(),
                    ms(hold)
                ));
                tokio::time::sleep(hold).await;
            }
            55..70 => {
                let slot = rng.random_range(0..n);
                let times = rng.random_range(2..=5);
                say(format!("{test}: {} flap n{slot} {times} times", at(t0)));
                for _ in 0..times {
                    let before = cluster.lab.bridge_of(slot);
                    cluster.lab.cut(slot);
                    tokio::time::sleep(Duration::from_millis(rng.random_range(300..=3_000))).await;
                    cluster.lab.move_port(slot, before);
                    tokio::time::sleep(Duration::from_millis(rng.random_range(300..=2_000))).await;
                }
            }
            70..85 => {
                cluster.lab.heal();
                say(format!("{test}: {} heal (hold {})", at(t0), ms(hold)));
                tokio::time::sleep(hold).await;
            }
            _ => {
                // A checkpoint: heal, writers paused, both invariants.
                checkpoints += 1;
                cluster.lab.heal();
                let healed = Instant::now();
                say(format!("{test}: {} checkpoint {checkpoints}: heal", at(t0)));
                failures = cluster
                    .check_heal(healed, std::mem::take(&mut writers), Duration::ZERO)
                    .await;
                if !failures.is_empty() {
                    break;
                }
                since_restart += 1;
                if restarts && since_restart >= 2 && rng.random_bool(0.5) {
                    let slot = rng.random_range(0..n);
                    // A restart drops one copy of everything its node held: only once
                    // every key has its two synced copies, else a loss would be ours.
                    let waited = Instant::now();
                    let mut short = under_replicated(&cluster.caches, &cluster.history, 2);
                    while !short.is_empty() && waited.elapsed() < DATA_DEADLINE {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        short = under_replicated(&cluster.caches, &cluster.history, 2);
                    }
                    if !short.is_empty() {
                        say(format!(
                            "{test}: WARNING: no restart: {} keys still have fewer than 2 \
                             synced copies {} after a verified heal, e.g. {:?}",
                            short.len(),
                            ms(waited.elapsed()),
                            &short[..short.len().min(4)]
                        ));
                        epoch += 1;
                        writers = cluster.writers(&format!("e{epoch}"), &[], true, seed ^ epoch);
                        continue;
                    }
                    restart(&mut cluster, slot).await;
                    restarted += 1;
                    since_restart = 0;
                    if let Err(e) = converge(&cluster.probes(), CONVERGE_DEADLINE).await {
                        failures.push(format!("after restarting n{slot}: {e}"));
                        break;
                    }
                }
                epoch += 1;
                writers = cluster.writers(&format!("e{epoch}"), &[], true, seed ^ epoch);
            }
        }
    }
    if failures.is_empty() {
        cluster.lab.heal();
        let healed = Instant::now();
        say(format!("{test}: {} final heal", at(t0)));
        failures = cluster
            .check_heal(healed, std::mem::take(&mut writers), Duration::from_secs(1))
            .await;
    } else {
        cluster.stop(std::mem::take(&mut writers)).await;
    }
    say(format!(
        "{test}: {} actions, {checkpoints} checkpoints, {restarted} restarts in {}; {}",
        actions,
        at(t0),
        cluster.history.counts()
    ));
    cluster.shutdown().await;
    assert!(
        failures.is_empty(),
        "{test}: failed (reproduce the schedule with {repro}):\n{}",
        failures.join("\n")
    );
}

/// Restarts the node of `slot`: a graceful shutdown, then a fresh node (new identity, new
/// port) in the same namespace, bootstrapping from the others, with the bucket open.
async fn restart(cluster: &mut Cluster, slot: usize) {
    let test = cluster.test;
    let old = cluster.nodes[slot].clone();
    old.shutdown().await.expect("shutting a node down");
    let others: Vec<String> = (0..cluster.nodes.len())
        .filter(|&s| s != slot)
        .map(|s| cluster.nodes[s].addr().to_string())
        .collect();
    let node = start_in(
        cluster.lab.ns(slot),
        node_builder(&cluster.lab, slot, &others),
    );
    let cache = node
        .cache(BUCKET, options())
        .await
        .expect("opening the bucket on a restarted node");
    say(format!(
        "{test}: {} restarted n{slot}: {} -> {}",
        at(cluster.t0),
        old.id().short(),
        node.id().short()
    ));
    cluster.logs[slot] = EventLog::record(&node, cluster.t0);
    cluster.nodes[slot] = node;
    cluster.caches[slot] = cache;
}
