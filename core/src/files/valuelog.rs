//! The value log (ADR 0016, amendment "A value log for small files"): the sealed contents
//! of small files are appended to segment files in `<data_dir>/files-log/`, and
//! fdatasynced **before** the redb commit whose records point at them (record version 2,
//! schema 4; `logged` rows under schema 3), so a record never points at bytes that are not
//! durable. Only the group committer appends, relocates
//! (compaction) and removes segments; any thread reads. The layout and the pure decisions
//! are in `logfmt.rs`.
//!
//! Since segment version 2 each record also carries its file's metadata row, so that a
//! batch made only of small puts is durable once its log bytes are: its metadata commit
//! need not be (ADR 0016, amendment "One fsync per small put"). At open, [`replay`] finds
//! the records appended after the last durable commit's checkpoint, for the store to write
//! their rows again.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use super::error::FilesError;
use super::logfmt::{
    frame, frame_len, frame_matches, parse_frames, plan_recovery, segment_header, segment_name,
    segment_of_name, segment_version, to_compact, Loc, FRAME_HEADER, SEGMENT_HEADER, SEGMENT_MAX,
    SEGMENT_VERSION,
};
use super::parallel::ReadAt;

/// The value log's directory inside the data dir.
pub const LOG_DIR: &str = "files-log";

/// Test hook: segment size limit in place of [`SEGMENT_MAX`] (0: none), so that a test
/// fills, rolls and compacts segments with little data.
#[cfg(any(test, feature = "test-hooks"))]
static SEGMENT_MAX_OVERRIDE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Test hook: segments of this process's stores take no more appends past `bytes`.
/// Only with the `test-hooks` feature.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub fn set_segment_max_for_tests(bytes: u64) {
    SEGMENT_MAX_OVERRIDE.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Records replayed by [`replay`] in this process (tests: a crash test checks that its
/// kills exercised the replay).
#[cfg(any(test, feature = "test-hooks"))]
static REPLAYED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Test hook: how many records with a row [`replay`] has found in this process. Only with
/// the `test-hooks` feature.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub fn replayed_for_tests() -> u64 {
    REPLAYED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The segment size limit.
fn segment_max() -> u64 {
    #[cfg(any(test, feature = "test-hooks"))]
    {
        let o = SEGMENT_MAX_OVERRIDE.load(std::sync::atomic::Ordering::Relaxed);
        if o > 0 {
            return o;
        }
    }
    SEGMENT_MAX
}

/// The committer's side: the segment appended to and every segment's length and live
/// bytes.
#[derive(Debug)]
struct Writer {
    active: u64,
    file: Arc<File>,
    len: u64,
    lengths: BTreeMap<u64, u64>,
    live: BTreeMap<u64, u64>,
}

/// The open value log.
#[derive(Debug)]
pub struct ValueLog {
    dir: PathBuf,
    /// Readable segments (the active one included). A segment removed by compaction or
    /// once empty leaves this map before its file is unlinked.
    files: Mutex<HashMap<u64, Arc<File>>>,
    writer: Mutex<Writer>,
}

/// Opens a segment for reading and appending.
fn open_rw(path: &Path) -> Result<File, FilesError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(FilesError::io("opening", path))
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Starts the writeback of `len` bytes at `offset` without waiting for it, so that the
/// disk works while the committer stages its transaction (the fdatasync that follows
/// waits for it). A failure only loses that head start.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on an open descriptor; no memory is passed.
    let r = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "files: starting the value log's writeback");
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl ValueLog {
    /// Opens the log in `dir` (created if missing) given the committed pointers `logged`,
    /// and recovers it ([`plan_recovery`]): bytes past the last committed value of each
    /// segment are cut off and segments without a committed value are removed. Returns the
    /// log and the files whose pointer is unusable (their rows must go).
    pub fn open(
        dir: &Path,
        logged: &HashMap<[u8; 32], Loc>,
    ) -> Result<(ValueLog, Vec<[u8; 32]>), FilesError> {
        crate::durable::create_dir_all(dir).map_err(FilesError::io("creating", dir))?;
        let mut found = BTreeMap::new();
        let mut versions = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(FilesError::io("listing", dir))? {
            let entry = entry.map_err(FilesError::io("listing", dir))?;
            let Some(segment) = entry.file_name().to_str().and_then(segment_of_name) else {
                warn!(path = %entry.path().display(), "files: unexpected entry in the value log dir");
                continue;
            };
            let path = entry.path();
            let file = File::open(&path).map_err(FilesError::io("opening", &path))?;
            let len = file
                .metadata()
                .map_err(FilesError::io("reading", &path))?
                .len();
            let mut h = [0u8; SEGMENT_HEADER as usize];
            let version = (len >= SEGMENT_HEADER && file.read_exact_at(&mut h, 0).is_ok())
                .then(|| segment_version(&h))
                .flatten();
            if let Some(v) = version {
                versions.insert(segment, v);
            } else {
                // Damaged (a newer format comes with a newer schema, refused before this):
                // its values still fail their frame or AEAD check when read (`Corrupted`,
                // then repaired from a replica) rather than being dropped here.
                warn!(path = %path.display(), "files: a value log segment's header is damaged");
            }
            found.insert(segment, len);
        }
        let plan = plan_recovery(&found, logged);
        let mut changed = 0usize;
        for &segment in &plan.remove {
            let path = dir.join(segment_name(segment));
            match std::fs::remove_file(&path) {
                Ok(()) => changed += 1,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "files: removing an unused value log segment")
                }
            }
        }
        for &(segment, end) in &plan.truncate {
            let path = dir.join(segment_name(segment));
            open_rw(&path)?
                .set_len(end)
                .map_err(FilesError::io("truncating", &path))?;
            changed += 1;
        }
        if changed > 0 {
            crate::durable::sync_dir(dir).map_err(FilesError::io("syncing", dir))?;
            info!(
                segments = changed,
                rows = plan.drop_rows.len(),
                "files: value log recovered"
            );
        }
        let mut files = HashMap::new();
        let mut lengths = BTreeMap::new();
        for (&segment, &len) in &found {
            if plan.remove.contains(&segment) {
                continue;
            }
            let len = plan
                .truncate
                .iter()
                .find(|(s, _)| *s == segment)
                .map_or(len, |(_, end)| *end);
            files.insert(
                segment,
                Arc::new(open_rw(&dir.join(segment_name(segment)))?),
            );
            lengths.insert(segment, len);
        }
        let last = lengths.iter().next_back().map(|(&s, &l)| (s, l));
        let (active, len) = match last {
            // Appends go only to a segment of this build's version.
            Some((s, l)) if l < segment_max() && versions.get(&s) == Some(&SEGMENT_VERSION) => {
                (s, l)
            }
            _ => {
                // After every segment found, removed ones included: a number is not
                // reused while a pointer to it may still be about (rows dropped below).
                let s = found.keys().next_back().map_or(1, |s| s + 1);
                let file = create_segment(dir, s)?;
                files.insert(s, Arc::new(file));
                lengths.insert(s, SEGMENT_HEADER);
                (s, SEGMENT_HEADER)
            }
        };
        let file = files.get(&active).cloned().ok_or(FilesError::Internal(
            "the active value log segment is not open",
        ))?;
        let log = ValueLog {
            dir: dir.to_path_buf(),
            files: Mutex::new(files),
            writer: Mutex::new(Writer {
                active,
                file,
                len,
                lengths,
                live: plan.live,
            }),
        };
        Ok((log, plan.drop_rows))
    }

    /// Appends `items` (id, sealed contents, metadata row: empty for a compaction copy)
    /// in one write and fdatasyncs them; returns where each value is. Called by the
    /// committer before the transaction that points at them.
    pub fn append(&self, items: &[(&[u8; 32], &[u8], &[u8])]) -> Result<Vec<Loc>, FilesError> {
        let locs = self.write(items)?;
        if !locs.is_empty() {
            self.sync()?;
        }
        Ok(locs)
    }

    /// Appends `items` as [`ValueLog::append`] does, without waiting for the disk: the
    /// write's writeback is started (on Linux), and they are durable only after
    /// [`ValueLog::sync`]. The committer stages its transaction in between.
    pub fn write(&self, items: &[(&[u8; 32], &[u8], &[u8])]) -> Result<Vec<Loc>, FilesError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.len >= segment_max() {
            self.roll(&mut w)?;
        }
        let mut buf = Vec::with_capacity(
            items
                .iter()
                .map(|(_, s, r)| frame_len(s.len(), r.len()))
                .sum(),
        );
        let mut locs = Vec::with_capacity(items.len());
        for (id, sealed, row) in items {
            let at = w.len + buf.len() as u64;
            let loc = frame(&mut buf, w.active, at, id, sealed, row)
                .ok_or_else(|| FilesError::Invalid("a value too large for the value log".into()))?;
            locs.push(loc);
        }
        let path = || self.dir.join(segment_name(w.active));
        write_all_at(&w.file, &buf, w.len).map_err(FilesError::io("appending to", path()))?;
        start_writeback(&w.file, w.len, buf.len() as u64);
        w.len += buf.len() as u64;
        let (active, len) = (w.active, w.len);
        w.lengths.insert(active, len);
        Ok(locs)
    }

    /// Makes every value written so far durable (fdatasync of the active segment).
    pub fn sync(&self) -> Result<(), FilesError> {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.file.sync_data().map_err(FilesError::io(
            "syncing",
            self.dir.join(segment_name(w.active)),
        ))
    }

    /// Where the next append goes: the active segment and its length. The metadata's
    /// checkpoint (the records before it have their rows in durable commits).
    pub fn end(&self) -> (u64, u64) {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        (w.active, w.len)
    }

    /// Takes back the appends made since [`ValueLog::end`] was `to` (they failed, or their
    /// metadata commit did: the records must not be found again at open): the active
    /// segment is cut to where they start (bytes a failed append left past its end
    /// included), synced.
    pub fn cut(&self, to: (u64, u64)) -> Result<(), FilesError> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let len = if w.active == to.0 {
            to.1
        } else {
            SEGMENT_HEADER
        };
        let path = self.dir.join(segment_name(w.active));
        w.file
            .set_len(len)
            .and_then(|()| w.file.sync_data())
            .map_err(FilesError::io("cutting", &path))?;
        w.len = len;
        let active = w.active;
        w.lengths.insert(active, len);
        Ok(())
    }

    /// Starts a new segment (its creation made durable before anything points into it).
    fn roll(&self, w: &mut Writer) -> Result<(), FilesError> {
        let next = w.active + 1;
        let file = Arc::new(create_segment(&self.dir, next)?);
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(next, file.clone());
        w.active = next;
        w.file = file;
        w.len = SEGMENT_HEADER;
        w.lengths.insert(next, SEGMENT_HEADER);
        Ok(())
    }

    /// After a commit: `added` values are now pointed at, `freed` ones no longer. A
    /// segment other than the active one left without a live value is removed.
    pub fn committed(&self, added: &[Loc], freed: &[Loc]) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for loc in added {
            *w.live.entry(loc.segment).or_insert(0) += u64::from(loc.len);
        }
        let mut emptied = Vec::new();
        for loc in freed {
            if let Some(l) = w.live.get_mut(&loc.segment) {
                *l = l.saturating_sub(u64::from(loc.len));
                if *l == 0 && loc.segment != w.active {
                    emptied.push(loc.segment);
                }
            }
        }
        for segment in emptied {
            w.live.remove(&segment);
            w.lengths.remove(&segment);
            self.remove(segment);
        }
    }

    /// Forgets segment `segment` and unlinks its file (readers holding it finish their
    /// reads; new readers look their pointer up again). Not made durable: a segment
    /// without a committed value is removed at the next open anyway.
    fn remove(&self, segment: u64) {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&segment);
        let path = self.dir.join(segment_name(segment));
        if let Err(e) = std::fs::remove_file(&path) {
            warn!(path = %path.display(), error = %e, "files: removing a value log segment");
        }
    }

    /// The segment to compact next, if one is less than half live.
    pub fn compaction_candidate(&self) -> Option<u64> {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        to_compact(&w.live, &w.lengths, w.active)
    }

    /// The sealed contents of `id` at `loc`, checked against the record's frame (its id
    /// and length): anything else is `Corrupted`. `None` if the segment is no longer
    /// there (compacted or emptied since the pointer was read: look it up again).
    pub fn read(&self, id: &[u8; 32], loc: &Loc) -> Result<Option<Vec<u8>>, FilesError> {
        let file = self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&loc.segment)
            .cloned();
        let Some(file) = file else {
            return Ok(None);
        };
        let mut buf = vec![0u8; FRAME_HEADER as usize + loc.len as usize];
        let what = || {
            format!(
                "{}: value log {} at {}",
                super::id::FileId::from_digest(*id),
                segment_name(loc.segment),
                loc.offset
            )
        };
        match file.read_exact_at(&mut buf, loc.frame_start()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(FilesError::corrupted(format!("{}: cut short", what())))
            }
            Err(e) => {
                return Err(FilesError::io(
                    "reading",
                    self.dir.join(segment_name(loc.segment)),
                )(e))
            }
        }
        if !frame_matches(&buf[..FRAME_HEADER as usize], id, loc) {
            return Err(FilesError::corrupted(format!("{}: another record", what())));
        }
        buf.drain(..FRAME_HEADER as usize);
        Ok(Some(buf))
    }

    /// The raw sealed bytes at `loc` for compaction (no frame check: a damaged value is
    /// moved as it is and still fails its authentication when read).
    pub fn read_raw(&self, loc: &Loc) -> Result<Vec<u8>, FilesError> {
        let file = self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&loc.segment)
            .cloned()
            .ok_or(FilesError::Internal("compacting a segment that is gone"))?;
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset)
            .map_err(FilesError::io(
                "reading",
                self.dir.join(segment_name(loc.segment)),
            ))?;
        Ok(buf)
    }

    /// Segment lengths and live bytes (tests and figures).
    pub fn segments(&self) -> Vec<(u64, u64, u64)> {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.lengths
            .iter()
            .map(|(&s, &len)| (s, len, w.live.get(&s).copied().unwrap_or(0)))
            .collect()
    }
}

/// A record found by [`replay`]: the file id, its metadata row and where its sealed
/// contents are.
pub type Replayed = ([u8; 32], Vec<u8>, Loc);

/// The records appended to the log in `dir` from `from` (a checkpoint: segment and offset)
/// on, whole and intact, in order, each with its metadata row; compaction copies (no row)
/// are left out. Reads the checkpoint's segment from its offset and every later segment
/// of this build's version whole, and stops at the first record cut short or damaged
/// (the write a crash interrupted). Missing segments or a missing directory: nothing.
pub fn replay(dir: &Path, from: (u64, u64)) -> Result<Vec<Replayed>, FilesError> {
    let mut out = Vec::new();
    let mut segments = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(FilesError::io("listing", dir))?;
                if let Some(s) = entry.file_name().to_str().and_then(segment_of_name) {
                    if s >= from.0 {
                        segments.push(s);
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(FilesError::io("listing", dir)(e)),
    }
    segments.sort_unstable();
    for segment in segments {
        let path = dir.join(segment_name(segment));
        let bytes = std::fs::read(&path).map_err(FilesError::io("reading", &path))?;
        let version = bytes
            .get(..SEGMENT_HEADER as usize)
            .and_then(segment_version);
        if version != Some(SEGMENT_VERSION) {
            break;
        }
        let start = if segment == from.0 {
            from.1.max(SEGMENT_HEADER)
        } else {
            SEGMENT_HEADER
        };
        let Some(tail) = usize::try_from(start).ok().and_then(|s| bytes.get(s..)) else {
            break;
        };
        let (found, end) = parse_frames(tail, segment, start);
        let whole = end == bytes.len() as u64;
        for p in found {
            if !p.row.is_empty() {
                out.push((p.id, tail[p.row].to_vec(), p.loc));
            }
        }
        if !whole {
            // A record cut short or damaged: nothing after it was acknowledged.
            break;
        }
    }
    #[cfg(any(test, feature = "test-hooks"))]
    REPLAYED.fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(out)
}

/// Creates segment `segment` with its header, synced, and syncs the directory.
fn create_segment(dir: &Path, segment: u64) -> Result<File, FilesError> {
    let path = dir.join(segment_name(segment));
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(FilesError::io("creating", &path))?;
    write_all_at(&file, &segment_header(), 0).map_err(FilesError::io("writing", &path))?;
    file.sync_all().map_err(FilesError::io("syncing", &path))?;
    crate::durable::sync_dir(dir).map_err(FilesError::io("syncing", dir))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("memmesh-vlog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn values_read_back_a_tail_is_cut_and_an_empty_segment_goes() {
        let d = dir("basic");
        let (log, dropped) = ValueLog::open(&d, &HashMap::new()).unwrap();
        assert!(dropped.is_empty());
        let locs = log
            .append(&[
                (&[1; 32], b"one".as_slice(), b"".as_slice()),
                (&[2; 32], b"two!".as_slice(), b"".as_slice()),
            ])
            .unwrap();
        log.committed(&locs, &[]);
        assert_eq!(log.read(&[1; 32], &locs[0]).unwrap().unwrap(), b"one");
        assert_eq!(log.read(&[2; 32], &locs[1]).unwrap().unwrap(), b"two!");
        // The wrong id, or a pointer into the middle of a record: Corrupted.
        let e = log.read(&[2; 32], &locs[0]).unwrap_err();
        assert_eq!(
            crate::error::Classify::kind(&e),
            crate::ErrorKind::Corrupted
        );
        // Appended but never committed (a crash before the transaction): cut at open.
        let uncommitted = log
            .append(&[(&[3; 32], b"three".as_slice(), b"".as_slice())])
            .unwrap();
        let seg = d.join(segment_name(locs[0].segment));
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), uncommitted[0].end());
        drop(log);
        let logged: HashMap<[u8; 32], Loc> = [([1; 32], locs[0]), ([2; 32], locs[1])].into();
        let (log, dropped) = ValueLog::open(&d, &logged).unwrap();
        assert!(dropped.is_empty());
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), locs[1].end());
        assert_eq!(log.read(&[2; 32], &locs[1]).unwrap().unwrap(), b"two!");
        // A flipped byte of the frame: Corrupted, never another value.
        drop(log);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[locs[1].frame_start() as usize] ^= 1;
        std::fs::write(&seg, &bytes).unwrap();
        let (log, _) = ValueLog::open(&d, &logged).unwrap();
        assert!(log.read(&[2; 32], &locs[1]).is_err());
        // A damaged segment header is only reported: the values stay, checked when read.
        drop(log);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&seg, &bytes).unwrap();
        let (log, dropped) = ValueLog::open(&d, &logged).unwrap();
        assert!(dropped.is_empty());
        assert_eq!(log.read(&[1; 32], &locs[0]).unwrap().unwrap(), b"one");
        // Nothing committed points into it any more: the segment goes at open.
        drop(log);
        let (log, _) = ValueLog::open(&d, &HashMap::new()).unwrap();
        assert!(!seg.exists());
        assert_eq!(log.segments().len(), 1, "a new active segment");
        drop(log);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_full_segment_rolls_and_an_emptied_one_is_removed() {
        let d = dir("roll");
        let (log, _) = ValueLog::open(&d, &HashMap::new()).unwrap();
        let big = vec![7u8; SEGMENT_MAX as usize];
        let first = log
            .append(&[(&[1; 32], big.as_slice(), b"".as_slice())])
            .unwrap();
        log.committed(&first, &[]);
        let second = log
            .append(&[(&[2; 32], b"x".as_slice(), b"".as_slice())])
            .unwrap();
        log.committed(&second, &[]);
        assert_eq!(second[0].segment, first[0].segment + 1);
        assert_eq!(log.compaction_candidate(), None);
        log.committed(&[], &first);
        assert!(!d.join(segment_name(first[0].segment)).exists());
        assert_eq!(
            log.read(&[1; 32], &first[0]).unwrap(),
            None,
            "gone: look again"
        );
        assert_eq!(log.segments().len(), 1);
        drop(log);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replay_finds_the_rows_appended_since_a_checkpoint_up_to_a_torn_record() {
        let d = dir("replay");
        let (log, _) = ValueLog::open(&d, &HashMap::new()).unwrap();
        let first = log
            .append(&[(&[1; 32], b"one".as_slice(), b"row1".as_slice())])
            .unwrap();
        let checkpoint = log.end();
        let rest = log
            .append(&[
                (&[2; 32], b"two".as_slice(), b"row2".as_slice()),
                (&[9; 32], b"copy".as_slice(), b"".as_slice()),
                (&[3; 32], b"three".as_slice(), b"row3".as_slice()),
            ])
            .unwrap();
        // From the start: every record with a row; from the checkpoint: the later ones.
        let all = replay(&d, (first[0].segment, 0)).unwrap();
        assert_eq!(
            all.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![[1; 32], [2; 32], [3; 32]]
        );
        let later = replay(&d, checkpoint).unwrap();
        assert_eq!(
            later,
            vec![
                ([2; 32], b"row2".to_vec(), rest[0]),
                ([3; 32], b"row3".to_vec(), rest[2])
            ]
        );
        // Taken back (its commit failed): not found again.
        log.cut((rest[0].segment, rest[1].end())).unwrap();
        assert_eq!(replay(&d, checkpoint).unwrap().len(), 1);
        // A later segment is read whole; a torn record ends the replay.
        log.roll(&mut log.writer.lock().unwrap()).unwrap();
        let next = log
            .append(&[
                (&[4; 32], b"four".as_slice(), b"row4".as_slice()),
                (&[5; 32], b"five".as_slice(), b"row5".as_slice()),
            ])
            .unwrap();
        let seg = d.join(segment_name(next[1].segment));
        let len = std::fs::metadata(&seg).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let ids: Vec<_> = replay(&d, checkpoint)
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(ids, vec![[2; 32], [4; 32]]);
        assert!(replay(&d.join("missing"), (1, 0)).unwrap().is_empty());
        drop(log);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn appends_never_go_to_a_version_1_segment() {
        let d = dir("v1");
        let (log, _) = ValueLog::open(&d, &HashMap::new()).unwrap();
        let loc = log
            .append(&[(&[1; 32], b"one".as_slice(), b"".as_slice())])
            .unwrap()[0];
        drop(log);
        // Rewrite the segment as version 1 (id, length, sealed bytes).
        let seg = d.join(segment_name(loc.segment));
        let mut v1 = segment_header().to_vec();
        v1[8] = 1;
        v1.extend_from_slice(&[1; 32]);
        v1.extend_from_slice(&3u32.to_le_bytes());
        v1.extend_from_slice(b"one");
        std::fs::write(&seg, &v1).unwrap();
        let old = Loc {
            segment: loc.segment,
            offset: SEGMENT_HEADER + FRAME_HEADER,
            len: 3,
        };
        let (log, dropped) = ValueLog::open(&d, &[([1; 32], old)].into()).unwrap();
        assert!(dropped.is_empty());
        assert_eq!(log.read(&[1; 32], &old).unwrap().unwrap(), b"one");
        assert_eq!(log.end(), (loc.segment + 1, SEGMENT_HEADER));
        drop(log);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
