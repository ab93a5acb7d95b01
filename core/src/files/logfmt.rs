//! The value log's byte layout and its pure decisions (ADR 0016, amendment "A value log
//! for small files"): where a small file's sealed contents are in the log ([`Loc`], kept
//! in the file's record since schema 4, in the `logged` table under schema 3), how a segment and a record are framed, what recovery does
//! with the segments found at open ([`plan_recovery`]) and which segment to compact
//! ([`to_compact`]). No I/O here; `valuelog.rs` does the reads and writes.

use std::collections::{BTreeMap, HashMap};

/// A segment file starts with this magic, then [`SEGMENT_VERSION`], then 7 zero bytes.
pub const SEGMENT_MAGIC: &[u8; 8] = b"memmeshV";
/// The segment format this build writes and reads.
pub const SEGMENT_VERSION: u8 = 1;
/// Length of a segment's header.
pub const SEGMENT_HEADER: u64 = 16;
/// Length of a record's frame before its sealed bytes: id (32) ‖ length (u32 LE).
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

    /// The offset of the record's frame (its header, then the sealed bytes).
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

/// Whether `h` is a segment header this build reads.
pub fn header_ok(h: &[u8]) -> bool {
    h.len() == SEGMENT_HEADER as usize && h == segment_header()
}

/// Appends one record (frame header, then `sealed`) to `out`, which will be written at
/// `at` of `segment`; returns where the sealed bytes are. `None` if `sealed` is longer
/// than a `u32`.
pub fn frame(
    out: &mut Vec<u8>,
    segment: u64,
    at: u64,
    id: &[u8; 32],
    sealed: &[u8],
) -> Option<Loc> {
    let len = u32::try_from(sealed.len()).ok()?;
    out.extend_from_slice(id);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(sealed);
    Some(Loc {
        segment,
        offset: at + FRAME_HEADER,
        len,
    })
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
        assert!(header_ok(&segment_header()));
        let mut other = segment_header();
        other[8] = 2;
        assert!(!header_ok(&other));
    }

    #[test]
    fn records_are_framed_with_their_id_and_length() {
        let mut out = segment_header().to_vec();
        let a = frame(&mut out, 3, SEGMENT_HEADER, &[1; 32], b"hello").unwrap();
        let at = out.len() as u64;
        let b = frame(&mut out, 3, at, &[2; 32], b"").unwrap();
        assert_eq!(a, loc(3, 52, 5));
        assert_eq!(&out[a.offset as usize..a.end() as usize], b"hello");
        assert_eq!(b, loc(3, 57 + 36, 0));
        assert_eq!(out.len() as u64, b.end());
        let h = |l: &Loc| &out[l.frame_start() as usize..l.offset as usize];
        assert!(frame_matches(h(&a), &[1; 32], &a));
        assert!(frame_matches(h(&b), &[2; 32], &b));
        // Another id, another length, or the wrong place: no match.
        assert!(!frame_matches(h(&a), &[2; 32], &a));
        assert!(!frame_matches(h(&a), &[1; 32], &loc(3, 52, 6)));
        assert!(!frame_matches(&out[20..56], &[1; 32], &a));
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
