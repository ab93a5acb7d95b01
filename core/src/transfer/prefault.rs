//! The space a memory destination receives into, prefaulted ahead of the reader.
//!
//! A memory destination receives a whole transfer into one fresh allocation (it is handed
//! to the application, so it cannot come from a reused pool). Left alone, every 4 KiB page
//! of it traps into the kernel the first time the reader writes it (~262,000 faults per
//! GiB). [`Space`] cuts the allocation into batches of whole chunks in address order; while
//! the reader fills one batch, the thread that verifies the previous chunk populates the
//! next batch with `madvise(MADV_POPULATE_WRITE)` (Linux 5.14+), one call per batch, so the
//! receive path writes into pages that are already there. The pages are still allocated and
//! zeroed by the kernel (that is the cost of keeping fresh memory); what goes is the trap
//! per page on the reading task. Where the call is not supported it is skipped (the reader
//! then faults the pages as before), and nothing else changes: the batches are joined back
//! without copying, whatever happens to the prefault.

use std::mem::MaybeUninit;

use bytes::BytesMut;

/// Bytes prefaulted per call (rounded to whole chunks, at least two).
pub const PREFAULT_BATCH: usize = 8 << 20;

/// The unread space of a memory destination, in batches of whole chunks.
#[derive(Debug)]
pub(crate) struct Space {
    /// The batch being read into (chunk after chunk, from its front).
    near: BytesMut,
    /// The next batch, prefaulted, once the verifying thread gave it back.
    ready: Option<BytesMut>,
    /// The space after that, not touched yet.
    rest: BytesMut,
    /// Bytes per batch: a multiple of the chunk size.
    batch: usize,
    chunk: usize,
}

impl Space {
    /// The space of `whole` (an empty buffer with the capacity of the whole transfer), read
    /// in chunks of `chunk_size`.
    pub(crate) fn new(whole: BytesMut, chunk_size: usize) -> Self {
        let chunk = chunk_size.max(1);
        let batch = (PREFAULT_BATCH / chunk).max(2) * chunk;
        let mut space = Self {
            near: BytesMut::new(),
            ready: None,
            rest: whole,
            batch,
            chunk,
        };
        space.near = space.next_batch();
        space
    }

    /// Splits the next batch off the front of the untouched space.
    fn next_batch(&mut self) -> BytesMut {
        let at = self.batch.min(self.rest.capacity());
        let tail = self.rest.split_off(at);
        std::mem::replace(&mut self.rest, tail)
    }

    /// A buffer to read the next chunk into: the rest of the current batch, or, once it is
    /// full, the next one (prefaulted if the verifying thread was in time).
    pub(crate) fn read_buffer(&mut self) -> BytesMut {
        if self.near.capacity() == 0 {
            self.near = match self.ready.take() {
                Some(batch) => batch,
                None => self.next_batch(),
            };
        }
        std::mem::take(&mut self.near)
    }

    /// Takes back the buffer from [`Space::read_buffer`] once a frame was read into it;
    /// returns the frame's body (the rest of the batch stays for the next chunk).
    pub(crate) fn after_read(&mut self, mut buf: BytesMut) -> BytesMut {
        let body = buf.split();
        self.near = buf;
        body
    }

    /// The next batch to prefault, if one is due: none is waiting, and the next read still
    /// fits in the current batch (so the reader never needs the batch being prefaulted
    /// before it comes back, which it does before the next [`Space::read_buffer`]).
    pub(crate) fn prefault_job(&mut self) -> Option<BytesMut> {
        let due =
            self.ready.is_none() && self.near.capacity() >= self.chunk && self.rest.capacity() > 0;
        due.then(|| self.next_batch())
    }

    /// Takes back a batch from [`Space::prefault_job`] (prefaulted or not).
    pub(crate) fn prefaulted(&mut self, batch: BytesMut) {
        self.ready = Some(batch);
    }
}

/// Prefaults the unused capacity of `batch` (see [`populate_write`]).
pub(crate) fn prefault(batch: &mut BytesMut) {
    populate_write(batch.spare_capacity_mut());
}

/// Asks the kernel to populate the pages of `region` writable now, as writing each of
/// them would, but in one call and without writing anything. A hint only: where it is not
/// supported (not Linux, or a kernel older than 5.14), or it fails, nothing happens and
/// the pages are faulted when first written.
pub(crate) fn populate_write(region: &mut [MaybeUninit<u8>]) {
    #[cfg(target_os = "linux")]
    linux::populate_write(region);
    #[cfg(not(target_os = "linux"))]
    let _ = region;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    /// Set once the kernel answered `EINVAL` (no `MADV_POPULATE_WRITE` before 5.14).
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

    fn page_size() -> usize {
        static PAGE: OnceLock<usize> = OnceLock::new();
        *PAGE.get_or_init(|| {
            // SAFETY: sysconf reads a system constant; no memory is passed.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(size)
                .ok()
                .filter(|s| *s > 0)
                .unwrap_or(4096)
        })
    }

    pub(super) fn populate_write(region: &mut [MaybeUninit<u8>]) {
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return;
        }
        // Only the whole pages inside the region (madvise takes page-aligned ranges; the
        // pages it shares with its neighbours are left to be faulted by the writer).
        let page = page_size();
        let begin = region.as_mut_ptr() as usize;
        let start = begin.next_multiple_of(page);
        let end = (begin + region.len()) / page * page;
        if end <= start {
            return;
        }
        // SAFETY: [start, end) lies inside `region`, which is borrowed mutably for the
        // call, so no other code reads or writes it meanwhile, and it stays allocated.
        // MADV_POPULATE_WRITE only populates page tables, as a write fault would; it does
        // not change a byte of the range (fresh anonymous pages read as zero before and
        // after), so no value Rust code can observe changes.
        let rc = unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            )
        };
        if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            UNSUPPORTED.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    /// Reads `chunks` into `space` the way the receiver does, prefaulting when asked, and
    /// returns the joined whole.
    fn receive(space: &mut Space, chunks: &[Vec<u8>], prefault_each: bool) -> BytesMut {
        let mut assembled = BytesMut::new();
        for chunk in chunks {
            let mut buf = space.read_buffer();
            buf.put_slice(chunk);
            let body = space.after_read(buf);
            if let Some(mut batch) = space.prefault_job() {
                if prefault_each {
                    prefault(&mut batch);
                }
                space.prefaulted(batch);
            }
            assembled.unsplit(body);
        }
        assembled
    }

    fn chunks(len: usize, chunk: usize) -> Vec<Vec<u8>> {
        (0..len)
            .step_by(chunk)
            .map(|at| {
                (at..(at + chunk).min(len))
                    .map(|i| (i % 251) as u8)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn chunks_land_in_one_allocation_in_order() {
        let chunk = 64 << 10;
        for len in [1, chunk, chunk + 1, 3 * PREFAULT_BATCH + 5 * chunk + 17] {
            for prefault_each in [false, true] {
                let whole = BytesMut::with_capacity(len);
                let base = whole.as_ptr();
                let mut space = Space::new(whole, chunk);
                let parts = chunks(len, chunk);
                let got = receive(&mut space, &parts, prefault_each);
                assert_eq!(got.len(), len);
                assert_eq!(got.as_ptr(), base, "joined without copying ({len})");
                assert_eq!(&got[..], &parts.concat()[..]);
            }
        }
    }

    #[test]
    fn a_batch_is_whole_chunks_and_never_needed_while_out() {
        let chunk = 1 << 20;
        let len = 5 * PREFAULT_BATCH;
        let whole = BytesMut::with_capacity(len);
        let base = whole.as_ptr() as usize;
        let mut space = Space::new(whole, chunk);
        assert_eq!(space.batch % chunk, 0);
        let mut out = None;
        let mut jobs = 0;
        for n in 0..len / chunk {
            let mut buf = space.read_buffer();
            assert!(buf.capacity() >= chunk, "the read fits the current batch");
            assert_eq!(buf.as_ptr() as usize, base + n * chunk, "in address order");
            buf.put_bytes(7, chunk);
            let _ = space.after_read(buf);
            if let Some(batch) = out.take() {
                space.prefaulted(batch);
            }
            if let Some(batch) = space.prefault_job() {
                jobs += 1;
                // Given back only after the next read, as the receiver does.
                out = Some(batch);
            }
        }
        assert_eq!(jobs, len / space.batch - 1, "every batch but the first");
    }

    #[test]
    fn large_chunks_make_batches_of_two() {
        let space = Space::new(BytesMut::with_capacity(64 << 20), 4 << 20);
        assert_eq!(space.batch, 8 << 20);
        let space = Space::new(BytesMut::with_capacity(64 << 20), 16 << 20);
        assert_eq!(space.batch, 32 << 20);
    }

    #[test]
    fn populating_keeps_the_contents() {
        let mut buf = BytesMut::with_capacity(1 << 20);
        buf.put_bytes(9, 100);
        prefault(&mut buf);
        populate_write(&mut []);
        assert_eq!(&buf[..], &[9u8; 100][..]);
        buf.put_bytes(3, (1 << 20) - 100);
        assert!(buf[100..].iter().all(|b| *b == 3));
    }
}
