//! The netns path: two network namespaces joined by a veth pair with MTU 1500
//! (10.201.0.1/24 in the first, 10.201.0.2/24 in the second), the receiving side running as
//! `transfer-bench receive` in the second and the sending side as `transfer-bench send` in
//! the first (`ip netns exec`).
//!
//! [`Namespaces::create`] needs root; the namespaces it creates are named
//! `mmtb-<pid>-a` / `-b` and deleted when the value is dropped, when the process gets
//! SIGINT, SIGTERM or SIGHUP (after [`delete_namespaces_on_signal`]), or by the next run if
//! the process was killed outright. [`Namespaces::existing`] uses namespaces someone else
//! set up (bench/run-transfer.sh creates its own, for iperf3 too) and leaves them alone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::transfer::receiver::ReceiverInfo;
use crate::transfer::report::Record;
use crate::transfer::sender::case_name;
use crate::transfer::{Case, System};

/// The sending side's address.
pub const ADDR_A: &str = "10.201.0.1";
/// The receiving side's address.
pub const ADDR_B: &str = "10.201.0.2";
/// The veth's MTU.
pub const MTU: u32 = 1500;
/// The veth's name in both namespaces.
const VETH: &str = "mmtb0";
/// Prefix of the namespaces this module creates.
const PREFIX: &str = "mmtb-";

/// What to undo if a signal ends the run.
#[derive(Debug, Clone, Default)]
struct OnSignal {
    /// Namespaces to delete.
    namespaces: Vec<String>,
    /// Child processes to stop.
    children: Vec<u32>,
    /// Directories to remove.
    dirs: Vec<PathBuf>,
}

static ON_SIGNAL: Mutex<OnSignal> = Mutex::new(OnSignal {
    namespaces: Vec::new(),
    children: Vec::new(),
    dirs: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, OnSignal> {
    ON_SIGNAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Has [`delete_namespaces_on_signal`]'s thread also remove `dir` (the benchmark's own
/// scratch directory).
pub fn remove_dir_on_signal(dir: &Path) {
    registry().dirs.push(dir.to_path_buf());
}

/// Has [`delete_namespaces_on_signal`]'s thread delete the namespace `ns` (created by
/// another lab of this process, e.g. files-bench's); undone by [`forget_on_signal`].
pub fn delete_on_signal(ns: &str) {
    registry().namespaces.push(ns.to_string());
}

/// Undoes [`delete_on_signal`] (the namespace was deleted).
pub fn forget_on_signal(ns: &str) {
    registry().namespaces.retain(|n| n != ns);
}

/// Runs `ip ARGS`, failing with its standard error.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes the namespace `ns` (errors ignored: it may be gone already).
pub fn delete(ns: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The names of the existing network namespaces.
pub fn listed() -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// Deletes namespaces left by earlier runs whose process is gone.
fn remove_stale() {
    for name in listed().unwrap_or_default() {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            delete(&name);
        }
    }
}

/// Whether this process can create namespaces (root and `ip` present).
pub fn available() -> std::result::Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("no `ip` command (apt-get install -y iproute2)".into()),
    }
}

/// A pair of namespaces joined by the veth.
#[derive(Debug)]
pub struct Namespaces {
    /// The sending side's namespace.
    pub a: String,
    /// The receiving side's namespace.
    pub b: String,
    owned: bool,
}

impl Namespaces {
    /// Creates `mmtb-<pid>-a` and `-b` joined by a veth with MTU 1500 (needs root).
    pub fn create() -> Result<Self> {
        available().map_err(|why| anyhow::anyhow!("cannot create namespaces: {why}"))?;
        remove_stale();
        let pid = std::process::id();
        let ns = Namespaces {
            a: format!("{PREFIX}{pid}-a"),
            b: format!("{PREFIX}{pid}-b"),
            owned: true,
        };
        registry().namespaces.extend([ns.a.clone(), ns.b.clone()]);
        let mtu = MTU.to_string();
        let a_cidr = format!("{ADDR_A}/24");
        let b_cidr = format!("{ADDR_B}/24");
        ip(&["netns", "add", &ns.a])?;
        ip(&["netns", "add", &ns.b])?;
        ip(&[
            "-n", &ns.a, "link", "add", VETH, "type", "veth", "peer", "name", VETH, "netns", &ns.b,
        ])?;
        for (name, cidr) in [(&ns.a, &a_cidr), (&ns.b, &b_cidr)] {
            ip(&["-n", name, "link", "set", VETH, "mtu", &mtu])?;
            ip(&["-n", name, "addr", "add", cidr, "dev", VETH])?;
            ip(&["-n", name, "link", "set", VETH, "up"])?;
            ip(&["-n", name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    /// Namespaces that exist already, where [`ADDR_A`] and [`ADDR_B`] reach each other
    /// (not deleted on drop).
    pub fn existing(a: &str, b: &str) -> Result<Self> {
        let names = listed()?;
        for ns in [a, b] {
            ensure!(
                names.iter().any(|n| n == ns),
                "network namespace {ns} does not exist (ip netns list: {names:?})"
            );
        }
        Ok(Namespaces {
            a: a.to_string(),
            b: b.to_string(),
            owned: false,
        })
    }

    /// The MTU of the interface the first namespace uses to reach [`ADDR_B`].
    pub fn mtu(&self) -> Result<u32> {
        let route = ip(&["-n", &self.a, "-o", "route", "get", ADDR_B])?;
        let dev = word_after(&route, "dev").context("no route to the receiving side")?;
        let link = ip(&["-n", &self.a, "-o", "link", "show", "dev", &dev])?;
        word_after(&link, "mtu")
            .and_then(|m| m.parse().ok())
            .with_context(|| format!("no MTU in {link:?}"))
    }

    /// `ip netns exec <ns> <program>`.
    pub fn command(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if self.owned {
            delete(&self.a);
            delete(&self.b);
            registry()
                .namespaces
                .retain(|n| n != &self.a && n != &self.b);
        }
    }
}

fn word_after(text: &str, key: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == key)?;
    words.next().map(str::to_string)
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and in every thread it starts
/// afterwards, and waits for them in a thread of its own: on one, the child processes are
/// stopped, the namespaces this process created and the directories registered with
/// [`remove_dir_on_signal`] are deleted, and the process exits with 128 + the signal. Call at the start of `main`, before any other thread exists. (Child
/// processes start with an empty signal mask: `std::process::Command` resets it.)
pub fn delete_namespaces_on_signal() -> Result<()> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before any other use;
    // pthread_sigmask and sigwait are given valid pointers.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        ensure!(rc == 0, "pthread_sigmask failed ({rc})");
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                while libc::sigwait(&set, &mut sig) != 0 {}
                let undo = registry().clone();
                for pid in &undo.children {
                    libc::kill(*pid as libc::pid_t, libc::SIGTERM);
                }
                for ns in &undo.namespaces {
                    delete(ns);
                }
                for dir in &undo.dirs {
                    let _ = std::fs::remove_dir_all(dir);
                }
                eprintln!(
                    "bench: signal {sig}: stopped {:?}, deleted namespaces {:?} and {:?}",
                    undo.children, undo.namespaces, undo.dirs
                );
                std::process::exit(128 + sig);
            })
            .context("starting the signal thread")?;
    }
    Ok(())
}

/// A child process killed (and reaped) if still running when dropped, and stopped by
/// [`delete_namespaces_on_signal`]'s thread.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Starts `command` (`what` names it in errors).
    pub fn spawn(command: &mut Command, what: &str) -> Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("starting the {what} process"))?;
        registry().children.push(child.id());
        Ok(Self(child))
    }

    /// Waits up to `grace` for the process to exit by itself, then kills it.
    pub fn wait_for(&mut self, grace: Duration) -> Result<ExitStatus> {
        let until = Instant::now() + grace;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= until {
                let _ = self.0.kill();
                return Ok(self.0.wait()?);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let id = self.0.id();
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        registry().children.retain(|&p| p != id);
    }
}

/// What the two processes of the netns path run.
#[derive(Debug, Clone)]
pub struct ChildPlan<'a> {
    /// Bytes per transfer.
    pub size: u64,
    /// Measured transfers per system and case.
    pub repeats: u32,
    /// Bytes of the warm-up transfer per system.
    pub warmup: u64,
    /// Worker threads of every runtime.
    pub threads: usize,
    /// The file the file case sends.
    pub source: &'a Path,
    /// The receiver's inbox directory.
    pub inbox: &'a Path,
    /// The (system, case) pairs measured.
    pub only: &'a [(System, Case)],
}

/// Runs the receiving side in `ns.b` and the sending side in `ns.a` (both as `exe`) and
/// returns the records the sending side printed (each also given to `on_record`).
pub fn run_pair(
    ns: &Namespaces,
    exe: &Path,
    plan: &ChildPlan<'_>,
    mut on_record: impl FnMut(&Record),
) -> Result<Vec<Record>> {
    let threads = plan.threads.to_string();
    let mut receiver = ChildGuard::spawn(
        ns.command(&ns.b, exe)
            .args([
                "receive",
                "--listen",
                ADDR_B,
                "--threads",
                &threads,
                "--dir",
            ])
            .arg(plan.inbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
        "receiving",
    )?;
    let stdout = receiver.0.stdout.take().context("no receiver stdout")?;
    let mut ready = String::new();
    BufReader::new(stdout)
        .read_line(&mut ready)
        .context("reading the receiver's address")?;
    let info: ReceiverInfo = serde_json::from_str(ready.trim())
        .with_context(|| format!("the receiving process did not start (it printed {ready:?})"))?;
    let mut sender = ChildGuard::spawn(
        ns.command(&ns.a, exe)
            .args([
                "send",
                "--bind",
                ADDR_A,
                "--label",
                "netns",
                "--threads",
                &threads,
                "--size",
                &plan.size.to_string(),
                "--repeats",
                &plan.repeats.to_string(),
                "--warmup",
                &plan.warmup.to_string(),
                "--receiver",
                &serde_json::to_string(&info)?,
                "--source",
            ])
            .arg(plan.source)
            .arg("--only")
            .arg(
                plan.only
                    .iter()
                    .map(|&(s, c)| case_name(s, c))
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
        "sending",
    )?;
    let stdout = sender.0.stdout.take().context("no sender stdout")?;
    let mut records = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the sending process's output")?;
        if line.trim_start().starts_with('{') {
            let record: Record = serde_json::from_str(&line)
                .with_context(|| format!("parsing the sending process's record {line:?}"))?;
            on_record(&record);
            records.push(record);
        } else {
            println!("{line}");
        }
    }
    let status = sender.wait_for(Duration::from_secs(30))?;
    ensure!(status.success(), "the sending process failed ({status})");
    // The receiver exits when its standard input closes.
    drop(receiver.0.stdin.take());
    let status = receiver.wait_for(Duration::from_secs(15))?;
    ensure!(status.success(), "the receiving process failed ({status})");
    Ok(records)
}
