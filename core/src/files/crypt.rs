//! Segmented authenticated encryption of file contents (the STREAM construction, as in
//! age), and small AEAD boxes for keys and metadata.
//!
//! A content file is a [`HEADER_LEN`]-byte header followed by the plaintext cut into
//! [`SEGMENT`]-byte segments, each sealed with ChaCha20-Poly1305 under a fresh random
//! per-file key. Segment `i`'s nonce is `prefix (7 bytes) ‖ i (u32 big-endian) ‖ last`
//! where `last` is 1 for the final segment and 0 otherwise, so truncation, reordering and
//! appending are all detected. The per-file key is wrapped (sealed) in the header by the
//! storage key. `docs/storage-format.md` is the byte-exact description.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::rand::{SecureRandom, SystemRandom};

use super::error::FilesError;

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
/// Bytes of authentication tag per sealed segment or box.
pub const TAG: usize = 16;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of an AEAD nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of the per-file nonce prefix.
pub const PREFIX_LEN: usize = 7;
/// The first bytes of every content file.
pub const MAGIC: &[u8; 8] = b"memmeshF";
/// The content-file format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Algorithm number of ChaCha20-Poly1305 (the only one in version 1).
pub const ALG_CHACHA20_POLY1305: u8 = 1;
/// Bytes of the header part authenticated as the wrap's associated data.
const HEADER_AAD_LEN: usize = 8 + 1 + 1 + 4 + PREFIX_LEN;
/// Bytes of a content file's header.
pub const HEADER_LEN: usize = HEADER_AAD_LEN + NONCE_LEN + KEY_LEN + TAG;
/// Bytes of a sealed full segment.
pub const SEALED_SEGMENT: usize = SEGMENT + TAG;

/// The random-number generator (the operating system's).
pub(crate) fn random<const N: usize>() -> Result<[u8; N], FilesError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| FilesError::Crypto("the system random generator failed"))?;
    Ok(out)
}

/// A ChaCha20-Poly1305 key.
pub(crate) fn aead_key(bytes: &[u8; KEY_LEN]) -> Result<LessSafeKey, FilesError> {
    UnboundKey::new(&CHACHA20_POLY1305, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| FilesError::Crypto("building a ChaCha20-Poly1305 key"))
}

/// Seals `plain` with a random nonce: `nonce (12) ‖ ciphertext ‖ tag (16)`.
pub(crate) fn seal_box(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, FilesError> {
    seal_box_with(key, aad, plain, random()?)
}

/// [`seal_box`] with a nonce the caller drew from [`random`] (with other random bytes, in
/// one call to the system's generator).
fn seal_box_with(
    key: &LessSafeKey,
    aad: &[u8],
    plain: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, FilesError> {
    let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| FilesError::Crypto("sealing a box"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a box made by [`seal_box`]; `None` if it fails authentication (wrong key,
/// tampered, truncated).
pub(crate) fn open_box(key: &LessSafeKey, aad: &[u8], boxed: &[u8]) -> Option<Vec<u8>> {
    if boxed.len() < NONCE_LEN + TAG {
        return None;
    }
    let (nonce, sealed) = boxed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
    let n = plain.len();
    buf.truncate(n);
    Some(buf)
}

/// The number of segments a plaintext of `size` bytes is cut into (an empty plaintext
/// is one empty segment).
pub fn segments(size: u64) -> u64 {
    size.div_ceil(SEGMENT as u64).max(1)
}

/// The length of the content file holding a plaintext of `size` bytes.
pub fn stored_len(size: u64) -> u64 {
    HEADER_LEN as u64 + size + segments(size) * TAG as u64
}

/// The plaintext length of a content file `stored` bytes long, or `None` if no
/// plaintext encrypts to that length.
pub fn plain_len(stored: u64) -> Option<u64> {
    let body = stored.checked_sub(HEADER_LEN as u64)?;
    let n = body.div_ceil(SEALED_SEGMENT as u64).max(1);
    let size = body.checked_sub(n * TAG as u64)?;
    (stored_len(size) == stored).then_some(size)
}

fn segment_nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
    n[NONCE_LEN - 1] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// One file's segment key and nonce prefix: seals or opens any segment by its number,
/// from any thread (what the parallel stream in `parallel.rs` shares between workers).
pub struct SegmentKey {
    key: LessSafeKey,
    prefix: [u8; PREFIX_LEN],
}

impl std::fmt::Debug for SegmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentKey").finish_non_exhaustive()
    }
}

impl SegmentKey {
    /// A new file: draws its key and nonce prefix, and returns the header to write first
    /// (the file key wrapped by `storage`), as [`Encryptor::new`] does.
    pub fn new_file(storage: &LessSafeKey) -> Result<(SegmentKey, Vec<u8>), FilesError> {
        // The file key, the nonce prefix and the wrap's nonce: independent random bytes,
        // drawn in one call to the system's generator.
        let drawn: [u8; KEY_LEN + PREFIX_LEN + NONCE_LEN] = random()?;
        let (mut file_key, mut prefix, mut nonce) =
            ([0u8; KEY_LEN], [0u8; PREFIX_LEN], [0u8; NONCE_LEN]);
        file_key.copy_from_slice(&drawn[..KEY_LEN]);
        prefix.copy_from_slice(&drawn[KEY_LEN..KEY_LEN + PREFIX_LEN]);
        nonce.copy_from_slice(&drawn[KEY_LEN + PREFIX_LEN..]);
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.push(ALG_CHACHA20_POLY1305);
        header.extend_from_slice(&(SEGMENT as u32).to_le_bytes());
        header.extend_from_slice(&prefix);
        let wrapped = seal_box_with(storage, &header, &file_key, nonce)?;
        header.extend_from_slice(&wrapped);
        debug_assert_eq!(header.len(), HEADER_LEN);
        let key = aead_key(&file_key)?;
        Ok((SegmentKey { key, prefix }, header))
    }

    /// Checks a content file's `header` and unwraps its file key with `storage`.
    pub fn open_file(
        storage: &LessSafeKey,
        header: &[u8],
        what: &str,
    ) -> Result<SegmentKey, FilesError> {
        let (key, prefix) = open_header(storage, header, what)?;
        Ok(SegmentKey { key, prefix })
    }

    /// Seals segment number `counter` in place (`plain` is its plaintext, at most
    /// [`SEGMENT`] bytes) and returns its tag, to be written right after it.
    pub fn seal(
        &self,
        counter: u32,
        last: bool,
        plain: &mut [u8],
    ) -> Result<[u8; TAG], FilesError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                segment_nonce(&self.prefix, counter, last),
                Aad::empty(),
                plain,
            )
            .map_err(|_| FilesError::Crypto("sealing a segment"))?;
        let mut out = [0u8; TAG];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens sealed segment number `counter` (ciphertext and tag) in place and returns
    /// its plaintext, or `Corrupted` if it does not authenticate as that segment.
    pub fn open<'a>(
        &self,
        counter: u32,
        last: bool,
        sealed: &'a mut [u8],
        what: &str,
    ) -> Result<&'a [u8], FilesError> {
        self.key
            .open_in_place(
                segment_nonce(&self.prefix, counter, last),
                Aad::empty(),
                sealed,
            )
            .map(|p| &*p)
            .map_err(|_| FilesError::corrupted(format!("{what}: segment {counter}")))
    }
}

/// Encrypts one file's plaintext as it is fed, in bounded memory (one segment).
pub struct Encryptor {
    key: LessSafeKey,
    prefix: [u8; PREFIX_LEN],
    counter: u32,
    pending: Vec<u8>,
    hasher: blake3::Hasher,
    size: u64,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("counter", &self.counter)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// A new file: draws its key and nonce prefix, and returns the header to write
    /// first (the file key wrapped by `storage`).
    pub fn new(storage: &LessSafeKey) -> Result<(Encryptor, Vec<u8>), FilesError> {
        let (SegmentKey { key, prefix }, header) = SegmentKey::new_file(storage)?;
        let enc = Encryptor {
            key,
            prefix,
            counter: 0,
            pending: Vec::with_capacity(SEGMENT),
            hasher: blake3::Hasher::new(),
            size: 0,
        };
        Ok((enc, header))
    }

    /// Feeds plaintext; appends to `out` every segment now known not to be the last.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), FilesError> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.pending.len() == SEGMENT {
                // More data follows: the pending full segment is not the last.
                self.seal_pending(false, out)?;
            }
            let take = (SEGMENT - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Continues a partial file (`files/partial-*`, ADR 0018) whose `header` this
    /// encryptor wrote and has `segments` sealed segments so far, `hasher` and `size` over their plaintext (read back and verified).
    pub fn resumed(
        storage: &LessSafeKey,
        header: &[u8],
        segments: u32,
        hasher: blake3::Hasher,
        size: u64,
    ) -> Result<Encryptor, FilesError> {
        let (key, prefix) = open_header(storage, header, "partial file")?;
        Ok(Encryptor {
            key,
            prefix,
            counter: segments,
            pending: Vec::with_capacity(SEGMENT),
            hasher,
            size,
        })
    }

    /// Seals a full pending segment as not the last one (the caller knows more plaintext
    /// follows), so that everything fed so far is in `out`; a checkpoint of a partial
    /// file needs it. Nothing happens if less than a full segment is pending.
    pub fn seal_full(&mut self, out: &mut Vec<u8>) -> Result<(), FilesError> {
        if self.pending.len() == SEGMENT {
            self.seal_pending(false, out)?;
        }
        Ok(())
    }

    /// Whether plaintext fed is waiting in a segment not sealed yet.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Seals the last segment into `out`; returns the plaintext's BLAKE3 digest and size.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<([u8; 32], u64), FilesError> {
        self.seal_pending(true, out)?;
        Ok((*self.hasher.finalize().as_bytes(), self.size))
    }

    fn seal_pending(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), FilesError> {
        let start = out.len();
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        let tag = self
            .key
            .seal_in_place_separate_tag(
                segment_nonce(&self.prefix, self.counter, last),
                Aad::empty(),
                &mut out[start..],
            )
            .map_err(|_| FilesError::Crypto("sealing a segment"))?;
        out.extend_from_slice(tag.as_ref());
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| FilesError::Invalid("file too large (2^32 segments)".into()))?;
        Ok(())
    }
}

/// Checks a content file's `header` and unwraps its file key with `storage`: the
/// segments' key and nonce prefix.
fn open_header(
    storage: &LessSafeKey,
    header: &[u8],
    what: &str,
) -> Result<(LessSafeKey, [u8; PREFIX_LEN]), FilesError> {
    let bad = |part: &str| FilesError::corrupted(format!("{what}: {part}"));
    if header.len() != HEADER_LEN || &header[..8] != MAGIC {
        return Err(bad("not a memmesh content file"));
    }
    if header[8] != VERSION || header[9] != ALG_CHACHA20_POLY1305 {
        return Err(bad("unknown content-file version or algorithm"));
    }
    if header[10..14] != (SEGMENT as u32).to_le_bytes() {
        return Err(bad("unexpected segment size"));
    }
    let (aad, wrapped) = header.split_at(HEADER_AAD_LEN);
    let file_key = open_box(storage, aad, wrapped).ok_or_else(|| bad("file key"))?;
    let file_key: [u8; KEY_LEN] = file_key.try_into().map_err(|_| bad("file key length"))?;
    let mut prefix = [0u8; PREFIX_LEN];
    prefix.copy_from_slice(&aad[14..14 + PREFIX_LEN]);
    Ok((aead_key(&file_key)?, prefix))
}

/// Decrypts one file's segments, verifying each before its plaintext is handed out.
pub struct Decryptor {
    key: LessSafeKey,
    prefix: [u8; PREFIX_LEN],
    counter: u32,
    segments: u64,
    done: bool,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("counter", &self.counter)
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// Checks `header` and unwraps the file key with `storage`, for a content file
    /// `stored` bytes long. `what` names the file in errors.
    pub fn new(
        storage: &LessSafeKey,
        header: &[u8],
        stored: u64,
        what: &str,
    ) -> Result<Decryptor, FilesError> {
        let bad = |part: &str| FilesError::corrupted(format!("{what}: {part}"));
        let size = plain_len(stored).ok_or_else(|| bad("impossible length"))?;
        let segments = segments(size);
        if segments > u64::from(u32::MAX) + 1 {
            return Err(bad("too many segments"));
        }
        let (key, prefix) = open_header(storage, header, what)?;
        Ok(Decryptor {
            key,
            prefix,
            counter: 0,
            segments,
            done: false,
        })
    }

    /// Reads back the sealed segments of a partial file (`files/partial-*`): none of
    /// them is the last one, so every segment is opened as not the last.
    pub fn partial(
        storage: &LessSafeKey,
        header: &[u8],
        what: &str,
    ) -> Result<Decryptor, FilesError> {
        let (key, prefix) = open_header(storage, header, what)?;
        Ok(Decryptor {
            key,
            prefix,
            counter: 0,
            segments: u64::MAX,
            done: false,
        })
    }

    /// The number of segments in the file.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Opens the next sealed segment in place and returns its plaintext. The caller
    /// passes the segments in order, each [`SEALED_SEGMENT`] bytes except the last.
    pub fn open<'a>(&mut self, sealed: &'a mut [u8], what: &str) -> Result<&'a [u8], FilesError> {
        if self.done {
            return Err(FilesError::corrupted(format!(
                "{what}: data after the last segment"
            )));
        }
        let last = u64::from(self.counter) + 1 == self.segments;
        let nonce = segment_nonce(&self.prefix, self.counter, last);
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), sealed)
            .map_err(|_| FilesError::corrupted(format!("{what}: segment {}", self.counter)))?;
        if last {
            self.done = true;
        } else {
            self.counter += 1;
        }
        Ok(plain)
    }

    /// Whether the last segment has been opened.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> LessSafeKey {
        aead_key(&[7u8; KEY_LEN]).unwrap()
    }

    fn encrypt(data: &[u8], feed: usize) -> (Vec<u8>, [u8; 32]) {
        let (mut enc, mut out) = Encryptor::new(&storage()).unwrap();
        for chunk in data.chunks(feed.max(1)) {
            enc.update(chunk, &mut out).unwrap();
        }
        let (digest, size) = enc.finish(&mut out).unwrap();
        assert_eq!(size, data.len() as u64);
        (out, digest)
    }

    fn decrypt(file: &[u8]) -> Result<Vec<u8>, FilesError> {
        let header = file.get(..HEADER_LEN).unwrap_or(file);
        let mut dec = Decryptor::new(&storage(), header, file.len() as u64, "f")?;
        let mut body = file[HEADER_LEN..].to_vec();
        let mut out = Vec::new();
        for seg in body.chunks_mut(SEALED_SEGMENT) {
            out.extend_from_slice(dec.open(seg, "f")?);
        }
        assert!(dec.is_done());
        Ok(out)
    }

    #[test]
    fn round_trips_at_segment_boundaries_and_fed_in_any_pieces() {
        for size in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            2 * SEGMENT,
            3 * SEGMENT + 5,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            for feed in [1000, SEGMENT, size + 1] {
                let (file, digest) = encrypt(&data, feed);
                assert_eq!(file.len() as u64, stored_len(size as u64), "size {size}");
                assert_eq!(plain_len(file.len() as u64), Some(size as u64));
                assert_eq!(digest, *blake3::hash(&data).as_bytes());
                assert_eq!(decrypt(&file).unwrap(), data, "size {size} feed {feed}");
            }
        }
    }

    #[test]
    fn lengths_that_no_plaintext_has_are_refused() {
        assert_eq!(plain_len(HEADER_LEN as u64 + TAG as u64 - 1), None);
        assert_eq!(plain_len(stored_len(SEGMENT as u64) + TAG as u64), None);
        assert_eq!(
            plain_len(stored_len(SEGMENT as u64) + TAG as u64 + 1),
            Some(SEGMENT as u64 + 1)
        );
    }

    #[test]
    fn a_flipped_byte_anywhere_is_detected() {
        let data = vec![42u8; 2 * SEGMENT + 10];
        let (file, _) = encrypt(&data, SEGMENT);
        for at in [
            0,
            9,
            15,
            20,
            HEADER_LEN - 1,
            HEADER_LEN,
            HEADER_LEN + SEGMENT + 3,
            file.len() - 1,
        ] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            let e = decrypt(&bad).unwrap_err();
            assert!(matches!(e, FilesError::Corrupted { .. }), "byte {at}: {e}");
        }
    }

    #[test]
    fn truncation_and_reordering_are_detected() {
        let data = vec![1u8; 3 * SEGMENT];
        let (file, _) = encrypt(&data, SEGMENT);
        // Cut at a segment boundary: the new last segment was sealed as not-last.
        let cut = &file[..HEADER_LEN + 2 * SEALED_SEGMENT];
        assert!(decrypt(cut).is_err());
        // Cut inside a segment.
        assert!(decrypt(&file[..file.len() - 1]).is_err());
        // Swap segments 0 and 1.
        let mut swapped = file.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + SEALED_SEGMENT);
        let seg0 = file[a..b].to_vec();
        swapped[a..b].copy_from_slice(&file[b..b + SEALED_SEGMENT]);
        swapped[b..b + SEALED_SEGMENT].copy_from_slice(&seg0);
        assert!(decrypt(&swapped).is_err());
    }

    #[test]
    fn an_encryption_resumed_after_whole_segments_gives_a_file_that_reads_back() {
        let data: Vec<u8> = (0..5 * SEGMENT + 77)
            .map(|i| (i * 13 % 251) as u8)
            .collect();
        let cut = 3 * SEGMENT;
        let (mut enc, mut file) = Encryptor::new(&storage()).unwrap();
        enc.update(&data[..cut], &mut file).unwrap();
        enc.seal_full(&mut file).unwrap();
        assert!(!enc.has_pending());
        assert_eq!(file.len(), HEADER_LEN + 3 * SEALED_SEGMENT);
        drop(enc);
        // Read the kept part back as a partial (every segment not the last).
        let mut dec = Decryptor::partial(&storage(), &file[..HEADER_LEN], "p").unwrap();
        let mut hasher = blake3::Hasher::new();
        let mut kept = file[HEADER_LEN..].to_vec();
        for seg in kept.chunks_mut(SEALED_SEGMENT) {
            hasher.update(dec.open(seg, "p").unwrap());
        }
        let header = file[..HEADER_LEN].to_vec();
        let mut enc = Encryptor::resumed(&storage(), &header, 3, hasher, cut as u64).unwrap();
        enc.update(&data[cut..], &mut file).unwrap();
        let (digest, size) = enc.finish(&mut file).unwrap();
        assert_eq!(
            (digest, size),
            (*blake3::hash(&data).as_bytes(), data.len() as u64)
        );
        assert_eq!(decrypt(&file).unwrap(), data);
        // Another storage key cannot continue it.
        let other = aead_key(&[8u8; KEY_LEN]).unwrap();
        assert!(Encryptor::resumed(&other, &header, 3, blake3::Hasher::new(), 0).is_err());
    }

    #[test]
    fn another_storage_key_cannot_open_a_file() {
        let (file, _) = encrypt(b"secret", 10);
        let other = aead_key(&[8u8; KEY_LEN]).unwrap();
        let e = Decryptor::new(&other, &file[..HEADER_LEN], file.len() as u64, "f").unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }));
    }

    #[test]
    fn boxes_round_trip_and_bind_their_associated_data() {
        let k = storage();
        let b = seal_box(&k, b"ctx", b"name.txt").unwrap();
        assert_eq!(open_box(&k, b"ctx", &b).unwrap(), b"name.txt");
        assert!(open_box(&k, b"other", &b).is_none());
        assert!(open_box(&k, b"ctx", &b[..b.len() - 1]).is_none());
        assert!(open_box(&k, b"ctx", &[]).is_none());
    }
}
