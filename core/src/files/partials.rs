//! The partial replicas a node keeps (`files/partial-<key>` and its `.ckpt`, ADR 0018):
//! which pull uses which one (one at a time), which ones rest on disk waiting for a retry,
//! and the bounds that keep a hostile origin from making a holder keep many or large ones.
//! Cleaned at start with the other leftovers (`Partials::recover`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{debug, info, warn};

use super::checkpoint::{keep, Checkpoint, Decision, MAX_LEN};
use super::key::StorageKey;

/// The name prefix of partial files (and of their checkpoints) in the contents dir.
pub const PARTIAL_PREFIX: &str = "partial-";
/// The suffix of a partial file's checkpoint.
pub const CHECKPOINT_SUFFIX: &str = ".ckpt";
/// Most partial files at rest on a node; beyond, the oldest goes.
pub const MAX_PARTIALS: usize = 16;
/// Most partial files at rest pulled from one node; beyond, its oldest goes.
pub const MAX_PARTIALS_PER_ORIGIN: usize = 4;
/// Most bytes of partial files at rest on a node; beyond, the oldest go.
pub const MAX_PARTIAL_BYTES: u64 = 16 << 30;
/// Most bytes of partial files at rest pulled from one node; beyond, its oldest go (so
/// one origin alone cannot push the others' out).
pub const MAX_PARTIAL_BYTES_PER_ORIGIN: u64 = MAX_PARTIAL_BYTES / 2;

/// The key of the partial file of a pull of file `id` from `origin`.
pub fn partial_key(id: &[u8; 32], origin: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("memmesh 2026 files partial replica");
    h.update(id);
    h.update(origin);
    *h.finalize().as_bytes()
}

/// A partial file at rest.
#[derive(Debug, Clone, Copy)]
struct Rest {
    origin: [u8; 32],
    bytes: u64,
    /// When it came to rest (unix ms): the oldest goes first.
    since: u64,
}

#[derive(Debug, Default)]
struct Table {
    claimed: HashSet<[u8; 32]>,
    rest: HashMap<[u8; 32], Rest>,
}

/// The partial files of a store.
#[derive(Debug)]
pub struct Partials {
    dir: PathBuf,
    table: Mutex<Table>,
}

/// A partial file in use by one pull; let go on drop (after its writer settled: the
/// pull awaits [`Settled`]).
#[derive(Debug)]
pub struct Claim {
    partials: Arc<Partials>,
    /// The partial's key.
    pub key: [u8; 32],
    /// The node it is pulled from.
    pub origin: [u8; 32],
    /// How it rested before the claim, until a writer opens it (a claim dropped before
    /// that puts it back at rest).
    prior: Option<Rest>,
    _settled: tokio::sync::oneshot::Sender<()>,
}

/// Resolves once the claim is let go (its writer finished, kept its checkpoint or
/// removed its file).
pub type Settled = tokio::sync::oneshot::Receiver<()>;

impl Drop for Claim {
    fn drop(&mut self) {
        let mut t = self.partials.table();
        t.claimed.remove(&self.key);
        if let Some(prior) = self.prior.take() {
            t.rest.insert(self.key, prior);
        }
    }
}

impl Claim {
    /// The partial file.
    pub fn path(&self) -> PathBuf {
        self.partials.path(&self.key)
    }

    /// Its checkpoint.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.partials.checkpoint_path(&self.key)
    }

    /// A writer took the partial file over (it resumes or replaces it).
    pub fn opened(&mut self) {
        self.prior = None;
    }

    /// Leaves the partial file at rest, `bytes` long, for a later pull to resume (the
    /// bounds may remove older ones, or this one if it alone is over them).
    pub fn rest(mut self, bytes: u64) {
        self.prior = None;
        self.partials.rest(self.key, self.origin, bytes);
    }
}

fn now_ms() -> u64 {
    super::store::now_ms()
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(path = %path.display(), error = %e, "files: removing a partial file"),
    }
}

impl Partials {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partial file of `key`.
    pub fn path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!(
            "{PARTIAL_PREFIX}{}",
            data_encoding::HEXLOWER.encode(key)
        ))
    }

    /// The checkpoint of `key`'s partial file.
    pub fn checkpoint_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!(
            "{PARTIAL_PREFIX}{}{CHECKPOINT_SUFFIX}",
            data_encoding::HEXLOWER.encode(key)
        ))
    }

    /// Removes `key`'s partial file and checkpoint (the caller holds the table or the
    /// claim).
    fn remove_files(&self, key: &[u8; 32]) {
        remove(&self.checkpoint_path(key));
        remove(&self.path(key));
    }

    /// Claims the partial file of a pull of `id` from `origin` (taking it off the ones at
    /// rest); `None` if another pull uses it now.
    pub fn claim(self: &Arc<Self>, id: &[u8; 32], origin: &[u8; 32]) -> Option<(Claim, Settled)> {
        let key = partial_key(id, origin);
        let mut t = self.table();
        if !t.claimed.insert(key) {
            return None;
        }
        let prior = t.rest.remove(&key);
        let (tx, rx) = tokio::sync::oneshot::channel();
        Some((
            Claim {
                partials: self.clone(),
                key,
                origin: *origin,
                prior,
                _settled: tx,
            },
            rx,
        ))
    }

    fn rest(&self, key: [u8; 32], origin: [u8; 32], bytes: u64) {
        let mut t = self.table();
        t.rest.insert(
            key,
            Rest {
                origin,
                bytes,
                since: now_ms(),
            },
        );
        self.bound(&mut t);
    }

    /// Removes the oldest partial files at rest until every bound holds.
    fn bound(&self, t: &mut Table) {
        loop {
            let total: u64 = t.rest.values().map(|r| r.bytes).sum();
            let mut per_origin: HashMap<[u8; 32], (usize, u64)> = HashMap::new();
            for r in t.rest.values() {
                let o = per_origin.entry(r.origin).or_default();
                o.0 += 1;
                o.1 = o.1.saturating_add(r.bytes);
            }
            let crowded: Vec<[u8; 32]> = per_origin
                .into_iter()
                .filter(|(_, (n, b))| {
                    *n > MAX_PARTIALS_PER_ORIGIN || *b > MAX_PARTIAL_BYTES_PER_ORIGIN
                })
                .map(|(o, _)| o)
                .collect();
            let over = t.rest.len() > MAX_PARTIALS || total > MAX_PARTIAL_BYTES;
            if crowded.is_empty() && !over {
                return;
            }
            let victim = t
                .rest
                .iter()
                .filter(|(_, r)| over || crowded.contains(&r.origin))
                .min_by_key(|(_, r)| r.since)
                .map(|(k, _)| *k);
            let Some(key) = victim else {
                return;
            };
            t.rest.remove(&key);
            self.remove_files(&key);
            debug!("files: a partial replica over the bounds was removed");
        }
    }

    /// Bytes of partial files at rest (counted against the disk quota).
    pub fn resting_bytes(&self) -> u64 {
        self.table().rest.values().map(|r| r.bytes).sum()
    }

    /// How many partial files are at rest.
    pub fn resting(&self) -> usize {
        self.table().rest.len()
    }

    /// Removes the oldest partial file at rest (to make room for a put or a hold);
    /// returns its bytes, or `None` if none rests.
    pub fn evict_oldest(&self) -> Option<u64> {
        let mut t = self.table();
        let (key, rest) = t
            .rest
            .iter()
            .min_by_key(|(_, r)| r.since)
            .map(|(k, r)| (*k, *r))?;
        t.rest.remove(&key);
        self.remove_files(&key);
        Some(rest.bytes)
    }

    /// Removes the partial file of a pull of `id` from `origin` if it rests (its
    /// content proved wrong: a later pull starts over).
    pub fn discard(&self, id: &[u8; 32], origin: &[u8; 32]) {
        let key = partial_key(id, origin);
        let mut t = self.table();
        if t.claimed.contains(&key) {
            return;
        }
        t.rest.remove(&key);
        self.remove_files(&key);
    }

    /// Removes the partial files at rest that came to rest more than `age` ago.
    pub fn sweep(&self, age: Duration) {
        let cut = now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        let mut t = self.table();
        let old: Vec<[u8; 32]> = t
            .rest
            .iter()
            .filter(|(_, r)| r.since < cut)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            t.rest.remove(&key);
            self.remove_files(&key);
        }
    }

    /// The partial files of the contents dir `dir` after a restart: `names` are the
    /// entries whose name starts with [`PARTIAL_PREFIX`]. Keeps (at rest) those whose
    /// checkpoint opens with `key`, names them, leaves something to fetch, is no older
    /// than a day and whose partial file is at least as long as it says (cut to that
    /// length), and whose file is not stored already (`stored`); removes the rest (and
    /// checkpoint temp files), then applies the bounds. Blocking.
    pub fn recover(
        dir: &Path,
        names: &[String],
        key: &StorageKey,
        stored: &dyn Fn(&[u8; 32]) -> bool,
    ) -> Partials {
        let partials = Partials {
            dir: dir.to_path_buf(),
            table: Mutex::new(Table::default()),
        };
        let mut keys: HashSet<[u8; 32]> = HashSet::new();
        let mut removed = 0usize;
        for name in names {
            let stem = name
                .strip_prefix(PARTIAL_PREFIX)
                .map(|s| s.strip_suffix(CHECKPOINT_SUFFIX).unwrap_or(s));
            let parsed = stem.and_then(|hex| {
                data_encoding::HEXLOWER
                    .decode(hex.as_bytes())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
            });
            match parsed {
                Some(k) => {
                    keys.insert(k);
                }
                None => {
                    // A checkpoint's temp file (`.ckpt.tmp`) or a foreign name.
                    remove(&dir.join(name));
                    removed += 1;
                }
            }
        }
        let now = now_ms();
        let mut t = partials.table();
        for k in keys {
            let read = std::fs::File::open(partials.checkpoint_path(&k))
                .ok()
                .and_then(|f| {
                    use std::io::Read;
                    let mut buf = Vec::new();
                    f.take(MAX_LEN + 1).read_to_end(&mut buf).ok().map(|_| buf)
                });
            let checkpoint = read
                .as_deref()
                .and_then(|b| Checkpoint::open(b, key.aead()))
                .filter(|c| partial_key(&c.id, &c.origin) == k);
            let path = partials.path(&k);
            let on_disk = std::fs::metadata(&path).ok().map(|m| m.len());
            let age = Duration::from_millis(
                checkpoint
                    .as_ref()
                    .map_or(u64::MAX, |c| now.saturating_sub(c.written)),
            );
            let decision = match &checkpoint {
                Some(c) if stored(&c.id) => Decision::Restart("the file is stored already"),
                _ => keep(checkpoint.as_ref(), on_disk, age),
            };
            let kept = match (decision, &checkpoint) {
                (Decision::Resume { len, .. }, Some(c)) => {
                    let cut = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_len(len));
                    match cut {
                        Ok(()) => Some((c.origin, len, c.written)),
                        Err(e) => {
                            warn!(path = %path.display(), error = %e, "files: cutting a partial file");
                            None
                        }
                    }
                }
                (Decision::Restart(why), _) => {
                    debug!(why, "files: removing a partial replica");
                    None
                }
                _ => None,
            };
            match kept {
                Some((origin, bytes, since)) => {
                    t.rest.insert(
                        k,
                        Rest {
                            origin,
                            bytes,
                            since,
                        },
                    );
                }
                None => {
                    partials.remove_files(&k);
                    removed += 1;
                }
            }
        }
        partials.bound(&mut t);
        let kept = t.rest.len();
        drop(t);
        if removed > 0 || kept > 0 {
            info!(
                removed,
                kept, "files: partial replicas after a restart (kept ones resume on the next hold)"
            );
        }
        partials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("memmesh-partials-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(p: &Path) {
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn one_pull_at_a_time_and_the_bounds_remove_the_oldest() {
        let dir = scratch("bounds");
        let key = StorageKey::from_bytes(&[1; 32]).unwrap();
        let p = Arc::new(Partials::recover(&dir, &[], &key, &|_| false));
        let (c, _settled) = p.claim(&[1; 32], &[9; 32]).unwrap();
        assert!(p.claim(&[1; 32], &[9; 32]).is_none(), "claimed once");
        assert!(
            p.claim(&[1; 32], &[8; 32]).is_some(),
            "another origin is another partial"
        );
        touch(&c.path());
        let first = c.path();
        c.rest(100);
        assert_eq!((p.resting(), p.resting_bytes()), (1, 100));
        // One origin keeps at most MAX_PARTIALS_PER_ORIGIN; its oldest goes.
        for i in 2..=(MAX_PARTIALS_PER_ORIGIN as u8 + 1) {
            std::thread::sleep(Duration::from_millis(2));
            let (c, _s) = p.claim(&[i; 32], &[9; 32]).unwrap();
            touch(&c.path());
            c.rest(100);
        }
        assert_eq!(p.resting(), MAX_PARTIALS_PER_ORIGIN);
        assert!(!first.exists(), "the oldest of that origin was removed");
        // Claiming one takes it off the ones at rest; evicting takes the oldest.
        let (c, _s) = p.claim(&[2; 32], &[9; 32]).unwrap();
        assert_eq!(p.resting(), MAX_PARTIALS_PER_ORIGIN - 1);
        // A claim let go before a writer opened it puts it back at rest.
        drop(c);
        assert_eq!(p.resting(), MAX_PARTIALS_PER_ORIGIN);
        assert_eq!(p.evict_oldest(), Some(100));
        assert_eq!(p.resting(), MAX_PARTIALS_PER_ORIGIN - 1);
        // A partial over its origin's byte bound does not stay, and pushes no other out.
        let (c, _s) = p.claim(&[42; 32], &[7; 32]).unwrap();
        c.rest(MAX_PARTIAL_BYTES_PER_ORIGIN + 1);
        assert_eq!(p.resting(), MAX_PARTIALS_PER_ORIGIN - 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn at_start_unopenable_or_foreign_leftovers_are_removed() {
        let dir = scratch("recover");
        let key = StorageKey::from_bytes(&[1; 32]).unwrap();
        let k = partial_key(&[1; 32], &[2; 32]);
        let hex = data_encoding::HEXLOWER.encode(&k);
        let names = vec![
            format!("{PARTIAL_PREFIX}{hex}"),
            format!("{PARTIAL_PREFIX}{hex}{CHECKPOINT_SUFFIX}"),
            format!("{PARTIAL_PREFIX}{hex}{CHECKPOINT_SUFFIX}.tmp"),
            format!("{PARTIAL_PREFIX}zz"),
        ];
        for n in &names {
            std::fs::write(dir.join(n), b"not a checkpoint").unwrap();
        }
        let p = Partials::recover(&dir, &names, &key, &|_| false);
        assert_eq!(p.resting(), 0);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
