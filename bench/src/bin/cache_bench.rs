//! `cache-bench`: the replicated cache measured against its targets (DESIGN.md,
//! "Performance targets").
//!
//! - remote GET and SET (and `get_many` / `set_many` of 16 keys) from a client node to a
//!   server node that owns the keys (`replicas = 1`), at concurrency 1 and 50: keys/s,
//!   p50/p99 latency, CPU per call;
//! - local-hit reads from Rust (`try_get_local`, and `get` driven by `block_on`) on one
//!   thread;
//! - resident bytes per entry for 1 M entries of 100 B, in a fresh child process.
//!
//! ```text
//! bench/run-cache.sh                     # everything, beside Redis, final table
//! cache-bench --quick                    # smoke run (< 60 s even in a debug build)
//! cache-bench --out DIR/memmesh.jsonl    # also write the figures for `report`
//! cache-bench report --dir DIR           # memmesh beside Redis, from a results directory
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use memmesh_bench::cache_mesh::{local_hits, CachePair, LocalApi, BATCH, VALUE_SIZE};
use memmesh_bench::cache_report::{
    case_label, local_table, memory_table, remote_table, Local, Record, Remote, Results,
};
use memmesh_bench::load::{run_on, CallFuture, Spec};
use memmesh_bench::machine;
use memmesh_bench::report::{detail_table, Detail};
use memmesh_bench::resident;

/// Concurrency levels of the remote cases (as `redis-benchmark -c`).
const CONCURRENCY: [usize; 2] = [1, 50];

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Remote GET/SET and batches, client node to server node.
    Remote,
    /// Local-hit reads from Rust.
    Local,
    /// Resident bytes per entry (child process).
    Memory,
}

/// Replicated-cache benchmark: remote GET/SET, local hits, bytes per entry.
#[derive(Debug, Parser)]
#[command(name = "cache-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    measure: MeasureArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print memmesh's figures beside Redis's from a results directory (see
    /// bench/run-cache.sh).
    Report {
        /// The directory holding memmesh.jsonl, redis-c*-p*.csv, redis-memory.txt and
        /// local.jsonl.
        #[arg(long)]
        dir: PathBuf,
    },
    /// (Internal) fill one node with ENTRIES entries and print the RSS growth as JSON.
    #[command(hide = true)]
    Resident {
        #[arg(long)]
        entries: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

#[derive(Debug, clap::Args)]
struct MeasureArgs {
    /// Seconds measured per case [default: 3, or 0.3 with --quick].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warmup before each case [default: 1, or 0.1 with --quick].
    #[arg(long)]
    warmup: Option<f64>,
    /// Smoke run: short cases, 1,000 keys, 10,000 entries (proves the bench works).
    #[arg(long)]
    quick: bool,
    /// Worker threads of each node's runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Keys per side (remote, local) [default: 10000, or 1000 with --quick].
    #[arg(long)]
    keys: Option<usize>,
    /// Entries of the resident-memory fill [default: 1000000, or 10000 with --quick].
    #[arg(long)]
    entries: Option<usize>,
    /// Measure only these parts (repeatable) [default: all].
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// Also write the figures as JSON lines to this file (for `report`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The validated run settings.
struct Plan {
    measure: Duration,
    warmup: Duration,
    threads: usize,
    keys: usize,
    entries: usize,
    parts: Vec<Part>,
    quick: bool,
}

fn seconds(what: &str, value: f64) -> Result<Duration> {
    ensure!(
        value.is_finite() && (0.0..=3600.0).contains(&value),
        "--{what} must be between 0 and 3600 seconds, got {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

impl Plan {
    fn from_args(args: &MeasureArgs) -> Result<Plan> {
        let q = args.quick;
        let measure = seconds(
            "duration",
            args.duration.unwrap_or(if q { 0.3 } else { 3.0 }),
        )?;
        let warmup = seconds("warmup", args.warmup.unwrap_or(if q { 0.1 } else { 1.0 }))?;
        ensure!(!measure.is_zero(), "--duration must be greater than zero");
        ensure!(
            (1..=64).contains(&args.threads),
            "--threads must be 1..=64, got {}",
            args.threads
        );
        let keys = args.keys.unwrap_or(if q { 1_000 } else { 10_000 });
        ensure!(
            (BATCH..=1_000_000).contains(&keys),
            "--keys must be {BATCH}..=1000000, got {keys}"
        );
        let entries = args.entries.unwrap_or(if q { 10_000 } else { 1_000_000 });
        ensure!(
            (1..=9_999_999).contains(&entries),
            "--entries must be 1..=9999999, got {entries}"
        );
        let parts = if args.only.is_empty() {
            vec![Part::Remote, Part::Local, Part::Memory]
        } else {
            args.only.clone()
        };
        Ok(Plan {
            measure,
            warmup,
            threads: args.threads,
            keys,
            entries,
            parts,
            quick: q,
        })
    }

    fn wants(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Resident { entries, threads }) => {
            let r = resident::fill(entries, threads)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Some(Command::Report { dir }) => report(&dir),
        None => measure(&Plan::from_args(&cli.measure)?, cli.measure.out.as_deref()),
    }
}

/// Prints memmesh beside Redis from a results directory.
fn report(dir: &std::path::Path) -> Result<()> {
    let results = Results::load(dir)?;
    println!(
        "memmesh cache-bench beside Redis (results in {})",
        dir.display()
    );
    println!(
        "{}",
        machine::describe().replace("machine:", "machine now:")
    );
    println!();
    println!("remote, client node -> server node (memmesh) / redis-benchmark -> redis-server;");
    println!("x16 = get_many/set_many of 16 keys (memmesh) / -P 16 (Redis); p50/p99 per call;");
    println!("target: remote GET keys/s >= Redis's");
    println!("{}", remote_table(&results));
    println!("target: Python local-hit GET >= 1,000,000 reads/s");
    println!("{}", local_table(&results));
    println!("{}", memory_table(&results));
    Ok(())
}

fn measure(plan: &Plan, out: Option<&std::path::Path>) -> Result<()> {
    println!("memmesh cache-bench: replicated cache, every value checked");
    println!("{}", machine::describe());
    println!(
        "settings: {:.1} s measured per case after {:.1} s warmup{}; {} worker threads per node; \
         {VALUE_SIZE} B values; {} keys per side; bucket replicas=1, client and server node on 127.0.0.1{}",
        plan.measure.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        if plan.quick { " (--quick: rough figures)" } else { "" },
        plan.threads,
        plan.keys,
        if plan.quick {
            ""
        } else {
            "; measured once the write transition after the join is over"
        },
    );
    println!();
    let mut records = Vec::new();
    if plan.wants(Part::Remote) || plan.wants(Part::Local) {
        eprintln!("starting the client and server nodes, sorting and storing keys");
        let pair = CachePair::start(plan.threads, plan.keys, !plan.quick)?;
        if plan.wants(Part::Remote) {
            records.extend(remote(plan, &pair)?.into_iter().map(Record::Remote));
        }
        if plan.wants(Part::Local) {
            records.extend(local(plan, &pair)?.into_iter().map(Record::Local));
        }
        pair.shutdown()?;
    }
    if plan.wants(Part::Memory) {
        eprintln!(
            "filling a fresh node with {} entries (child process)",
            plan.entries
        );
        let r = resident::measure_in_child(plan.entries, plan.threads)?;
        let results = Results {
            memmesh: vec![Record::Resident(r)],
            ..Results::default()
        };
        println!("{}", memory_table(&results));
        println!(
            "fill: {:.0} entries/s through set_many batches of 1000 (one node, in-process)",
            r.entries as f64 / r.fill_seconds
        );
        println!();
        records.push(Record::Resident(r));
    }
    println!(
        "{}",
        machine::describe().replace("machine:", "machine after the run:")
    );
    if let Some(path) = out {
        write_records(path, &records)?;
    }
    Ok(())
}

fn write_records(path: &std::path::Path, records: &[Record]) -> Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    for r in records {
        writeln!(file, "{}", serde_json::to_string(r)?)?;
    }
    Ok(())
}

type CallMaker = fn(&CachePair, Bytes) -> Box<dyn Fn(Bytes) -> CallFuture + Send + Sync>;

fn boxed<F>(f: F) -> Box<dyn Fn(Bytes) -> CallFuture + Send + Sync>
where
    F: Fn(Bytes) -> CallFuture + Send + Sync + 'static,
{
    Box::new(f)
}

/// Every remote case, SET before GET as redis-benchmark orders them.
fn remote(plan: &Plan, pair: &CachePair) -> Result<Vec<Remote>> {
    let cases: [(&str, usize, CallMaker); 4] = [
        ("SET", 1, |p, t| boxed(p.remote_set(t))),
        ("GET", 1, |p, t| boxed(p.remote_get(t))),
        ("SET", BATCH, |p, t| boxed(p.remote_set_many(t))),
        ("GET", BATCH, |p, t| boxed(p.remote_get_many(t))),
    ];
    let token = Bytes::from_static(b"ok");
    let mut out = Vec::new();
    let mut single = Vec::new();
    let mut batched = Vec::new();
    for (op, batch, make) in cases {
        for concurrency in CONCURRENCY {
            let label = case_label(op, concurrency, batch);
            eprintln!("running {label}");
            let call = std::sync::Arc::new(make(pair, token.clone()));
            let spec = Spec {
                concurrency,
                warmup: plan.warmup,
                measure: plan.measure,
            };
            let summary = run_on(&pair.handle(), spec, token.clone(), move |b| call(b))
                .with_context(|| format!("remote case {label}"))?;
            let mut shown = summary;
            shown.rps *= batch as f64;
            let detail = Detail {
                label,
                summary: shown,
                datagrams: None,
            };
            if batch > 1 {
                batched.push(detail);
            } else {
                single.push(detail);
            }
            out.push(Remote::new(op, concurrency, batch, &summary));
        }
    }
    println!(
        "{}",
        detail_table("remote, client -> server", "keys/s", &single)
    );
    println!(
        "{}",
        detail_table(
            &format!("remote, {BATCH} keys per call"),
            "keys/s",
            &batched
        )
    );
    println!("(p50, p99, cpu and cs are per call; cpu = process CPU time of both nodes)");
    println!();
    Ok(out)
}

/// Local-hit reads on this thread: `try_get_local`, then `get` through `block_on`.
fn local(plan: &Plan, pair: &CachePair) -> Result<Vec<Local>> {
    let mut out = Vec::new();
    for (api, name) in [
        (LocalApi::TryGetLocal, "try_get_local"),
        (LocalApi::Get, "get (block_on)"),
    ] {
        eprintln!("running local {name}");
        if !plan.warmup.is_zero() {
            local_hits(pair.cache(), pair.local_entries(), api, plan.warmup)?;
        }
        let ops_per_s = local_hits(pair.cache(), pair.local_entries(), api, plan.measure)
            .with_context(|| format!("local {name}"))?;
        out.push(Local {
            lang: "rust".into(),
            api: Some(name.into()),
            ops_per_s,
        });
    }
    let results = Results {
        local: out.clone(),
        ..Results::default()
    };
    println!("{}", local_table(&results));
    Ok(out)
}
