//! A stored file decrypted into a file as a bounded pipeline of three threads, so that the
//! disk reads, the decryption and the writes (with their writeback) overlap instead of
//! taking turns, as the transfer receiver's do:
//!
//! 1. a reader thread reads the ciphertext in blocks of [`BLOCK_SEGMENTS`] sealed segments;
//! 2. the calling thread opens (authenticates and decrypts) each segment in place;
//! 3. a writer thread hashes the plaintext (BLAKE3, checked against the id at the end),
//!    writes it, and every [`WRITEBACK_STEP`] bytes starts the writeback of what it just
//!    wrote (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux: asynchronous, no journal
//!    commit, no cache flush), so the disk writes while the next blocks are decrypted and
//!    the final fsync has little left to do.
//!
//! Between stages at most [`DEPTH`] blocks wait (about 1 MiB each), and the buffers go
//! back to the reader: memory stays bounded (≈ 2 × ([`DEPTH`] + 2) MiB) for any size. Any
//! failure stops every stage; nothing is reported verified unless every segment opened,
//! the last one was the last, and the BLAKE3 of what was written equals the id.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::crypt::{Decryptor, HEADER_LEN, SEALED_SEGMENT};
use super::error::FilesError;
use super::key::StorageKey;

/// Sealed segments per block read (16 × 64 KiB ≈ 1 MiB).
pub const BLOCK_SEGMENTS: usize = 16;
/// Blocks waiting between two stages at most.
pub const DEPTH: usize = 4;
/// Plaintext bytes written between two starts of writeback.
pub const WRITEBACK_STEP: u64 = 32 << 20;

/// The size of the ciphertext block that starts at body offset `done` of a body of
/// `body` bytes: whole sealed segments, at most [`BLOCK_SEGMENTS`] of them.
pub fn block_len(body: u64, done: u64) -> usize {
    let left = body.saturating_sub(done);
    left.min((BLOCK_SEGMENTS * SEALED_SEGMENT) as u64) as usize
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, FilesError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| FilesError::io("starting a thread for", Path::new(name))(e))
}

fn joined<T>(handle: JoinHandle<Result<T, FilesError>>) -> Result<T, FilesError> {
    handle.join().unwrap_or(Err(FilesError::Internal(
        "a files pipeline thread panicked",
    )))
}

/// Reads the body (`body` bytes after the header) in blocks, reusing returned buffers.
fn read_blocks(
    mut file: File,
    body: u64,
    what: String,
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
) -> Result<(), FilesError> {
    let mut done = 0u64;
    while done < body {
        let n = block_len(body, done);
        let mut buf = empty.try_recv().unwrap_or_default();
        buf.resize(n, 0);
        file.read_exact(&mut buf)
            .map_err(|_| FilesError::corrupted(format!("{what}: content file shrank")))?;
        done += n as u64;
        if full.send(buf).is_err() {
            // The decrypting stage stopped (its error is the one reported).
            return Ok(());
        }
    }
    Ok(())
}

/// Starts writing back `len` bytes of `file` from `from` to the disk, without waiting.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::unix::io::AsRawFd;
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a valid open descriptor; the call only asks the kernel to start writing the
    // range back. A failure only means the final fsync has more to do (it reports errors).
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Elsewhere the final fsync writes everything.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _from: u64, _len: u64) {}

/// Hashes and writes plaintext blocks to `out`, starting the writeback every
/// [`WRITEBACK_STEP`] bytes; returns the BLAKE3 digest and the bytes written once the
/// channel closes.
fn write_blocks(
    mut out: File,
    plain: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    at: std::path::PathBuf,
) -> Result<([u8; 32], u64), FilesError> {
    let mut hasher = blake3::Hasher::new();
    let mut written = 0u64;
    let mut synced = 0u64;
    for block in plain {
        hasher.update(&block);
        out.write_all(&block)
            .map_err(FilesError::io("writing", &at))?;
        written += block.len() as u64;
        if written - synced >= WRITEBACK_STEP {
            start_writeback(&out, synced, written - synced);
            synced = written;
        }
        let _ = back.try_send(block);
    }
    Ok((*hasher.finalize().as_bytes(), written))
}

/// Decrypts the content file `file` (`len` bytes, already checked against the record)
/// into `out` (a new, empty file at `at`), verifying every segment and the whole against
/// `id`. `out` is written but not fsynced here (the caller syncs, then publishes it). Any
/// mismatch is `Corrupted`.
pub fn decrypt_into(
    mut file: File,
    len: u64,
    key: &StorageKey,
    id: &[u8; 32],
    what: &str,
    out: File,
    at: &Path,
) -> Result<(), FilesError> {
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|_| FilesError::corrupted(format!("{what}: short header")))?;
    let mut dec = Decryptor::new(key.aead(), &header, len, what)?;
    let body = len - HEADER_LEN as u64;

    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(DEPTH);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let (plain_tx, plain_rx) = sync_channel::<Vec<u8>>(DEPTH);
    let writer = {
        let at = at.to_path_buf();
        let back = empty_tx;
        spawn("memmesh-files-write", move || {
            write_blocks(out, plain_rx, back, at)
        })?
    };
    let reader = {
        let what = what.to_string();
        spawn("memmesh-files-read", move || {
            read_blocks(file, body, what, full_tx, empty_rx)
        })?
    };

    // The middle stage, on this thread: open each segment in place, compact the plaintext.
    let opened = (|| -> Result<(), FilesError> {
        for mut block in full_rx.iter() {
            let mut plain_end = 0;
            let mut at_seg = 0;
            while at_seg < block.len() {
                let end = (at_seg + SEALED_SEGMENT).min(block.len());
                let n = dec.open(&mut block[at_seg..end], what)?.len();
                block.copy_within(at_seg..at_seg + n, plain_end);
                plain_end += n;
                at_seg = end;
            }
            block.truncate(plain_end);
            if plain_tx.send(block).is_err() {
                // The writer stopped: its error is reported below.
                break;
            }
        }
        Ok(())
    })();
    drop(full_rx);
    drop(plain_tx);
    let read = joined(reader);
    let written = joined(writer);
    opened?;
    read?;
    let (digest, _) = written?;
    if !dec.is_done() {
        return Err(FilesError::corrupted(format!("{what}: truncated")));
    }
    if &digest != id {
        return Err(FilesError::corrupted(format!(
            "{what}: contents do not match the id"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::contents::{write_encrypted, TempFile};

    /// A fresh directory for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("memmesh-pipeline-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn stored(data: &[u8], dir: &Path, key: &StorageKey) -> (std::path::PathBuf, [u8; 32]) {
        let mut tmp = TempFile::create(dir).unwrap();
        let (digest, _) = write_encrypted(data, key, &mut tmp, u64::MAX, dir).unwrap();
        let path = dir.join("stored");
        tmp.rename_to(&path).unwrap();
        (path, digest)
    }

    fn run(path: &Path, key: &StorageKey, id: &[u8; 32], out: &Path) -> Result<(), FilesError> {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        let dest = File::create(out).unwrap();
        decrypt_into(file, len, key, id, "test", dest, out)
    }

    #[test]
    fn blocks_are_whole_segments_and_cover_the_body() {
        let body = (BLOCK_SEGMENTS * SEALED_SEGMENT * 2 + 100) as u64;
        let mut done = 0;
        let mut sizes = Vec::new();
        while done < body {
            let n = block_len(body, done);
            sizes.push(n);
            done += n as u64;
        }
        assert_eq!(done, body);
        assert_eq!(
            sizes,
            vec![
                BLOCK_SEGMENTS * SEALED_SEGMENT,
                BLOCK_SEGMENTS * SEALED_SEGMENT,
                100
            ]
        );
        assert_eq!(block_len(body, body), 0);
    }

    #[test]
    fn sizes_around_blocks_and_segments_read_back() {
        let dir = scratch("sizes");
        let key = StorageKey::from_bytes(&[3; 32]).unwrap();
        let seg = crate::files::crypt::SEGMENT;
        for size in [
            0,
            1,
            seg,
            seg + 1,
            BLOCK_SEGMENTS * seg,
            BLOCK_SEGMENTS * seg + 7,
            3 * BLOCK_SEGMENTS * seg - 1,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 + i / 7) as u8).collect();
            let (path, id) = stored(&data, &dir, &key);
            let out = dir.join("out");
            run(&path, &key, &id, &out).unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), data, "size {size}");
            std::fs::remove_file(&out).unwrap();
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flipped_byte_a_truncation_or_a_wrong_id_is_corrupted() {
        let dir = scratch("corrupted");
        let key = StorageKey::from_bytes(&[4; 32]).unwrap();
        let data = vec![9u8; 3 * BLOCK_SEGMENTS * crate::files::crypt::SEGMENT / 2];
        let (path, id) = stored(&data, &dir, &key);
        let good = std::fs::read(&path).unwrap();
        let out = dir.join("out");

        let mut flipped = good.clone();
        let at = flipped.len() - 10;
        flipped[at] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let e = run(&path, &key, &id, &out).unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e:?}");
        std::fs::remove_file(&out).unwrap();

        // Whole segments cut off the end: every remaining one opens, the last is missing.
        std::fs::write(&path, &good[..HEADER_LEN + 2 * SEALED_SEGMENT]).unwrap();
        let e = run(&path, &key, &id, &out).unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e:?}");
        std::fs::remove_file(&out).unwrap();

        std::fs::write(&path, &good).unwrap();
        let e = run(&path, &key, &[0; 32], &out).unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
