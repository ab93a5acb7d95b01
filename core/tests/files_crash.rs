//! A node process SIGKILLed at random points while it puts and deletes files, restarted
//! on the same data dir each time: after every restart, every put that returned is there
//! and verified, every delete that returned stays deleted, every listed file reads back
//! complete and verified, and no temporary or orphan content file is left.
//!
//! The child is this test binary run again with `--exact files_crash_child` and
//! `MEMMESH_FILES_CRASH_CHILD=<data dir>`; that test function returns at once without
//! it. `MEMMESH_FILES_CRASH_SEED` replays a run's kill points.

mod common;
#[path = "common/schema3.rs"]
mod schema3;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::builder;
use memmesh::files::inline::INLINE_MAX;
use memmesh::files::FileId;
use memmesh::{ErrorKind, PutOptions};

const CHILD_ENV: &str = "MEMMESH_FILES_CRASH_CHILD";
const ROUND_ENV: &str = "MEMMESH_FILES_CRASH_ROUND";
const SEED_ENV: &str = "MEMMESH_FILES_CRASH_SEED";
/// Set for the child that puts one large file (its path) instead of many small ones.
const BIG_ENV: &str = "MEMMESH_FILES_CRASH_BIG";
/// Set for the child that churns small files (puts, deletes 3 of 4) in value log segments
/// of [`CHURN_SEGMENT`] bytes, so that segments fill, roll and are compacted all the time.
const CHURN_ENV: &str = "MEMMESH_FILES_CRASH_CHURN";
/// Set for the child that only puts small files, from 16 tasks: nearly every metadata
/// commit is deferred (ADR 0016, "One fsync per small put"), so kills land between a
/// batch's durable log records and the next durable commit.
const SMALL_ENV: &str = "MEMMESH_FILES_CRASH_SMALL";
/// The churning child's value log segment size.
const CHURN_SEGMENT: u64 = 64 * 1024;
/// The large file's size: 200 MiB.
const BIG_SIZE: usize = 200 * 1024 * 1024;
const ROUNDS: u64 = 6;
/// The child gives up by itself after this long (if the parent died).
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// A small deterministic generator (xorshift64*), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The content of the child's `k`-th put in `round`: distinct for every (round, k),
/// mostly small, sometimes several MiB (so that kills land inside large puts too).
fn content(round: u64, k: u64) -> Vec<u8> {
    let mut rng = Rng((round << 32 | k) ^ 0x9e37_79b9_7f4a_7c15);
    let size = match rng.below(10) {
        0 => 2 * 1024 * 1024 + rng.below(3 * 1024 * 1024),
        1..=3 => rng.below(300_000),
        _ => rng.below(5000),
    } as usize;
    let mut v = Vec::with_capacity(size + 16);
    v.extend_from_slice(&round.to_le_bytes());
    v.extend_from_slice(&k.to_le_bytes());
    let mut x = rng.next();
    while v.len() < size + 16 {
        x = x.rotate_left(7) ^ 0x5555;
        v.push(x as u8);
    }
    v
}

/// The child: puts (four at a time) and deletes on the data dir until killed, printing
/// `PUT <id>` / `DEL <id>` once each call has returned.
#[test]
fn files_crash_child() {
    let Some(data) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let node = builder("crash-child")
            .data_dir(PathBuf::from(data))
            .start()
            .await
            .expect("child node start");
        let files = node.files().unwrap();
        let churn = std::env::var_os(CHURN_ENV).is_some();
        let small_only = std::env::var_os(SMALL_ENV).is_some();
        if churn {
            memmesh::files::valuelog::set_segment_max_for_tests(CHURN_SEGMENT);
        }
        println!("READY");
        if let Some(big) = std::env::var_os(BIG_ENV) {
            let id = files
                .put_path(PathBuf::from(big), PutOptions::named("big"))
                .await
                .expect("child big put");
            println!("BIG {id}");
            tokio::time::sleep(CHILD_LIFETIME).await;
            std::process::exit(3);
        }
        let counter = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..if small_only { 16 } else { 4 } {
            let files = files.clone();
            let counter = counter.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine: Vec<FileId> = Vec::new();
                loop {
                    let k = counter.fetch_add(1, Ordering::Relaxed);
                    let mut c = content(round, k);
                    if churn || small_only {
                        c.truncate(4000);
                    }
                    let id = files
                        .put_bytes(c, PutOptions::named(format!("r{round}k{k}")))
                        .await
                        .expect("child put");
                    println!("PUT {id}");
                    mine.push(id);
                    if small_only {
                        continue;
                    }
                    if (churn && !k.is_multiple_of(4)) || k % 4 == 3 {
                        let victim = mine.remove((k as usize / 4) % mine.len());
                        // Either outcome is right for a delete the kill interrupts.
                        println!("DELETING {victim}");
                        files.delete(victim).await.expect("child delete");
                        println!("DEL {victim}");
                    }
                }
            }));
        }
        tokio::time::sleep(CHILD_LIFETIME).await;
        eprintln!("files_crash_child: not killed in time, exiting");
        std::process::exit(3);
    });
}

/// Runs one child until a random instant, kills it with SIGKILL, and returns the lines
/// it printed.
/// With `from_spawn`, `kill_after` counts from the start of the process rather than from
/// its `READY` (so that the kill may land while the node opens its store).
fn run_child(
    data: &Path,
    round: u64,
    kill_after: Duration,
    big: Option<&Path>,
    mode: Mode,
    from_spawn: bool,
) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "files_crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, data)
        .env(ROUND_ENV, round.to_string())
        .envs(big.map(|b| (BIG_ENV, b)))
        .envs((mode == Mode::Churn).then_some((CHURN_ENV, "1")))
        .envs((mode == Mode::SmallOnly).then_some((SMALL_ENV, "1")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the child process");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("READY") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    if !from_spawn {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the child node did not start within 60 s");
    }
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reaping the child");
    assert!(!status.success(), "the child was killed: {status:?}");
    reader.join().expect("the reader thread")
}

/// The seed of the kill points: `SEED_ENV` to replay a run, else the clock (printed).
fn kill_seed() -> u64 {
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("{SEED_ENV}={seed}");
    seed
}

/// Checks a restarted store against what the killed child reported: every acknowledged
/// put reads back verified, every acknowledged delete stays gone, and an operation under
/// way at the kill (`maybe`) either happened whole or not at all.
async fn check_outcomes(
    files: &memmesh::files::Files,
    round: u64,
    seed: u64,
    present: &HashSet<FileId>,
    deleted: &HashSet<FileId>,
    maybe: &HashSet<FileId>,
) {
    for id in present {
        let got = files.get_bytes(*id).await.unwrap_or_else(|e| {
            panic!("round {round}: acknowledged put {id} lost: {e} (seed {seed})")
        });
        assert_eq!(FileId::of(&got), *id);
    }
    for id in deleted {
        let e = files.get_bytes(*id).await.unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::NotFound,
            "round {round}: {id} came back"
        );
    }
    for id in maybe {
        match files.get_bytes(*id).await {
            Ok(got) => assert_eq!(FileId::of(&got), *id),
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "round {round}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_killed_at_random_points_restarts_consistent() {
    killed_at_random_points(Mode::Mixed).await;
}

/// What a child of [`killed_at_random_points`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Puts of all sizes, a delete after every third.
    Mixed,
    /// Small puts, 3 of 4 deleted, in small value log segments ([`CHURN_ENV`]).
    Churn,
    /// Small puts only ([`SMALL_ENV`]).
    SmallOnly,
}

/// Small puts only, from 16 tasks: most metadata commits are deferred, so the kills lose
/// rows that only the value log holds, and the restart must write them again (checked:
/// some records were replayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_killed_during_small_puts_replays_its_log_and_loses_none() {
    let before = memmesh::files::valuelog::replayed_for_tests();
    killed_at_random_points(Mode::SmallOnly).await;
    assert!(
        memmesh::files::valuelog::replayed_for_tests() > before,
        "no kill landed after a deferred commit: the replay was not exercised"
    );
}

/// The same with small files only, most of them deleted, in value log segments of 64 KiB:
/// kills land while segments roll and while they are compacted (values copied, pointers
/// moved, the old segment removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_killed_while_compacting_its_value_log_restarts_consistent() {
    killed_at_random_points(Mode::Churn).await;
}

async fn killed_at_random_points(mode: Mode) {
    let seed = kill_seed();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("memmesh::files=info")
        .with_test_writer()
        .try_init();
    let mut rng = Rng(seed);
    let data = std::env::temp_dir().join(format!(
        "memmesh-files-crash-{}-{mode:?}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data);
    let mut present: HashSet<FileId> = HashSet::new();
    let mut deleted: HashSet<FileId> = HashSet::new();
    // Deletes in flight at a kill: the file may be there or not, but whole if there.
    let mut maybe: HashSet<FileId> = HashSet::new();
    let mut acknowledged = 0usize;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(150 + rng.below(1500));
        let lines = run_child(&data, round, kill_after, None, mode, false);
        for line in &lines {
            if let Some(id) = line.strip_prefix("PUT ") {
                let id: FileId = id.trim().parse().unwrap();
                present.insert(id);
                acknowledged += 1;
            } else if let Some(id) = line.strip_prefix("DELETING ") {
                let id: FileId = id.trim().parse().unwrap();
                present.remove(&id);
                maybe.insert(id);
            } else if let Some(id) = line.strip_prefix("DEL ") {
                let id: FileId = id.trim().parse().unwrap();
                maybe.remove(&id);
                deleted.insert(id);
            }
        }

        let node = builder("crash-check")
            .data_dir(&data)
            .start()
            .await
            .unwrap();
        let files = node.files().unwrap();
        check_outcomes(&files, round, seed, &present, &deleted, &maybe).await;
        // An interrupted delete either happened or did not; it is not retried here.
        maybe.clear();
        // Everything listed is complete and verified (puts in flight at the kill are
        // either whole or absent).
        let mut listed = 0u64;
        // Files of at most INLINE_MAX bytes live in the metadata, not in content files.
        let mut in_content_files = 0u64;
        let mut cursor = None;
        loop {
            let page = files.list(cursor, 1000).await.unwrap();
            for f in &page.files {
                let got = files.get_bytes(f.id).await.unwrap_or_else(|e| {
                    panic!(
                        "round {round}: listed {} unreadable: {e} (seed {seed})",
                        f.id
                    )
                });
                assert_eq!(got.len() as u64, f.size);
                listed += 1;
                if f.size > INLINE_MAX {
                    in_content_files += 1;
                }
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(files.stats().unwrap().files, listed);
        // No temporary or orphan content file survived the restart's cleanup.
        let on_disk: Vec<String> = std::fs::read_dir(data.join("files"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            on_disk.iter().all(|n| n.len() == 64),
            "round {round}: leftovers {on_disk:?}"
        );
        assert_eq!(on_disk.len() as u64, in_content_files, "round {round}");
        // The value log holds segments only.
        for e in std::fs::read_dir(data.join("files-log")).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(
                memmesh::files::logfmt::segment_of_name(&name).is_some(),
                "round {round}: {name} in the value log"
            );
        }
        // The store takes puts again (a put like the child's, stored, read back whole and
        // deleted).
        // (A round number no child uses: this content is stored nowhere yet.)
        let next = content(1000 + round, 0);
        let id = files
            .put_bytes(next.clone(), PutOptions::default())
            .await
            .unwrap();
        assert_eq!(&files.get_bytes(id).await.unwrap()[..], &next[..]);
        files.delete(id).await.unwrap();
        node.shutdown().await.unwrap();
    }
    println!(
        "{ROUNDS} kills, {acknowledged} acknowledged puts, {} deletes, {} files at the end",
        deleted.len(),
        present.len()
    );
    assert!(acknowledged > 0, "the children stored something");
    let _ = std::fs::remove_dir_all(&data);
}

/// Whether the files `a` and `b` have the same contents (read in bounded memory).
fn same_contents(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = fa.read(&mut ba).unwrap();
        let mut nb = 0;
        while nb < na {
            let n = fb.read(&mut bb[nb..na]).unwrap();
            if n == 0 {
                return false;
            }
            nb += n;
        }
        if na == 0 {
            return fb.read(&mut bb).unwrap() == 0;
        }
        if ba[..na] != bb[..na] {
            return false;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_killed_during_a_200_mib_put_restarts_consistent_and_the_put_can_be_repeated() {
    let seed = kill_seed();
    let mut rng = Rng(seed);
    let base = std::env::temp_dir().join(format!("memmesh-files-crash-big-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let data = base.join("data");
    let source = base.join("source");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..BIG_SIZE / block.len() {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i as u8) ^ (j as u8).wrapping_mul(13);
            }
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
    let kill_after = Duration::from_millis(50 + rng.below(1000));
    let lines = run_child(&data, 0, kill_after, Some(&source), Mode::Mixed, false);
    let acknowledged: Option<FileId> = lines
        .iter()
        .find_map(|l| l.strip_prefix("BIG "))
        .map(|id| id.trim().parse().unwrap());
    println!(
        "killed after {kill_after:?}; the put had returned: {}",
        acknowledged.is_some()
    );

    let node = builder("crash-big").data_dir(&data).start().await.unwrap();
    let files = node.files().unwrap();
    let on_disk: Vec<String> = std::fs::read_dir(data.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        on_disk.iter().all(|n| n.len() == 64),
        "leftovers {on_disk:?}"
    );
    let page = files.list(None, 10).await.unwrap();
    assert_eq!(page.files.len(), on_disk.len());
    if let Some(id) = acknowledged {
        assert_eq!(page.files.len(), 1, "an acknowledged put survives");
        assert_eq!(page.files[0].id, id);
    }
    // The put can be repeated (or is already there), and reads back whole.
    let id = files
        .put_path(&source, PutOptions::named("big"))
        .await
        .unwrap();
    let out = base.join("out");
    files.get_to_path(id, &out).await.unwrap();
    assert!(same_contents(&source, &out));
    assert_eq!(files.stats().unwrap().files, 1);
    node.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&base);
}

/// A schema-3 store (value log pointers in `logged`) opened by a child that converts it
/// to schema 5 and churns small files in 64 KiB segments, SIGKILLed at a random instant
/// from its start (while it opens and converts the store, or while it compacts the log,
/// whose first segment the parent left less than half live), then checked; the store is
/// turned back into schema 3 before each round. Every file stored before stays readable,
/// with its name and this node as its one holder, and the metadata ends converted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_3_store_killed_while_it_is_converted_restarts_consistent() {
    let seed = kill_seed();
    let mut rng = Rng(seed);
    let data = std::env::temp_dir().join(format!(
        "memmesh-files-crash-schema3-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data);
    // 1,500 small files, two of three deleted: the first segment is a third live.
    let node = builder("crash-schema3")
        .data_dir(&data)
        .start()
        .await
        .unwrap();
    let me = node.id();
    let files = node.files().unwrap();
    let mut kept: Vec<(FileId, String)> = Vec::new();
    let mut puts = futures::stream::FuturesOrdered::new();
    for k in 0..1500u64 {
        let files = files.clone();
        puts.push_back(async move {
            let mut c = content(2000, k);
            c.truncate(4000);
            let name = format!("old{k}");
            let id = files
                .put_bytes(c, PutOptions::named(name.clone()))
                .await
                .unwrap();
            (k, id, name)
        });
    }
    use futures::StreamExt;
    while let Some((k, id, name)) = puts.next().await {
        if k % 3 == 0 {
            kept.push((id, name));
        } else {
            files.delete(id).await.unwrap();
        }
    }
    node.shutdown().await.unwrap();
    let mut present: HashSet<FileId> = HashSet::new();
    let mut deleted: HashSet<FileId> = HashSet::new();
    for round in 0..4u64 {
        assert!(schema3::to_schema_3(&data, me.as_bytes()) >= kept.len());
        // Even rounds: within the child's start (the process, the node, the store's open
        // and conversion); odd rounds: later, while it churns and compacts.
        let kill_after = Duration::from_millis(if round % 2 == 0 {
            rng.below(60)
        } else {
            200 + rng.below(1300)
        });
        let lines = run_child(&data, round, kill_after, None, Mode::Churn, true);
        let mut maybe: HashSet<FileId> = HashSet::new();
        for line in &lines {
            if let Some(id) = line.strip_prefix("PUT ") {
                present.insert(id.trim().parse().unwrap());
            } else if let Some(id) = line.strip_prefix("DELETING ") {
                let id: FileId = id.trim().parse().unwrap();
                present.remove(&id);
                maybe.insert(id);
            } else if let Some(id) = line.strip_prefix("DEL ") {
                let id: FileId = id.trim().parse().unwrap();
                maybe.remove(&id);
                deleted.insert(id);
            }
        }
        println!(
            "round {round}: killed {kill_after:?} after the start, ready: {}, {} lines",
            lines.iter().any(|l| l.contains("READY")),
            lines.len()
        );
        let node = builder("crash-schema3")
            .data_dir(&data)
            .start()
            .await
            .unwrap();
        let files = node.files().unwrap();
        for (id, name) in &kept {
            let got = files.get_bytes(*id).await.unwrap_or_else(|e| {
                panic!("round {round}: a file of the old store, {id}, lost: {e} (seed {seed})")
            });
            assert_eq!(FileId::of(&got), *id);
            let info = files.stat(*id).await.unwrap();
            assert_eq!(info.name.as_deref(), Some(name.as_str()));
            assert_eq!(info.holders, vec![me], "round {round}");
        }
        check_outcomes(&files, round, seed, &present, &deleted, &maybe).await;
        let listed = files.list(None, 1000).await.unwrap();
        for f in &listed.files {
            files.get_bytes(f.id).await.unwrap();
        }
        node.shutdown().await.unwrap();
        let (schema, logged, _, _) = schema3::inspect(&data);
        assert_eq!((schema, logged), (5, 0), "round {round}");
    }
    let _ = std::fs::remove_dir_all(&data);
}
