//! The documents held by this node: in memory (one [`AutoCommit`] each) and, with a data
//! dir, durably in an encrypted log per document (`log.rs`); without one they live in
//! memory only ([`Store::memory`]). Every function here may block (disk, CPU): callers
//! run them on the blocking pool.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::sync::SyncDoc;
use automerge::AutoCommit;
use tracing::warn;

use super::book::Books;
use super::delta::{Before, Delta};
use super::error::DocsError;
use super::log::{log_path, Log, Record, Sealer, EXT, KIND_CHANGES, KIND_REACH, KIND_SNAPSHOT};
use super::peer_states;
use super::stream::Stream;
use super::stream_file;
use super::{DocId, Reach};
use crate::identity::NodeId;

/// The log is compacted (rewritten as one snapshot) after this many appended records.
const COMPACT_RECORDS: u64 = 256;
/// ... or once the appended records hold this many bytes more than a snapshot would.
const COMPACT_SLACK: u64 = 1024 * 1024;
/// The name of a deleted document's marker file, beside where its log was.
const GONE_EXT: &str = "gone";

/// One document's state.
pub(crate) struct DocState {
    /// The document.
    pub doc: AutoCommit,
    /// Where it may flow.
    pub reach: Reach,
    /// Its log (`None` in memory only, and once deleted).
    pub log: Option<Log>,
    /// Whether it is still held (false once deleted).
    pub live: bool,
    /// Its size in the Automerge format: its last snapshot plus the incremental saves
    /// since (what its log holds, without the sealing).
    pub size: u64,
    /// Incremental saves since the last snapshot, and their bytes (compaction).
    pub since_snapshot: (u64, u64),
    /// The sync state with each peer (what `sync::State::encode` keeps of it is saved
    /// across restarts: `peer_states`; dropped after an error).
    pub peers: HashMap<NodeId, automerge::sync::State>,
    /// What is known of each peer's copy, for the sync status (in memory; kept when a
    /// sync state starts afresh).
    pub books: Books,
}

impl DocState {
    /// Notes in the book of `peer` the heads it told in its last sync message.
    pub fn heard_from(&mut self, peer: NodeId) {
        let theirs = self.peers.get(&peer).and_then(|s| s.their_heads.clone());
        let ours = self.doc.get_heads();
        self.books
            .of(peer)
            .heard(theirs.as_deref(), &ours, super::book::now_ms());
    }
}

impl Store {
    /// The per-peer sync states of every document (ADR 0020, sixth slice): what
    /// `sync::State::encode` keeps of each, and each peer's "last synced" time.
    pub fn saved_states(&self) -> Vec<peer_states::Saved> {
        let mut entries: Vec<Arc<Entry>> = lock(&self.docs).values().cloned().collect();
        entries.sort_by_key(|e| e.id);
        let mut out = Vec::new();
        for e in entries {
            let st = e.lock();
            if !st.live {
                continue;
            }
            let mut peers: Vec<NodeId> = st.peers.keys().chain(st.books.peers()).copied().collect();
            peers.sort();
            peers.dedup();
            for p in peers {
                if out.len() >= peer_states::MAX_SAVED {
                    return out;
                }
                out.push(peer_states::Saved {
                    doc: e.id.0,
                    peer: *p.as_bytes(),
                    shared: st.peers.get(&p).map(|s| s.encode()).unwrap_or_default(),
                    last_synced: st.books.get(&p).and_then(|b| b.last_synced()),
                    their_heads: st
                        .books
                        .get(&p)
                        .and_then(|b| b.their_heads())
                        .map(|h| h.iter().map(|c| c.0).collect()),
                });
            }
        }
        out
    }

    /// Puts saved states back on the documents held (those of other documents, or that
    /// do not decode, are dropped).
    pub fn restore_states(&self, saved: Vec<peer_states::Saved>) {
        for s in saved {
            let Ok(entry) = self.get(DocId(s.doc)) else {
                continue;
            };
            let peer = NodeId::from_bytes(s.peer);
            let mut st = entry.lock();
            if !s.shared.is_empty() {
                if let Ok(state) = automerge::sync::State::decode(&s.shared) {
                    st.peers.insert(peer, state);
                }
            }
            if let Some(t) = s.last_synced {
                st.books.of(peer).restore_last_synced(t);
            }
            if let Some(h) = s.their_heads {
                let heads: Vec<automerge::ChangeHash> =
                    h.into_iter().map(automerge::ChangeHash).collect();
                st.books.of(peer).restore_their_heads(&heads);
            }
        }
    }

    /// Writes the per-peer sync states durably (with a data dir; blocking).
    pub fn save_states(&self) {
        if self.disk.is_some() {
            self.write_states(&self.saved_states());
        }
    }

    /// Writes `saved` as the per-peer sync states, durably (with a data dir; blocking).
    pub fn write_states(&self, saved: &[peer_states::Saved]) {
        let Some(disk) = &self.disk else {
            return;
        };
        let path = disk.dir.join(peer_states::FILE_NAME);
        let bytes = match peer_states::encode(saved, &*disk.key) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "could not seal the documents' sync states");
                return;
            }
        };
        if let Err(e) = crate::durable::write_atomic(&path, &bytes, true) {
            warn!(error = %e.chain(), "could not save the documents' sync states");
        }
    }

    /// Reads the per-peer sync states saved before (a file that cannot be read is
    /// logged and ignored: the first exchanges then start from nothing, as before).
    fn load_states(&self) {
        let Some(disk) = &self.disk else {
            return;
        };
        let path = disk.dir.join(peer_states::FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "could not read the documents' sync states");
                return;
            }
        };
        match peer_states::decode(&bytes, &*disk.key) {
            Ok(saved) => self.restore_states(saved),
            Err(e) => {
                warn!(path = %path.display(), error = %e, "ignoring the documents' sync states")
            }
        }
    }
}

impl Store {
    /// Records an event of `id` in the node's event log (rewriting the stream file as
    /// not clean if it was saved clean already: a change during an orderly shutdown).
    fn record(&self, id: DocId) {
        if self.stream.record(id) {
            self.write_stream(false);
        }
    }

    /// Saves the event log and the positions (with a data dir; blocking). `clean`: at an
    /// orderly shutdown, after which the log vouches for every event until the next
    /// start.
    pub fn save_stream(&self, clean: bool) {
        if clean {
            let _w = lock(&self.stream.writing);
            self.stream.mark_saved_clean();
            self.write_stream_locked(clean);
        } else {
            self.write_stream(false);
        }
    }

    fn write_stream(&self, clean: bool) {
        let _w = lock(&self.stream.writing);
        self.write_stream_locked(clean);
    }

    fn write_stream_locked(&self, clean: bool) {
        let Some(disk) = &self.disk else {
            return;
        };
        let path = disk.dir.join(stream_file::FILE_NAME);
        match stream_file::encode(&self.stream.saved(clean), &*disk.key) {
            Ok(bytes) => {
                if let Err(e) = crate::durable::write_atomic(&path, &bytes, true) {
                    warn!(error = %e.chain(), "could not save the documents' event log");
                }
            }
            Err(e) => warn!(error = %e, "could not seal the documents' event log"),
        }
    }

    /// Reads the event log and positions saved before, then marks the file not clean
    /// (a crash from now on starts a new epoch at the next start).
    fn load_stream(&self) {
        let held: Vec<DocId> = self.all().iter().map(|e| e.id).collect();
        let Some(disk) = &self.disk else {
            self.stream.restore(None, &held);
            return;
        };
        let path = disk.dir.join(stream_file::FILE_NAME);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => match stream_file::decode(&bytes, &*disk.key) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "ignoring the documents' event log: a new epoch starts");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "could not read the documents' event log: a new epoch starts");
                None
            }
        };
        self.stream.restore(saved, &held);
        self.write_stream(false);
    }
}

/// A document held here.
pub(crate) struct Entry {
    /// Its id.
    pub id: DocId,
    state: Mutex<DocState>,
}

impl Entry {
    /// Locks its state.
    pub fn lock(&self) -> MutexGuard<'_, DocState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a store keeps its logs.
struct Disk {
    dir: PathBuf,
    key: Arc<dyn Sealer>,
}

/// The documents of a node.
pub(crate) struct Store {
    /// `None`: in memory only (no data dir).
    disk: Option<Disk>,
    docs: Mutex<HashMap<DocId, Arc<Entry>>>,
    gone: Mutex<HashSet<DocId>>,
    /// Documents being created now (their logs written), each by one caller: two
    /// adopters of the same document must not both write its log.
    creating: Mutex<HashSet<DocId>>,
    /// Documents each peer made this node create (the per-peer budget).
    pub created_by: Mutex<HashMap<NodeId, usize>>,
    /// The event log and the positions in peers' logs (`stream.rs`).
    pub stream: Stream,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A document id reserved in [`Store::creating`] while it lives.
struct Reserved<'a>(&'a Mutex<HashSet<DocId>>, DocId);

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
}

impl Store {
    /// Opens `<data_dir>/docs` sealing with `key`, loading every document (blocking).
    pub fn open(data_dir: PathBuf, key: Arc<dyn Sealer>) -> Result<Store, DocsError> {
        let dir = data_dir.join("docs");
        crate::durable::create_dir_all(&dir).map_err(DocsError::io("creating", &dir))?;
        let store = Store {
            disk: Some(Disk { dir, key }),
            docs: Mutex::new(HashMap::new()),
            gone: Mutex::new(HashSet::new()),
            creating: Mutex::new(HashSet::new()),
            created_by: Mutex::new(HashMap::new()),
            stream: Stream::default(),
        };
        store.load_all()?;
        store.load_states();
        store.load_stream();
        Ok(store)
    }

    /// A store in memory only (a node without a data dir): nothing survives the node.
    pub fn memory() -> Store {
        Store {
            disk: None,
            docs: Mutex::new(HashMap::new()),
            gone: Mutex::new(HashSet::new()),
            creating: Mutex::new(HashSet::new()),
            created_by: Mutex::new(HashMap::new()),
            stream: Stream::default(),
        }
    }

    /// Whether documents are kept on disk.
    pub fn persistent(&self) -> bool {
        self.disk.is_some()
    }

    fn load_all(&self) -> Result<(), DocsError> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        let entries = std::fs::read_dir(&disk.dir).map_err(DocsError::io("listing", &disk.dir))?;
        for e in entries {
            let e = e.map_err(DocsError::io("listing", &disk.dir))?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("tmp-") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            let Ok(id) = stem.parse::<DocId>() else {
                continue;
            };
            match ext {
                GONE_EXT => {
                    lock(&self.gone).insert(id);
                }
                EXT => {
                    let entry = load(&*disk.key, id, &path)?;
                    lock(&self.docs).insert(id, Arc::new(entry));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Loads the document `id` from its log at `path`.
fn load(key: &dyn Sealer, id: DocId, path: &std::path::Path) -> Result<Entry, DocsError> {
    let (log, records) = Log::open(path, key, id.0)?;
    let bad = |why: String| DocsError::Corrupted {
        what: format!("document {id}: {why}"),
    };
    let mut reach = None;
    let mut doc = AutoCommit::new();
    let mut size = 0u64;
    let mut since = (0u64, 0u64);
    for r in records {
        match r.kind {
            KIND_REACH => {
                let b = r.payload.first().copied().unwrap_or(u8::MAX);
                reach = Some(Reach::from_u8(b).ok_or_else(|| bad("reach".into()))?);
            }
            KIND_SNAPSHOT => {
                doc = AutoCommit::load(&r.payload).map_err(|e| bad(e.to_string()))?;
                size = r.payload.len() as u64;
                since = (0, 0);
            }
            KIND_CHANGES => {
                doc.load_incremental(&r.payload)
                    .map_err(|e| bad(e.to_string()))?;
                size += r.payload.len() as u64;
                since.0 += 1;
                since.1 += r.payload.len() as u64;
            }
            k => warn!(doc = %id, kind = k, "skipping a document record of an unknown kind"),
        }
    }
    let reach = reach.ok_or_else(|| bad("no reach record".into()))?;
    // What was loaded is on disk: the next incremental save starts from here.
    let _ = doc.save_incremental();
    Ok(Entry {
        id,
        state: Mutex::new(DocState {
            doc,
            reach,
            log: Some(log),
            live: true,
            size,
            since_snapshot: since,
            peers: HashMap::new(),
            books: Books::default(),
        }),
    })
}

impl Store {
    /// Creates a document holding `doc` (durably).
    /// Refuses (`QuotaExceeded`) a document larger than `cap` bytes, and (`Exists`) an id
    /// held here or being created by another caller now.
    pub fn create(
        &self,
        id: DocId,
        reach: Reach,
        mut doc: AutoCommit,
        cap: u64,
    ) -> Result<Arc<Entry>, DocsError> {
        if lock(&self.gone).contains(&id) {
            return Err(DocsError::NotFound { id: id.to_string() });
        }
        // The check that `id` is new and the creation of its log are one step: a second
        // creator (two peers' first messages, a push beside a pull) gets `Exists` and
        // never writes a log over the first one's.
        let _reserved = {
            let docs = lock(&self.docs);
            if docs.contains_key(&id) || !lock(&self.creating).insert(id) {
                return Err(DocsError::Exists { id: id.to_string() });
            }
            Reserved(&self.creating, id)
        };
        let snapshot = doc.save();
        let _ = doc.save_incremental();
        let size = snapshot.len() as u64;
        if size > cap {
            return Err(DocsError::DocTooLarge {
                id: id.to_string(),
                size,
                limit: cap,
            });
        }
        let log = match &self.disk {
            Some(disk) => Some(new_log(disk, id, reach, snapshot)?),
            None => None,
        };
        let entry = Arc::new(Entry {
            id,
            state: Mutex::new(DocState {
                doc,
                reach,
                log,
                live: true,
                size,
                since_snapshot: (0, 0),
                peers: HashMap::new(),
                books: Books::default(),
            }),
        });
        lock(&self.docs).insert(id, entry.clone());
        self.record(id);
        Ok(entry)
    }

    /// The document `id`.
    pub fn get(&self, id: DocId) -> Result<Arc<Entry>, DocsError> {
        lock(&self.docs)
            .get(&id)
            .cloned()
            .ok_or_else(|| DocsError::NotFound { id: id.to_string() })
    }

    /// Whether `id` was deleted here.
    pub fn is_gone(&self, id: DocId) -> bool {
        lock(&self.gone).contains(&id)
    }

    /// Every document, by id.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        let mut v: Vec<_> = lock(&self.docs).values().cloned().collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// Deletes `id`: a durable marker first (so peers cannot bring it back), then the log.
    pub fn delete(&self, id: DocId) -> Result<(), DocsError> {
        let entry = self.get(id)?;
        if let Some(disk) = &self.disk {
            let marker = disk.dir.join(format!("{id}.{GONE_EXT}"));
            std::fs::File::create(&marker)
                .and_then(|f| f.sync_all())
                .map_err(DocsError::io("creating", &marker))?;
        }
        lock(&self.gone).insert(id);
        lock(&self.docs).remove(&id);
        self.stream.forget(id);
        let mut st = entry.lock();
        st.live = false;
        st.log = None;
        st.peers.clear();
        st.books.clear();
        if let Some(disk) = &self.disk {
            let path = log_path(&disk.dir, &id.to_string());
            std::fs::remove_file(&path).map_err(DocsError::io("removing", &path))?;
            crate::durable::sync_dir(&disk.dir).map_err(DocsError::io("syncing", &disk.dir))?;
        }
        Ok(())
    }

    /// Sets the reach of `entry` to `reach`, durably with a data dir (a reach record
    /// appended to its log: the last one wins on load, and compaction writes the current
    /// one). Its per-peer sync states are dropped, so that a widened document starts its
    /// exchanges afresh. Returns whether the reach changed.
    pub fn set_reach(&self, entry: &Entry, reach: Reach) -> Result<bool, DocsError> {
        let mut st = entry.lock();
        if !st.live {
            return Err(DocsError::NotFound {
                id: entry.id.to_string(),
            });
        }
        if st.reach == reach {
            return Ok(false);
        }
        if let (Some(disk), Some(log)) = (&self.disk, st.log.as_mut()) {
            log.append(
                &*disk.key,
                &Record {
                    kind: KIND_REACH,
                    payload: vec![reach.as_u8()],
                },
            )?;
        }
        st.reach = reach;
        st.peers.clear();
        self.record(entry.id);
        Ok(true)
    }

    /// Persists what changed in `st` since its last save (durably, with a data dir),
    /// compacting now and then. Returns whether anything changed.
    pub fn persist(&self, id: DocId, st: &mut DocState) -> Result<bool, DocsError> {
        if !st.live {
            return Err(DocsError::NotFound { id: id.to_string() });
        }
        let bytes = st.doc.save_incremental();
        if bytes.is_empty() {
            return Ok(false);
        }
        let len = bytes.len() as u64;
        if let (Some(disk), Some(log)) = (&self.disk, st.log.as_mut()) {
            log.append(
                &*disk.key,
                &Record {
                    kind: KIND_CHANGES,
                    payload: bytes,
                },
            )?;
        }
        self.record(id);
        st.size += len;
        st.since_snapshot.0 += 1;
        st.since_snapshot.1 += len;
        if st.since_snapshot.0 >= COMPACT_RECORDS || st.since_snapshot.1 >= COMPACT_SLACK {
            self.compact(id, st)?;
        }
        Ok(true)
    }

    /// Replaces the incremental saves of `st` by one snapshot (a new log with a data
    /// dir), which makes its size exact. Everything in `st` must be persisted already.
    fn compact(&self, id: DocId, st: &mut DocState) -> Result<(), DocsError> {
        let snapshot = st.doc.save();
        let _ = st.doc.save_incremental();
        let size = snapshot.len() as u64;
        if let Some(disk) = &self.disk {
            st.log = Some(new_log(disk, id, st.reach, snapshot)?);
        }
        st.size = size;
        st.since_snapshot = (0, 0);
        Ok(())
    }

    /// Refuses (`QuotaExceeded`) growing `st` by about `add` bytes if that would take it
    /// past `cap`. The running size overestimates (incremental saves are larger than a
    /// snapshot), so near the cap the document is compacted first to measure it exactly.
    pub fn check_room(
        &self,
        id: DocId,
        st: &mut DocState,
        add: u64,
        cap: u64,
    ) -> Result<(), DocsError> {
        if st.size.saturating_add(add) <= cap {
            return Ok(());
        }
        if st.since_snapshot.0 > 0 {
            self.compact(id, st)?;
        }
        let size = st.size.saturating_add(add);
        if size > cap {
            return Err(DocsError::DocTooLarge {
                id: id.to_string(),
                size,
                limit: cap,
            });
        }
        Ok(())
    }

    /// Applies a sync message from `peer` to `entry` and persists what it brought.
    /// Returns what changed (`None`: nothing), with the paths it touched if `want`.
    /// A message of `len` encoded bytes that would take the document past `cap` is
    /// refused (`QuotaExceeded`) before it is applied.
    pub fn receive(
        &self,
        entry: &Entry,
        peer: NodeId,
        msg: automerge::sync::Message,
        (len, cap): (u64, u64),
        want: bool,
    ) -> Result<Option<Delta>, DocsError> {
        let mut st = entry.lock();
        let before_heads = st.doc.get_heads();
        let st = &mut *st;
        if !msg.changes.is_empty() {
            self.check_room(entry.id, st, len, cap)?;
        }
        let before = Before::of(&mut st.doc, want);
        let state = st.peers.entry(peer).or_default();
        let r = st.doc.sync().receive_sync_message(state, msg);
        if let Err(e) = r {
            super::restart::restart(&mut st.peers, peer);
            return Err(DocsError::NotAutomerge {
                what: "a sync message",
                why: e.to_string(),
            });
        }
        st.heard_from(peer);
        let changed = st.doc.get_heads() != before_heads;
        self.persist(entry.id, st)?;
        Ok(changed.then(|| before.delta(&mut st.doc)))
    }
}

/// Writes a fresh log for `id` holding its reach and `snapshot` (durably, replacing any).
fn new_log(disk: &Disk, id: DocId, reach: Reach, snapshot: Vec<u8>) -> Result<Log, DocsError> {
    Log::create(
        &disk.dir,
        &*disk.key,
        id.0,
        &id.to_string(),
        &[
            Record {
                kind: KIND_REACH,
                payload: vec![reach.as_u8()],
            },
            Record {
                kind: KIND_SNAPSHOT,
                payload: snapshot,
            },
        ],
    )
}
