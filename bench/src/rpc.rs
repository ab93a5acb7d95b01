//! `rpc-bench`: request/response latency and throughput of memmesh beside a bare quinn
//! echo with the same transport settings, measured in the same run, plus the in-process
//! local call.
//!
//! ```text
//! cargo run --release -p memmesh-bench --bin rpc-bench            # 3 s per case
//! cargo run --release -p memmesh-bench --bin rpc-bench -- --quick # smoke run
//! ```

use std::time::Duration;

use anyhow::{ensure, Result};
use clap::{Parser, ValueEnum};
use memmesh_bench::load::{run_blocking, run_on, Spec};
use memmesh_bench::mesh::MeshPair;
use memmesh_bench::quinn_echo::{Hops, QuinnPair};
use memmesh_bench::report::{comparison_table, detail_table, rate, size_label, Comparison, Detail};
use memmesh_bench::{machine, payload};

/// Payload sizes of the remote cases.
const SIZES: [usize; 2] = [64, 64 * 1024];
/// Concurrency levels of the remote cases.
const CONCURRENCY: [usize; 2] = [1, 64];
/// Payload of the local-call cases.
const LOCAL_SIZE: usize = 64;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// memmesh `Channel::request` between two nodes.
    Memmesh,
    /// The bare quinn echo.
    Quinn,
    /// memmesh `Channel::request` to the node itself.
    Local,
    /// Attribution (not run by default): quinn with memmesh's per-request tasks added
    /// one at a time, beside memmesh.
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
    /// Measure only these parts (repeatable) [default: memmesh, quinn, local].
    #[arg(long, value_enum)]
    only: Vec<Part>,
}

fn seconds(what: &str, value: f64) -> Result<Duration> {
    ensure!(
        value.is_finite() && (0.0..=3600.0).contains(&value),
        "--{what} must be between 0 and 3600 seconds, got {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (default_measure, default_warmup) = if args.quick { (0.5, 0.2) } else { (3.0, 1.0) };
    let measure = seconds("duration", args.duration.unwrap_or(default_measure))?;
    let warmup = seconds("warmup", args.warmup.unwrap_or(default_warmup))?;
    ensure!(!measure.is_zero(), "--duration must be greater than zero");
    ensure!(
        (1..=64).contains(&args.threads),
        "--threads must be 1..=64, got {}",
        args.threads
    );
    let wants = |p: Part| {
        if args.only.is_empty() {
            p != Part::Hops
        } else {
            args.only.contains(&p)
        }
    };

    println!("memmesh rpc-bench: request/response, closed loop, every reply checked");
    println!("{}", machine::describe());
    println!(
        "settings: {:.1} s measured per case after {:.1} s warmup{}; {} worker threads per runtime \
         (node A, node B, quinn client, quinn server); TransportTuning::default() on both sides",
        measure.as_secs_f64(),
        warmup.as_secs_f64(),
        if args.quick { " (--quick: rough figures)" } else { "" },
        args.threads
    );
    println!();

    let mesh = MeshPair::start(args.threads)?;
    let quinn = if wants(Part::Quinn) || wants(Part::Hops) {
        Some(QuinnPair::start(args.threads)?)
    } else {
        None
    };

    let mut rows = Vec::new();
    if wants(Part::Memmesh) || wants(Part::Quinn) {
        for size in SIZES {
            let data = payload(size);
            for concurrency in CONCURRENCY {
                let case = format!("{} c={concurrency}", size_label(size));
                let spec = Spec {
                    concurrency,
                    warmup,
                    measure,
                };
                let memmesh = if wants(Part::Memmesh) {
                    eprintln!("running {case}: memmesh");
                    Some(run_on(
                        &mesh.handle(),
                        spec,
                        data.clone(),
                        mesh.remote_call(),
                    )?)
                } else {
                    None
                };
                let quinn = match quinn.as_ref().filter(|_| wants(Part::Quinn)) {
                    Some(q) => {
                        eprintln!("running {case}: quinn");
                        Some(run_on(&q.handle(), spec, data.clone(), q.call())?)
                    }
                    None => None,
                };
                rows.push(Comparison {
                    case,
                    memmesh,
                    quinn,
                });
            }
        }
        println!("{}", comparison_table(&rows));
    }

    if wants(Part::Local) {
        let data = payload(LOCAL_SIZE);
        let label = size_label(LOCAL_SIZE);
        let spec = |concurrency| Spec {
            concurrency,
            warmup,
            measure,
        };
        let mut local = Vec::new();
        for concurrency in CONCURRENCY {
            let label = format!("{label} c={concurrency}, tasks on the node runtime");
            eprintln!("running local {label}");
            let summary = run_on(
                &mesh.handle(),
                spec(concurrency),
                data.clone(),
                mesh.local_call(),
            )?;
            local.push(Detail { label, summary });
        }
        let label_blocking = format!("{label} c=1, plain thread, block_on");
        eprintln!("running local {label_blocking}");
        let blocking = run_blocking(spec(1), data.clone(), mesh.local_call_blocking())?;
        local.push(Detail {
            label: label_blocking,
            summary: blocking,
        });
        println!(
            "{}",
            detail_table("local call (request to self)", "calls/s", &local)
        );
        println!(
            "rust local call calls/s: {} ({label}, one caller awaiting on the node runtime)",
            rate(local[0].summary.rps)
        );
        println!(
            "rust local call calls/s, blocking caller: {} ({label}, one plain thread, futures::executor::block_on)",
            rate(blocking.rps)
        );
        println!();
    }

    if let (true, Some(q)) = (wants(Part::Hops), &quinn) {
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
                "+ request task + timeout",
                Hops {
                    request_task: true,
                    timeout: true,
                    ..Hops::default()
                },
            ),
            (
                "+ request task + timeout + handler task",
                Hops {
                    request_task: true,
                    timeout: true,
                    handler_task: true,
                },
            ),
        ];
        for size in SIZES {
            let data = payload(size);
            for concurrency in CONCURRENCY {
                let case = format!("{} c={concurrency}", size_label(size));
                let spec = Spec {
                    concurrency,
                    warmup,
                    measure,
                };
                let mut rows = Vec::new();
                for (name, hops) in steps {
                    eprintln!("running attribution {case}: {name}");
                    let summary = run_on(&q.handle(), spec, data.clone(), q.call_with(hops))?;
                    rows.push(Detail {
                        label: name.to_string(),
                        summary,
                    });
                }
                eprintln!("running attribution {case}: memmesh");
                let summary = run_on(&mesh.handle(), spec, data.clone(), mesh.remote_call())?;
                rows.push(Detail {
                    label: "memmesh".to_string(),
                    summary,
                });
                println!(
                    "{}",
                    detail_table(&format!("attribution {case}"), "req/s", &rows)
                );
            }
        }
        // Leave the server as the plain baseline.
        let _ = q.call_with(Hops::default());
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
