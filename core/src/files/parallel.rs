//! Sealing and opening one content file's segments on several threads (issue 14 (a)).
//!
//! The file is cut into blocks of segments (`blocks.rs`). A put reads and hashes the
//! plaintext on the calling thread, the workers seal blocks in turn, and a writer thread
//! writes them in file order, one write per block; in a get each worker reads its own
//! blocks of ciphertext (positional reads), opens (authenticates and decrypts) them and
//! hashes each segment's plaintext as a subtree of the file's BLAKE3 tree, and the
//! calling thread merges those hashes and hands the plaintext to its sink in file order. The bytes are exactly those of the one-thread `Encryptor` and `Decryptor` (same
//! key, nonces and layout); no plaintext of a block is handed out before every segment of
//! it authenticated, and a bounded number of block buffers exist at once
//! ([`Shape::in_flight`] for a put, two per worker for a get), whatever the file's size.
//! Everything runs on threads scoped to the call (a blocking call, off the async runtime).

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};

use super::blocks::{blocks_of, Block, Shape};
use super::crypt::{plain_len, segments, SegmentKey, HEADER_LEN, SEALED_SEGMENT, SEGMENT, TAG};
use super::error::FilesError;
use crate::hashtree::{subtree_hash, TreeStack};

/// A block and its buffer (segment `j` at `j * SEALED_SEGMENT`).
struct Job {
    block: Block,
    buf: Vec<u8>,
}

type Done = Result<Job, FilesError>;

fn panicked() -> FilesError {
    FilesError::Internal("a files worker thread panicked")
}

fn too_large() -> FilesError {
    FilesError::Invalid("file too large (2^32 segments)".into())
}

/// Seals every segment of a job's block in place, each tag right after its segment.
fn seal_block(key: &SegmentKey, job: &mut Job) -> Result<(), FilesError> {
    for j in 0..job.block.segments {
        let (at, len) = job.block.segment(j);
        let (counter, last) = job.block.counter(j).ok_or_else(too_large)?;
        let tag = key.seal(counter, last, &mut job.buf[at..at + len])?;
        job.buf[at + len..at + len + TAG].copy_from_slice(&tag);
    }
    Ok(())
}

/// The BLAKE3 subtree hash of each opened segment of `job` (of `count` in the file): a
/// segment is a complete subtree (64 KiB, a power of two), so the file's hash is merged
/// from these in order (`TreeStack`) without hashing the plaintext on one thread.
fn segment_hashes(job: &Job, count: u64) -> Vec<[u8; 32]> {
    (0..job.block.segments)
        .map(|j| {
            let (at, len) = job.block.segment(j);
            subtree_hash(
                job.block.first + j as u64,
                count,
                SEGMENT as u32,
                &job.buf[at..at + len],
            )
        })
        .collect()
}

/// Opens every segment of a job's block in place; the plaintext of segment `j` is then
/// at `segment(j)`.
fn open_block(key: &SegmentKey, job: &mut Job, what: &str) -> Result<(), FilesError> {
    for j in 0..job.block.segments {
        let (at, len) = job.block.segment(j);
        let (counter, last) = job.block.counter(j).ok_or_else(too_large)?;
        key.open(counter, last, &mut job.buf[at..at + len + TAG], what)?;
    }
    Ok(())
}

/// A worker: works on the jobs it is given, in order, and passes them (or their error)
/// on. Stops when either side is gone.
fn work(
    jobs: Receiver<Done>,
    done: Sender<Done>,
    each: impl Fn(&mut Job) -> Result<(), FilesError>,
) {
    for job in jobs {
        let out = job.and_then(|mut job| each(&mut job).map(|()| job));
        if done.send(out).is_err() {
            return;
        }
    }
}

/// The workers' queues: where block `i` is sent, and where it comes back.
struct Crew {
    to: Vec<Sender<Done>>,
    from: Vec<Receiver<Done>>,
}

/// Starts `shape.workers` workers in `scope`, each running `each` on its blocks.
fn crew<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    shape: Shape,
    each: impl Fn(&mut Job) -> Result<(), FilesError> + Send + Sync + Copy + 'scope,
) -> Crew {
    let mut crew = Crew {
        to: Vec::new(),
        from: Vec::new(),
    };
    for _ in 0..shape.workers.max(1) {
        let (to, jobs) = channel();
        let (done, from) = channel();
        scope.spawn(move || work(jobs, done, each));
        crew.to.push(to);
        crew.from.push(from);
    }
    crew
}

/// A pool of `shape.in_flight()` block buffers: the memory bound.
fn pool(shape: Shape) -> (Sender<Vec<u8>>, Receiver<Vec<u8>>) {
    let (give, take) = channel();
    for _ in 0..shape.in_flight() {
        let _ = give.send(Vec::new());
    }
    (give, take)
}

/// Reads plaintext from `source` into the segment slots of `buf` (a block of
/// `shape.per` segments) until it is full or the source ends, hashing it in order.
/// Returns the plaintext bytes read. More than `limit` bytes in all is `Invalid`.
fn fill(
    source: &mut impl Read,
    buf: &mut [u8],
    per: usize,
    hasher: &mut blake3::Hasher,
    total: &mut u64,
    limit: u64,
    what: &Path,
) -> Result<usize, FilesError> {
    let mut plain = 0;
    for j in 0..per {
        let at = j * SEALED_SEGMENT;
        let mut got = 0;
        while got < SEGMENT {
            let n = match source.read(&mut buf[at + got..at + SEGMENT]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FilesError::io("reading", what)(e)),
            };
            if n == 0 {
                break;
            }
            got += n;
            *total += n as u64;
            if *total > limit {
                return Err(FilesError::Invalid(format!(
                    "{} grew while it was being stored",
                    what.display()
                )));
            }
        }
        hasher.update(&buf[at..at + got]);
        plain += got;
        if got < SEGMENT {
            break;
        }
    }
    Ok(plain)
}

/// Encrypts everything `source` yields (at most `limit` bytes, more is `Invalid`) under
/// `key`, handing the sealed segments in file order to `write` (on a thread of its own);
/// the header is the caller's to write first. Returns the plaintext's BLAKE3 digest and
/// size.
pub fn seal_stream(
    mut source: impl Read,
    key: &SegmentKey,
    limit: u64,
    what: &Path,
    mut write: impl FnMut(&[u8]) -> Result<(), FilesError> + Send,
    shape: Shape,
) -> Result<([u8; 32], u64), FilesError> {
    std::thread::scope(|s| {
        let Crew { to, from } = crew(s, shape, |job| seal_block(key, job));
        let (give, take) = pool(shape);
        let writer = s.spawn(move || -> Result<(), Option<FilesError>> {
            for index in 0.. {
                let job = match from[shape.worker_of(index)].recv() {
                    Ok(Ok(job)) => job,
                    Ok(Err(e)) => return Err(Some(e)),
                    // The reading side stopped (its error is the one to report).
                    Err(_) => return Err(None),
                };
                write(&job.buf[..job.block.sealed()]).map_err(Some)?;
                if job.block.last {
                    return Ok(());
                }
                let _ = give.send(job.buf);
            }
            Ok(())
        });
        // Reads on this thread; `None` if the writer stopped first.
        let read = (|| -> Result<Option<([u8; 32], u64)>, FilesError> {
            let mut hasher = blake3::Hasher::new();
            let mut total = 0u64;
            let mut held: Option<Job> = None;
            let send = |job: Job| to[shape.worker_of(job.block.index)].send(Ok(job)).is_ok();
            for index in 0u64.. {
                let Ok(mut buf) = take.recv() else {
                    return Ok(None);
                };
                buf.resize(shape.block_bytes(), 0);
                let plain = fill(
                    &mut source,
                    &mut buf,
                    shape.per,
                    &mut hasher,
                    &mut total,
                    limit,
                    what,
                )?;
                if plain > 0 && index * shape.per as u64 > u64::from(u32::MAX) {
                    return Err(too_large());
                }
                if let Some(mut prev) = held.take() {
                    if plain == 0 {
                        // The source ended right after the block held back: it is the
                        // last.
                        prev.block.last = true;
                        return Ok(send(prev).then(|| (*hasher.finalize().as_bytes(), total)));
                    }
                    if !send(prev) {
                        return Ok(None);
                    }
                }
                let full = plain == shape.per * SEGMENT;
                let job = Job {
                    block: Block::new(index, shape.per, plain, !full),
                    buf,
                };
                if full {
                    // Whether it is the last is known once the next read says.
                    held = Some(job);
                } else {
                    return Ok(send(job).then(|| (*hasher.finalize().as_bytes(), total)));
                }
            }
            Ok(None)
        })();
        drop(to);
        drop(take);
        let written = writer.join().map_err(|_| panicked())?;
        match (read, written) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(Some(e))) => Err(e),
            (Ok(Some(v)), Ok(())) => Ok(v),
            _ => Err(FilesError::Internal("a parallel encryption stopped early")),
        }
    })
}

/// Positional reads of stored ciphertext, from several threads at once.
pub trait ReadAt: Sync {
    /// Fills `buf` from `offset`; `UnexpectedEof` if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(self, buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        match self.get(from..).and_then(|rest| rest.get(..buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Block buffers each worker of a get owns: one it reads and opens, one waiting for the
/// calling thread (the memory bound of a get: `2 × workers` blocks).
const GET_BUFFERS_PER_WORKER: usize = 2;

/// Decrypts `len` bytes of a content file's layout (header first) read from `file`,
/// handing each block's verified plaintext to `sink` in file order (on the calling
/// thread), and checks the whole against `id`. Each worker reads its own blocks
/// (positional reads: the kernel's copy of a cold page is a large part of a get's CPU, so
/// it is spread too) and opens them. Any mismatch is `Corrupted`, reported for the first
/// damaged block in file order; `sink` never sees a byte of a block in which a segment did
/// not authenticate. `what` names the file in errors.
pub fn open_stream(
    file: &(impl ReadAt + ?Sized),
    len: u64,
    storage: &ring::aead::LessSafeKey,
    id: &[u8; 32],
    what: &str,
    mut sink: impl FnMut(&[u8]) -> Result<(), FilesError>,
    shape: Shape,
) -> Result<(), FilesError> {
    let bad = |part: &str| FilesError::corrupted(format!("{what}: {part}"));
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0)
        .map_err(|_| bad("short header"))?;
    let size = plain_len(len).ok_or_else(|| bad("impossible length"))?;
    if segments(size) > u64::from(u32::MAX) + 1 {
        return Err(bad("too many segments"));
    }
    let key = SegmentKey::open_file(storage, &header, what)?;
    let key = &key;
    let workers = shape.workers.max(1);
    let count = segments(size);
    std::thread::scope(|s| {
        let mut from = Vec::new();
        let mut back = Vec::new();
        for w in 0..workers {
            let (done, done_rx) = channel::<Result<(Job, Vec<[u8; 32]>), FilesError>>();
            let (give, take) = channel::<Vec<u8>>();
            for _ in 0..GET_BUFFERS_PER_WORKER {
                let _ = give.send(Vec::new());
            }
            s.spawn(move || {
                let mine = blocks_of(size, shape.per).filter(|b| shape.worker_of(b.index) == w);
                for block in mine {
                    let Ok(mut buf) = take.recv() else {
                        return;
                    };
                    buf.resize(shape.block_bytes(), 0);
                    let at = HEADER_LEN as u64 + block.first * SEALED_SEGMENT as u64;
                    let job = match file.read_exact_at(&mut buf[..block.sealed()], at) {
                        Ok(()) => {
                            let mut job = Job { block, buf };
                            open_block(key, &mut job, what).map(|()| {
                                let hashes = segment_hashes(&job, count);
                                (job, hashes)
                            })
                        }
                        Err(_) => Err(bad("content file shrank")),
                    };
                    let failed = job.is_err();
                    if done.send(job).is_err() || failed {
                        return;
                    }
                }
            });
            from.push(done_rx);
            back.push(give);
        }
        let mut tree = TreeStack::new();
        for block in blocks_of(size, shape.per) {
            let w = shape.worker_of(block.index);
            let (job, hashes) = from[w]
                .recv()
                .map_err(|_| FilesError::Internal("a files worker thread stopped"))??;
            for (j, hash) in hashes.into_iter().enumerate() {
                let (at, n) = job.block.segment(j);
                tree.push(hash);
                sink(&job.buf[at..at + n])?;
            }
            let _ = back[w].send(job.buf);
        }
        if tree.count() != count || &tree.root() != id {
            return Err(bad("contents do not match the id"));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::crypt::{aead_key, Decryptor, Encryptor, KEY_LEN};

    fn storage() -> ring::aead::LessSafeKey {
        aead_key(&[7u8; KEY_LEN]).unwrap()
    }

    fn shapes() -> [Shape; 3] {
        [
            Shape { per: 1, workers: 1 },
            Shape { per: 1, workers: 3 },
            Shape { per: 2, workers: 2 },
        ]
    }

    fn data(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Seals `data` in parallel: the content file and the digest.
    fn seal(data: &[u8], shape: Shape) -> (Vec<u8>, [u8; 32]) {
        let (key, header) = SegmentKey::new_file(&storage()).unwrap();
        let mut file = header;
        let (digest, size) = seal_stream(
            data,
            &key,
            data.len() as u64,
            Path::new("x"),
            |b| {
                file.extend_from_slice(b);
                Ok(())
            },
            shape,
        )
        .unwrap();
        assert_eq!(size, data.len() as u64);
        (file, digest)
    }

    /// Opens a content file in parallel: the plaintext the sink was given.
    fn open(file: &[u8], id: &[u8; 32], shape: Shape) -> Result<Vec<u8>, FilesError> {
        let mut out = Vec::new();
        open_stream(
            file,
            file.len() as u64,
            &storage(),
            id,
            "f",
            |p| {
                out.extend_from_slice(p);
                Ok(())
            },
            shape,
        )?;
        Ok(out)
    }

    /// The one-thread decryption (crypt.rs) of a content file.
    fn open_serially(file: &[u8]) -> Vec<u8> {
        let mut dec =
            Decryptor::new(&storage(), &file[..HEADER_LEN], file.len() as u64, "f").unwrap();
        let mut body = file[HEADER_LEN..].to_vec();
        let mut out = Vec::new();
        for seg in body.chunks_mut(SEALED_SEGMENT) {
            out.extend_from_slice(dec.open(seg, "f").unwrap());
        }
        assert!(dec.is_done());
        out
    }

    const SIZES: [usize; 7] = [
        0,
        1,
        SEGMENT - 1,
        SEGMENT,
        SEGMENT + 1,
        5 * SEGMENT,
        7 * SEGMENT + 3,
    ];

    #[test]
    fn parallel_files_read_back_both_ways_at_segment_boundaries() {
        for shape in shapes() {
            for size in SIZES {
                let data = data(size);
                let (file, digest) = seal(&data, shape);
                assert_eq!(
                    file.len() as u64,
                    crate::files::crypt::stored_len(size as u64)
                );
                assert_eq!(digest, *blake3::hash(&data).as_bytes());
                // The one-thread reader reads what the workers sealed...
                assert_eq!(open_serially(&file), data, "size {size} {shape:?}");
                // ...and the workers read what they sealed...
                assert_eq!(open(&file, &digest, shape).unwrap(), data);
            }
        }
    }

    #[test]
    fn files_of_the_one_thread_encryptor_open_in_parallel() {
        for size in SIZES {
            let data = data(size);
            let (mut enc, mut file) = Encryptor::new(&storage()).unwrap();
            enc.update(&data, &mut file).unwrap();
            let (digest, _) = enc.finish(&mut file).unwrap();
            for shape in shapes() {
                assert_eq!(open(&file, &digest, shape).unwrap(), data, "size {size}");
            }
        }
    }

    #[test]
    fn a_flipped_byte_in_a_later_segment_is_corrupted_and_never_handed_out() {
        let data = data(9 * SEGMENT + 100);
        for shape in shapes() {
            let (file, digest) = seal(&data, shape);
            // In segment 6 (a later block for every shape), and in the last segment's tag.
            for at in [HEADER_LEN + 6 * SEALED_SEGMENT + 10, file.len() - 1] {
                let mut bad = file.clone();
                bad[at] ^= 1;
                let mut given = 0usize;
                let e = open_stream(
                    &bad[..],
                    bad.len() as u64,
                    &storage(),
                    &digest,
                    "f",
                    |p| {
                        given += p.len();
                        Ok(())
                    },
                    shape,
                )
                .unwrap_err();
                assert!(matches!(e, FilesError::Corrupted { .. }), "{e}");
                // Only the segments before the damaged one reached the sink.
                let damaged = (at - HEADER_LEN) / SEALED_SEGMENT;
                assert!(given <= damaged * SEGMENT, "{given} bytes given, {shape:?}");
            }
        }
    }

    #[test]
    fn truncated_reordered_or_mismatched_files_are_corrupted() {
        let data = data(4 * SEGMENT);
        let shape = Shape { per: 1, workers: 2 };
        let (file, digest) = seal(&data, shape);
        // Cut at a segment boundary (the new last segment was sealed as not the last),
        // and inside one.
        for cut in [HEADER_LEN + 2 * SEALED_SEGMENT, file.len() - 1] {
            let e = open(&file[..cut], &digest, shape).unwrap_err();
            assert!(matches!(e, FilesError::Corrupted { .. }), "{e}");
        }
        // Claimed longer than it is: the reader runs short.
        let mut out = Vec::new();
        let e = open_stream(
            &file[..],
            file.len() as u64 + SEALED_SEGMENT as u64,
            &storage(),
            &digest,
            "f",
            |p| {
                out.extend_from_slice(p);
                Ok(())
            },
            shape,
        )
        .unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e}");
        // Two segments swapped.
        let mut swapped = file.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + SEALED_SEGMENT);
        swapped[a..b].copy_from_slice(&file[b..b + SEALED_SEGMENT]);
        swapped[b..b + SEALED_SEGMENT].copy_from_slice(&file[a..b]);
        assert!(open(&swapped, &digest, shape).is_err());
        // Authentic, but not the file asked for.
        let e = open(&file, &[0u8; 32], shape).unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e}");
    }

    #[test]
    fn a_source_that_grows_or_fails_or_a_failing_writer_stops_the_seal() {
        let (key, _) = SegmentKey::new_file(&storage()).unwrap();
        let shape = Shape { per: 1, workers: 2 };
        let data = data(6 * SEGMENT);
        let e = seal_stream(
            &data[..],
            &key,
            3 * SEGMENT as u64,
            Path::new("x"),
            |_| Ok(()),
            shape,
        )
        .unwrap_err();
        assert!(matches!(e, FilesError::Invalid(_)), "{e}");
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk gone"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let e = seal_stream(
            Failing(3 * SEGMENT + 5),
            &key,
            u64::MAX,
            Path::new("x"),
            |_| Ok(()),
            shape,
        )
        .unwrap_err();
        assert!(matches!(e, FilesError::Io { .. }), "{e}");
        let mut writes = 0;
        let e = seal_stream(
            &data[..],
            &key,
            u64::MAX,
            Path::new("x"),
            |_| {
                writes += 1;
                if writes == 2 {
                    Err(FilesError::Invalid("disk full".into()))
                } else {
                    Ok(())
                }
            },
            shape,
        )
        .unwrap_err();
        assert!(
            matches!(e, FilesError::Invalid(ref m) if m == "disk full"),
            "{e}"
        );
    }

    #[test]
    fn a_failing_sink_stops_the_open() {
        let data = data(6 * SEGMENT);
        let shape = Shape { per: 1, workers: 2 };
        let (file, digest) = seal(&data, shape);
        let mut calls = 0;
        let e = open_stream(
            &file[..],
            file.len() as u64,
            &storage(),
            &digest,
            "f",
            |_| {
                calls += 1;
                Err(FilesError::Invalid("disk full".into()))
            },
            shape,
        )
        .unwrap_err();
        assert!(matches!(e, FilesError::Invalid(_)));
        assert_eq!(calls, 1);
    }
}
