//! `transfer-bench`: verified transfers of 1 GiB between two memmesh nodes, memory to
//! memory and file to file, beside bare quinn (memmesh's TLS) with quinn's default transport
//! settings (DESIGN.md's baseline) and with memmesh's tuned ones, the latter with and
//! without BLAKE3 on the receive side, measured in the same run; on loopback (one process)
//! and, with `--netns`, across two network namespaces joined by a veth with MTU 1500 (two
//! processes). See bench/README.md.
//!
//! ```text
//! bench/run-transfer.sh                       # everything, beside iperf3, final table
//! transfer-bench --quick                      # smoke run: 64 MiB, 1 repeat, loopback
//! transfer-bench --size 1G --repeats 5 --netns
//! transfer-bench --out DIR/memmesh.jsonl      # also write the records for `report`
//! transfer-bench report --dir DIR             # the table again, with iperf3's JSON
//! ```

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use clap::{Parser, Subcommand};
use memmesh_bench::machine;
use memmesh_bench::transfer::netns::{self, ChildPlan, Namespaces};
use memmesh_bench::transfer::receiver::{Receiver, ReceiverInfo};
use memmesh_bench::transfer::report::{
    ceiling_table, memory_table, throughput_table, Record, Results, TARGET,
};
use memmesh_bench::transfer::sender::{self, prepare_source, Plan, Sender, ALL_CASES};
use memmesh_bench::transfer::{parse_size, pattern, size_label, Case, System, GIB, MIB};

/// Transfer benchmark: memmesh beside bare quinn (default and tuned settings, same TLS).
#[derive(Debug, Parser)]
#[command(name = "transfer-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    measure: MeasureArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the tables from a results directory (memmesh.jsonl, iperf3-<path>.json), as
    /// bench/run-transfer.sh does at its end.
    Report {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// (Internal, netns path) run the receiving side, print how to reach it as JSON, and
    /// serve until standard input closes.
    #[command(hide = true)]
    Receive {
        #[arg(long)]
        listen: IpAddr,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// (Internal, netns path) run the sending side against a receiver and print the
    /// records as JSON lines.
    #[command(hide = true)]
    Send {
        #[arg(long)]
        bind: IpAddr,
        #[arg(long)]
        receiver: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        size: u64,
        #[arg(long)]
        repeats: u32,
        #[arg(long)]
        warmup: u64,
        #[arg(long)]
        source: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long)]
        only: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct MeasureArgs {
    /// Bytes per transfer (e.g. 1G, 256M) [default: 1G, or 64M with --quick].
    #[arg(long)]
    size: Option<String>,
    /// Measured transfers per system and case; figures are medians [default: 3, or 1
    /// with --quick].
    #[arg(long)]
    repeats: Option<u32>,
    /// Unmeasured transfer per system before measuring (e.g. 64M, 0 for none) [default:
    /// 64M, or 8M with --quick].
    #[arg(long)]
    warmup: Option<String>,
    /// Smoke run: 64 MiB, one repeat, loopback only unless --netns (proves the bench
    /// works; figures are rough).
    #[arg(long)]
    quick: bool,
    /// Worker threads of every runtime (each node, the quinn client, the quinn sink).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also measure across two network namespaces joined by a veth with MTU 1500 (two
    /// processes; needs root: creates the namespaces unless --netns-names is given).
    #[arg(long)]
    netns: bool,
    /// With --netns: use these existing namespaces (sender's,receiver's) where
    /// 10.201.0.1 and 10.201.0.2 reach each other, instead of creating them.
    #[arg(long, value_name = "A,B")]
    netns_names: Option<String>,
    /// Skip the loopback path (with --netns).
    #[arg(long)]
    no_loopback: bool,
    /// Directory for the source file and the inbox (same disk) [default: a new directory
    /// under the system's temporary directory]; the files are deleted at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write every record as JSON lines to this file (for `report`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure only these cases (comma-separated: memmesh-memory, quinn-default, quinn,
    /// quinn-blake3, quinn-keep, memmesh-file) [default: all].
    #[arg(long, value_name = "LIST")]
    only: Option<String>,
    /// Under `valgrind --tool=callgrind --instr-atstart=no` (loopback): instrument only the
    /// measured calls (`callgrind_control --instr=on/off` around each), so that callgrind's
    /// total is the instructions of the measured transfers. See bench/README.md.
    #[arg(long)]
    callgrind: bool,
}

/// The validated run settings.
struct Settings {
    size: u64,
    repeats: u32,
    warmup: u64,
    threads: usize,
    loopback: bool,
    netns: Option<(String, String, bool)>,
    dir: PathBuf,
    temporary_dir: bool,
    quick: bool,
    cases: Vec<(System, Case)>,
    callgrind: bool,
}

impl Settings {
    fn from_args(args: &MeasureArgs) -> Result<Settings> {
        let q = args.quick;
        let size = match &args.size {
            Some(s) => parse_size(s)?,
            None if q => 64 * MIB,
            None => GIB,
        };
        ensure!(
            (1..=64 * GIB).contains(&size),
            "--size must be 1 B..=64 GiB, got {size}"
        );
        ensure!(
            usize::try_from(size).is_ok(),
            "--size does not fit in memory here"
        );
        let repeats = args.repeats.unwrap_or(if q { 1 } else { 3 });
        ensure!((1..=100).contains(&repeats), "--repeats must be 1..=100");
        let warmup = match &args.warmup {
            Some(s) => parse_size(s)?,
            None if q => 8 * MIB,
            None => 64 * MIB,
        }
        .min(size);
        ensure!(
            (1..=64).contains(&args.threads),
            "--threads must be 1..=64, got {}",
            args.threads
        );
        let netns = match (&args.netns_names, args.netns) {
            (Some(names), _) => {
                let (a, b) = names
                    .split_once(',')
                    .context("--netns-names takes two names: A,B")?;
                Some((a.trim().to_string(), b.trim().to_string(), false))
            }
            (None, true) => Some((String::new(), String::new(), true)),
            (None, false) => None,
        };
        ensure!(
            !args.no_loopback || netns.is_some(),
            "--no-loopback leaves nothing to measure without --netns"
        );
        let (dir, temporary_dir) = match &args.dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!("memmesh-transfer-bench-{}", std::process::id())),
                true,
            ),
        };
        Ok(Settings {
            size,
            repeats,
            warmup,
            threads: args.threads,
            loopback: !args.no_loopback,
            netns,
            dir,
            temporary_dir,
            quick: q,
            cases: match &args.only {
                Some(list) => sender::parse_cases(list)?,
                None => ALL_CASES.to_vec(),
            },
            callgrind: args.callgrind,
        })
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Report { dir }) => report(&dir),
        Some(Command::Receive {
            listen,
            dir,
            threads,
        }) => receive(listen, &dir, threads),
        Some(Command::Send {
            bind,
            receiver,
            label,
            size,
            repeats,
            warmup,
            source,
            threads,
            only,
        }) => {
            let info: ReceiverInfo =
                serde_json::from_str(&receiver).context("parsing --receiver")?;
            let plan = Plan {
                label,
                size,
                repeats,
                warmup,
            };
            let cases = match only {
                Some(list) => sender::parse_cases(&list)?,
                None => ALL_CASES.to_vec(),
            };
            send(bind, &info, &plan, &source, threads, cases)
        }
        None => {
            let settings = Settings::from_args(&cli.measure)?;
            if matches!(settings.netns, Some((_, _, true))) {
                // Before any thread exists: a signal must still delete the namespaces.
                netns::delete_namespaces_on_signal()?;
            }
            measure(&settings, cli.measure.out.as_deref())
        }
    }
}

fn report(dir: &Path) -> Result<()> {
    let results = Results::load(dir)?;
    println!(
        "memmesh transfer-bench beside bare quinn and iperf3 (results in {})",
        dir.display()
    );
    println!(
        "{}",
        machine::describe().replace("machine:", "machine now:")
    );
    println!();
    print_tables(&results);
    Ok(())
}

fn print_tables(results: &Results) {
    println!("{TARGET}");
    println!("{}", throughput_table(results));
    println!("{}", ceiling_table(results));
    println!("{}", memory_table(results));
}

/// `transfer-bench receive`: serves until standard input closes.
fn receive(listen: IpAddr, dir: &Path, threads: usize) -> Result<()> {
    let receiver = Receiver::start(listen, dir, threads)?;
    println!("{}", serde_json::to_string(&receiver.info())?);
    std::io::stdout().flush()?;
    std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
        .context("waiting for standard input to close")?;
    receiver.shutdown()
}

/// `transfer-bench send`: the sending side of the netns path, records on standard output.
fn send(
    bind: IpAddr,
    info: &ReceiverInfo,
    plan: &Plan,
    source: &Path,
    threads: usize,
    cases: Vec<(System, Case)>,
) -> Result<()> {
    let data = pattern(usize::try_from(plan.size)?);
    let sender = Sender::start(bind, info, threads, true)?.only(cases);
    let print = |record: &Record| {
        if let Ok(line) = serde_json::to_string(record) {
            println!("{line}");
        }
    };
    sender.run(plan, &data, source, |run| print(&Record::Run(run.clone())))?;
    print(&Record::MaxRss {
        path: plan.label.clone(),
        sender: sender::max_rss(),
        receiver: sender.receiver_max_rss()?,
    });
    sender.shutdown()
}

fn measure(settings: &Settings, out: Option<&Path>) -> Result<()> {
    println!("memmesh transfer-bench: verified transfers between two nodes beside bare quinn");
    println!("{}", machine::describe());
    println!(
        "settings: {} per transfer, {} repeat(s) (medians), {} warm-up per system{}; {} worker \
         threads per runtime; TransportTuning::default() on both sides of memmesh and quinn, \
         quinn's defaults on both sides of quinn default",
        size_label(settings.size),
        settings.repeats,
        size_label(settings.warmup),
        if settings.quick {
            " (--quick: rough figures)"
        } else {
            ""
        },
        settings.threads
    );
    println!(
        "files: source and inbox under {} (same disk; the source file is in the page cache, \
         the received file is fsynced by memmesh before it is renamed)",
        settings.dir.display()
    );
    println!();
    let mut out_file = match out {
        Some(path) => Some(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => None,
    };
    let mut results = Results::default();
    let mut keep = |record: Record, results: &mut Results| -> Result<()> {
        if let Some(f) = out_file.as_mut() {
            writeln!(f, "{}", serde_json::to_string(&record)?)?;
        }
        results.add(record);
        Ok(())
    };

    let source_dir = settings.dir.join("source");
    // Removed on SIGINT/SIGTERM/SIGHUP too, if the signal thread runs (--netns).
    netns::remove_dir_on_signal(if settings.temporary_dir {
        &settings.dir
    } else {
        &source_dir
    });
    let outcome = (|| -> Result<()> {
        let data = pattern(usize::try_from(settings.size)?);
        let source = prepare_source(&source_dir, &data)?;
        if settings.loopback {
            eprintln!("loopback: starting the receiving and the sending side (one process)");
            let receiver = Receiver::start(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                &settings.dir.join("inbox-loopback"),
                settings.threads,
            )?;
            let sender = Sender::start(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                &receiver.info(),
                settings.threads,
                false,
            )?
            .only(settings.cases.clone())
            .callgrind(settings.callgrind);
            let plan = Plan {
                label: "loopback".into(),
                size: settings.size,
                repeats: settings.repeats,
                warmup: settings.warmup,
            };
            for run in sender.run(&plan, &data, &source, |_| {})? {
                keep(Record::Run(run), &mut results)?;
            }
            sender.shutdown()?;
            receiver.shutdown()?;
            keep(
                Record::MaxRss {
                    path: "loopback".into(),
                    sender: sender::max_rss(),
                    receiver: None,
                },
                &mut results,
            )?;
        }
        drop(data);
        if let Some((a, b, create)) = &settings.netns {
            let ns = if *create {
                Namespaces::create()?
            } else {
                Namespaces::existing(a, b)?
            };
            eprintln!(
                "netns: {} and {} joined by a veth (MTU {}), two processes",
                ns.a,
                ns.b,
                ns.mtu()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|e| format!("unknown: {e:#}"))
            );
            let exe = std::env::current_exe().context("locating transfer-bench")?;
            let plan = ChildPlan {
                size: settings.size,
                repeats: settings.repeats,
                warmup: settings.warmup,
                threads: settings.threads,
                source: &source,
                inbox: &settings.dir.join("inbox-netns"),
                only: &settings.cases,
            };
            for record in netns::run_pair(&ns, &exe, &plan, |_| {})? {
                keep(record, &mut results)?;
            }
        }
        Ok(())
    })();
    let cleaned = if settings.temporary_dir {
        std::fs::remove_dir_all(&settings.dir)
    } else {
        std::fs::remove_dir_all(&source_dir)
            .and_then(|()| remove_if_empty(&settings.dir.join("inbox-loopback")))
            .and_then(|()| remove_if_empty(&settings.dir.join("inbox-netns")))
    };
    outcome?;
    if let Err(e) = cleaned {
        eprintln!(
            "could not remove the benchmark's files under {}: {e}",
            settings.dir.display()
        );
    }
    println!();
    print_tables(&results);
    println!(
        "{}",
        machine::describe().replace("machine:", "machine after the run:")
    );
    Ok(())
}

fn remove_if_empty(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
