//! Membership benchmark: time for N nodes on loopback to converge from one bootstrap
//! address, and time for every survivor to declare a SIGKILLed node down. Medians over
//! several runs, printed beside the targets (DESIGN.md: a killed node declared down in
//! ≤ 3 s; issue 19: 64 nodes converge in ≤ 2 s). Every node of a run lives in this one
//! process, each with its own runtime (one worker thread): the cost of that on the
//! machine is printed with each figure (CPU time of the process over the measurement,
//! its threads, and how much of the wall time the bench's own polling took). (Time to
//! discover by mDNS needs network namespaces: see bench/discovery/.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use memmesh::{Event, Node, NodeId, PeerState};
use memmesh_bench::machine;
use memmesh_bench::mesh_floor;
use memmesh_bench::usage::Usage;

/// DESIGN.md's target for failure detection.
const DETECT_TARGET: Duration = Duration::from_secs(3);
/// Issue 19's target for 64 nodes converging.
const CONVERGE_TARGET: Duration = Duration::from_secs(2);
/// How often convergence is checked.
const POLL: Duration = Duration::from_millis(5);

#[derive(Parser)]
#[command(about = "memmesh membership: convergence and failure-detection times")]
struct Args {
    /// Cluster sizes to converge.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    sizes: Vec<usize>,
    /// Cluster sizes in which one member (a separate CLI process) is killed, the victim
    /// included (at least 2).
    #[arg(long, value_delimiter = ',', default_value = "4,64")]
    detect_sizes: Vec<usize>,
    /// Runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// One run of each, small sizes: a smoke test.
    #[arg(long)]
    quick: bool,
    /// Upper bound of QUIC path-MTU discovery for the in-process nodes (default: the
    /// node's, 6500). On loopback every probe up to it succeeds, and each is a packet of
    /// PADDING that quinn parses byte by byte: 1200 turns discovery off, to measure
    /// its share of a cluster forming.
    #[arg(long)]
    mtu_upper_bound: Option<u16>,
    /// Sizes of the floor measured beside the convergence figures: that many bare quinn
    /// endpoints (memmesh's TLS and loopback settings, one thread each) connected as a
    /// full mesh, one echoed request per connection (`mesh_floor.rs`); `--floor-sizes`
    /// with no value for none.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "32,64")]
    floor_sizes: Vec<usize>,
}

/// The MTU bound given by `--mtu-upper-bound` (set once in `main`).
static MTU_UPPER_BOUND: std::sync::OnceLock<Option<u16>> = std::sync::OnceLock::new();

async fn start(name: &str, seed: Option<&Node>) -> Result<Node> {
    let mut b = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1);
    if let Some(Some(mtu)) = MTU_UPPER_BOUND.get() {
        b = b.tuning(memmesh::TransportTuning {
            mtu_upper_bound: *mtu,
            ..memmesh::TransportTuning::default()
        });
    }
    if let Some(s) = seed {
        b = b.bootstrap([s.addr().to_string()]);
    }
    Ok(b.start().await?)
}

fn alive(n: &Node) -> usize {
    n.peers()
        .iter()
        .filter(|p| p.state == PeerState::Alive)
        .count()
}

/// Threads of this process now (Linux `/proc/self/status`).
fn threads() -> Option<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// What one run cost the process.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    /// Starting the nodes (after the seed), sequentially.
    starting: Duration,
    /// Process CPU time (every thread) over the measurement.
    cpu: Duration,
    /// Wall time the bench spent checking for convergence.
    polling: Duration,
    /// Threads of the process once every node was started.
    threads: usize,
    /// `PeerSuspect` events at all nodes until convergence (false suspicions: no node
    /// failed), and `PeerDown` events (members declared down by mistake).
    suspicions: u64,
    downs: u64,
}

/// Counts, at one node, the `PeerSuspect` and `PeerDown` events it reports.
fn count_churn(node: &Node, suspicions: &Arc<AtomicU64>, downs: &Arc<AtomicU64>) -> Result<()> {
    let mut events = node.events()?;
    let (suspicions, downs) = (suspicions.clone(), downs.clone());
    tokio::spawn(async move {
        while let Ok(e) = events.next().await {
            match e {
                Event::PeerSuspect { .. } => suspicions.fetch_add(1, Ordering::Relaxed),
                Event::PeerDown { .. } => downs.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    });
    Ok(())
}

/// A cluster forming: the nodes started so far, and when the first after the seed began.
struct Forming {
    nodes: Vec<Node>,
    t0: Instant,
    used: Option<Usage>,
    cost: Cost,
    suspicions: Arc<AtomicU64>,
    downs: Arc<AtomicU64>,
}

impl Forming {
    /// Starts `n` in-process nodes, all bootstrapping from the first; the clock starts
    /// when the second node starts.
    async fn start(n: usize) -> Result<Forming> {
        let seed = start("n0", None).await?;
        let (suspicions, downs) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        count_churn(&seed, &suspicions, &downs)?;
        let used = Usage::now();
        let t0 = Instant::now();
        let mut nodes = vec![seed.clone()];
        for i in 1..n {
            let node = start(&format!("n{i}"), Some(&seed)).await?;
            count_churn(&node, &suspicions, &downs)?;
            nodes.push(node);
        }
        let cost = Cost {
            starting: t0.elapsed(),
            threads: threads().unwrap_or(0),
            ..Cost::default()
        };
        Ok(Forming {
            nodes,
            t0,
            used,
            cost,
            suspicions,
            downs,
        })
    }

    /// Waits until every node sees `want` members alive; returns the time since `t0`.
    async fn converge(&mut self, want: usize, within: Duration) -> Result<Duration> {
        let deadline = self.t0 + within;
        // Nodes before `from` had converged when last checked: each poll reads the first
        // node that had not (one `Node::peers` call, not 64), and only when every node
        // has converged one by one does a full pass confirm they all have at once.
        let mut from = 0;
        loop {
            let checked = Instant::now();
            while from < self.nodes.len() && alive(&self.nodes[from]) == want {
                from += 1;
            }
            let done = from == self.nodes.len() && {
                match self.nodes.iter().position(|x| alive(x) != want) {
                    Some(i) => {
                        from = i;
                        false
                    }
                    None => true,
                }
            };
            self.cost.polling += checked.elapsed();
            if done {
                break;
            }
            if Instant::now() > deadline {
                let mut seen: Vec<usize> = self.nodes.iter().map(alive).collect();
                seen.sort();
                let cpu = match (Usage::now(), self.used) {
                    (Some(now), Some(before)) => ms(now.since(before).cpu),
                    _ => "?".into(),
                };
                bail!(
                    "{} nodes did not converge within {within:?}: members alive at each \
                     node, min {} median {} max {} (want {want}); false PeerSuspect {} and \
                     PeerDown {} (all nodes), process CPU {cpu}",
                    self.nodes.len(),
                    seen[0],
                    seen[seen.len() / 2],
                    seen[seen.len() - 1],
                    self.suspicions.load(Ordering::Relaxed),
                    self.downs.load(Ordering::Relaxed),
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let took = self.t0.elapsed();
        if let (Some(now), Some(before)) = (Usage::now(), self.used) {
            self.cost.cpu = now.since(before).cpu;
        }
        self.cost.suspicions = self.suspicions.load(Ordering::Relaxed);
        self.cost.downs = self.downs.load(Ordering::Relaxed);
        Ok(took)
    }

    /// Shuts every node down at once (each says goodbye, which waits up to 500 ms).
    async fn shutdown(self) -> Result<()> {
        let all = futures::future::join_all(self.nodes.iter().map(|x| x.shutdown())).await;
        for r in all {
            r?;
        }
        Ok(())
    }
}

/// Starts `n` nodes (all bootstrapping from the first) and times until every node sees
/// the other n-1 alive.
async fn converge_once(n: usize) -> Result<(Duration, Cost)> {
    let mut cluster = Forming::start(n).await?;
    let took = cluster.converge(n - 1, Duration::from_secs(120)).await;
    let cost = cluster.cost;
    cluster.shutdown().await?;
    Ok((took?, cost))
}

/// Starts the victim: a `memmesh node` CLI process bootstrapping from `seed`; returns the
/// process and its id.
fn start_victim(cli: &std::path::Path, seed: &Node) -> Result<(Child, NodeId)> {
    let mut child = Command::new(cli)
        .args([
            "node",
            "--name",
            "victim",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap",
        ])
        .arg(seed.addr().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", cli.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let id: NodeId = line
        .split(['(', ')'])
        .nth(1)
        .context("no id in the CLI banner")?
        .parse()?;
    Ok((child, id))
}

/// Forms an `n`-member cluster whose last member is a CLI node, kills that process
/// (SIGKILL) and times until each of the n-1 others reports PeerDown for it. Returns the
/// time for all of them, and for the first.
async fn detect_once(cli: &std::path::Path, n: usize) -> Result<(Duration, Duration)> {
    let mut cluster = Forming::start(n - 1).await?;
    let (mut child, id) = start_victim(cli, &cluster.nodes[0])?;
    let formed = cluster.converge(n - 1, Duration::from_secs(120)).await;
    if let Err(e) = formed {
        let _ = child.kill();
        let _ = child.wait();
        cluster.shutdown().await?;
        return Err(e.context("the cluster did not form"));
    }
    let mut streams: Vec<_> = cluster
        .nodes
        .iter()
        .map(|o| o.events())
        .collect::<Result<_, _>>()?;
    child.kill()?;
    let t0 = Instant::now();
    child.wait()?;
    let seen = futures::future::join_all(streams.iter_mut().map(|events| async move {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Event::PeerDown { id: down } = events.next().await? {
                    if down == id {
                        return Ok::<_, memmesh::Error>(t0.elapsed());
                    }
                }
            }
        })
        .await
    }))
    .await;
    cluster.shutdown().await?;
    let mut times = Vec::with_capacity(seen.len());
    for s in seen {
        times.push(s.context("PeerDown not seen within 60 s")??);
    }
    times.sort();
    let first = times.first().copied().unwrap_or_default();
    let all = times.last().copied().unwrap_or_default();
    Ok((all, first))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "median {:>8}  (min {}, max {}, {} runs)",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

/// One line on what the runs cost the machine (medians).
fn costs(took: &[Duration], cost: &[Cost]) -> String {
    let cpu = median(cost.iter().map(|c| c.cpu).collect());
    let wall = median(took.to_vec());
    format!(
        "starting nodes {}, process CPU {} ({:.2} cores), bench polling {}, {} threads, \
         false PeerSuspect {} and PeerDown {} (all nodes)",
        ms(median(cost.iter().map(|c| c.starting).collect())),
        ms(cpu),
        cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        ms(median(cost.iter().map(|c| c.polling).collect())),
        median(cost.iter().map(|c| c.threads).collect()),
        median(cost.iter().map(|c| c.suspicions).collect()),
        median(cost.iter().map(|c| c.downs).collect()),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.sizes = vec![4, 8];
        args.detect_sizes = vec![4];
        args.floor_sizes = vec![4];
        args.runs = 1;
    }
    if args.runs == 0 || args.sizes.iter().chain(&args.detect_sizes).any(|&n| n < 2) {
        bail!("--runs must be at least 1 and every size at least 2");
    }
    let _ = MTU_UPPER_BOUND.set(args.mtu_upper_bound);
    println!("{}", machine::describe());
    let cfg = memmesh::membership::MembershipConfig::default();
    println!(
        "membership defaults: probe {:?}, probe rtt {:?}, suspicion {:?}, down grace {:?}",
        cfg.probe_period, cfg.probe_rtt, cfg.suspect_timeout, cfg.down_grace
    );
    println!(
        "each node: its own runtime with 1 worker thread, on 127.0.0.1, mDNS off, path-MTU \
         discovery up to {} bytes; converge target for 64 nodes <= {}",
        args.mtu_upper_bound
            .unwrap_or(memmesh::TransportTuning::default().mtu_upper_bound),
        ms(CONVERGE_TARGET)
    );
    for &n in &args.sizes {
        let mut times = Vec::new();
        let mut cost = Vec::new();
        for _ in 0..args.runs {
            let (took, c) = converge_once(n).await?;
            times.push(took);
            cost.push(c);
        }
        println!(
            "converge {n:>3} nodes from one bootstrap address: {}",
            summary(times.clone())
        );
        println!("      {}", costs(&times, &cost));
    }
    for &n in &args.floor_sizes {
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut connections = 0;
        for _ in 0..args.runs {
            let f = tokio::task::spawn_blocking(move || mesh_floor::full_mesh(n)).await??;
            walls.push(f.wall);
            cpus.extend(f.cpu);
            connections = f.connections;
        }
        let cpu = if cpus.is_empty() {
            "-".to_string()
        } else {
            let c = median(cpus);
            format!(
                "{} ({:.2} ms per connection)",
                ms(c),
                c.as_secs_f64() * 1e3 / connections.max(1) as f64
            )
        };
        println!(
            "floor    {n:>3} bare quinn endpoints, full mesh ({connections} connections, each one echoed request): {}",
            summary(walls)
        );
        println!("      process CPU {cpu}");
    }
    let cli = std::env::current_exe()?
        .parent()
        .context("no exe dir")?
        .join("memmesh");
    if !cli.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p memmesh-cli)",
            cli.display()
        );
    }
    for &n in &args.detect_sizes {
        let mut all = Vec::new();
        let mut first = Vec::new();
        for _ in 0..args.runs {
            let (a, f) = detect_once(&cli, n).await?;
            all.push(a);
            first.push(f);
        }
        println!(
            "failure detection, {n:>3} members (SIGKILL -> PeerDown at all {} survivors): {}   target <= {}",
            n - 1,
            summary(all),
            ms(DETECT_TARGET)
        );
        println!(
            "      first survivor to report it: median {}",
            ms(median(first))
        );
    }
    Ok(())
}
