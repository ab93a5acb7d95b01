//! Partition-heal benchmark: N nodes in network namespaces (the partition suite's lab,
//! `core/tests/netlab`), a replicated bucket (replicas 2), the network split in two halves
//! with a writer on each side, then healed. For each cluster size it prints, as medians
//! over the runs:
//!
//! - **detect**: from the cut until every node lists every node of the other side as down
//!   (failure detection plus the grace period: the anchor the heal times sit beside);
//! - **heal → members**: from the heal until every node lists every other as alive and all
//!   agree on the leader (DESIGN.md/issue target: ≤ 5 s with the default timing);
//! - **heal → data**: from the heal until every write and delete acknowledged on either
//!   side is read right from every node.
//!
//! Needs root (it creates namespaces) and iproute2. `--quick`: 3 nodes, one run (the CI
//! smoke run, in ci/test-netns). By hand: `sudo target/release/heal-bench`.

#[path = "../../../core/tests/netlab/mod.rs"]
#[allow(unused_imports, clippy::manual_is_multiple_of)]
mod netlab;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use memmesh::{Bytes, Cache, CacheOptions, Node, NodeId, PeerState};
use memmesh_bench::machine;
use netlab::check::{apply, converge, reconcile, History, Op, Probe};
use netlab::{node_builder, start_in, Lab};

#[derive(Parser)]
#[command(about = "memmesh: time from a healed partition to converged membership and data")]
struct Args {
    /// Cluster sizes.
    #[arg(long, value_delimiter = ',', default_value = "3,8,16")]
    sizes: Vec<usize>,
    /// Runs per size (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// How long the network stays split.
    #[arg(long, default_value_t = 6.0)]
    split_secs: f64,
    /// Keys written on each side during the split (and before it).
    #[arg(long, default_value_t = 200)]
    keys: usize,
    /// 3 nodes, one run: a smoke test.
    #[arg(long)]
    quick: bool,
}

/// One run's times.
struct Run {
    detect: Duration,
    members: Duration,
    data: Duration,
}

fn down(node: &Node, others: &[NodeId]) -> bool {
    let peers = node.peers();
    others.iter().all(|o| {
        peers
            .iter()
            .any(|p| p.id == *o && p.state == PeerState::Down)
    })
}

async fn run_once(n: usize, split: Duration, keys: usize) -> Result<Run> {
    let lab = Lab::new("heal-bench", n).context("network namespaces are unavailable")?;
    let first = start_in(lab.ns(0), node_builder(&lab, 0, &[]));
    let seed = vec![first.addr().to_string()];
    let mut nodes = vec![first];
    for slot in 1..n {
        nodes.push(start_in(lab.ns(slot), node_builder(&lab, slot, &seed)));
    }
    let options = Some(CacheOptions {
        replicas: 2,
        ..CacheOptions::default()
    });
    let probes_of = |nodes: &[Node], caches: &[Cache]| -> Vec<Probe> {
        nodes
            .iter()
            .zip(caches)
            .map(|(node, cache)| Probe::Local {
                node: node.clone(),
                cache: cache.clone(),
            })
            .collect()
    };
    let formed = Instant::now() + Duration::from_secs(60);
    while !nodes.iter().all(|x| {
        x.peers()
            .iter()
            .filter(|p| p.state == PeerState::Alive)
            .count()
            == n - 1
    }) {
        if Instant::now() > formed {
            bail!("{n} nodes did not form a cluster within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut caches = Vec::new();
    for node in &nodes {
        caches.push(node.cache("heal", options).await?);
    }
    let probes = probes_of(&nodes, &caches);
    converge(&probes, Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    let history = History::default();
    for k in 0..keys {
        let key = format!("pre-{k}");
        apply(
            &caches[0],
            &history,
            &key,
            Op::Set(Bytes::from(key.clone())),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    }
    // Split in halves; a writer on the first node of each side.
    let half = n / 2;
    let (left, right): (Vec<usize>, Vec<usize>) = ((0..half).collect(), (half..n).collect());
    let mut lab = lab;
    let cut = Instant::now();
    lab.split(&[left.clone(), right.clone()]);
    let ids = |side: &[usize]| side.iter().map(|&s| nodes[s].id()).collect::<Vec<_>>();
    let (left_ids, right_ids) = (ids(&left), ids(&right));
    let writers = [(left[0], "l"), (right[0], "r")].map(|(slot, side)| {
        let (cache, history) = (caches[slot].clone(), history.clone());
        tokio::spawn(async move {
            for k in 0..keys {
                let key = format!("{side}-{k}");
                let _ = apply(&cache, &history, &key, Op::Set(Bytes::from(key.clone()))).await;
                // Every tenth key written before the split is deleted on this side.
                if k % 10 == 0 && side == "l" {
                    let _ = apply(&cache, &history, &format!("pre-{k}"), Op::Delete).await;
                }
            }
        })
    });
    let deadline = cut + Duration::from_secs(60);
    while !(left.iter().all(|&s| down(&nodes[s], &right_ids))
        && right.iter().all(|&s| down(&nodes[s], &left_ids)))
    {
        if Instant::now() > deadline {
            bail!("the split was not detected within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let detect = cut.elapsed();
    tokio::time::sleep(split.saturating_sub(cut.elapsed())).await;
    for w in writers {
        w.await?;
    }
    let healed = Instant::now();
    lab.heal();
    let members = converge(&probes, Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    reconcile(&probes, &history, Duration::from_secs(60))
        .await
        .map_err(anyhow::Error::msg)?;
    let data = healed.elapsed();
    let counts = history.counts();
    if counts.failed_sets + counts.failed_deletes > 0 {
        eprintln!("  ({counts})");
    }
    for node in nodes {
        node.shutdown().await?;
    }
    drop(lab);
    Ok(Run {
        detect,
        members,
        data,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.sizes = vec![3];
        args.runs = 1;
        args.keys = args.keys.min(50);
    }
    println!("{}", machine::describe());
    println!(
        "split in halves for {:.1} s, replicas 2, {} keys before and {} per side during the split; \
         default membership timing; medians of {} run(s)",
        args.split_secs, args.keys, args.keys, args.runs
    );
    println!(
        "{:>5}  {:>10}  {:>15}  {:>13}  {:>16}",
        "nodes", "detect", "heal → members", "heal → data", "members / detect"
    );
    for &n in &args.sizes {
        if n < 2 {
            bail!("a split needs at least 2 nodes");
        }
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            runs.push(run_once(n, Duration::from_secs_f64(args.split_secs), args.keys).await?);
        }
        let detect = median(runs.iter().map(|r| r.detect).collect());
        let members = median(runs.iter().map(|r| r.members).collect());
        let data = median(runs.iter().map(|r| r.data).collect());
        println!(
            "{:>5}  {:>10}  {:>15}  {:>13}  {:>15.2}x",
            n,
            secs(detect),
            secs(members),
            secs(data),
            members.as_secs_f64() / detect.as_secs_f64()
        );
    }
    println!("target: heal → members ≤ 5 s with the default timing (issue 11)");
    Ok(())
}
