//! The sending side: one memmesh node and two bare quinn clients (memmesh's tuned transport
//! settings, quinn's default ones), connected to a
//! [`Receiver`](crate::transfer::receiver::Receiver) (in this process or another), and the
//! measured cases.
//!
//! Each repeat runs, in this order: memmesh memory to memory, quinn with default settings,
//! quinn (tuned), quinn (tuned) + BLAKE3, quinn (tuned) + BLAKE3 into a kept fresh buffer,
//! memmesh file to file. Every case is timed from the call to the receiver's confirmation
//! and then checked: memmesh's reported hash, the receiver's reported hash and the
//! benchmark's own hash of what landed must all equal the BLAKE3 hash of the payload.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use futures::executor::block_on;
use memmesh::transfer::{Source, Transfer, TransferResult};
use memmesh::{Channel, Node, NodeId};
use serde::de::DeserializeOwned;

use crate::transfer::procfs::{self, Sample, Window};
use crate::transfer::quinn_stream::{QuinnSource, Settings};
use crate::transfer::receiver::{CtlRequest, ReceiverInfo, Taken, CTL_CHANNEL};
use crate::transfer::{hash_file, hash_label, size_label, Case, Run, System};

/// Deadline of a control request (a `take` hashes up to the whole payload again).
const CTL_TIMEOUT: Duration = Duration::from_secs(300);

/// What to measure on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `loopback` or `netns`, recorded in every [`Run`].
    pub label: String,
    /// Bytes per transfer.
    pub size: u64,
    /// Measured transfers per system and case.
    pub repeats: u32,
    /// Bytes of one unmeasured transfer per system first (0: none).
    pub warmup: u64,
}

/// The sending side, started by [`Sender::start`].
pub struct Sender {
    node: Node,
    transfer: Transfer,
    ctl: Channel,
    inbox_peer: NodeId,
    memory_peer: NodeId,
    quinn: QuinnSource,
    quinn_default: QuinnSource,
    remote: bool,
    /// The (system, case) pairs measured, in this order ([`ALL_CASES`] unless
    /// [`Sender::only`] narrowed them).
    cases: Vec<(System, Case)>,
    /// Run `callgrind_control --instr=on/off` around each measured call (see
    /// [`Sender::callgrind`]).
    callgrind: bool,
}

/// Every measured (system, case) pair, in the order of a repeat.
pub const ALL_CASES: [(System, Case); 6] = [
    (System::Memmesh, Case::Memory),
    (System::QuinnDefault, Case::Memory),
    (System::Quinn, Case::Memory),
    (System::QuinnBlake3, Case::Memory),
    (System::QuinnKeep, Case::Memory),
    (System::Memmesh, Case::File),
];

/// The name of a (system, case) pair for `--only`: `memmesh-memory`, `memmesh-file`,
/// `quinn-default`, `quinn`, `quinn-blake3`, `quinn-keep`.
pub fn case_name(system: System, case: Case) -> &'static str {
    match (system, case) {
        (System::Memmesh, Case::Memory) => "memmesh-memory",
        (System::Memmesh, Case::File) => "memmesh-file",
        (System::QuinnDefault, _) => "quinn-default",
        (System::Quinn, _) => "quinn",
        (System::QuinnBlake3, _) => "quinn-blake3",
        (System::QuinnKeep, _) => "quinn-keep",
    }
}

/// Parses a comma-separated `--only` list of [`case_name`]s (kept in the order of
/// [`ALL_CASES`]).
pub fn parse_cases(list: &str) -> Result<Vec<(System, Case)>> {
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    for name in &names {
        ensure!(
            ALL_CASES.iter().any(|&(s, c)| case_name(s, c) == *name),
            "unknown case {name:?} in --only (known: {})",
            ALL_CASES
                .iter()
                .map(|&(s, c)| case_name(s, c))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ALL_CASES
        .into_iter()
        .filter(|&(s, c)| names.contains(&case_name(s, c)))
        .collect())
}

/// How long one measured call took and what both sides consumed meanwhile.
struct Cost {
    seconds: f64,
    sender: Sample,
    receiver: Option<Sample>,
}

impl Sender {
    /// Starts a node on `ip` and connects it and the two quinn clients to the receiver
    /// `info`.
    /// `remote`: the receiver is another process (its CPU time and memory are then asked
    /// for and added; in one process, this process's figures already include it).
    pub fn start(ip: IpAddr, info: &ReceiverInfo, threads: usize, remote: bool) -> Result<Self> {
        let node = Node::builder()
            .name("tb-sender")
            .listen(SocketAddr::new(ip, 0).to_string())
            // Across namespaces the receiver is not on loopback: no secret, so open.
            .open(true)
            .mdns(false)
            .threads(threads)
            .start_blocking()
            .context("starting the sending node")?;
        let inbox_peer = block_on(node.connect(&info.inbox_addr))
            .with_context(|| format!("connecting to the inbox node at {}", info.inbox_addr))?;
        let memory_peer = block_on(node.connect(&info.memory_addr))
            .with_context(|| format!("connecting to the memory node at {}", info.memory_addr))?;
        let quinn_addr: SocketAddr = info
            .quinn_addr
            .parse()
            .with_context(|| format!("bad quinn address {:?}", info.quinn_addr))?;
        let quinn_id: NodeId = info.quinn_id.parse()?;
        let quinn = QuinnSource::connect(ip, quinn_addr, quinn_id, threads, Settings::Tuned)?;
        let default_addr: SocketAddr = info
            .quinn_default_addr
            .parse()
            .with_context(|| format!("bad quinn default address {:?}", info.quinn_default_addr))?;
        let default_id: NodeId = info.quinn_default_id.parse()?;
        let quinn_default =
            QuinnSource::connect(ip, default_addr, default_id, threads, Settings::Default)?;
        Ok(Self {
            transfer: node.transfer()?,
            ctl: node.channel(CTL_CHANNEL)?,
            node,
            inbox_peer,
            memory_peer,
            quinn,
            quinn_default,
            remote,
            cases: ALL_CASES.to_vec(),
            callgrind: false,
        })
    }

    /// Measures only `cases` (in that order) in each repeat.
    pub fn only(mut self, cases: Vec<(System, Case)>) -> Self {
        self.cases = cases;
        self
    }

    /// Under `valgrind --tool=callgrind --instr-atstart=no`: switches instrumentation on
    /// (`callgrind_control --instr=on <pid>`) just before each measured call and off just
    /// after it, so that callgrind counts the instructions of the measured transfers only
    /// (all threads of this process; on loopback both sides).
    pub fn callgrind(mut self, on: bool) -> Self {
        self.callgrind = on;
        self
    }

    fn callgrind_instr(&self, state: &str) -> Result<()> {
        if !self.callgrind {
            return Ok(());
        }
        let status = std::process::Command::new("callgrind_control")
            .arg(format!("--instr={state}"))
            .arg(std::process::id().to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .context("running callgrind_control (is this process under callgrind?)")?;
        ensure!(
            status.success(),
            "callgrind_control --instr={state}: {status}"
        );
        Ok(())
    }

    fn ctl<T: DeserializeOwned>(&self, request: &CtlRequest) -> Result<T> {
        let body = serde_json::to_vec(request)?;
        let reply = block_on(self.ctl.request(self.inbox_peer, body, Some(CTL_TIMEOUT)))
            .with_context(|| format!("control request {request:?}"))?;
        serde_json::from_slice(&reply).with_context(|| format!("the reply to {request:?}"))
    }

    /// The receiving process's largest resident size so far (only if it is another
    /// process).
    pub fn receiver_max_rss(&self) -> Result<Option<u64>> {
        if !self.remote {
            return Ok(None);
        }
        self.ctl(&CtlRequest::MaxRss).map(Some)
    }

    fn measured<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<(T, Cost)> {
        if self.remote {
            self.ctl::<()>(&CtlRequest::Begin)?;
        }
        self.callgrind_instr("on")?;
        let window = Window::begin();
        let started = Instant::now();
        let out = call()?;
        let seconds = started.elapsed().as_secs_f64();
        let sender = window.end();
        self.callgrind_instr("off")?;
        let receiver = if self.remote {
            Some(self.ctl::<Sample>(&CtlRequest::End)?)
        } else {
            None
        };
        Ok((
            out,
            Cost {
                seconds,
                sender,
                receiver,
            },
        ))
    }

    /// `transfer().send(source, [peer])`, failing unless the one result is a success with
    /// the expected size and hash.
    fn memmesh_send(
        &self,
        source: Source,
        peer: NodeId,
        size: u64,
        expected: &str,
    ) -> Result<TransferResult> {
        let what = match &source {
            Source::Bytes(_) => "Source::Bytes".to_string(),
            Source::Path(p) => format!("Source::Path({})", p.display()),
        };
        let results = block_on(self.transfer.send(source, &[peer]))
            .with_context(|| format!("transfer().send({what}, [{}])", peer.short()))?;
        ensure!(results.len() == 1, "{} results for one peer", results.len());
        let Some(r) = results.into_iter().next() else {
            bail!("no result");
        };
        if let Some(e) = &r.error {
            bail!(
                "transfer().send({what}, [{}]) failed after {} attempt(s), {:?}: {e} (kind {:?})",
                peer.short(),
                r.attempts,
                r.duration,
                e.kind()
            );
        }
        ensure!(
            r.bytes == size,
            "{what}: {} bytes confirmed of {size}",
            r.bytes
        );
        ensure!(
            r.hash.as_deref() == Some(expected),
            "{what}: memmesh confirmed {:?}, the payload is {expected}",
            r.hash
        );
        Ok(r)
    }

    /// Asks the receiver for the transfer of `expected` into `case` (offered as `name`, if
    /// given) and checks what landed.
    fn take(&self, case: Case, name: Option<&str>, size: u64, expected: &str) -> Result<()> {
        let taken: Taken = self.ctl(&CtlRequest::Take {
            case,
            hash: expected.to_string(),
            name: name.map(str::to_string),
        })?;
        ensure!(
            taken.bytes == size,
            "the receiver got {} bytes of {size}",
            taken.bytes
        );
        ensure!(
            taken.reported == expected,
            "the receiver reported {}, the payload is {expected}",
            taken.reported
        );
        ensure!(
            taken.recomputed == expected,
            "what landed hashes to {}, the payload is {expected} (memmesh reported {})",
            taken.recomputed,
            taken.reported
        );
        ensure!(
            taken.leftovers.is_empty(),
            "files left in the inbox after the transfer: {:?}",
            taken.leftovers
        );
        Ok(())
    }

    /// Unmeasured transfers of `bytes` of `data`: memmesh memory to memory, then quinn
    /// (tuned), then quinn with default settings.
    pub fn warm_up(&self, data: &Bytes, bytes: u64) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let part = data.slice(..(bytes as usize).min(data.len()));
        let expected = hash_label(&blake3::hash(&part));
        self.memmesh_send(
            Source::Bytes(part.clone()),
            self.memory_peer,
            part.len() as u64,
            &expected,
        )
        .context("warm-up")?;
        self.take(Case::Memory, None, part.len() as u64, &expected)?;
        self.quinn
            .send(part.clone(), false)
            .context("quinn warm-up")?;
        self.quinn_default
            .send(part, false)
            .context("quinn default warm-up")?;
        Ok(())
    }

    /// Runs `plan.repeats` repeats of every case with `data` (and `source_file`, which
    /// must hold the same bytes); `report` sees each run as it completes.
    pub fn run(
        &self,
        plan: &Plan,
        data: &Bytes,
        source_file: &Path,
        mut report: impl FnMut(&Run),
    ) -> Result<Vec<Run>> {
        ensure!(
            data.len() as u64 == plan.size,
            "the payload has {} bytes, the plan {}",
            data.len(),
            plan.size
        );
        let expected = hash_label(&blake3::hash(data));
        let file_name = source_file
            .file_name()
            .context("the source file has no name")?
            .to_string_lossy()
            .into_owned();
        eprintln!(
            "{}: warm-up ({} per system)",
            plan.label,
            size_label(plan.warmup)
        );
        self.warm_up(data, plan.warmup)?;
        let mut runs = Vec::new();
        for repeat in 1..=plan.repeats {
            for &(system, case) in &self.cases {
                let (m, attempts, hash) = match (system, case) {
                    (System::Memmesh, _) => {
                        let (source, peer, name) = match case {
                            Case::Memory => (Source::Bytes(data.clone()), self.memory_peer, None),
                            Case::File => (
                                Source::Path(source_file.to_path_buf()),
                                self.inbox_peer,
                                Some(file_name.as_str()),
                            ),
                        };
                        let (result, cost) = self
                            .measured(|| self.memmesh_send(source, peer, plan.size, &expected))?;
                        self.take(case, name, plan.size, &expected)?;
                        (cost, result.attempts, expected.clone())
                    }
                    (
                        System::Quinn
                        | System::QuinnBlake3
                        | System::QuinnDefault
                        | System::QuinnKeep,
                        _,
                    ) => {
                        let hashing = system == System::QuinnBlake3;
                        let source = match system {
                            System::QuinnDefault => &self.quinn_default,
                            _ => &self.quinn,
                        };
                        // quinn's default settings have no keep-alive: a connection idle
                        // near its 30 s timeout is replaced, and warmed up, untimed.
                        if source.reopen_if_idle()? {
                            eprintln!(
                                "{}: {} connection reopened after idling",
                                plan.label,
                                system.label()
                            );
                            if plan.warmup > 0 {
                                let part = data.slice(..(plan.warmup as usize).min(data.len()));
                                source.send(part, false).context("quinn warm-up")?;
                            }
                        }
                        let (streamed, cost) = if system == System::QuinnKeep {
                            let measured = self.measured(|| source.send_kept(data.clone()))?;
                            // The kept gibibyte is let go outside the measurement, as the
                            // benchmark drops memmesh's received buffer.
                            source.release().context("releasing the kept buffer")?;
                            measured
                        } else {
                            self.measured(|| source.send(data.clone(), hashing))?
                        };
                        let hash = match streamed.hash {
                            Some(h) => {
                                let got = hash_label(&blake3::Hash::from_bytes(h));
                                ensure!(
                                    got == expected,
                                    "the quinn sink hashed {got}, the payload is {expected}"
                                );
                                got
                            }
                            None => String::new(),
                        };
                        (cost, 1, hash)
                    }
                };
                let cpu = m.sender.cpu() + m.receiver.map(|s| s.cpu()).unwrap_or_default();
                let run = Run {
                    path: plan.label.clone(),
                    system,
                    case,
                    repeat,
                    bytes: plan.size,
                    seconds: m.seconds,
                    cpu_seconds: cpu.as_secs_f64(),
                    sender_rss: m.sender.rss,
                    receiver_rss: m.receiver.map(|s| s.rss),
                    attempts,
                    hash,
                };
                let gib = plan.size as f64 / (1u64 << 30) as f64;
                let faults = m.sender.faults + m.receiver.map_or(0, |s| s.faults);
                let sys_ns = m.sender.sys_ns + m.receiver.map_or(0, |s| s.sys_ns);
                eprintln!(
                    "{} {} {} #{repeat}: {} in {:.2} s = {:.1} MB/s, {:.2} CPU s/GiB ({:.2} system), \
                     {:.0} page faults/GiB, RSS peak +{} MiB",
                    plan.label,
                    system.label(),
                    case.label(),
                    size_label(plan.size),
                    run.seconds,
                    run.mb_per_s(),
                    run.cpu_per_gib(),
                    sys_ns as f64 / 1e9 / gib,
                    faults as f64 / gib,
                    run.sender_rss.peak_growth() >> 20
                );
                report(&run);
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// Shuts the node and the quinn clients down.
    pub fn shutdown(self) -> Result<()> {
        self.quinn.shutdown();
        self.quinn_default.shutdown();
        self.node.shutdown_blocking()?;
        Ok(())
    }
}

/// Writes `data` to `dir/transfer-bench-<len>.bin` (kept if it already holds exactly
/// `data`) and returns its path. The file is then in the page cache: the file cases read
/// it from memory (see bench/README.md).
pub fn prepare_source(dir: &Path, data: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("transfer-bench-{}.bin", data.len()));
    if let Ok(meta) = std::fs::metadata(&path) {
        if meta.len() == data.len() as u64 && hash_file(&path)?.1 == blake3::hash(data) {
            return Ok(path);
        }
    }
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The resident high-water mark of this process so far (bytes).
pub fn max_rss() -> u64 {
    procfs::max_rss()
}
