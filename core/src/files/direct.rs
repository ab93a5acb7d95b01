//! A content file opened for a get, read around the page cache where the system allows
//! it (`O_DIRECT`, Linux). A get reads each content file once: going through the page cache
//! costs the kernel a copy of every cold page (most of a get's CPU in the profile,
//! `bench/README.md`) and fills the cache with ciphertext. Direct reads are aligned
//! ([`ALIGN`]) into a per-thread buffer and the asked range is copied out of it. Where
//! direct reads are refused (a file system without them, another system) the file is read
//! through the page cache as before.

use std::fs::File;
use std::path::Path;

use super::parallel::ReadAt;

/// Alignment of direct reads' offsets, lengths and buffer (a page; every logical block size
/// divides it).
pub const ALIGN: usize = 4096;

/// A content file open for reading.
#[derive(Debug)]
pub enum Source {
    /// Opened with `O_DIRECT`.
    Direct(File),
    /// Read through the page cache.
    Cached(File),
}

impl Source {
    /// Opens `path`, directly if the system allows it (checked with a first read).
    pub fn open(path: &Path) -> std::io::Result<Source> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let direct = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path);
            if let Ok(f) = direct {
                let source = Source::Direct(f);
                let mut probe = [0u8; 1];
                if source.read_exact_at(&mut probe, 0).is_ok() {
                    return Ok(source);
                }
            }
        }
        File::open(path).map(Source::Cached)
    }

    /// The open file.
    pub fn file(&self) -> &File {
        match self {
            Source::Direct(f) | Source::Cached(f) => f,
        }
    }
}

impl ReadAt for Source {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::Cached(f) => f.read_exact_at(buf, offset),
            #[cfg(target_os = "linux")]
            Source::Direct(f) => read_direct(f, buf, offset),
            #[cfg(not(target_os = "linux"))]
            Source::Direct(f) => f.read_exact_at(buf, offset),
        }
    }
}

/// The aligned span of a direct read of `len` bytes at `offset`: where it starts, where
/// the asked bytes start in it, and its length.
pub fn span(offset: u64, len: usize) -> (u64, usize, usize) {
    let start = offset - offset % ALIGN as u64;
    let head = (offset - start) as usize;
    (start, head, (head + len).next_multiple_of(ALIGN))
}

#[cfg(target_os = "linux")]
fn read_direct(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let eof = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
    let (start, head, len) = span(offset, buf.len());
    let need = head + buf.len();
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len + ALIGN {
            scratch.resize(len + ALIGN, 0);
        }
        let base = scratch.as_ptr() as usize;
        let skip = base.next_multiple_of(ALIGN) - base;
        let area = &mut scratch[skip..skip + len];
        let mut got = 0;
        while got < need {
            match file.read_at(&mut area[got..], start + got as u64) {
                Ok(0) => return Err(eof()),
                Ok(n) => {
                    got += n;
                    // A read short of a whole block ends at the end of the file.
                    if got < need && n % ALIGN != 0 {
                        return Err(eof());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.copy_from_slice(&area[head..need]);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_aligned_and_cover_the_range() {
        assert_eq!(span(0, 1), (0, 0, ALIGN));
        assert_eq!(
            span(81, 65552),
            (0, 81, (81 + 65552usize).next_multiple_of(ALIGN))
        );
        assert_eq!(span(2 * ALIGN as u64, ALIGN), (2 * ALIGN as u64, 0, ALIGN));
        assert_eq!(span(ALIGN as u64 + 5, ALIGN), (ALIGN as u64, 5, 2 * ALIGN));
    }

    #[test]
    fn reads_any_range_and_a_range_past_the_end_is_eof() {
        let dir = std::env::temp_dir().join(format!("memmesh-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..3 * ALIGN + 77).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let source = Source::open(&path).unwrap();
        for (at, len) in [
            (0, 1),
            (81, 5000),
            (ALIGN, ALIGN),
            (5, data.len() - 5),
            (0, data.len()),
        ] {
            let mut buf = vec![0u8; len];
            source.read_exact_at(&mut buf, at as u64).unwrap();
            assert_eq!(buf, data[at..at + len], "{at}+{len}");
        }
        let mut buf = vec![0u8; 100];
        let e = source
            .read_exact_at(&mut buf, data.len() as u64 - 50)
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
