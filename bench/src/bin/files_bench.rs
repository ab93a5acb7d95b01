//! `files-bench`: the files store (`node.files()`, issue 14 item 10) beside its anchors,
//! measured in the same run on the same disk. See bench/README.md ("files-bench").
//!
//! - (a) one large file on one node: `put_path` then `get_to_path`, MB/s each, beside
//!   `cp` + `sync FILE` of the same file in the same directory (the limit);
//! - (b) many small files put durably by several concurrent tasks, files/s, beside writing
//!   the same files one by one with write + fsync + directory fsync each, and beside SQLite
//!   (Python's `sqlite3`, WAL mode, `synchronous=FULL`, one insert per file, committed in
//!   batches as large as the most rows our group commit can hold with that many tasks);
//! - (c) with `--netns` (root): `put_path` with replicas 3 across network namespaces
//!   (veth, MTU 1500, one bridge), beside a plain `transfer().send` of the same bytes to
//!   the same two peers, MB/s each and the ratio (`memmesh_bench::files_replicas`).
//!
//! Reads are cold: every file a timed step reads is evicted from the page cache first
//! (fsync, then `posix_fadvise(DONTNEED)`). The run fails (exit code 1) if any put or get
//! fails or any byte differs, so `--quick` also proves that the bench works.
//!
//! ```text
//! bench/run-files.sh                 # release build, 1 GiB and 10,000 files of 4 KiB
//! files-bench --quick                # smoke run: 64 MiB and 500 files (seconds)
//! files-bench --big 256M --files 2000 --tasks 16 --dir /mnt/disk/x
//! files-bench --quick --skip-big --skip-small --netns   # (c) only, smoke (root)
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use memmesh::files::FileId;
use memmesh::{Node, PutOptions};
use memmesh_bench::files_replicas::{self, PeerReady, Replicas};
use memmesh_bench::machine;
use memmesh_bench::transfer::netns::delete_namespaces_on_signal;

/// The files benchmark: memmesh's store beside cp + sync, fsync per file and SQLite.
#[derive(Debug, Parser)]
#[command(name = "files-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Smoke run: 64 MiB, 500 files, 16 tasks (unless given).
    #[arg(long)]
    quick: bool,
    /// Working directory (the source files, the node's data dir and the anchors' files,
    /// all on one disk). Emptied first, removed at the end.
    #[arg(long, default_value = "target/files-bench")]
    dir: PathBuf,
    /// Size of the large file, e.g. 1G, 64M (binary units).
    #[arg(long)]
    big: Option<String>,
    /// Number of small files.
    #[arg(long)]
    files: Option<usize>,
    /// Size of each small file in bytes.
    #[arg(long, default_value_t = 4096)]
    file_size: usize,
    /// Concurrent put tasks for the small files.
    #[arg(long)]
    tasks: Option<usize>,
    /// Skip (a), the large file.
    #[arg(long)]
    skip_big: bool,
    /// Skip (b), the small files.
    #[arg(long)]
    skip_small: bool,
    /// Keep the working directory at the end.
    #[arg(long)]
    keep: bool,
    /// Also run (c): replicas 3 across network namespaces beside a plain transfer (needs
    /// root; creates and deletes its own namespaces, mmfb-<pid>-*).
    #[arg(long)]
    netns: bool,
    /// Size of (c)'s file [default: 1G, or 16M with --quick].
    #[arg(long)]
    replica_size: Option<String>,
    /// Rounds of (c) (medians are printed) [default: 3, or 1 with --quick].
    #[arg(long)]
    replica_repeats: Option<u32>,
    /// Worker threads of each node of (c).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// The child processes of (c), each run in its namespace.
#[derive(Debug, Subcommand)]
enum Command {
    /// (Internal) a peer of (c): serves until standard input closes.
    #[command(hide = true)]
    Peer {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// (Internal) the origin of (c): measures and prints one JSON line per round.
    #[command(hide = true)]
    Origin {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long)]
        source: PathBuf,
        #[arg(long)]
        peers: String,
        #[arg(long)]
        repeats: u32,
    },
}

const MB: f64 = 1e6;

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].trim_end_matches("iB").trim_end_matches('B');
            let mul = match unit.to_ascii_uppercase().as_str() {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => bail!("unknown size unit in {s:?}"),
            };
            (&s[..i], mul)
        }
        None => (s, 1),
    };
    let n: u64 = num.parse().with_context(|| format!("size {s:?}"))?;
    Ok(n * mul)
}

fn size_label(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Fills `buf` with bytes that differ for every (`seed`, position): xorshift64*.
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Drops `path`'s (clean) pages from the page cache, so that the next read is cold.
fn evict(path: &Path) -> Result<()> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.sync_all()?;
    // SAFETY: a valid open descriptor; the call only advises the kernel.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    ensure!(rc == 0, "posix_fadvise on {}: {rc}", path.display());
    Ok(())
}

/// Evicts every regular file under `dir`.
fn evict_tree(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            evict_tree(&e.path())?;
        } else if t.is_file() {
            evict(&e.path())?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The BLAKE3 of a file's contents, as a file id.
fn hash_file(path: &Path) -> Result<FileId> {
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(FileId::from_digest(*h.finalize().as_bytes()))
}

fn run_cmd(cmd: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let status = std::process::Command::new(cmd)
        .args(args)
        .status()
        .with_context(|| format!("running {cmd}"))?;
    ensure!(status.success(), "{cmd} failed: {status}");
    Ok(())
}

fn rate(n: f64, t: Duration) -> f64 {
    n / t.as_secs_f64().max(1e-9)
}

struct Big {
    size: u64,
    cp: f64,
    put: f64,
    get: f64,
}

/// (a): the source file, `cp` + `sync`, `put_path`, `get_to_path`, all cold.
async fn bench_big(node: &Node, dir: &Path, size: u64) -> Result<Big> {
    let src = dir.join("big-source");
    let expected = {
        let mut f = std::fs::File::create(&src)?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        let mut seed = 1u64;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            fill(&mut buf[..n], seed);
            h.update(&buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
            seed += 1;
        }
        f.sync_all()?;
        FileId::from_digest(*h.finalize().as_bytes())
    };
    sync_dir(dir)?;

    // The limit: cp + sync of the same file in the same directory.
    evict(&src)?;
    let copy = dir.join("big-cp");
    let t = Instant::now();
    run_cmd("cp", &[src.as_os_str(), copy.as_os_str()])?;
    run_cmd("sync", &[copy.as_os_str()])?;
    let cp = rate(size as f64 / MB, t.elapsed());
    ensure!(hash_file(&copy)? == expected, "cp's copy differs");
    std::fs::remove_file(&copy)?;

    let files = node.files()?;
    evict(&src)?;
    let t = Instant::now();
    let id = files.put_path(&src, PutOptions::named("big")).await?;
    let put = rate(size as f64 / MB, t.elapsed());
    ensure!(
        id == expected,
        "put_path returned {id}, expected {expected}"
    );

    evict_tree(&dir.join("node"))?;
    let out = dir.join("big-got");
    let t = Instant::now();
    files.get_to_path(id, &out).await?;
    let get = rate(size as f64 / MB, t.elapsed());
    ensure!(
        hash_file(&out)? == expected,
        "get_to_path wrote different bytes"
    );
    std::fs::remove_file(&out)?;
    files.delete(id).await?;
    std::fs::remove_file(&src)?;
    Ok(Big { size, cp, put, get })
}

struct Small {
    n: usize,
    size: usize,
    tasks: usize,
    memmesh: f64,
    /// CPU time (user + system, all threads of this process) per put, in µs.
    memmesh_cpu_us: f64,
    fsync: f64,
    sqlite: f64,
    /// CPU time of the SQLite process per row (its inserts and commits), in µs.
    sqlite_cpu_us: f64,
    sqlite_version: String,
}

/// CPU time (user + system) this process has used, all threads, in seconds.
fn process_cpu() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `u` points to writable memory of the right type; getrusage fills it on
    // success (checked before it is read).
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
        return 0.0;
    }
    // SAFETY: getrusage returned 0, so it initialised `u`.
    let u = unsafe { u.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// The small files' contents: distinct for every index.
fn small_contents(n: usize, size: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            let mut v = vec![0u8; size];
            fill(&mut v, 0x5eed_0000 + i as u64);
            Bytes::from(v)
        })
        .collect()
}

/// (b): memmesh with `tasks` concurrent puts, then write + fsync each, then SQLite.
async fn bench_small(
    node: &Node,
    dir: &Path,
    n: usize,
    size: usize,
    tasks: usize,
) -> Result<Small> {
    let contents = Arc::new(small_contents(n, size));
    let files = node.files()?;

    let next = Arc::new(AtomicUsize::new(0));
    let cpu = process_cpu();
    let t = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let files = files.clone();
        let contents = contents.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = contents.get(i) else {
                    return Ok::<_, memmesh::Error>(ids);
                };
                let id = files.put_bytes(c.clone(), PutOptions::default()).await?;
                ids.push((i, id));
            }
        }));
    }
    let mut ids = vec![None; n];
    for h in handles {
        for (i, id) in h.await?? {
            ids[i] = Some(id);
        }
    }
    let memmesh = rate(n as f64, t.elapsed());
    let memmesh_cpu_us = (process_cpu() - cpu) * 1e6 / n as f64;
    ensure!(
        files.stats()?.files >= n as u64,
        "the store lists fewer than {n} files"
    );
    for (i, id) in ids.iter().enumerate() {
        let id = id.context("a put never returned")?;
        ensure!(id == FileId::of(&contents[i]), "put {i} returned {id}");
        let got = files.get_bytes(id).await?;
        ensure!(got == contents[i], "file {i} read back different bytes");
    }

    // One by one: create, write, fsync, directory fsync.
    let plain = dir.join("small-fsync");
    std::fs::create_dir_all(&plain)?;
    sync_dir(dir)?;
    let dirf = std::fs::File::open(&plain)?;
    let t = Instant::now();
    for (i, c) in contents.iter().enumerate() {
        let mut f = std::fs::File::create(plain.join(format!("{i:06}")))?;
        f.write_all(c)?;
        f.sync_all()?;
        dirf.sync_all()?;
    }
    let fsync = rate(n as f64, t.elapsed());
    for (i, c) in contents.iter().enumerate().step_by(97) {
        ensure!(
            std::fs::read(plain.join(format!("{i:06}")))? == c[..],
            "plain file {i} differs"
        );
    }
    std::fs::remove_dir_all(&plain)?;

    // SQLite, from Python, on the same contents.
    let blob = dir.join("small-contents.bin");
    {
        let mut f = std::fs::File::create(&blob)?;
        for c in contents.iter() {
            f.write_all(c)?;
        }
        f.sync_all()?;
    }
    let db = dir.join("small.sqlite");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SQLITE_SCRIPT)
        .arg(&db)
        .arg(&blob)
        .arg(n.to_string())
        .arg(size.to_string())
        .arg(tasks.to_string())
        .output()
        .context("running python3 (sqlite3)")?;
    ensure!(
        out.status.success(),
        "the SQLite run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).with_context(|| format!("SQLite output {text:?}"))?;
    ensure!(v["verified"] == true, "SQLite read back different bytes");
    let secs = v["seconds"].as_f64().context("SQLite seconds")?;
    let sqlite = n as f64 / secs.max(1e-9);
    let sqlite_version = v["version"].as_str().unwrap_or("?").to_string();
    let sqlite_cpu_us = v["cpu"].as_f64().unwrap_or(0.0) * 1e6 / n as f64;
    std::fs::remove_file(&blob)?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(Small {
        n,
        size,
        tasks,
        memmesh,
        memmesh_cpu_us,
        fsync,
        sqlite,
        sqlite_cpu_us,
        sqlite_version,
    })
}

/// SQLite anchor: argv = db, contents file, count, size, batch. WAL mode with
/// synchronous=FULL (each commit is fsynced: durable, as memmesh's puts are; NORMAL in WAL
/// mode may lose the last commits on power loss). One INSERT per file, a commit every
/// `batch` rows. Prints {"seconds", "cpu" (the process's CPU seconds for the inserts),
/// "verified", "version"} as JSON.
const SQLITE_SCRIPT: &str = r#"
import json, sqlite3, sys, time
db, path, n, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
data = open(path, "rb").read()
blobs = [data[i * size:(i + 1) * size] for i in range(n)]
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=FULL")
con.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, content BLOB NOT NULL)")
start = time.perf_counter()
cpu = time.process_time()
con.execute("BEGIN")
for i, b in enumerate(blobs):
    con.execute("INSERT INTO files (id, content) VALUES (?, ?)", (i, b))
    if (i + 1) % batch == 0:
        con.execute("COMMIT")
        con.execute("BEGIN")
con.execute("COMMIT")
seconds = time.perf_counter() - start
cpu = time.process_time() - cpu
ok = all(row[1] == blobs[row[0]] for row in con.execute("SELECT id, content FROM files")) \
    and con.execute("SELECT count(*) FROM files").fetchone()[0] == n
con.close()
print(json.dumps({"seconds": seconds, "cpu": cpu, "verified": ok, "version": sqlite3.sqlite_version}))
"#;

fn print_report(big: Option<&Big>, small: Option<&Small>, replicas: Option<&Replicas>) {
    if let Some(b) = big {
        println!();
        println!(
            "(a) one file of {} on one node, cold reads      |    MB/s | vs cp+sync",
            size_label(b.size)
        );
        println!("{}", "-".repeat(72));
        println!(
            "cp + sync FILE (the limit)                        | {:>7.1} |      1.00x",
            b.cp
        );
        println!(
            "memmesh put_path (encrypt, fsync, commit)         | {:>7.1} | {:>9.2}x",
            b.put,
            b.put / b.cp
        );
        println!(
            "memmesh get_to_path (decrypt, verify, fsync)      | {:>7.1} | {:>9.2}x",
            b.get,
            b.get / b.cp
        );
    }
    if let Some(s) = small {
        println!();
        println!(
            "(b) {} files of {}, each durable when acknowledged       | files/s | memmesh / it",
            s.n,
            size_label(s.size as u64)
        );
        println!("{}", "-".repeat(84));
        println!(
            "memmesh put_bytes, {:>3} concurrent tasks                      | {:>7.0} |      1.00x",
            s.tasks, s.memmesh
        );
        println!(
            "write + fsync + dir fsync, one by one                         | {:>7.0} | {:>9.2}x",
            s.fsync,
            s.memmesh / s.fsync
        );
        println!(
            "SQLite {:<7} WAL, synchronous=FULL, commit every {:>4} rows | {:>7.0} | {:>9.2}x",
            s.sqlite_version,
            s.tasks,
            s.sqlite,
            s.memmesh / s.sqlite
        );
        println!(
            "CPU per file (user + system): memmesh {:.1} us (this process, all threads), SQLite {:.1} us (python3 process)",
            s.memmesh_cpu_us, s.sqlite_cpu_us
        );
    }
    if let Some(r) = replicas {
        println!();
        println!(
            "(c) one file of {} to 2 peers across network namespaces (MTU {}), {} round(s) | MB/s (median) | vs send",
            size_label(r.size),
            r.mtu,
            r.rounds.len()
        );
        println!("{}", "-".repeat(100));
        let send = r.send_mbps();
        let put = r.put_mbps();
        println!(
            "transfer().send(path, [peer1, peer2]) (each peer fsyncs its copy)       | {send:>13.1} |     1.00x"
        );
        println!(
            "files().put_path(path, replicas 3) (stored here, both peers pull + store) | {put:>13.1} | {:>8.2}x",
            put / send.max(1e-9)
        );
    }
    println!();
    println!(
        "targets (issue 14): (a) >= 0.8x cp + sync; (b) >= 5,000 files/s and >= 1x SQLite; (c) >= 0.9x the plain transfer"
    );
}

/// (c): the source file in `dir`, then the lab (three namespaces, three child processes).
fn bench_replicas(dir: &Path, size: u64, repeats: u32, threads: usize) -> Result<Replicas> {
    let src = dir.join("replica-source");
    {
        let mut f = std::fs::File::create(&src)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        let mut seed = 7_000u64;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            fill(&mut buf[..n], seed);
            f.write_all(&buf[..n])?;
            left -= n as u64;
            seed += 1;
        }
        f.sync_all()?;
    }
    let exe = std::env::current_exe().context("locating files-bench")?;
    let replicas = files_replicas::run(&exe, dir, &src, repeats, threads)?;
    std::fs::remove_file(&src)?;
    Ok(replicas)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Peer {
            listen,
            dir,
            threads,
        }) => return files_replicas::peer(listen, dir, *threads),
        Some(Command::Origin {
            listen,
            dir,
            threads,
            source,
            peers,
            repeats,
        }) => {
            let peers: Vec<PeerReady> = serde_json::from_str(peers).context("parsing --peers")?;
            return files_replicas::origin(listen, dir, *threads, source, &peers, *repeats);
        }
        None => {}
    }
    if cli.netns {
        // Before any thread exists: a signal must still delete the namespaces.
        delete_namespaces_on_signal()?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(measure(cli))
}

async fn measure(cli: Cli) -> Result<()> {
    let big = parse_size(
        cli.big
            .as_deref()
            .unwrap_or(if cli.quick { "64M" } else { "1G" }),
    )?;
    let n = cli.files.unwrap_or(if cli.quick { 500 } else { 10_000 });
    let tasks = cli.tasks.unwrap_or(if cli.quick { 16 } else { 64 }).max(1);
    let dir = cli.dir.clone();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    println!("{}", machine::describe());
    println!(
        "working dir {} (source files, the node's data dir and the anchors' files on one disk)",
        dir.display()
    );
    println!(
        "reads are cold: each timed step's input is fsynced and dropped from the page cache first"
    );

    let node = Node::builder()
        .name("files-bench")
        .listen("127.0.0.1:0")
        .mdns(false)
        .data_dir(dir.join("node"))
        .start()
        .await
        .context("starting the node")?;

    let result = async {
        let b = if cli.skip_big {
            None
        } else {
            Some(bench_big(&node, &dir, big).await?)
        };
        let s = if cli.skip_small {
            None
        } else {
            Some(bench_small(&node, &dir, n, cli.file_size, tasks).await?)
        };
        Ok::<_, anyhow::Error>((b, s))
    }
    .await;
    node.shutdown().await?;
    let (b, s) = result?;
    let r = if cli.netns {
        let size = parse_size(cli.replica_size.as_deref().unwrap_or(if cli.quick {
            "16M"
        } else {
            "1G"
        }))?;
        let repeats = cli
            .replica_repeats
            .unwrap_or(if cli.quick { 1 } else { 3 })
            .clamp(1, 100);
        let (dir, threads) = (dir.clone(), cli.threads);
        Some(
            tokio::task::spawn_blocking(move || bench_replicas(&dir, size, repeats, threads))
                .await??,
        )
    } else {
        None
    };
    print_report(b.as_ref(), s.as_ref(), r.as_ref());
    println!(
        "load average at the end: {}",
        machine::load_average().unwrap_or_default()
    );
    if !cli.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
