//! What the partition tests check, and the pieces they check it with:
//!
//! - [`History`]: every cache operation a test made and whether it was acknowledged (`Ok`),
//!   from which the states a read may legitimately return are derived ([`History::expected`]).
//! - [`Writer`]: a task writing new keys (and deleting or overwriting some older ones)
//!   through one node, recording everything in the history.
//! - [`Probe`]: a node as the checks see it, in this process or in a child process (asked
//!   over the `probe` channel, served by [`serve_probe`]): its membership view, what it
//!   reads for a list of keys, its wall clock, and writes and deletes made through it.
//! - [`converge`] and [`reconcile`]: the two invariants after a heal, polled until a
//!   deadline: every node lists every other as alive and all agree on the leader; every
//!   acknowledged write is readable with its last acknowledged value from every node, and
//!   every acknowledged delete reads as absent.
//! - [`EventLog`]: a node's membership events, timestamped, for the order checks.
//!
//! Every key is written by one writer at a time, one operation after another, so the last
//! acknowledged operation of a key is well defined. An operation that failed or timed out
//! may still have been applied somewhere: the read may then also return what it wrote.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use memmesh::{Bytes, Cache, Channel, Event, Node, NodeId, PeerState};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// How long membership may take to converge after a heal.
pub const CONVERGE_DEADLINE: Duration = Duration::from_secs(30);
/// How long the data may take to reconcile once membership converged.
pub const DATA_DEADLINE: Duration = Duration::from_secs(30);
/// Longest a test waits for one write or delete (it is then counted as failed).
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a check waits for one read.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a probe of a child waits for its answer (a `set` or `del` probe: plus
/// [`OP_TIMEOUT`]).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys per `get_many` when reading for a check.
const CHUNK: usize = 128;
/// Examples shown per kind of wrong read.
const EXAMPLES: usize = 4;

// ----------------------------------------------------------------------------------------
// History.

/// A cache operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `set(key, value)`.
    Set(Bytes),
    /// `delete(key)`.
    Delete,
}

#[derive(Debug, Clone)]
struct Attempt {
    op: Op,
    acked: bool,
}

/// Every cache operation of a test, per key in the order made, with its outcome.
#[derive(Debug, Clone, Default)]
pub struct History {
    keys: Arc<Mutex<BTreeMap<String, Vec<Attempt>>>>,
}

/// How many operations were acknowledged and how many failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Writes that returned `Ok`.
    pub acked_sets: usize,
    /// Deletes that returned `Ok`.
    pub acked_deletes: usize,
    /// Writes that failed or timed out.
    pub failed_sets: usize,
    /// Deletes that failed or timed out.
    pub failed_deletes: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} writes and {} deletes acknowledged, {} writes and {} deletes failed",
            self.acked_sets, self.acked_deletes, self.failed_sets, self.failed_deletes
        )
    }
}

/// The states a read of `key` may return: `None` is absent.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The key.
    pub key: String,
    /// The last acknowledged state first, then those of later failed operations.
    pub allowed: Vec<Option<Bytes>>,
}

impl History {
    /// Records an operation on `key` and whether it was acknowledged.
    pub fn record(&self, key: &str, op: Op, acked: bool) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .push(Attempt { op, acked });
    }

    /// The operation counts so far.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for attempts in self.keys.lock().unwrap_or_else(|p| p.into_inner()).values() {
            for a in attempts {
                match (&a.op, a.acked) {
                    (Op::Set(_), true) => c.acked_sets += 1,
                    (Op::Delete, true) => c.acked_deletes += 1,
                    (Op::Set(_), false) => c.failed_sets += 1,
                    (Op::Delete, false) => c.failed_deletes += 1,
                }
            }
        }
        c
    }

    /// Every key with an acknowledged operation, and what a read of it may return: the
    /// state its last acknowledged operation left, or that of a later failed one (which
    /// may have been applied all the same).
    pub fn expected(&self) -> Vec<Expect> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (key, attempts) in keys.iter() {
            let Some(last) = attempts.iter().rposition(|a| a.acked) else {
                continue;
            };
            let mut allowed = Vec::new();
            for a in &attempts[last..] {
                let state = match &a.op {
                    Op::Set(v) => Some(v.clone()),
                    Op::Delete => None,
                };
                if !allowed.contains(&state) {
                    allowed.push(state);
                }
            }
            out.push(Expect {
                key: key.clone(),
                allowed,
            });
        }
        out
    }
}

/// Applies `op` to `key` through `cache` (bounded by [`OP_TIMEOUT`]) and records it.
pub async fn apply(cache: &Cache, history: &History, key: &str, op: Op) -> Result<(), String> {
    let result = match &op {
        Op::Set(v) => tokio::time::timeout(OP_TIMEOUT, cache.set(key, v.clone(), None))
            .await
            .map(|r| r.map(|_| ())),
        Op::Delete => tokio::time::timeout(OP_TIMEOUT, cache.delete(key))
            .await
            .map(|r| r.map(|_| ())),
    };
    let result = match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {OP_TIMEOUT:?}")),
    };
    history.record(key, op, result.is_ok());
    result
}

// ----------------------------------------------------------------------------------------
// Writers.

/// What a [`Writer`] does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its keys are `<label>-<n>`; its values name the label too.
    pub label: String,
    /// Existing keys this writer deletes (even positions) or overwrites (odd positions),
    /// one after every third new key. No other writer may touch them meanwhile.
    pub existing: Vec<String>,
    /// Also deletes or overwrites its own earlier keys at random (one op in five).
    pub churn: bool,
    /// Pause between operations.
    pub pace: Duration,
    /// Stops by itself after this many new keys.
    pub limit: Option<usize>,
    /// Seed of the churn's choices.
    pub seed: u64,
}

impl Plan {
    /// New keys only, every 25 ms, until stopped.
    pub fn new(label: impl Into<String>) -> Plan {
        Plan {
            label: label.into(),
            existing: Vec::new(),
            churn: false,
            pace: Duration::from_millis(25),
            limit: None,
            seed: 0,
        }
    }
}

/// What a writer did.
#[derive(Debug, Clone, Default)]
pub struct WriterStats {
    /// Its label.
    pub label: String,
    /// Acknowledged operations.
    pub ok: usize,
    /// Failed (or timed-out) operations.
    pub failed: usize,
    /// The last error, if any.
    pub last_error: Option<String>,
}

impl std::fmt::Display for WriterStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ok, {} failed", self.label, self.ok, self.failed)?;
        if let Some(e) = &self.last_error {
            write!(f, " (last error: {e})")?;
        }
        Ok(())
    }
}

/// A task writing through one node (see [`Plan`]), recording into a [`History`].
pub struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<WriterStats>,
}

impl Writer {
    /// Starts writing on the current tokio runtime.
    pub fn spawn(cache: Cache, history: History, plan: Plan) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(plan.seed);
            let mut stats = WriterStats {
                label: plan.label.clone(),
                ..WriterStats::default()
            };
            let mut existing = plan.existing.iter().enumerate();
            let mut own: Vec<String> = Vec::new();
            let mut seq = 0u64;
            let count = |r: Result<(), String>, stats: &mut WriterStats| match r {
                Ok(()) => stats.ok += 1,
                Err(e) => {
                    stats.failed += 1;
                    stats.last_error = Some(e);
                }
            };
            let mut n = 0usize;
            while !flag.load(Ordering::Relaxed) && plan.limit.is_none_or(|l| n < l) {
                let key = format!("{}-{n}", plan.label);
                let value = Bytes::from(format!("{key}={}#0", plan.label));
                count(
                    apply(&cache, &history, &key, Op::Set(value)).await,
                    &mut stats,
                );
                own.push(key);
                n += 1;
                if n.is_multiple_of(3) {
                    if let Some((i, key)) = existing.next() {
                        seq += 1;
                        let op = if i % 2 == 0 {
                            Op::Delete
                        } else {
                            Op::Set(Bytes::from(format!("{key}={}#{seq}", plan.label)))
                        };
                        count(apply(&cache, &history, key, op).await, &mut stats);
                    }
                }
                if plan.churn && rng.random_bool(0.2) {
                    let key = own[rng.random_range(0..own.len())].clone();
                    seq += 1;
                    let op = if rng.random_bool(0.5) {
                        Op::Delete
                    } else {
                        Op::Set(Bytes::from(format!("{key}={}#{seq}", plan.label)))
                    };
                    count(apply(&cache, &history, &key, op).await, &mut stats);
                }
                tokio::time::sleep(plan.pace).await;
            }
            stats
        });
        Writer { stop, task }
    }

    /// Asks the writer to stop after its current operation and waits for it.
    pub async fn stop(self) -> WriterStats {
        self.stop.store(true, Ordering::Relaxed);
        self.finish().await
    }

    /// Waits for the writer to reach its limit (or to be stopped).
    pub async fn finish(self) -> WriterStats {
        self.task.await.expect("a writer task panicked")
    }
}

// ----------------------------------------------------------------------------------------
// Probes: a node's view and reads, in this process or in a child.

/// The channel a child process answers probes on.
pub const PROBE_CHANNEL: &str = "probe";

/// What one node read for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A value.
    Value(Bytes),
    /// Absent.
    Absent,
    /// The read failed or timed out.
    Failed(String),
}

/// A node's membership view.
#[derive(Debug, Clone)]
pub struct View {
    /// Every peer it lists, with its state.
    pub peers: Vec<(NodeId, PeerState)>,
    /// The leader it reports.
    pub leader: NodeId,
}

/// A node as the checks see it.
pub enum Probe {
    /// A node of this process.
    Local {
        /// The node.
        node: Node,
        /// Its handle on the test bucket.
        cache: Cache,
    },
    /// A node of a child process, asked over [`PROBE_CHANNEL`] (see [`serve_probe`]).
    Remote {
        /// Its name.
        name: String,
        /// Its id.
        id: NodeId,
        /// The channel of a node of this process to ask through.
        via: Channel,
    },
}

impl Probe {
    /// The node's name.
    pub fn name(&self) -> String {
        match self {
            Probe::Local { node, .. } => node.name().to_string(),
            Probe::Remote { name, .. } => name.clone(),
        }
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        match self {
            Probe::Local { node, .. } => node.id(),
            Probe::Remote { id, .. } => *id,
        }
    }

    /// The node's membership view.
    pub async fn view(&self) -> Result<View, String> {
        match self {
            Probe::Local { node, .. } => Ok(local_view(node)),
            Probe::Remote { .. } => parse_view(&self.ask("view".into()).await?),
        }
    }

    /// What the node reads for `keys`, in order.
    pub async fn read(&self, keys: &[String]) -> Vec<Read> {
        match self {
            Probe::Local { cache, .. } => read_keys(cache, keys).await,
            Probe::Remote { .. } => {
                let mut out = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(4 * CHUNK) {
                    let reply = self.ask(format!("get\n{}", chunk.join("\n"))).await;
                    match reply.and_then(|r| parse_reads(&r, chunk.len())) {
                        Ok(reads) => out.extend(reads),
                        Err(e) => out.extend(chunk.iter().map(|_| Read::Failed(e.clone()))),
                    }
                }
                out
            }
        }
    }

    /// For each of `keys`, whether the node answers it from its own fully synced replica
    /// (an owner whose copy of the key's partition is complete: `Cache::try_get_local`).
    pub async fn holds(&self, keys: &[String]) -> Result<Vec<bool>, String> {
        match self {
            Probe::Local { cache, .. } => Ok(keys
                .iter()
                .map(|k| cache.try_get_local(k).is_some())
                .collect()),
            Probe::Remote { .. } => {
                let reply = self.ask(format!("local\n{}", keys.join("\n"))).await?;
                let held: Vec<bool> = reply.lines().map(|l| l == "L").collect();
                if held.len() == keys.len() {
                    Ok(held)
                } else {
                    Err(format!("{} answers for {} keys", held.len(), keys.len()))
                }
            }
        }
    }

    /// A child's membership events as it rendered them (ids in their short form).
    pub async fn child_events(&self) -> Result<String, String> {
        self.ask("events".into()).await
    }

    /// Applies `op` to `key` through this node and records it in `history`: as [`apply`]
    /// for a local node; a child applies it itself (the `set`/`del` probes of
    /// [`serve_probe`], bounded by [`OP_TIMEOUT`] there). A probe that gets no answer
    /// counts as a failed operation (it may have been applied all the same).
    pub async fn apply(&self, history: &History, key: &str, op: Op) -> Result<(), String> {
        if let Probe::Local { cache, .. } = self {
            return apply(cache, history, key, op).await;
        }
        let request = match &op {
            Op::Set(v) => format!("set\n{key}\n{}", String::from_utf8_lossy(v)),
            Op::Delete => format!("del\n{key}"),
        };
        let result = match self.ask_within(request, OP_TIMEOUT + PROBE_TIMEOUT).await {
            Ok(reply) if reply == "ok" => Ok(()),
            Ok(reply) => Err(reply.strip_prefix('!').unwrap_or(&reply).to_string()),
            Err(e) => Err(e),
        };
        history.record(key, op, result.is_ok());
        result
    }

    /// The node's wall clock (`SystemTime::now`), in milliseconds since the Unix epoch.
    pub async fn wall_ms(&self) -> Result<u64, String> {
        match self {
            Probe::Local { .. } => Ok(wall_ms()),
            Probe::Remote { .. } => {
                let reply = self.ask("wall".into()).await?;
                reply
                    .trim()
                    .parse()
                    .map_err(|e| format!("bad wall clock answer {reply:?}: {e}"))
            }
        }
    }

    async fn ask(&self, request: String) -> Result<String, String> {
        self.ask_within(request, PROBE_TIMEOUT).await
    }

    async fn ask_within(&self, request: String, timeout: Duration) -> Result<String, String> {
        let Probe::Remote { id, via, name } = self else {
            return Err("not a remote probe".into());
        };
        let reply = via
            .request(*id, request, Some(timeout))
            .await
            .map_err(|e| format!("{name} did not answer a probe: {e}"))?;
        String::from_utf8(reply.to_vec()).map_err(|e| e.to_string())
    }
}

/// This process's wall clock, in milliseconds since the Unix epoch.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn local_view(node: &Node) -> View {
    View {
        peers: node.peers().iter().map(|p| (p.id, p.state)).collect(),
        leader: node.leader(),
    }
}

fn parse_state(s: &str) -> Result<PeerState, String> {
    match s {
        "alive" => Ok(PeerState::Alive),
        "suspect" => Ok(PeerState::Suspect),
        "down" => Ok(PeerState::Down),
        other => Err(format!("unknown peer state {other:?}")),
    }
}

fn parse_id(s: &str) -> Result<NodeId, String> {
    s.parse::<NodeId>()
        .map_err(|e| format!("bad node id {s:?}: {e}"))
}

fn parse_view(text: &str) -> Result<View, String> {
    let mut peers = Vec::new();
    let mut leader = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["leader", id] => leader = Some(parse_id(id)?),
            ["peer", id, state] => peers.push((parse_id(id)?, parse_state(state)?)),
            _ => return Err(format!("bad view line {line:?}")),
        }
    }
    Ok(View {
        peers,
        leader: leader.ok_or("a view without a leader")?,
    })
}

fn parse_reads(text: &str, n: usize) -> Result<Vec<Read>, String> {
    let reads: Vec<Read> = text
        .split('\n')
        .take(n)
        .map(|line| match line.split_at_checked(1) {
            Some(("+", v)) => Read::Value(Bytes::from(v.to_string())),
            Some(("-", _)) => Read::Absent,
            Some((_, e)) => Read::Failed(e.to_string()),
            None => Read::Failed("empty answer".into()),
        })
        .collect();
    if reads.len() == n {
        Ok(reads)
    } else {
        Err(format!("{} answers for {n} keys", reads.len()))
    }
}

/// Reads `keys` from `cache`: `get_many` by chunks, falling back to one `get` per key
/// (all at once, each bounded) for a chunk that fails, to tell which keys fail.
pub async fn read_keys(cache: &Cache, keys: &[String]) -> Vec<Read> {
    // Owned chunks: the futures borrow nothing (they must be `Send` for any lifetime).
    let chunks: Vec<(Cache, Vec<String>)> = keys
        .chunks(CHUNK)
        .map(|chunk| (cache.clone(), chunk.to_vec()))
        .collect();
    futures::stream::iter(chunks.into_iter().map(read_chunk))
        .buffered(4)
        .collect::<Vec<Vec<Read>>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Reads one chunk of keys (see [`read_keys`]).
async fn read_chunk((cache, chunk): (Cache, Vec<String>)) -> Vec<Read> {
    match tokio::time::timeout(READ_TIMEOUT, cache.get_many(&chunk)).await {
        Ok(Ok(values)) => values
            .into_iter()
            .map(|v| v.map_or(Read::Absent, Read::Value))
            .collect(),
        _ => futures::future::join_all(chunk.iter().map(|key| read_one(&cache, key))).await,
    }
}

/// Reads `key` with `get`, bounded by [`READ_TIMEOUT`].
async fn read_one(cache: &Cache, key: &str) -> Read {
    match tokio::time::timeout(READ_TIMEOUT, cache.get(key)).await {
        Ok(Ok(Some(v))) => Read::Value(v),
        Ok(Ok(None)) => Read::Absent,
        Ok(Err(e)) => Read::Failed(e.to_string()),
        Err(_) => Read::Failed(format!("no answer within {READ_TIMEOUT:?}")),
    }
}

/// Answers probes on [`PROBE_CHANNEL`] of `node` (in a child process): `view`, `get`
/// followed by one key per line (one answer per line: `+value`, `-` absent, `!error`),
/// `local` followed by keys (per key `L` if the node answers it authoritatively from its
/// own fully synced replica, `Cache::try_get_local`, else `-`), `events` (the rendered
/// `log`), `set` followed by a key and a value on the next two lines and `del` followed by
/// a key (the node writes or deletes it itself, bounded by [`OP_TIMEOUT`]; answer `ok` or
/// `!error`), and `wall` (the node's wall clock in milliseconds since the Unix epoch).
/// Values must not contain newlines.
pub fn serve_probe(node: &Node, cache: Cache, log: Arc<EventLog>) -> memmesh::Result<()> {
    let me = node.clone();
    node.channel(PROBE_CHANNEL)?
        .on_request(move |req: memmesh::Request| {
            let (node, cache, log) = (me.clone(), cache.clone(), log.clone());
            async move {
                let text = String::from_utf8_lossy(&req.data).to_string();
                let mut lines = text.split('\n');
                let mut out = String::new();
                match lines.next() {
                    Some("view") => {
                        let view = local_view(&node);
                        let _ = writeln!(out, "leader {}", view.leader);
                        for (id, state) in view.peers {
                            let _ = writeln!(out, "peer {id} {}", state.as_str());
                        }
                    }
                    Some("get") => {
                        let keys: Vec<String> = lines.map(str::to_string).collect();
                        for read in read_keys(&cache, &keys).await {
                            match read {
                                Read::Value(v) => {
                                    let _ = writeln!(out, "+{}", String::from_utf8_lossy(&v));
                                }
                                Read::Absent => out.push_str("-\n"),
                                Read::Failed(e) => {
                                    let _ = writeln!(out, "!{}", e.replace('\n', " "));
                                }
                            }
                        }
                    }
                    Some("local") => {
                        for key in lines {
                            out.push_str(if cache.try_get_local(key).is_some() {
                                "L\n"
                            } else {
                                "-\n"
                            });
                        }
                    }
                    Some("events") => out = log.render(&Names::default()),
                    Some(verb @ ("set" | "del")) => {
                        let key = lines.next().unwrap_or("").to_string();
                        let result = if verb == "set" {
                            let value = Bytes::from(lines.next().unwrap_or("").to_string());
                            tokio::time::timeout(OP_TIMEOUT, cache.set(&key, value, None))
                                .await
                                .map(|r| r.map(|_| ()))
                        } else {
                            tokio::time::timeout(OP_TIMEOUT, cache.delete(&key))
                                .await
                                .map(|r| r.map(|_| ()))
                        };
                        out = match result {
                            Ok(Ok(())) => "ok".into(),
                            Ok(Err(e)) => format!("!{}", e.to_string().replace('\n', " ")),
                            Err(_) => format!("!no answer within {OP_TIMEOUT:?}"),
                        };
                    }
                    Some("wall") => out = wall_ms().to_string(),
                    other => out = format!("!unknown probe {other:?}"),
                }
                Ok(Bytes::from(out))
            }
        });
    Ok(())
}

/// The first line of a (multi-line) failure report, for the printed timeline.
pub fn first_line(report: &str) -> &str {
    report.lines().next().unwrap_or("")
}

// ----------------------------------------------------------------------------------------
// Names.

/// Node names by id, for messages (unknown ids print as their short form).
#[derive(Debug, Clone, Default)]
pub struct Names(HashMap<NodeId, String>);

impl Names {
    /// The names of `probes`.
    pub fn of(probes: &[Probe]) -> Names {
        Names(probes.iter().map(|p| (p.id(), p.name())).collect())
    }

    /// The name of `id`.
    pub fn get(&self, id: &NodeId) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.short())
    }
}

// ----------------------------------------------------------------------------------------
// Membership convergence.

/// Polls until every probe lists every other as alive, lists no other member as alive or
/// suspect, and all report the same leader, the lowest id among them. Returns how long
/// that took, or a description of the views at the deadline.
pub async fn converge(probes: &[Probe], deadline: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let names = Names::of(probes);
    loop {
        let views = futures::future::join_all(probes.iter().map(Probe::view)).await;
        let problems = disagreements(probes, &views, &names);
        if problems.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= deadline {
            let mut text = format!(
                "membership did not converge within {deadline:?} after the heal: {}\nviews:",
                problems.join("; ")
            );
            for (p, v) in probes.iter().zip(&views) {
                let _ = write!(text, "\n  {}: {}", p.name(), render_view(v, &names));
            }
            return Err(text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn disagreements(probes: &[Probe], views: &[Result<View, String>], names: &Names) -> Vec<String> {
    let ids: BTreeSet<NodeId> = probes.iter().map(Probe::id).collect();
    let lowest = ids.first().copied();
    let mut problems = Vec::new();
    for (p, view) in probes.iter().zip(views) {
        let me = p.name();
        let view = match view {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{me} gave no view ({e})"));
                continue;
            }
        };
        for other in ids.iter().filter(|&&id| id != p.id()) {
            match view.peers.iter().find(|(id, _)| id == other) {
                Some((_, PeerState::Alive)) => {}
                Some((_, state)) => {
                    problems.push(format!("{me} sees {} {}", names.get(other), state.as_str()))
                }
                None => problems.push(format!("{me} does not list {}", names.get(other))),
            }
        }
        for (id, state) in &view.peers {
            if !ids.contains(id) && *state != PeerState::Down {
                problems.push(format!(
                    "{me} sees departed {} {}",
                    names.get(id),
                    state.as_str()
                ));
            }
        }
        if Some(view.leader) != lowest {
            problems.push(format!(
                "{me}'s leader is {}, not {}",
                names.get(&view.leader),
                lowest.map_or("?".into(), |l| names.get(&l))
            ));
        }
    }
    problems
}

fn render_view(view: &Result<View, String>, names: &Names) -> String {
    match view {
        Err(e) => format!("no view: {e}"),
        Ok(v) => {
            let peers: Vec<String> = v
                .peers
                .iter()
                .map(|(id, s)| format!("{} {}", names.get(id), s.as_str()))
                .collect();
            format!("[{}], leader {}", peers.join(", "), names.get(&v.leader))
        }
    }
}

// ----------------------------------------------------------------------------------------
// Data reconciliation.

/// Polls until every probe reads every acknowledged key of `history` as allowed (see
/// [`History::expected`]), then confirms with one more full pass. Returns how long that
/// took, or a report of the wrong reads per node at the deadline. A zero deadline makes
/// one pass.
pub async fn reconcile(
    probes: &[Probe],
    history: &History,
    deadline: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let expected = &history.expected();
    let all: BTreeSet<usize> = (0..expected.len()).collect();
    // Per probe, the keys (indices into `expected`) still to be read right.
    let mut pending: Vec<BTreeSet<usize>> = vec![all.clone(); probes.len()];
    let mut wrong: Vec<Vec<(usize, Read)>>;
    let mut confirming = false;
    loop {
        let passes = probes.iter().zip(&pending).map(|(p, todo)| {
            let idx: Vec<usize> = todo.iter().copied().collect();
            let keys: Vec<String> = idx.iter().map(|&i| expected[i].key.clone()).collect();
            async move {
                let reads = p.read(&keys).await;
                idx.into_iter()
                    .zip(reads)
                    .filter(|(i, r)| !allowed(&expected[*i], r))
                    .collect::<Vec<(usize, Read)>>()
            }
        });
        wrong = futures::future::join_all(passes).await;
        let clean = wrong.iter().all(Vec::is_empty);
        if clean && confirming {
            return Ok(start.elapsed());
        }
        if clean {
            // Every key was read right at least once: read them all again, at once.
            confirming = true;
            pending = vec![all.clone(); probes.len()];
            continue;
        }
        confirming = false;
        pending = wrong
            .iter()
            .map(|w| w.iter().map(|(i, _)| *i).collect())
            .collect();
        if start.elapsed() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut text = format!(
        "data did not reconcile within {deadline:?}: {} acknowledged keys checked from {} nodes",
        expected.len(),
        probes.len()
    );
    for (p, w) in probes.iter().zip(&wrong) {
        if !w.is_empty() {
            let _ = write!(text, "\n  {}", describe_wrong(&p.name(), w, expected));
        }
    }
    Err(text)
}

/// The acknowledged keys of `history` that fewer than `copies` of `caches` hold in an
/// allowed state authoritatively: as an owner whose copy of the key's partition is fully
/// synced (`Cache::try_get_local`, no I/O).
pub fn under_replicated(caches: &[Cache], history: &History, copies: usize) -> Vec<String> {
    history
        .expected()
        .into_iter()
        .filter(|e| {
            let held = caches
                .iter()
                .filter(|c| {
                    c.try_get_local(&e.key)
                        .is_some_and(|v| e.allowed.contains(&v))
                })
                .count();
            held < copies
        })
        .map(|e| e.key)
        .collect()
}

fn allowed(expect: &Expect, read: &Read) -> bool {
    match read {
        Read::Value(v) => expect.allowed.iter().any(|a| a.as_ref() == Some(v)),
        Read::Absent => expect.allowed.contains(&None),
        Read::Failed(_) => false,
    }
}

fn show(state: &Option<Bytes>) -> String {
    match state {
        Some(v) => format!("{:?}", String::from_utf8_lossy(v)),
        None => "absent".into(),
    }
}

fn describe_wrong(name: &str, wrong: &[(usize, Read)], expected: &[Expect]) -> String {
    // Kind of wrong read -> examples.
    let mut kinds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, read) in wrong {
        let e = &expected[*i];
        let want: Vec<String> = e.allowed.iter().map(show).collect();
        let (kind, got) = match read {
            Read::Failed(err) => ("unreadable", format!("error: {err}")),
            Read::Absent => ("missing (acknowledged write reads absent)", "absent".into()),
            Read::Value(v) if !e.allowed.iter().any(Option::is_some) => (
                "resurrected (acknowledged delete reads a value)",
                show(&Some(v.clone())),
            ),
            Read::Value(v) => ("stale (an older value)", show(&Some(v.clone()))),
        };
        kinds.entry(kind).or_default().push(format!(
            "{} = {got}, expected {}",
            e.key,
            want.join(" or ")
        ));
    }
    let mut text = format!(
        "{name} reads {} of {} acknowledged keys wrong:",
        wrong.len(),
        expected.len()
    );
    for (kind, examples) in kinds {
        let _ = write!(text, "\n    {} {kind}, e.g.", examples.len());
        for ex in examples.iter().take(EXAMPLES) {
            let _ = write!(text, "\n      {ex}");
        }
    }
    text
}

// ----------------------------------------------------------------------------------------
// Membership events.

/// A node's membership events with their time since a common start, recorded by a task
/// on the node's runtime until the node shuts down.
pub struct EventLog {
    events: Arc<Mutex<Vec<(Duration, Event)>>>,
}

impl EventLog {
    /// Starts recording `node`'s events; times are measured from `t0`.
    pub fn record(node: &Node, t0: Instant) -> EventLog {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let mut stream = node.events().expect("subscribing to membership events");
        node.runtime_handle().spawn(async move {
            while let Ok(e) = stream.next().await {
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((t0.elapsed(), e));
            }
        });
        EventLog { events }
    }

    /// The events so far.
    pub fn snapshot(&self) -> Vec<(Duration, Event)> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The events as text: `2.61s down n0, 2.61s leader n2, 7.03s up n0`.
    pub fn render(&self, names: &Names) -> String {
        let parts: Vec<String> = self
            .snapshot()
            .iter()
            .map(|(t, e)| {
                let what = match e {
                    Event::PeerUp { id, .. } => format!("up {}", names.get(id)),
                    Event::PeerSuspect { id } => format!("suspect {}", names.get(id)),
                    Event::PeerDown { id } => format!("down {}", names.get(id)),
                    Event::LeaderChanged { leader } => format!("leader {}", names.get(leader)),
                    Event::Lagged { missed } => format!("lagged {missed}"),
                };
                format!("{:.2}s {what}", t.as_secs_f64())
            })
            .collect();
        if parts.is_empty() {
            "(none)".into()
        } else {
            parts.join(", ")
        }
    }

    /// Whether `peer` was reported down, and up again after that.
    pub fn down_then_up(&self, peer: NodeId) -> bool {
        let events = self.snapshot();
        let down = events
            .iter()
            .position(|(_, e)| matches!(e, Event::PeerDown { id } if *id == peer));
        down.is_some_and(|d| {
            events[d..]
                .iter()
                .any(|(_, e)| matches!(e, Event::PeerUp { id, .. } if *id == peer))
        })
    }

    /// The peers reported down at least once.
    pub fn downs(&self) -> BTreeSet<NodeId> {
        self.snapshot()
            .iter()
            .filter_map(|(_, e)| match e {
                Event::PeerDown { id } => Some(*id),
                _ => None,
            })
            .collect()
    }
}
