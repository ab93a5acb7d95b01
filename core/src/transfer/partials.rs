//! Partial files: where a transfer into a file is written until it is verified, one per
//! transfer and never shared.
//!
//! A transfer is known by its *key*, a hash of its content id and its origin (the sending
//! node for a push; none for a fetch, which is content-addressed). Its partial file is
//! `<dest>.memmesh-partial` when that name is free, else `.<key>.memmesh-partial` in the
//! same directory; its resume state ([`Checkpoint`]) sits beside it as
//! `….memmesh-state`. Within a node a partial file belongs to one running transfer at a
//! time ([`Claims`]): another transfer of the same key (a retry of the same sender)
//! supersedes the older attempt, which stops and checkpoints before handing the file
//! over; a transfer of another key never opens it. Delivered files never replace an
//! existing file: a taken name becomes `name (1).ext`, `name (2).ext`, …

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::Result;
use crate::transfer::error::TransferError;
use crate::transfer::limits::{
    MAX_NAME_COLLISIONS, PARTIAL_MAX_AGE, SWEEP_EVERY, SWEEP_MAX_ENTRIES,
};
use crate::transfer::state::Checkpoint;

/// Suffix of a file being received.
pub const PARTIAL_SUFFIX: &str = ".memmesh-partial";
/// Suffix of the resume state kept beside it.
pub const STATE_SUFFIX: &str = ".memmesh-state";
/// Suffix of the list of chunk hashes earlier versions kept beside a partial file (only
/// swept).
const LEGACY_SUFFIX: &str = ".memmesh-chunks";
/// Longest file name most file systems take.
const NAME_MAX: usize = 255;

/// The key of a transfer: its content `id` from `origin` (the sender's node id for a
/// push, zeros for a fetch).
pub(crate) fn partial_key(origin: &[u8; 32], id: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("memmesh 2026 transfer partial key");
    h.update(origin);
    h.update(id);
    *h.finalize().as_bytes()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The two places a transfer to `dest` may keep its partial file: the default
/// `<dest>.memmesh-partial` (if the name is not too long) and the one named by `key`.
pub(crate) fn partial_names(dest: &Path, key: &[u8; 32]) -> (Option<PathBuf>, PathBuf) {
    let dir = dest.parent().unwrap_or(Path::new(""));
    let keyed = dir.join(format!(
        ".{}{PARTIAL_SUFFIX}",
        data_encoding::HEXLOWER.encode(&key[..16])
    ));
    let default = dest
        .file_name()
        .filter(|n| n.len() + PARTIAL_SUFFIX.len() <= NAME_MAX)
        .map(|_| with_suffix(dest, PARTIAL_SUFFIX));
    (default, keyed)
}

/// The resume state kept beside `partial`.
pub(crate) fn state_path(partial: &Path) -> PathBuf {
    let s = partial.as_os_str().to_string_lossy();
    let base = s.strip_suffix(PARTIAL_SUFFIX).unwrap_or(&s);
    PathBuf::from(format!("{base}{STATE_SUFFIX}"))
}

/// The `n`th name tried for a delivered file: `dest` itself, then `name (n).ext` (the
/// number goes before the first dot that does not start the name).
pub(crate) fn numbered(dest: &Path, n: u32) -> PathBuf {
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return dest.to_path_buf();
    };
    if n == 0 {
        return dest.to_path_buf();
    }
    let split = name
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '.')
        .map_or(name.len(), |(i, _)| i);
    let (stem, ext) = name.split_at(split);
    dest.with_file_name(format!("{stem} ({n}){ext}"))
}

/// The partial file a leftover named `name` belongs to, if it is one of ours.
pub(crate) fn leftover_of(name: &str) -> Option<String> {
    for suffix in [
        PARTIAL_SUFFIX,
        STATE_SUFFIX,
        ".memmesh-state.tmp",
        LEGACY_SUFFIX,
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            if !base.is_empty() {
                return Some(format!("{base}{PARTIAL_SUFFIX}"));
            }
        }
    }
    None
}

/// Whether a leftover last modified at `modified` is old enough to go at `now` (one
/// modified in the future is not).
pub(crate) fn is_stale(modified: SystemTime, now: SystemTime) -> bool {
    now.duration_since(modified)
        .is_ok_and(|age| age > PARTIAL_MAX_AGE)
}

/// Who holds a partial file.
#[derive(Debug)]
struct Holder {
    serial: u64,
    key: [u8; 32],
    /// Stops the holding transfer (a newer attempt of the same key supersedes it).
    stop: CancellationToken,
    /// Cancelled once the holder let go (its file closed, its last checkpoint written).
    released: CancellationToken,
}

/// The partial files in use by running transfers of this node, by canonical path.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    held: Mutex<HashMap<PathBuf, Holder>>,
    next: AtomicU64,
    /// When each directory was last swept for stale partial files.
    swept: Mutex<HashMap<PathBuf, Instant>>,
}

/// A partial file held by one transfer; let go when the last clone is dropped (the
/// transfer's task, its open file, its last checkpoint).
#[derive(Debug)]
pub(crate) struct Claim {
    claims: Arc<Claims>,
    path: PathBuf,
    serial: u64,
    released: CancellationToken,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = self.claims.held.lock().unwrap_or_else(|p| p.into_inner());
        if held
            .get(&self.path)
            .is_some_and(|h| h.serial == self.serial)
        {
            held.remove(&self.path);
        }
        drop(held);
        self.released.cancel();
    }
}

enum Claimed {
    Mine(Arc<Claim>),
    Held {
        same_key: bool,
        stop: CancellationToken,
        released: CancellationToken,
    },
}

/// A partial file claimed for a transfer, and where it stands.
#[derive(Debug)]
pub(crate) struct Target {
    /// The partial file.
    pub partial: PathBuf,
    /// Its resume state.
    pub state: PathBuf,
    /// The checkpoint to resume from (`None`: start from the first chunk).
    pub resume: Option<Checkpoint>,
    /// Held for as long as the partial file is used.
    pub claim: Arc<Claim>,
}

/// The canonical form of `dir` (so that two spellings of one directory are one claim).
/// Blocking.
fn canonical_dir(dir: &Path) -> PathBuf {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// `path` in the canonical directory `dir`: the key of its claim.
fn in_dir(dir: &Path, path: &Path) -> PathBuf {
    match path.file_name() {
        Some(name) => dir.join(name),
        None => path.to_path_buf(),
    }
}

impl Claims {
    /// `canonical` is the claimed file's path with a canonical directory.
    fn try_claim(
        self: &Arc<Self>,
        canonical: PathBuf,
        key: [u8; 32],
        stop: &CancellationToken,
    ) -> Claimed {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.get(&canonical) {
            return Claimed::Held {
                same_key: h.key == key,
                stop: h.stop.clone(),
                released: h.released.clone(),
            };
        }
        let serial = self.next.fetch_add(1, Ordering::Relaxed);
        let released = CancellationToken::new();
        held.insert(
            canonical.clone(),
            Holder {
                serial,
                key,
                stop: stop.clone(),
                released: released.clone(),
            },
        );
        Claimed::Mine(Arc::new(Claim {
            claims: self.clone(),
            path: canonical,
            serial,
            released,
        }))
    }

    /// Claims `path` (its directory canonical) for a transfer of `key`, superseding an
    /// older attempt of the same key (it is stopped and waited for, up to `wait`). `None`
    /// if a transfer of another key holds it.
    async fn claim(
        self: &Arc<Self>,
        path: &Path,
        key: [u8; 32],
        stop: &CancellationToken,
        wait: Duration,
    ) -> Result<Option<Arc<Claim>>> {
        loop {
            match self.try_claim(path.to_path_buf(), key, stop) {
                Claimed::Mine(c) => return Ok(Some(c)),
                Claimed::Held {
                    same_key: false, ..
                } => return Ok(None),
                Claimed::Held {
                    same_key: true,
                    stop: older,
                    released,
                } => {
                    debug!(path = %path.display(), "a newer attempt supersedes a running transfer");
                    older.cancel();
                    let superseded = TransferError::Superseded {
                        by: "a newer attempt",
                    };
                    tokio::select! {
                        _ = released.cancelled() => {}
                        _ = stop.cancelled() => return Err(superseded.into()),
                        _ = tokio::time::sleep(wait) => return Err(TransferError::Busy.into()),
                    }
                }
            }
        }
    }

    /// Claims a partial file for the transfer of `key` (content of `size` bytes in
    /// chunks of `chunk_size`) into `dest`: where an earlier attempt left a valid
    /// checkpoint, it resumes there; otherwise it starts afresh under a name no other
    /// transfer uses. Creates the directory; sweeps it for stale partial files now and
    /// then.
    pub(crate) async fn open(
        self: &Arc<Self>,
        dest: &Path,
        key: [u8; 32],
        size: u64,
        chunk_size: u32,
        stop: &CancellationToken,
        wait: Duration,
    ) -> Result<Target> {
        if dest.file_name().is_none() {
            return Err(TransferError::NotAFileName(dest.to_path_buf()).into());
        }
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let sweep = self.sweep_due(&dir);
        let canonical = {
            let (dir, claims) = (dir.clone(), self.clone());
            blocking(move || {
                crate::durable::create_dir_all(&dir)
                    .map_err(|e| TransferError::file(format!("creating {}", dir.display()), e))?;
                if sweep {
                    claims.sweep(&dir, SystemTime::now());
                }
                Ok(canonical_dir(&dir))
            })
            .await?
        };
        let (default, keyed) = partial_names(dest, &key);
        // The keyed name is ours alone (but for an older attempt of ours, superseded).
        let keyed_claim = self
            .claim(&in_dir(&canonical, &keyed), key, stop, wait)
            .await?
            .ok_or(TransferError::Bug("a partial file named by another key"))?;
        let valid = move |partial: PathBuf| {
            blocking(move || {
                Ok(read_checkpoint(&partial)
                    .filter(|c| c.key == key && c.size == size && c.chunk_size == chunk_size))
            })
        };
        if let Some(resume) = valid(keyed.clone()).await? {
            return Ok(Target::new(keyed, Some(resume), keyed_claim));
        }
        if let Some(default) = default {
            let canonical_default = in_dir(&canonical, &default);
            if let Some(claim) = self.claim(&canonical_default, key, stop, wait).await? {
                if let Some(resume) = valid(default.clone()).await? {
                    return Ok(Target::new(default, Some(resume), claim));
                }
                let d = default.clone();
                let taken = |p: &Path| std::fs::symlink_metadata(p).is_ok();
                let free = blocking(move || Ok(!taken(&d) && !taken(&state_path(&d)))).await?;
                if free {
                    return Ok(Target::new(default, None, claim));
                }
            }
        }
        // Afresh under the keyed name: a state left there (for another size or chunk
        // size) must not outlive the data it described.
        let state = state_path(&keyed);
        blocking(move || {
            if std::fs::remove_file(&state).is_ok() {
                let dir = state.parent().filter(|d| !d.as_os_str().is_empty());
                crate::durable::sync_dir(dir.unwrap_or(Path::new(".")))?;
            }
            Ok(())
        })
        .await?;
        Ok(Target::new(keyed, None, keyed_claim))
    }

    fn sweep_due(&self, dir: &Path) -> bool {
        let now = Instant::now();
        let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
        if swept
            .get(dir)
            .is_some_and(|at| now.saturating_duration_since(*at) < SWEEP_EVERY)
        {
            return false;
        }
        if swept.len() >= 1024 {
            swept.retain(|_, at| now.saturating_duration_since(*at) < SWEEP_EVERY);
        }
        swept.insert(dir.to_path_buf(), now);
        true
    }

    /// Removes the partial files (and states) of `dir` untouched for longer than
    /// [`PARTIAL_MAX_AGE`] that no running transfer holds. Blocking.
    pub(crate) fn sweep(&self, dir: &Path, now: SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let canonical_dir = canonical_dir(dir);
        let mut removed = HashSet::new();
        for entry in entries.take(SWEEP_MAX_ENTRIES).flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(partial) = leftover_of(&name) else {
                continue;
            };
            let stale = entry
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .is_some_and(|m| is_stale(m, now));
            if !stale {
                continue;
            }
            // Under the lock, so that no transfer claims it meanwhile.
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if !held.contains_key(&canonical_dir.join(&partial))
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed.insert(name);
            }
        }
        if !removed.is_empty() {
            debug!(dir = %dir.display(), removed = removed.len(), "removed stale partial files");
            let _ = crate::durable::sync_dir(dir);
        }
    }

    /// Gives the verified, synced `partial` its final name: `dest` or, if taken,
    /// `name (1).ext` and so on (never replacing a file); makes the name durable, then
    /// removes the partial name and `state`. Blocking. Returns the final path.
    pub(crate) fn deliver(&self, partial: &Path, state: &Path, dest: &Path) -> Result<PathBuf> {
        let ctx = |e: std::io::Error, to: &Path| {
            TransferError::file(
                format!("renaming {} to {}", partial.display(), to.display()),
                e,
            )
        };
        let mut delivered = None;
        for n in 0..=MAX_NAME_COLLISIONS {
            let to = numbered(dest, n);
            match std::fs::hard_link(partial, &to) {
                Ok(()) => {
                    delivered = Some((to, true));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => {
                    // No hard links here (some file systems): check and rename, under
                    // the claims' lock so that no transfer of this node races it.
                    let _held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    if std::fs::symlink_metadata(&to).is_ok() {
                        continue;
                    }
                    std::fs::rename(partial, &to).map_err(|e| ctx(e, &to))?;
                    delivered = Some((to, false));
                    break;
                }
            }
        }
        let Some((to, linked)) = delivered else {
            return Err(TransferError::NamesTaken {
                dest: dest.to_path_buf(),
                max: MAX_NAME_COLLISIONS,
            }
            .into());
        };
        let dir = to
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::durable::sync_dir(dir).map_err(|e| ctx(e, &to))?;
        if linked {
            let _ = std::fs::remove_file(partial);
        }
        let _ = std::fs::remove_file(state);
        Ok(to)
    }
}

impl Target {
    fn new(partial: PathBuf, resume: Option<Checkpoint>, claim: Arc<Claim>) -> Target {
        Target {
            state: state_path(&partial),
            partial,
            resume,
            claim,
        }
    }
}

/// The checkpoint beside `partial`, if it is valid and the partial file holds what it
/// covers. Blocking.
fn read_checkpoint(partial: &Path) -> Option<Checkpoint> {
    let bytes = std::fs::read(state_path(partial)).ok()?;
    if bytes.len() > 64 << 10 {
        return None;
    }
    let c = Checkpoint::decode(&bytes)?;
    // No file reads as empty: a state with nothing verified stands without its file (the
    // file is created after it, and a crash may come between).
    let len = std::fs::metadata(partial).map_or(0, |m| m.len());
    (len >= c.bytes()).then_some(c)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TransferError::task("file", e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let key = [0xab; 32];
        let (default, keyed) = partial_names(Path::new("/in/a.bin"), &key);
        assert_eq!(default.unwrap(), Path::new("/in/a.bin.memmesh-partial"));
        assert_eq!(
            keyed,
            Path::new("/in/.abababababababababababababababab.memmesh-partial")
        );
        assert_eq!(
            state_path(&keyed),
            Path::new("/in/.abababababababababababababababab.memmesh-state")
        );
        let long = format!("/in/{}", "x".repeat(250));
        assert!(partial_names(Path::new(&long), &key).0.is_none());
        assert_eq!(numbered(Path::new("/in/a.bin"), 0), Path::new("/in/a.bin"));
        assert_eq!(
            numbered(Path::new("/in/a.bin"), 2),
            Path::new("/in/a (2).bin")
        );
        assert_eq!(
            numbered(Path::new("/in/a.tar.gz"), 1),
            Path::new("/in/a (1).tar.gz")
        );
        assert_eq!(numbered(Path::new("/in/.rc"), 1), Path::new("/in/.rc (1)"));
        assert_eq!(numbered(Path::new("noext"), 3), Path::new("noext (3)"));
        assert_ne!(
            partial_key(&[1; 32], &[2; 32]),
            partial_key(&[0; 32], &[2; 32])
        );
    }

    #[test]
    fn leftovers_and_their_age() {
        assert_eq!(
            leftover_of("a.bin.memmesh-partial").as_deref(),
            Some("a.bin.memmesh-partial")
        );
        assert_eq!(
            leftover_of("a.bin.memmesh-state").as_deref(),
            Some("a.bin.memmesh-partial")
        );
        assert_eq!(
            leftover_of("a.bin.memmesh-state.tmp").as_deref(),
            Some("a.bin.memmesh-partial")
        );
        assert_eq!(
            leftover_of("a.bin.memmesh-chunks").as_deref(),
            Some("a.bin.memmesh-partial")
        );
        assert_eq!(leftover_of("a.bin"), None);
        assert_eq!(leftover_of(".memmesh-partial"), None);
        let now = SystemTime::now();
        assert!(!is_stale(now, now));
        assert!(!is_stale(now + Duration::from_secs(3600), now));
        assert!(is_stale(
            now - PARTIAL_MAX_AGE - Duration::from_secs(1),
            now
        ));
        assert!(!is_stale(SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("memmesh-partials-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn delivery_never_replaces_a_file_and_syncs_the_directory() {
        let dir = scratch("deliver");
        let claims = Claims::default();
        let dest = dir.join("r.txt");
        std::fs::write(&dest, b"first").unwrap();
        let partial = dir.join("r.txt.memmesh-partial");
        let state = state_path(&partial);
        std::fs::write(&partial, b"second").unwrap();
        std::fs::write(&state, b"state").unwrap();
        let synced = crate::durable::dir_syncs_on_this_thread();
        let to = claims.deliver(&partial, &state, &dest).unwrap();
        assert_eq!(to, dir.join("r (1).txt"));
        assert!(
            crate::durable::dir_syncs_on_this_thread() > synced,
            "the new name is made durable"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"first");
        assert_eq!(std::fs::read(&to).unwrap(), b"second");
        assert!(!partial.exists() && !state.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn one_claim_per_partial_file_and_a_retry_supersedes() {
        let dir = scratch("claims");
        let claims = Arc::new(Claims::default());
        let path = dir.join("x.memmesh-partial");
        let (first_stop, other_stop, retry_stop) = (
            CancellationToken::new(),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        let wait = Duration::from_secs(10);
        let first = claims
            .claim(&path, [1; 32], &first_stop, wait)
            .await
            .unwrap()
            .unwrap();
        // Another key never gets it.
        assert!(claims
            .claim(&path, [2; 32], &other_stop, wait)
            .await
            .unwrap()
            .is_none());
        assert!(!first_stop.is_cancelled());
        // A retry of the same key stops the first and waits for it to let go.
        let retry = {
            let (claims, path, stop) = (claims.clone(), path.clone(), retry_stop.clone());
            tokio::spawn(async move { claims.claim(&path, [1; 32], &stop, wait).await })
        };
        first_stop.cancelled().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!retry.is_finished(), "waits until the first lets go");
        drop(first);
        let second = retry.await.unwrap().unwrap().unwrap();
        // A sweep leaves a held stale file alone.
        std::fs::write(&path, b"x").unwrap();
        let later = SystemTime::now() + PARTIAL_MAX_AGE + Duration::from_secs(60);
        claims.sweep(&dir, later);
        assert!(path.exists());
        drop(second);
        claims.sweep(&dir, later);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_fresh_transfer_never_takes_a_partial_file_left_by_another() {
        let dir = scratch("open");
        let claims = Arc::new(Claims::default());
        let dest = dir.join("f.bin");
        let stop = CancellationToken::new();
        let wait = Duration::from_secs(5);
        let a = claims
            .open(&dest, [1; 32], 10, 1 << 20, &stop, wait)
            .await
            .unwrap();
        assert_eq!(a.partial, dir.join("f.bin.memmesh-partial"));
        assert!(a.resume.is_none());
        // While the first runs, another key gets its own file.
        let b = claims
            .open(&dest, [2; 32], 10, 1 << 20, &stop, wait)
            .await
            .unwrap();
        assert_ne!(b.partial, a.partial);
        assert!(b.partial.to_string_lossy().ends_with(PARTIAL_SUFFIX));
        // A checkpoint of the first is found again by a retry, and by nobody else.
        let tree = crate::transfer::stack::TreeStack::new();
        let c = Checkpoint {
            key: [1; 32],
            size: 10,
            chunk_size: 1 << 20,
            tree,
        };
        std::fs::write(&a.partial, b"").unwrap();
        std::fs::write(&a.state, c.encode()).unwrap();
        drop(a);
        drop(b);
        let c2 = claims
            .open(&dest, [2; 32], 10, 1 << 20, &stop, wait)
            .await
            .unwrap();
        assert!(c2.resume.is_none());
        assert_ne!(c2.partial, dir.join("f.bin.memmesh-partial"));
        let again = claims
            .open(&dest, [1; 32], 10, 1 << 20, &stop, wait)
            .await
            .unwrap();
        assert_eq!(again.partial, dir.join("f.bin.memmesh-partial"));
        assert_eq!(again.resume, Some(c));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
