//! Membership benchmark: time for N nodes on loopback to converge from one bootstrap
//! address, and time for every survivor to declare a SIGKILLed node down. Medians over
//! several runs, printed beside DESIGN.md's targets. (Time to discover by mDNS needs
//! network namespaces: see bench/discovery/.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use memmesh::{Event, Node, NodeId, PeerState};
use memmesh_bench::machine;

#[derive(Parser)]
#[command(about = "memmesh membership: convergence and failure-detection times")]
struct Args {
    /// Cluster sizes to converge.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32")]
    sizes: Vec<usize>,
    /// Runs per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// One run of each, small sizes: a smoke test.
    #[arg(long)]
    quick: bool,
}

async fn start(name: &str, seed: Option<&Node>) -> Result<Node> {
    let mut b = Node::builder()
        .name(name)
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(1);
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

/// Starts `n` nodes (all bootstrapping from the first) and times until every node sees
/// the other n-1 alive.
async fn converge_once(n: usize) -> Result<Duration> {
    let seed = start("n0", None).await?;
    let t0 = Instant::now();
    let mut nodes = vec![seed.clone()];
    for i in 1..n {
        nodes.push(start(&format!("n{i}"), Some(&seed)).await?);
    }
    let deadline = t0 + Duration::from_secs(120);
    while !nodes.iter().all(|x| alive(x) == n - 1) {
        if Instant::now() > deadline {
            bail!("{n} nodes did not converge within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = t0.elapsed();
    for x in nodes {
        x.shutdown().await?;
    }
    Ok(took)
}

/// Kills a CLI node (SIGKILL) in a 4-node cluster and times until all 3 others report
/// PeerDown for it.
async fn detect_once(cli: &std::path::Path) -> Result<Duration> {
    let seed = start("s", None).await?;
    let others = vec![
        seed.clone(),
        start("o1", Some(&seed)).await?,
        start("o2", Some(&seed)).await?,
    ];
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while !others.iter().all(|o| alive(o) == 3) {
        if Instant::now() > deadline {
            bail!("the cluster did not form");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut streams: Vec<_> = others
        .iter()
        .map(|o| o.events())
        .collect::<Result<_, _>>()?;
    child.kill()?;
    let t0 = Instant::now();
    child.wait()?;
    for events in streams.iter_mut() {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Event::PeerDown { id: down } = events.next().await? {
                    if down == id {
                        return Ok::<_, memmesh::Error>(());
                    }
                }
            }
        })
        .await
        .context("PeerDown not seen within 60 s")??;
    }
    let took = t0.elapsed();
    for o in others {
        o.shutdown().await?;
    }
    Ok(took)
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    format!(
        "median {:>8}  (min {}, max {}, {} runs)",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.sizes = vec![4, 8];
        args.runs = 1;
    }
    println!("{}", machine::describe());
    let cfg = memmesh::membership::MembershipConfig::default();
    println!(
        "membership defaults: probe {:?}, probe rtt {:?}, suspicion {:?}, down grace {:?}",
        cfg.probe_period, cfg.probe_rtt, cfg.suspect_timeout, cfg.down_grace
    );
    for &n in &args.sizes {
        let mut times = Vec::new();
        for _ in 0..args.runs {
            times.push(converge_once(n).await?);
        }
        println!(
            "converge {n:>3} nodes from one bootstrap address: {}",
            summary(times)
        );
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
    let mut times = Vec::new();
    for _ in 0..args.runs {
        times.push(detect_once(&cli).await?);
    }
    println!(
        "failure detection (SIGKILL -> PeerDown at all 3 survivors): {}   target <= 3000 ms",
        summary(times)
    );
    Ok(())
}
