//! `docs-bench`: documents (`node.docs()`, issue 15 item 7) between real nodes on
//! 127.0.0.1, beside their anchors and targets. See bench/README.md ("docs-bench").
//!
//! - (a) a fresh node syncs a document of 10,000 changes from a peer: time from the
//!   connection until the fresh node has the same heads, and the documents bytes both
//!   nodes sent (`Docs::sent`), beside two `automerge` documents syncing through
//!   Automerge's own protocol in memory in the same run (target: <= 1.5x its time);
//!   memory-only nodes, then nodes with a data dir;
//! - (b) 100 documents edited on 3 nodes in bursts (each node edits its third): time from
//!   the last edit until all 3 nodes have the same heads for all 100 (target: <= 1 s),
//!   p50 and max over rounds;
//! - (c) edits per second through the path API in Rust (`doc.put("k{i % 100}", i)`,
//!   sequential), the figure `bench/run-docs.sh` prints beside Python's and Node.js's.
//!
//! The run fails (exit code 1) if a sync does not finish or copies differ, so `--quick`
//! (small sizes, seconds) also proves that the bench works.
//!
//! ```text
//! bench/run-docs.sh              # release build, then all three parts and the bindings
//! docs-bench --quick             # smoke run
//! docs-bench --changes 20000 --rounds 5 --only a
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use memmesh::docs::Doc;
use memmesh::{DocId, Node, Reach};
use memmesh_bench::docs::anchor::{self, SyncFigures};
use memmesh_bench::docs::nodes::{self, POLL};
use memmesh_bench::docs::report::{self, SyncRow};
use memmesh_bench::machine;
use memmesh_bench::report::latency;

/// The documents benchmark.
#[derive(Debug, Parser)]
#[command(name = "docs-bench")]
struct Cli {
    /// Smoke run: 300 changes, 12 documents, 2 rounds, 0.3 s of edits (unless given).
    #[arg(long)]
    quick: bool,
    /// Parts to run: a, b, c (repeatable; default all).
    #[arg(long)]
    only: Vec<String>,
    /// Worker threads of each node's runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// (a) changes in the synced document [default: 10000].
    #[arg(long)]
    changes: Option<usize>,
    /// (a) fresh nodes synced per storage mode; (b) rounds of bursts [default: 3 / 5].
    #[arg(long)]
    rounds: Option<usize>,
    /// (a) skip the nodes with a data dir.
    #[arg(long)]
    no_disk: bool,
    /// (a) where the data dirs go (emptied first, removed at the end).
    #[arg(long, default_value = "target/docs-bench")]
    dir: PathBuf,
    /// (b) documents [default: 100].
    #[arg(long)]
    docs: Option<usize>,
    /// (b) edits per document in each burst [default: 10].
    #[arg(long)]
    burst: Option<usize>,
    /// (c) seconds of measured edits [default: 3].
    #[arg(long)]
    duration: Option<f64>,
}

/// Longest wait for any sync before the run fails.
const DEADLINE: Duration = Duration::from_secs(120);
/// Target of (a): memmesh's time over the in-memory anchor's.
const TARGET_A: f64 = 1.5;
/// Target of (b): from the last edit until all nodes converged.
const TARGET_B: Duration = Duration::from_secs(1);
/// Nodes of (b).
const NODES_B: usize = 3;

struct Sizes {
    changes: usize,
    rounds_a: usize,
    rounds_b: usize,
    docs: usize,
    burst: usize,
    duration: Duration,
    warmup: Duration,
}

impl Cli {
    fn sizes(&self) -> Sizes {
        let q = self.quick;
        Sizes {
            changes: self.changes.unwrap_or(if q { 300 } else { 10_000 }),
            rounds_a: self.rounds.unwrap_or(if q { 1 } else { 3 }),
            rounds_b: self.rounds.unwrap_or(if q { 2 } else { 5 }),
            docs: self.docs.unwrap_or(if q { 12 } else { 100 }),
            burst: self.burst.unwrap_or(if q { 3 } else { 10 }),
            duration: Duration::from_secs_f64(self.duration.unwrap_or(if q { 0.3 } else { 3.0 })),
            warmup: Duration::from_secs_f64(if q { 0.1 } else { 0.5 }),
        }
    }

    fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    for p in &cli.only {
        ensure!(
            ["a", "b", "c"].contains(&p.as_str()),
            "--only takes a, b or c"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("{}", machine::describe());
    rt.block_on(run(&cli))?;
    println!(
        "load average at the end: {}",
        machine::load_average().unwrap_or_default()
    );
    Ok(())
}

async fn run(cli: &Cli) -> Result<()> {
    let s = cli.sizes();
    if cli.runs("a") {
        part_a(cli, &s).await?;
    }
    if cli.runs("b") {
        part_b(cli, &s).await?;
    }
    if cli.runs("c") {
        part_c(cli, &s).await?;
    }
    Ok(())
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> Option<T> {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// What one fresh node's sync of the document took.
#[derive(Debug, Clone, Copy)]
struct Fresh {
    /// From the timer's start until the fresh node held the same heads.
    time: Duration,
    /// Of which `connect` (QUIC handshake and join), where the timer started before it.
    connect: Option<Duration>,
    /// Documents bytes both nodes sent.
    bytes: u64,
    /// Of which the source sent.
    from_source: u64,
}

/// One fresh node syncing the document `id` (with `heads`) from `source`: the time from
/// the connection until it holds the same heads, and the documents bytes both sent.
/// With `widen`, the fresh node connects first (not timed) and the timer starts when
/// `id`, private until then, is widened to the cluster (which offers it at once).
async fn fresh_sync(
    cli: &Cli,
    source: &Node,
    id: DocId,
    heads: &[String],
    data_dir: Option<PathBuf>,
    widen: bool,
) -> Result<Fresh> {
    let fresh = nodes::start("docs-fresh", cli.threads, data_dir.as_deref()).await?;
    let sent_before = source.docs()?.sent().bytes;
    let (start, connect) = if widen {
        nodes::connect(&fresh, source).await?;
        // Let the join and the sync task's first look at the new peer pass.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = Instant::now();
        source.docs()?.set_reach(id, Reach::Cluster).await?;
        (start, None)
    } else {
        let start = Instant::now();
        nodes::connect(&fresh, source).await?;
        (start, Some(start.elapsed()))
    };
    let done = nodes::wait_for_heads(&fresh, id, heads, DEADLINE).await?;
    let time = done - start;
    // Let the last exchange finish before reading the counters.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let from_source = source.docs()?.sent().bytes - sent_before;
    let bytes = from_source + fresh.docs()?.sent().bytes;
    let json_source = source.docs()?.open(id).await?.to_json()?;
    let json_fresh = fresh.docs()?.open(id).await?.to_json()?;
    ensure!(
        json_source == json_fresh,
        "the fresh copy differs from the source"
    );
    fresh.shutdown().await?;
    Ok(Fresh {
        time,
        connect,
        bytes,
        from_source,
    })
}

async fn part_a(cli: &Cli, s: &Sizes) -> Result<()> {
    println!();
    println!(
        "(a) a fresh node syncs a document of {} changes from a peer ({} round(s) per row, medians)",
        s.changes, s.rounds_a
    );
    let source = nodes::start("docs-source", cli.threads, None).await?;
    let id = source.docs()?.create(Reach::Cluster).await?;
    let doc = source.docs()?.open(id).await?;
    let built = Instant::now();
    nodes::build_history(&doc, s.changes).await?;
    let build_time = built.elapsed();
    let saved = doc.save()?;
    let heads = doc.heads()?;
    println!(
        "document: {} changes made through the path API in {} ({:.0} edits/s, memory only), {} saved",
        s.changes,
        latency(build_time),
        s.changes as f64 / build_time.as_secs_f64(),
        report::bytes(saved.len() as u64)
    );

    let mut anchors: Vec<SyncFigures> = Vec::new();
    let mut memory: Vec<Fresh> = Vec::new();
    let mut widened: Vec<Fresh> = Vec::new();
    // The widened documents live on a source of their own, so that the fresh nodes of
    // that row are not also offered the first source's document.
    let source_w = nodes::start("docs-source-widen", cli.threads, None).await?;
    for _ in 0..s.rounds_a {
        anchors.push(anchor::sync_in_memory(&saved)?);
        memory.push(fresh_sync(cli, &source, id, &heads, None, false).await?);
        let private = source_w.docs()?.import(&saved, Reach::Private).await?;
        widened.push(fresh_sync(cli, &source_w, private, &heads, None, true).await?);
        // Gone before the next round: its fresh node must be offered its own copy only.
        source_w.docs()?.delete(private).await?;
    }
    source_w.shutdown().await?;
    let mut disk: Vec<Fresh> = Vec::new();
    if !cli.no_disk {
        let _ = std::fs::remove_dir_all(&cli.dir);
        std::fs::create_dir_all(&cli.dir)
            .with_context(|| format!("creating {}", cli.dir.display()))?;
        let disk_source = nodes::start(
            "docs-source-disk",
            cli.threads,
            Some(&cli.dir.join("source")),
        )
        .await?;
        let disk_id = disk_source.docs()?.import(&saved, Reach::Cluster).await?;
        let disk_heads = disk_source.docs()?.open(disk_id).await?.heads()?;
        ensure!(disk_heads == heads, "the imported copy has other heads");
        for r in 0..s.rounds_a {
            let dir = cli.dir.join(format!("fresh-{r}"));
            disk.push(fresh_sync(cli, &disk_source, disk_id, &heads, Some(dir), false).await?);
        }
        disk_source.shutdown().await?;
        let _ = std::fs::remove_dir_all(&cli.dir);
    }
    source.shutdown().await?;

    let anchor_time = median(anchors.iter().map(|a| a.time).collect()).context("no round")?;
    let anchor_bytes = median(anchors.iter().map(|a| a.bytes).collect()).context("no round")?;
    let mut rows = vec![SyncRow {
        label: format!(
            "automerge {} in memory, 2 docs ({} messages)",
            AUTOMERGE_VERSION, anchors[0].messages
        ),
        time: anchor_time,
        bytes: anchor_bytes,
    }];
    let mut push = |label: &str, runs: &[Fresh]| {
        if let (Some(time), Some(bytes)) = (
            median(runs.iter().map(|r| r.time).collect()),
            median(runs.iter().map(|r| r.bytes).collect()),
        ) {
            rows.push(SyncRow {
                label: label.into(),
                time,
                bytes,
            });
        }
    };
    push("memmesh, memory only, from connect()", &memory);
    push("memmesh, memory only, connected, from set_reach", &widened);
    push("memmesh, data dirs, from connect()", &disk);
    println!();
    print!("{}", report::sync_table("(a) sync of one document", &rows));
    let each = |runs: &[Fresh]| {
        if runs.is_empty() {
            return "-".to_string();
        }
        runs.iter()
            .map(|r| {
                let sent = format!(
                    "{} + {}",
                    report::bytes(r.from_source),
                    report::bytes(r.bytes - r.from_source)
                );
                match r.connect {
                    Some(c) => format!("{} (connect {}; {sent})", latency(r.time), latency(c)),
                    None => format!("{} ({sent})", latency(r.time)),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "rounds: anchor {}",
        anchors
            .iter()
            .map(|a| latency(a.time))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("rounds: from connect(), memory only: {}", each(&memory));
    println!("rounds: connected, from set_reach: {}", each(&widened));
    println!("rounds: from connect(), data dirs: {}", each(&disk));
    println!("(bytes per round: sent by the source + sent by the fresh node)");
    for (what, row) in [("from connect()", 1), ("connected, from set_reach", 2)] {
        if let Some(r) = rows.get(row) {
            println!(
                "target: memory-only nodes <= {TARGET_A:.1}x the in-memory time, {what}: {}",
                report::ratio(r.time.as_secs_f64(), anchor_time.as_secs_f64())
            );
        }
    }
    Ok(())
}

/// The `automerge` version the bench (and core) link, from the workspace's lock.
const AUTOMERGE_VERSION: &str = "0.12";

async fn part_b(cli: &Cli, s: &Sizes) -> Result<()> {
    println!();
    println!(
        "(b) {} documents edited on {NODES_B} nodes in bursts ({} edits per document per burst, each node edits its share; {} rounds)",
        s.docs, s.burst, s.rounds_b
    );
    let mut all = Vec::new();
    for i in 0..NODES_B {
        all.push(nodes::start(&format!("docs-{i}"), cli.threads, None).await?);
    }
    for i in 0..NODES_B {
        for j in i + 1..NODES_B {
            nodes::connect(&all[j], &all[i]).await?;
        }
    }
    let mut ids = Vec::new();
    for _ in 0..s.docs {
        ids.push(all[0].docs()?.create(Reach::Cluster).await?);
    }
    for (k, id) in ids.iter().enumerate() {
        let d = all[0].docs()?.open(*id).await?;
        d.put("owner", (k % NODES_B) as i64).await?;
    }
    // Every node holds every document before the first round (not timed).
    let mut docs: Vec<Vec<Doc>> = Vec::new();
    for n in &all {
        let mut mine = Vec::new();
        for id in &ids {
            let end = Instant::now() + DEADLINE;
            let d = loop {
                if let Ok(d) = n.docs()?.open(*id).await {
                    break d;
                }
                ensure!(Instant::now() < end, "{} never got {id}", n.name());
                tokio::time::sleep(POLL).await;
            };
            mine.push(d);
        }
        docs.push(mine);
    }
    nodes::wait_converged(&docs, DEADLINE).await?;

    let mut times = Vec::new();
    let mut bursts = Vec::new();
    for round in 0..s.rounds_b {
        let start = Instant::now();
        let edits = (0..NODES_B).map(|n| {
            let mine: Vec<Doc> = docs[n]
                .iter()
                .enumerate()
                .filter(|(k, _)| k % NODES_B == n)
                .map(|(_, d)| d.clone())
                .collect();
            let burst = s.burst;
            async move {
                for e in 0..burst {
                    for d in &mine {
                        d.put(format!("e{}", e % 10).as_str(), (round * burst + e) as i64)
                            .await?;
                    }
                }
                anyhow::Ok(Instant::now())
            }
        });
        let lasts = futures::future::try_join_all(edits).await?;
        let last = lasts.into_iter().max().context("no node")?;
        let done = nodes::wait_converged(&docs, DEADLINE).await?;
        bursts.push(last - start);
        times.push(done.saturating_duration_since(last));
        println!(
            "round {round}: burst of {} edits in {}, converged {} after the last edit",
            s.docs * s.burst,
            latency(last - start),
            latency(done.saturating_duration_since(last))
        );
    }
    // Same heads must mean the same documents.
    for (k, d) in docs[0].iter().enumerate() {
        let json = d.to_json()?;
        for other in &docs[1..] {
            ensure!(
                other[k].to_json()? == json,
                "document {k} differs between nodes"
            );
        }
    }
    for n in all {
        n.shutdown().await?;
    }
    println!();
    println!("{}", report::converge_line(&times, TARGET_B));
    Ok(())
}

async fn part_c(cli: &Cli, s: &Sizes) -> Result<()> {
    println!();
    println!(
        "(c) edits per second through the path API: doc.put(\"k{{i % 100}}\", i), one document, memory only, sequential"
    );
    let node = nodes::start("docs-rate", cli.threads, None).await?;
    let id = node.docs()?.create(Reach::Cluster).await?;
    let doc = node.docs()?.open(id).await?;
    let mut i = 0u64;
    let warm_end = Instant::now() + s.warmup;
    while Instant::now() < warm_end {
        nodes::rate_edit(&doc, i).await?;
        i += 1;
    }
    let start = Instant::now();
    let end = start + s.duration;
    let mut n = 0u64;
    while Instant::now() < end {
        nodes::rate_edit(&doc, i).await?;
        i += 1;
        n += 1;
    }
    let async_rate = n as f64 / start.elapsed().as_secs_f64();

    // The same from a plain thread blocking on each call, as a synchronous binding does.
    let (doc2, duration) = (doc.clone(), s.duration);
    let blocking_rate = tokio::task::spawn_blocking(move || -> Result<f64> {
        let start = Instant::now();
        let end = start + duration;
        let mut n = 0u64;
        while Instant::now() < end {
            futures::executor::block_on(nodes::rate_edit(&doc2, i + n))?;
            n += 1;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    })
    .await??;
    node.shutdown().await?;
    println!("rust edits/s: {async_rate:.0} (awaited on a tokio runtime)");
    println!("rust edits/s, blocking caller: {blocking_rate:.0} (one plain thread, futures::executor::block_on)");
    Ok(())
}
