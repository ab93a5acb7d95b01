//! The value log's byte layout and its pure decisions (ADR 0016, amendment "A value log
//! for small files"): where a small file's sealed contents are in the log ([`Loc`], kept
//! in the file's record since schema 4, in the `logged` table under schema 3), how a segment and a record are framed, what recovery does
//! with the segments found at open ([`plan_recovery`]) and which segment to compact
//! ([`to_compact`]), and how the records appended since the last durable metadata commit
//! are found again at open ([`parse_frames`], ADR 0016 amendment "One fsync per small
//! put"). No I/O here; `valuelog.rs` does the reads and writes.

use std::collections::{BTreeMap, HashMap};

/// A segment file starts with this magic, then its version, then 7 zero bytes.
pub const SEGMENT_MAGIC: &[u8; 8] = b"memmeshV";
/// The segment format this build writes: version 2, whose records carry their file's
/// metadata row and a checksum ([`frame`]). Version 1 segments (records of id, length and
/// sealed bytes only) are still read; nothing is appended to them.
pub const SEGMENT_VERSION: u8 = 2;
/// The oldest segment format this build reads.
pub const SEGMENT_VERSION_MIN: u8 = 1;
/// Longest metadata row a record carries (a record's row: 45 bytes of header and the
/// sealed name and content type, each at most 4 KiB).
pub const MAX_ROW: usize = 64 << 10;
/// Length of a record's checksum (the first bytes of a BLAKE3 hash).
pub const CHECK_LEN: usize = 8;
/// Length of a segment's header.
pub const SEGMENT_HEADER: u64 = 16;
/// Length of the part of a record's frame just before its sealed bytes: id (32) ‖ length
/// (u32 LE). In a version 2 segment the row and checksum come before it ([`frame`]).
pub const FRAME_HEADER: u64 = 36;
/// A segment takes no more appends once it is this long (bytes).
pub const SEGMENT_MAX: u64 = 16 << 20;
/// Length of an encoded [`Loc`].
pub const LOC_LEN: usize = 20;

/// Where a file's sealed contents are: `len` bytes at `offset` of segment `segment`
/// (the offset of the sealed bytes, after the record's frame header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    /// The segment's number (its file is [`segment_name`]).
    pub segment: u64,
    /// Offset of the sealed bytes in the segment file.
    pub offset: u64,
    /// Length of the sealed bytes.
    pub len: u32,
}

impl Loc {
    /// `segment (u64 LE) ‖ offset (u64 LE) ‖ len (u32 LE)`.
    pub fn encode(&self) -> [u8; LOC_LEN] {
        let mut out = [0u8; LOC_LEN];
        out[..8].copy_from_slice(&self.segment.to_le_bytes());
        out[8..16].copy_from_slice(&self.offset.to_le_bytes());
        out[16..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Decodes [`Loc::encode`]'s bytes; `None` if malformed (wrong length, an offset
    /// inside the segment or frame header, or an end past `u64`).
    pub fn decode(bytes: &[u8]) -> Option<Loc> {
        if bytes.len() != LOC_LEN {
            return None;
        }
        let loc = Loc {
            segment: u64::from_le_bytes(bytes[..8].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            len: u32::from_le_bytes(bytes[16..].try_into().ok()?),
        };
        (loc.offset >= SEGMENT_HEADER + FRAME_HEADER
            && loc.offset.checked_add(loc.len.into()).is_some())
        .then_some(loc)
    }

    /// The offset just past the sealed bytes.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    /// The offset of the record's id and length (the sealed bytes follow them).
    pub fn frame_start(&self) -> u64 {
        self.offset - FRAME_HEADER
    }
}

/// A segment file's name: 16 lowercase hex digits of its number, then `.log`.
pub fn segment_name(segment: u64) -> String {
    format!("{segment:016x}.log")
}

/// The number of a segment file named by [`segment_name`], `None` for any other name.
pub fn segment_of_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".log")?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A segment's header.
pub fn segment_header() -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8] = SEGMENT_VERSION;
    h
}

/// The version of a segment whose header is `h`, if it is one this build reads.
pub fn segment_version(h: &[u8]) -> Option<u8> {
    let ok = h.len() == SEGMENT_HEADER as usize
        && h[..8] == SEGMENT_MAGIC[..]
        && (SEGMENT_VERSION_MIN..=SEGMENT_VERSION).contains(&h[8])
        && h[9..].iter().all(|&b| b == 0);
    ok.then_some(h[8])
}

/// Whether `h` is a segment header this build reads.
pub fn header_ok(h: &[u8]) -> bool {
    segment_version(h).is_some()
}

/// A record's checksum: the first [`CHECK_LEN`] bytes of the BLAKE3 hash of the frame's
/// other bytes, in order (`row_len ‖ row ‖ id ‖ len ‖ sealed`).
fn check(row: &[u8], id: &[u8; 32], sealed: &[u8]) -> [u8; CHECK_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(&(row.len() as u32).to_le_bytes());
    h.update(row);
    h.update(id);
    h.update(&(sealed.len() as u32).to_le_bytes());
    h.update(sealed);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..CHECK_LEN]);
    out
}

/// Appends one record to `out`, which will be written at `at` of a version 2 segment
/// `segment`; returns where the sealed bytes are. The frame is
/// `row_len (u32 LE) ‖ row ‖ check (8) ‖ id (32) ‖ len (u32 LE) ‖ sealed`: `row` is the
/// file's metadata row (empty for a copy made by compaction, which carries none) and
/// `check` is [`CHECK_LEN`] bytes of BLAKE3 over the other bytes. `None` if `sealed` is
/// longer than a `u32` or `row` than [`MAX_ROW`].
pub fn frame(
    out: &mut Vec<u8>,
    segment: u64,
    at: u64,
    id: &[u8; 32],
    sealed: &[u8],
    row: &[u8],
) -> Option<Loc> {
    let len = u32::try_from(sealed.len()).ok()?;
    if row.len() > MAX_ROW {
        return None;
    }
    out.extend_from_slice(&(row.len() as u32).to_le_bytes());
    out.extend_from_slice(row);
    out.extend_from_slice(&check(row, id, sealed));
    out.extend_from_slice(id);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(sealed);
    let before = 4 + row.len() as u64 + CHECK_LEN as u64 + FRAME_HEADER;
    Some(Loc {
        segment,
        offset: at + before,
        len,
    })
}

/// Length of the frame [`frame`] writes for `sealed_len` bytes and a row of `row_len`.
pub fn frame_len(sealed_len: usize, row_len: usize) -> usize {
    4 + row_len + CHECK_LEN + FRAME_HEADER as usize + sealed_len
}

/// A record found by [`parse_frames`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The file id.
    pub id: [u8; 32],
    /// Where its sealed bytes are.
    pub loc: Loc,
    /// Its metadata row: the range of the parsed buffer (empty for a compaction copy).
    pub row: std::ops::Range<usize>,
}

/// The whole, intact records of version 2 segment `segment` in `buf`, whose first byte is
/// at offset `base` of the segment, in order; and the offset just past the last of them.
/// Parsing stops at the first record cut short or failing its checksum (a write a crash
/// interrupted: nothing after it was acknowledged).
pub fn parse_frames(buf: &[u8], segment: u64, base: u64) -> (Vec<Parsed>, u64) {
    let mut found = Vec::new();
    let mut at = 0usize;
    let u32_at = |i: usize| -> Option<usize> {
        let b = buf.get(i..i.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
    };
    while let Some(row_len) = u32_at(at).filter(|&l| l <= MAX_ROW) {
        let row = at + 4..at + 4 + row_len;
        let check_at = row.end;
        let id_at = check_at + CHECK_LEN;
        let Some(len) = u32_at(id_at + 32) else {
            break;
        };
        let sealed_at = id_at + FRAME_HEADER as usize;
        let Some(end) = sealed_at.checked_add(len).filter(|&e| e <= buf.len()) else {
            break;
        };
        let mut id = [0u8; 32];
        id.copy_from_slice(&buf[id_at..id_at + 32]);
        if buf[check_at..id_at] != check(&buf[row.clone()], &id, &buf[sealed_at..end]) {
            break;
        }
        found.push(Parsed {
            id,
            loc: Loc {
                segment,
                offset: base + sealed_at as u64,
                len: len as u32,
            },
            row,
        });
        at = end;
    }
    (found, base + at as u64)
}

/// Whether a record's frame header (`FRAME_HEADER` bytes read at [`Loc::frame_start`])
/// names `id` and `loc`'s length: a pointer into the wrong place reads as corrupted.
pub fn frame_matches(header: &[u8], id: &[u8; 32], loc: &Loc) -> bool {
    header.len() == FRAME_HEADER as usize
        && header[..32] == id[..]
        && header[32..36] == loc.len.to_le_bytes()
}

/// What recovery does with the value log at open.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Files whose pointer is unusable (its segment is missing or shorter than the
    /// pointer's end): their rows are removed.
    pub drop_rows: Vec<[u8; 32]>,
    /// Segments no committed row points into (a crash after their last value was deleted
    /// or moved, or before their first commit): removed.
    pub remove: Vec<u64>,
    /// Segments cut to this length: bytes past the last committed value (appended for a
    /// commit that did not happen).
    pub truncate: Vec<(u64, u64)>,
    /// Live bytes (sealed bytes of committed values) per kept segment.
    pub live: BTreeMap<u64, u64>,
}

/// Decides what to do with the `segments` found (number → file length) given the
/// committed pointers `logged`. A pointer is kept when its segment holds its whole value;
/// every kept segment is cut after its last kept value; a segment without one is removed. Bytes appended but never committed are
/// therefore dropped, and no row points at bytes that are not there.
pub fn plan_recovery(segments: &BTreeMap<u64, u64>, logged: &HashMap<[u8; 32], Loc>) -> Recovery {
    let mut r = Recovery::default();
    let mut ends: BTreeMap<u64, u64> = BTreeMap::new();
    let mut ids: Vec<_> = logged.iter().collect();
    ids.sort_by_key(|(id, _)| **id);
    for (id, loc) in ids {
        match segments.get(&loc.segment) {
            Some(&len) if loc.end() <= len => {
                let end = ends.entry(loc.segment).or_insert(0);
                *end = (*end).max(loc.end());
                *r.live.entry(loc.segment).or_insert(0) += u64::from(loc.len);
            }
            _ => r.drop_rows.push(*id),
        }
    }
    for (&segment, &len) in segments {
        match ends.get(&segment) {
            None => r.remove.push(segment),
            Some(&end) if end < len => r.truncate.push((segment, end)),
            Some(_) => {}
        }
    }
    r
}

/// The segment to compact next, if any: a segment other than `active` whose live bytes
/// are less than half of its length (its values are copied to the active segment and it
/// is removed). The emptiest first. Segments with no live byte are removed without
/// copying, and are not chosen here.
pub fn to_compact(
    live: &BTreeMap<u64, u64>,
    lengths: &BTreeMap<u64, u64>,
    active: u64,
) -> Option<u64> {
    lengths
        .iter()
        .filter(|(&s, _)| s != active)
        .filter_map(|(&s, &len)| {
            let l = live.get(&s).copied().unwrap_or(0);
            let body = len.saturating_sub(SEGMENT_HEADER);
            (l > 0 && l.saturating_mul(2) < body).then_some((l, s))
        })
        .min()
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(segment: u64, offset: u64, len: u32) -> Loc {
        Loc {
            segment,
            offset,
            len,
        }
    }

    #[test]
    fn locations_and_names_round_trip_and_bad_ones_are_refused() {
        let l = loc(7, 52, 4193);
        assert_eq!(Loc::decode(&l.encode()), Some(l));
        assert_eq!(l.end(), 52 + 4193);
        assert_eq!(l.frame_start(), 16);
        assert_eq!(Loc::decode(&l.encode()[..19]), None);
        // Inside the segment header or the frame header: not a value's place.
        assert_eq!(Loc::decode(&loc(7, 51, 1).encode()), None);
        assert_eq!(Loc::decode(&loc(7, u64::MAX, 1).encode()), None);
        assert_eq!(segment_of_name(&segment_name(0xab)), Some(0xab));
        assert_eq!(segment_name(1), "0000000000000001.log");
        for bad in [
            "0000000000000001",
            "000000000000000G.log",
            "1.log",
            "00000000000000001.log",
        ] {
            assert_eq!(segment_of_name(bad), None, "{bad}");
        }
        assert_eq!(segment_version(&segment_header()), Some(SEGMENT_VERSION));
        let mut other = segment_header();
        other[8] = 1;
        assert_eq!(segment_version(&other), Some(1), "version 1 is still read");
        other[8] = 3;
        assert!(!header_ok(&other));
        other[8] = 2;
        other[15] = 1;
        assert!(!header_ok(&other));
    }

    #[test]
    fn records_are_framed_with_their_row_id_length_and_checksum() {
        let mut out = segment_header().to_vec();
        let a = frame(&mut out, 3, SEGMENT_HEADER, &[1; 32], b"hello", b"row-a").unwrap();
        let at = out.len() as u64;
        let b = frame(&mut out, 3, at, &[2; 32], b"", b"").unwrap();
        // 16 (segment header) + 4 + 5 (row) + 8 (check) + 36.
        assert_eq!(a, loc(3, 69, 5));
        assert_eq!(&out[a.offset as usize..a.end() as usize], b"hello");
        assert_eq!(b, loc(3, 74 + 48, 0));
        assert_eq!(out.len() as u64, b.end());
        assert_eq!(frame_len(5, 5) as u64, a.end() - SEGMENT_HEADER);
        let h = |l: &Loc| &out[l.frame_start() as usize..l.offset as usize];
        assert!(frame_matches(h(&a), &[1; 32], &a));
        assert!(frame_matches(h(&b), &[2; 32], &b));
        // Another id, another length, or the wrong place: no match.
        assert!(!frame_matches(h(&a), &[2; 32], &a));
        assert!(!frame_matches(h(&a), &[1; 32], &loc(3, 69, 6)));
        assert!(!frame_matches(&out[20..56], &[1; 32], &a));
        // A row longer than MAX_ROW is refused.
        assert!(frame(&mut Vec::new(), 3, 16, &[1; 32], b"", &vec![0; MAX_ROW + 1]).is_none());
    }

    #[test]
    fn parsing_finds_whole_records_and_stops_at_a_cut_or_damaged_one() {
        let mut out = Vec::new();
        let base = 1000;
        let a = frame(&mut out, 5, base, &[1; 32], &[9; 300], b"row one").unwrap();
        let b_at = base + out.len() as u64;
        let b = frame(&mut out, 5, b_at, &[2; 32], b"copy", b"").unwrap();
        let c_at = base + out.len() as u64;
        let c = frame(&mut out, 5, c_at, &[3; 32], &[7; 40], b"row three").unwrap();
        let (found, end) = parse_frames(&out, 5, base);
        assert_eq!(end, c.end());
        assert_eq!(
            found.iter().map(|p| (p.id, p.loc)).collect::<Vec<_>>(),
            vec![([1; 32], a), ([2; 32], b), ([3; 32], c)]
        );
        assert_eq!(&out[found[0].row.clone()], b"row one");
        assert!(found[1].row.is_empty());
        // Cut anywhere inside the last record: the first two are found, and end is theirs.
        for cut in (c_at - base) as usize..out.len() {
            let (found, end) = parse_frames(&out[..cut], 5, base);
            assert_eq!(found.len(), 2, "cut at {cut}");
            assert_eq!(end, b.end());
        }
        // A flipped byte anywhere in the second record: only the first is found.
        for i in (b_at - base) as usize..(c_at - base) as usize {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            let (found, end) = parse_frames(&bad, 5, base);
            assert_eq!(found.len(), 1, "flip at {i}");
            assert_eq!(end, a.end());
        }
        // Zeros (a file extended but never written), or nothing: no record.
        assert_eq!(parse_frames(&[0u8; 200], 5, base), (Vec::new(), base));
        assert_eq!(parse_frames(&[], 5, base), (Vec::new(), base));
        // A row length past MAX_ROW is not read as one.
        let (found, _) = parse_frames(&u32::MAX.to_le_bytes(), 5, base);
        assert!(found.is_empty());
    }

    #[test]
    fn recovery_drops_uncommitted_tails_empty_segments_and_rows_past_the_end() {
        let segments: BTreeMap<u64, u64> = [(1, 1000), (2, 500), (3, 300), (4, 0)].into();
        let logged: HashMap<[u8; 32], Loc> = [
            ([1; 32], loc(1, 52, 100)),  // ends at 152
            ([2; 32], loc(1, 188, 600)), // ends at 788: segment 1 is cut there
            ([3; 32], loc(2, 52, 448)),  // ends at 500: exactly the length, kept
            ([4; 32], loc(3, 52, 400)),  // past segment 3's end: row dropped
            ([5; 32], loc(9, 52, 10)),   // no such segment: row dropped
        ]
        .into();
        let r = plan_recovery(&segments, &logged);
        assert_eq!(r.drop_rows, vec![[4; 32], [5; 32]]);
        // Segment 3 is left with no value, segment 4 never had one.
        assert_eq!(r.remove, vec![3, 4]);
        assert_eq!(r.truncate, vec![(1, 788)]);
        assert_eq!(r.live, [(1, 700), (2, 448)].into());
        // Nothing committed: every segment goes.
        let r = plan_recovery(&segments, &HashMap::new());
        assert_eq!(r.remove, vec![1, 2, 3, 4]);
        assert!(r.drop_rows.is_empty() && r.truncate.is_empty());
    }

    #[test]
    fn the_emptiest_segment_under_half_live_is_compacted_never_the_active_one() {
        let lengths: BTreeMap<u64, u64> = [(1, 1016), (2, 1016), (3, 1016), (4, 1016)].into();
        let live: BTreeMap<u64, u64> = [(1, 600), (2, 300), (3, 100), (4, 10)].into();
        assert_eq!(to_compact(&live, &lengths, 4), Some(3));
        assert_eq!(to_compact(&live, &lengths, 3), Some(4));
        // At least half live: left alone. No live byte: removed elsewhere, not copied.
        let live: BTreeMap<u64, u64> = [(1, 500), (2, 0)].into();
        assert_eq!(to_compact(&live, &lengths, 4), None);
    }
}
