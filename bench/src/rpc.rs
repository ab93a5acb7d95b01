//! `rpc-bench`: request/response latency and throughput of memmesh beside a bare quinn
//! echo with the same transport settings, measured in the same run, plus the in-process
//! local call.
//!
//! ```text
//! bench/run-rpc.sh              # release build, 3 s per case after 1 s warmup
//! bench/run-rpc.sh --quick      # smoke run, 0.5 s per case
//! bench/run-rpc.sh --only hops  # attribution of the memmesh/quinn difference
//! ```

use std::time::Duration;

use anyhow::{ensure, Result};
use clap::{Parser, ValueEnum};
use memmesh_bench::load::{run_blocking, run_on, Spec};
use memmesh_bench::mesh::MeshPair;
use memmesh_bench::quinn_echo::{Hops, QuinnPair};
use memmesh_bench::report::{comparison_table, detail_table, rate, size_label, Comparison, Detail};
use memmesh_bench::transfer::report::median;
use memmesh_bench::{machine, payload, MAX_REPLY};

/// Payload sizes of the remote cases.
const SIZES: [usize; 2] = [64, 64 * 1024];
/// Concurrency levels of the remote cases.
const CONCURRENCY: [usize; 2] = [1, 64];
/// Payload of the local-call cases.
const LOCAL_SIZE: usize = 64;
/// Sequential requests used to count datagrams per request in the attribution.
const DATAGRAM_SAMPLE: u32 = 200;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// memmesh `Channel::request` between two nodes.
    Memmesh,
    /// The bare quinn echo.
    Quinn,
    /// memmesh `Channel::request` to the node itself.
    Local,
    /// Attribution (not run by default): quinn with memmesh's per-request structure
    /// added one piece at a time, beside memmesh.
    Hops,
}

/// Request/response benchmark: memmesh beside a bare quinn echo (same transport settings).
#[derive(Debug, Parser)]
#[command(name = "rpc-bench")]
struct Args {
    /// Seconds measured per case [default: 3, or 0.5 with --quick].
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warmup before each case [default: 1, or 0.2 with --quick].
    #[arg(long)]
    warmup: Option<f64>,
    /// Smoke run: short cases, same checks (proves the bench works, figures are rough).
    #[arg(long)]
    quick: bool,
    /// Worker threads of every runtime (each node, the quinn server, the quinn client).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Payload sizes in bytes of the remote cases (repeatable) [default: 64 and 65536].
    #[arg(long = "size")]
    sizes: Vec<usize>,
    /// Concurrency levels of the remote cases (repeatable) [default: 1 and 64].
    #[arg(long = "concurrency")]
    concurrency: Vec<usize>,
    /// Measure only these parts (repeatable) [default: memmesh, quinn, local].
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// Rounds of each remote case: memmesh and quinn alternate which runs first (memmesh
    /// in odd rounds, quinn in even ones), one table row per round, then the median
    /// of the rate ratios [default: 1].
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

/// The validated run settings.
struct Plan {
    measure: Duration,
    warmup: Duration,
    threads: usize,
    sizes: Vec<usize>,
    levels: Vec<usize>,
    parts: Vec<Part>,
    quick: bool,
    rounds: usize,
}

impl Plan {
    fn from_args(args: Args) -> Result<Plan> {
        let (measure, warmup) = if args.quick { (0.5, 0.2) } else { (3.0, 1.0) };
        let measure = seconds("duration", args.duration.unwrap_or(measure))?;
        let warmup = seconds("warmup", args.warmup.unwrap_or(warmup))?;
        ensure!(!measure.is_zero(), "--duration must be greater than zero");
        ensure!(
            (1..=64).contains(&args.threads),
            "--threads must be 1..=64, got {}",
            args.threads
        );
        let or_default = |v: Vec<usize>, d: [usize; 2]| if v.is_empty() { d.to_vec() } else { v };
        let sizes = or_default(args.sizes, SIZES);
        let levels = or_default(args.concurrency, CONCURRENCY);
        ensure!(
            sizes.iter().all(|&s| s <= MAX_REPLY),
            "--size must be at most {MAX_REPLY} bytes (memmesh's default max_message_size)"
        );
        ensure!(
            levels.iter().all(|&c| (1..=10_000).contains(&c)),
            "--concurrency must be 1..=10000"
        );
        ensure!(
            (1..=1000).contains(&args.rounds),
            "--rounds must be 1..=1000, got {}",
            args.rounds
        );
        let parts = if args.only.is_empty() {
            vec![Part::Memmesh, Part::Quinn, Part::Local]
        } else {
            args.only
        };
        Ok(Plan {
            measure,
            warmup,
            threads: args.threads,
            sizes,
            levels,
            parts,
            quick: args.quick,
            rounds: args.rounds,
        })
    }

    fn wants(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    fn spec(&self, concurrency: usize) -> Spec {
        Spec {
            concurrency,
            warmup: self.warmup,
            measure: self.measure,
        }
    }

    /// Every remote case, as (label, payload size, concurrency).
    fn cases(&self) -> Vec<(String, usize, usize)> {
        let mut out = Vec::new();
        for &size in &self.sizes {
            for &concurrency in &self.levels {
                out.push((
                    format!("{} c={concurrency}", size_label(size)),
                    size,
                    concurrency,
                ));
            }
        }
        out
    }
}

fn seconds(what: &str, value: f64) -> Result<Duration> {
    ensure!(
        value.is_finite() && (0.0..=3600.0).contains(&value),
        "--{what} must be between 0 and 3600 seconds, got {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

fn main() -> Result<()> {
    let plan = Plan::from_args(Args::parse())?;
    println!("memmesh rpc-bench: request/response, closed loop, every reply checked");
    println!("{}", machine::describe());
    println!(
        "settings: {:.1} s measured per case after {:.1} s warmup{}; {} worker threads per runtime \
         (node A, node B, quinn client, quinn server); TransportTuning::default() on both sides",
        plan.measure.as_secs_f64(),
        plan.warmup.as_secs_f64(),
        if plan.quick { " (--quick: rough figures)" } else { "" },
        plan.threads
    );
    println!();

    let mesh = MeshPair::start(plan.threads)?;
    let quinn = if plan.wants(Part::Quinn) || plan.wants(Part::Hops) {
        Some(QuinnPair::start(plan.threads)?)
    } else {
        None
    };
    if plan.wants(Part::Memmesh) || plan.wants(Part::Quinn) {
        remote(
            &plan,
            &mesh,
            quinn.as_ref().filter(|_| plan.wants(Part::Quinn)),
        )?;
    }
    if plan.wants(Part::Local) {
        local(&plan, &mesh)?;
    }
    if let (true, Some(q)) = (plan.wants(Part::Hops), &quinn) {
        attribution(&plan, &mesh, q)?;
    }
    println!(
        "{}",
        machine::describe().replace("machine:", "machine after the run:")
    );

    if let Some(q) = quinn {
        q.shutdown();
    }
    mesh.shutdown()?;
    Ok(())
}

/// memmesh and quinn side by side, case by case (each memmesh case right before or
/// after its quinn case, so both see the same machine conditions as far as possible).
/// With `--rounds N` every case is measured N times, the order alternating, and the
/// median of the per-round rate ratios is printed under the table.
fn remote(plan: &Plan, mesh: &MeshPair, quinn: Option<&QuinnPair>) -> Result<()> {
    let mut rows = Vec::new();
    let mut medians = Vec::new();
    for (case, size, concurrency) in plan.cases() {
        let data = payload(size);
        let spec = plan.spec(concurrency);
        let mut ratios = Vec::new();
        for round in 1..=plan.rounds {
            let label = if plan.rounds > 1 {
                format!("{case} #{round}")
            } else {
                case.clone()
            };
            let run_memmesh = || -> Result<Option<_>> {
                if !plan.wants(Part::Memmesh) {
                    return Ok(None);
                }
                eprintln!("running {label}: memmesh");
                Ok(Some(run_on(
                    &mesh.handle(),
                    spec,
                    data.clone(),
                    mesh.remote_call(),
                )?))
            };
            let run_quinn = || -> Result<Option<_>> {
                let Some(q) = quinn else { return Ok(None) };
                eprintln!("running {label}: quinn");
                Ok(Some(run_on(&q.handle(), spec, data.clone(), q.call())?))
            };
            let (memmesh, quinn) = if round % 2 == 1 {
                let m = run_memmesh()?;
                (m, run_quinn()?)
            } else {
                let q = run_quinn()?;
                (run_memmesh()?, q)
            };
            if let (Some(m), Some(q)) = (memmesh, quinn) {
                ratios.push(m.rps / q.rps);
            }
            rows.push(Comparison {
                case: label,
                memmesh,
                quinn,
            });
        }
        if plan.rounds > 1 && !ratios.is_empty() {
            medians.push((case, ratios));
        }
    }
    println!("{}", comparison_table(&rows));
    for (case, ratios) in medians {
        let n = ratios.len();
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if let Some(median) = median(ratios) {
            println!(
                "{case}: rps m/q median {median:.2}x over {n} rounds (min {min:.2}x, max {max:.2}x)"
            );
        }
    }
    Ok(())
}

/// `request(self_id, ..)`: awaited by tasks on the node runtime, and blocking from a
/// plain thread (as a synchronous binding call does).
fn local(plan: &Plan, mesh: &MeshPair) -> Result<()> {
    let data = payload(LOCAL_SIZE);
    let size = size_label(LOCAL_SIZE);
    let mut rows = Vec::new();
    for concurrency in CONCURRENCY {
        let label = format!("{size} c={concurrency}, tasks on the node runtime");
        eprintln!("running local {label}");
        let summary = run_on(
            &mesh.handle(),
            plan.spec(concurrency),
            data.clone(),
            mesh.local_call(),
        )?;
        rows.push(Detail {
            label,
            summary,
            datagrams: None,
        });
    }
    let label = format!("{size} c=1, plain thread, block_on");
    eprintln!("running local {label}");
    let blocking = run_blocking(plan.spec(1), data, mesh.local_call_blocking())?;
    let on_runtime = rows[0].summary;
    rows.push(Detail {
        label,
        summary: blocking,
        datagrams: None,
    });
    println!(
        "{}",
        detail_table("local call (request to self)", "calls/s", &rows)
    );
    println!(
        "rust local call calls/s: {} ({size}, one caller awaiting on the node runtime)",
        rate(on_runtime.rps)
    );
    println!(
        "rust local call calls/s, blocking caller: {} ({size}, one plain thread, futures::executor::block_on)",
        rate(blocking.rps)
    );
    println!();
    Ok(())
}

/// quinn with memmesh's per-request structure added one piece at a time, then memmesh.
fn attribution(plan: &Plan, mesh: &MeshPair, quinn: &QuinnPair) -> Result<()> {
    let tasks = Hops {
        request_task: true,
        timeout: true,
        handler_task: true,
        ..Hops::default()
    };
    let steps = [
        ("quinn", Hops::default()),
        (
            "+ request task",
            Hops {
                request_task: true,
                ..Hops::default()
            },
        ),
        (
            "+ timeout",
            Hops {
                request_task: true,
                timeout: true,
                ..Hops::default()
            },
        ),
        ("+ handler task", tasks),
        (
            "+ frames, FIN left unread (as memmesh)",
            Hops {
                framed: true,
                ..tasks
            },
        ),
        (
            "  frames, FIN read instead",
            Hops {
                framed: true,
                read_fin: true,
                ..tasks
            },
        ),
    ];
    for (case, size, concurrency) in plan.cases() {
        let data = payload(size);
        let spec = plan.spec(concurrency);
        let mut rows = Vec::new();
        for (label, hops) in steps {
            eprintln!("running attribution {case}: {label}");
            let summary = run_on(&quinn.handle(), spec, data.clone(), quinn.call_with(hops))?;
            let datagrams = quinn.datagrams_per_request(hops, data.clone(), DATAGRAM_SAMPLE)?;
            rows.push(Detail {
                label: label.to_string(),
                summary,
                datagrams: Some(datagrams),
            });
        }
        eprintln!("running attribution {case}: memmesh");
        let summary = run_on(&mesh.handle(), spec, data.clone(), mesh.remote_call())?;
        rows.push(Detail {
            label: "memmesh".to_string(),
            summary,
            datagrams: None,
        });
        println!(
            "{}",
            detail_table(&format!("attribution {case}"), "req/s", &rows)
        );
    }
    // Leave the server in its plain baseline mode.
    let _ = quinn.call_with(Hops::default());
    Ok(())
}
