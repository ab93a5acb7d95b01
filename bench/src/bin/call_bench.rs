//! `call-bench`: the Rust side of "the cost of a call from each language" (issue 19 item
//! 4), and the side-by-side report of every language's figures.
//!
//! `call-bench` starts one node (127.0.0.1, mDNS off) and measures, each for a bounded
//! time after a warmup, every reply and value checked:
//!
//! * a 64 B request to a channel on the same node (echo handler), one caller on a plain
//!   thread through `futures::executor::block_on` (how a binding's caller waits), with
//!   the handler where the request is awaited, and on the blocking pool (where a Python
//!   plain handler runs);
//! * the same request awaited by one task, and by 64 tasks, on the node runtime;
//! * a local-hit cache `get` of 1000 keys with 100 B values (`replicas = 1`) through
//!   `block_on`, and `Cache::try_get_local` (the fast path bindings call first).
//!
//! It prints a table, or with `--json` one JSON line per case (`call_report::Record`).
//! `call-bench report FILE...` prints the table of every record in those files (the
//! Rust, Python, Node.js and UniFFI lines collected by `bench/run-bindings.sh`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures::executor::block_on;
use memmesh::{Cache, CacheOptions, Channel, Node, NodeId, Request};
use memmesh_bench::cache_mesh::check_value;
use memmesh_bench::call_report::{
    self, Record, GET_LOCAL, REQUEST_64, REQUEST_SEQ, RUST_AWAITED, RUST_BLOCKING,
    RUST_BLOCKING_POOL, RUST_GET,
};
use memmesh_bench::load::{run_blocking, run_on, CallFuture, Spec};
use memmesh_bench::stats::Summary;
use memmesh_bench::usage::Usage;

/// Keys of the local-hit case (as the Python and Node.js scripts).
const KEYS: usize = 1000;
/// Bytes per value of the local-hit case.
const VALUE_SIZE: usize = 100;
/// Bytes per request.
const PAYLOAD: usize = 64;

#[derive(Parser)]
#[command(
    about = "The cost of a call from Rust (request to self, local-hit get), and the report of every language's figures"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Seconds measured per case.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds of warmup per case.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Smoke run: 0.3 s per case after 0.1 s of warmup.
    #[arg(long)]
    quick: bool,
    /// Worker threads of the node runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON line per case instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the table of the JSON lines in FILES (other lines are skipped).
    Report {
        /// Files of JSON lines (`bench/run-bindings.sh` writes target/call-bench/records.jsonl).
        files: Vec<PathBuf>,
    },
}

async fn echo(req: Request) -> memmesh::Result<Bytes> {
    Ok(req.data)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Command::Report { files }) = &args.command {
        let mut records = Vec::new();
        for f in files {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            records.extend(call_report::parse(&text).map_err(anyhow::Error::msg)?);
        }
        print!("{}", call_report::table(&records));
        return Ok(());
    }
    let (duration, warmup) = if args.quick {
        (0.3, 0.1)
    } else {
        (args.duration, args.warmup)
    };
    ensure!(
        duration > 0.0 && warmup >= 0.0,
        "bad --duration or --warmup"
    );
    let spec = |concurrency| Spec {
        concurrency,
        warmup: Duration::from_secs_f64(warmup),
        measure: Duration::from_secs_f64(duration),
    };
    let node = Node::builder()
        .name("call-bench")
        .listen("127.0.0.1:0")
        .mdns(false)
        .threads(args.threads)
        .start_blocking()
        .context("starting the node")?;
    let records = measure(&node, spec);
    node.shutdown_blocking()?;
    let records = records?;
    if args.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", call_report::table(&records));
    }
    Ok(())
}

fn measure(node: &Node, spec: impl Fn(usize) -> Spec) -> Result<Vec<Record>> {
    let channel = node.channel("bench")?;
    channel.on_request(echo);
    let id = node.id();
    let data = memmesh_bench::payload(PAYLOAD);
    let mut records = Vec::new();

    eprintln!("running request, one plain thread, block_on");
    let blocking = {
        let channel = channel.clone();
        move |data| Ok(block_on(channel.request(id, data, None))?)
    };
    let s = run_blocking(spec(1), data.clone(), blocking)?;
    records.push(record(REQUEST_SEQ, RUST_BLOCKING, s));

    // The shape of a binding's plain handler: it cannot run where the request is awaited
    // (a Python handler needs the GIL on a thread of its own, so that the caller's
    // timeout and Ctrl-C still work), so it runs on the blocking pool.
    eprintln!("running request, one plain thread, block_on, handler on the blocking pool");
    let pool = node.channel("bench-pool")?;
    pool.on_request(|req: Request| async move {
        tokio::task::spawn_blocking(move || req.data)
            .await
            .map_err(|e| memmesh::Error::internal(format!("the handler thread failed: {e}")))
    });
    let blocking = move |data| Ok(block_on(pool.request(id, data, None))?);
    let s = run_blocking(spec(1), data.clone(), blocking)?;
    records.push(record(REQUEST_SEQ, RUST_BLOCKING_POOL, s));

    for (case, concurrency) in [(REQUEST_SEQ, 1), (REQUEST_64, 64)] {
        eprintln!("running request, {concurrency} task(s) on the node runtime");
        let s = run_on(
            &node.runtime_handle(),
            spec(concurrency),
            data.clone(),
            awaited(channel.clone(), id),
        )?;
        records.push(record(case, RUST_AWAITED, s));
    }

    let cache = block_on(node.cache(
        "bench-local-get",
        Some(CacheOptions {
            replicas: 1,
            ..CacheOptions::default()
        }),
    ))?;
    let entries = entries();
    block_on(cache.set_many(entries.clone(), None))?;
    let s = spec(1);
    for (api, label) in [(true, RUST_GET), (false, "try_get_local")] {
        eprintln!("running local-hit get: {label}");
        local_hits(&cache, &entries, api, s.warmup)?;
        let (rate, usage) = local_hits(&cache, &entries, api, s.measure)?;
        records.push(Record {
            lang: "rust".into(),
            case: GET_LOCAL.into(),
            api: Some(label.into()),
            calls_per_s: rate.0,
            cpu_us: usage.map(|u| u.cpu.as_secs_f64() * 1e6 / rate.1 as f64),
            cs: usage.map(|u| u.switches as f64 / rate.1 as f64),
        });
    }
    Ok(records)
}

fn awaited(
    channel: Channel,
    id: NodeId,
) -> impl Fn(Bytes) -> CallFuture + Clone + Send + Sync + 'static {
    move |data| {
        let channel = channel.clone();
        Box::pin(async move { Ok(channel.request(id, data, None).await?) })
    }
}

fn record(case: &str, api: &str, s: Summary) -> Record {
    let calls = s.count.max(1) as f64;
    Record {
        lang: "rust".into(),
        case: case.into(),
        api: Some(api.into()),
        calls_per_s: s.rps,
        cpu_us: s.usage.map(|u| u.cpu.as_secs_f64() * 1e6 / calls),
        cs: s.usage.map(|u| u.switches as f64 / calls),
    }
}

/// The data set of the Python and Node.js scripts: `key:000000`..., 100 B values.
fn entries() -> Vec<(String, Bytes)> {
    (0..KEYS)
        .map(|i| {
            let digits = format!("{i:06}");
            let mut value = digits.repeat(VALUE_SIZE / 6);
            value.push_str(&".".repeat(VALUE_SIZE % 6));
            (format!("key:{digits}"), Bytes::from(value))
        })
        .collect()
}

/// Reads every entry in turn for `duration` (`Cache::get` through `block_on` if `get`,
/// else `try_get_local`), checking each value; returns (reads/s, reads) and what the
/// process consumed meanwhile.
fn local_hits(
    cache: &Cache,
    entries: &[(String, Bytes)],
    get: bool,
    duration: Duration,
) -> Result<((f64, u64), Option<Usage>)> {
    let before = Usage::now();
    let start = Instant::now();
    let mut reads: u64 = 0;
    'outer: loop {
        for (key, value) in entries {
            let got = if get {
                block_on(cache.get(key))?
            } else {
                cache
                    .try_get_local(key)
                    .with_context(|| format!("key {key} is not answered locally"))?
            };
            check_value(key, value, got.as_ref())?;
            reads += 1;
            if reads.is_multiple_of(1024) && start.elapsed() >= duration {
                break 'outer;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let usage = Usage::now().zip(before).map(|(now, then)| now.since(then));
    Ok(((reads as f64 / elapsed, reads), usage))
}
