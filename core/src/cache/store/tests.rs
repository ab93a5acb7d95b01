//! Tests of the store (`store.rs`).

use super::*;
use crate::error::ErrorKind;

fn store(limits: Limits) -> Store {
    Store::new(limits, Arc::new(MemoryBudget::new(u64::MAX)))
}

fn e(key: &str, value: &str, version: u64, expires: u64) -> EntryView {
    EntryView {
        key: key.into(),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        version,
        expires,
        partition: super::super::partition::partition_of(key),
    }
}

fn del(key: &str, version: u64) -> EntryView {
    EntryView {
        value: None,
        ..e(key, "", version, 0)
    }
}

#[test]
fn lru_evicts_exactly_the_least_recently_used() {
    let mut s = store(Limits {
        max_entries: Some(3),
        max_bytes: None,
    });
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        s.apply(&e(k, "v", i as u64 + 1, 0), 0, Charge::Enforce)
            .unwrap();
    }
    assert!(s.get("a", 0).is_some());
    s.apply(&e("d", "v", 10, 0), 0, Charge::Enforce).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s.get("b", 0).is_none(), "b was least recently used");
    assert!(s.get("a", 0).is_some() && s.get("c", 0).is_some() && s.get("d", 0).is_some());
    assert_eq!(s.counters().evicted, 1);
}

#[test]
fn byte_limit_counts_overhead() {
    let one = entry_cost(1, 10);
    let mut s = store(Limits {
        max_entries: None,
        max_bytes: Some(2 * one),
    });
    for (i, k) in ["a", "b", "c"].iter().enumerate() {
        s.apply(&e(k, "0123456789", i as u64 + 1, 0), 0, Charge::Enforce)
            .unwrap();
    }
    assert_eq!(s.len(), 2);
    assert_eq!(s.bytes(), 2 * one);
    assert!(s.get("a", 0).is_none());
}

#[test]
fn ttl_expires_lazily_and_by_sampling() {
    let mut s = store(Limits::default());
    s.apply(&e("a", "v", 1, 1000), 0, Charge::Enforce).unwrap();
    s.apply(&e("b", "v", 2, 1000), 0, Charge::Enforce).unwrap();
    s.apply(&e("c", "v", 3, 0), 0, Charge::Enforce).unwrap();
    assert!(s.get("a", 999).is_some());
    assert!(s.get("a", 1000).is_none());
    assert_eq!(s.counters().expired, 1);
    let mut removed = 0;
    for _ in 0..100 {
        removed += s.expire_sample(20, 2000);
    }
    assert_eq!(removed, 1);
    assert_eq!(s.len(), 1);
    assert!(s.get("c", u64::MAX - 1).is_some());
}

#[test]
fn last_writer_wins_and_tombstones_block_older_data() {
    let mut s = store(Limits::default());
    s.apply(&e("k", "new", 5, 0), 0, Charge::Enforce).unwrap();
    let r = s.apply(&e("k", "old", 4, 0), 0, Charge::Enforce).unwrap();
    assert!(!r.changed && r.existed);
    assert_eq!(r.superseded_by, Some(5), "the writer learns what beat it");
    assert_eq!(&s.get("k", 0).unwrap()[..], b"new");
    // The same write delivered twice is a repeat, not superseded.
    let again = s.apply(&e("k", "new", 5, 0), 0, Charge::Enforce).unwrap();
    assert!(!again.changed && again.superseded_by.is_none());
    // Equal versions: the greater value wins on every replica, in any order.
    s.apply(&e("k", "nez", 5, 0), 0, Charge::Enforce).unwrap();
    assert_eq!(&s.get("k", 0).unwrap()[..], b"nez");
    s.apply(&del("k", 6), 0, Charge::Enforce).unwrap();
    assert!(s.get("k", 0).is_none());
    let r = s.apply(&e("k", "stale", 5, 0), 0, Charge::Enforce).unwrap();
    assert!(!r.changed);
    assert!(s.get("k", 0).is_none());
    s.apply(&e("k", "newer", 7, 0), 0, Charge::Enforce).unwrap();
    assert_eq!(&s.get("k", 0).unwrap()[..], b"newer");
}

#[test]
fn quota_is_enforced_for_writes_and_forced_for_moves() {
    let budget = Arc::new(MemoryBudget::new(entry_cost(1, 1)));
    let mut s = Store::new(Limits::default(), budget.clone());
    s.apply(&e("a", "v", 1, 0), 0, Charge::Enforce).unwrap();
    let err = s.apply(&e("b", "v", 2, 0), 0, Charge::Enforce).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(s.len(), 1);
    s.apply(&e("b", "v", 2, 0), 0, Charge::Force).unwrap();
    assert_eq!(budget.used(), 2 * entry_cost(1, 1));
    drop(s);
    assert_eq!(budget.used(), 0);
}

#[test]
fn pages_cover_the_wanted_partitions_once() {
    let mut s = store(Limits::default());
    for i in 0..500u64 {
        s.apply(&e(&format!("k{i}"), "value", i + 1, 0), 0, Charge::Enforce)
            .unwrap();
    }
    let mut wanted = vec![false; super::super::partition::PARTITIONS];
    for w in wanted.iter_mut().take(100) {
        *w = true;
    }
    let expected = (0..500)
        .filter(|i| wanted[super::super::partition::partition_of(&format!("k{i}")) as usize])
        .count();
    let (mut got, mut cursor) = (0, Some(0));
    while let Some(c) = cursor {
        let (page, next) = s.page(&wanted, c, 200, 0);
        got += page.len();
        cursor = next;
    }
    assert_eq!(got, expected);
    assert_eq!(s.drop_partitions(&wanted), expected);
    assert_eq!(s.len() as usize, 500 - expected);
}

#[test]
fn tombstones_are_charged_kept_for_the_retention_then_purged() {
    use crate::cache::hlc::LOGICAL_BITS;
    let budget = Arc::new(MemoryBudget::new(u64::MAX));
    let mut s = Store::new(Limits::default(), budget.clone());
    let at = |ms: u64| ms << LOGICAL_BITS;
    s.apply(&e("k", "v", at(1_000), 0), 0, Charge::Enforce)
        .unwrap();
    // A delete in a ready partition is remembered too (a healed split may bring back
    // an older copy), and charged to the quota in place of the entry.
    s.apply(&del("k", at(2_000)), 0, Charge::Enforce).unwrap();
    assert_eq!(s.tombstones(), (1, tombstone_cost(1)));
    assert_eq!(budget.used(), tombstone_cost(1));
    // An older copy pulled later does not resurrect the key.
    let r = s
        .apply(&e("k", "old", at(1_500), 0), 0, Charge::Force)
        .unwrap();
    assert!(!r.changed);
    assert!(s.peek("k", 0).is_some_and(|t| t.value.is_none()));
    // Within the retention nothing is purged; after it the tombstone goes.
    assert_eq!(s.purge_tombstones(2_000 + 59_999, 60_000), 0);
    assert_eq!(s.purge_tombstones(2_000 + 60_001, 60_000), 1);
    assert_eq!(s.tombstones(), (0, 0));
    assert_eq!(budget.used(), 0);
    // A newer write replaces a tombstone and releases its charge.
    s.apply(&del("j", at(3_000)), 0, Charge::Enforce).unwrap();
    s.apply(&e("j", "back", at(4_000), 0), 0, Charge::Enforce)
        .unwrap();
    assert_eq!(s.tombstones(), (0, 0));
    assert_eq!(budget.used(), entry_cost(1, 4));
    // A write that arrives already expired leaves a tombstone as well.
    s.apply(&e("x", "gone", at(5_000), 10), 100, Charge::Enforce)
        .unwrap();
    assert_eq!(s.tombstones().0, 1);
    drop(s);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_key_longer_than_u16_max_is_refused_and_the_store_stays_consistent() {
    let budget = Arc::new(MemoryBudget::new(u64::MAX));
    let limits = Limits {
        max_entries: Some(2),
        max_bytes: None,
    };
    let mut s = Store::new(limits, budget.clone());
    let long = "k".repeat(70_000);
    let err = s
        .apply(&e(&long, "v", 1, 0), 0, Charge::Enforce)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = s.apply(&del(&long, 2), 0, Charge::Enforce).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!((s.len(), s.bytes(), s.tombstones()), (0, 0, (0, 0)));
    assert_eq!(budget.used(), 0);
    assert!(s.peek(&long, 0).is_none());
    // The longest key it can represent is found, evicted and forgotten like any
    // other, while the index grows.
    let longest = "x".repeat(usize::from(u16::MAX));
    s.apply(&e(&longest, "v", 3, 0), 0, Charge::Enforce)
        .unwrap();
    assert_eq!(s.get(&longest, 0).as_deref(), Some(&b"v"[..]));
    for i in 0..200u64 {
        s.apply(&e(&format!("k{i:03}"), "v", 10 + i, 0), 0, Charge::Enforce)
            .unwrap();
    }
    assert!(s.get(&longest, 0).is_none());
    assert_eq!(s.len(), 2);
    assert_eq!(s.bytes(), 2 * entry_cost(4, 1));
    assert_eq!(budget.used(), s.bytes());
    assert_eq!(s.expire_sample(1000, u64::MAX - 1), 0);
    drop(s);
    assert_eq!(budget.used(), 0);
}

#[test]
fn deletes_and_writes_that_do_not_fit_the_quota_change_nothing() {
    let budget = Arc::new(MemoryBudget::new(entry_cost(1, 1) + tombstone_cost(1)));
    let mut s = Store::new(Limits::default(), budget.clone());
    s.apply(&e("a", "v", 1, 0), 0, Charge::Enforce).unwrap();
    s.apply(&del("b", 2), 0, Charge::Enforce).unwrap();
    assert_eq!(budget.free(), 0);
    // A delete of an absent key needs a tombstone: refused when it does not fit.
    let err = s.apply(&del("c", 3), 0, Charge::Enforce).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(s.tombstones().0, 1);
    // So is a write that arrives already expired (it leaves a tombstone too).
    let err = s
        .apply(&e("d", "v", 4, 10), 100, Charge::Enforce)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    // A delete of a held key always fits: the entry pays for its tombstone.
    s.apply(&del("a", 5), 0, Charge::Enforce).unwrap();
    assert_eq!(s.tombstones(), (2, 2 * tombstone_cost(1)));
    assert_eq!(budget.used(), 2 * tombstone_cost(1));
    // A write over a tombstone is charged what it costs beyond the tombstone.
    s.apply(&e("b", "v", 6, 0), 0, Charge::Enforce).unwrap();
    assert_eq!(budget.used(), tombstone_cost(1) + entry_cost(1, 1));
    let err = s
        .apply(&e("a", "vv", 7, 0), 0, Charge::Enforce)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert!(s
        .peek("a", 0)
        .is_some_and(|t| t.value.is_none() && t.version == 5));
    drop(s);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_store_refuses_more_slots_than_it_can_name() {
    let budget = Arc::new(MemoryBudget::new(u64::MAX));
    let mut s = Store::with_max_slots(Limits::default(), budget.clone(), 2);
    s.apply(&e("a", "v", 1, 0), 0, Charge::Enforce).unwrap();
    s.apply(&e("b", "v", 2, 0), 0, Charge::Enforce).unwrap();
    let err = s.apply(&e("c", "v", 3, 0), 0, Charge::Enforce).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    // Replacing a held key needs no new slot; a freed slot is reused.
    s.apply(&e("a", "w", 4, 0), 0, Charge::Enforce).unwrap();
    s.apply(&del("b", 5), 0, Charge::Enforce).unwrap();
    s.apply(&e("c", "v", 6, 0), 0, Charge::Enforce).unwrap();
    s.apply(&del("x", 7), 0, Charge::Enforce).unwrap();
    let err = s.apply(&del("y", 8), 0, Charge::Enforce).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::QuotaExceeded,
        "two tombstones at most"
    );
    assert_eq!(s.len(), 2);
    drop(s);
    assert_eq!(budget.used(), 0);
}

#[test]
fn pages_carry_entries_then_tombstones_within_the_byte_budget() {
    let mut s = store(Limits::default());
    for i in 0..300u64 {
        s.apply(
            &e(&format!("k{i:03}"), "value", i + 1, 0),
            0,
            Charge::Enforce,
        )
        .unwrap();
    }
    for i in 0..300u64 {
        if i % 3 == 0 {
            s.apply(&del(&format!("k{i:03}"), 1000 + i), 0, Charge::Enforce)
                .unwrap();
        }
        s.apply(&del(&format!("gone{i:03}"), 2000 + i), 0, Charge::Enforce)
            .unwrap();
    }
    let wanted = vec![true; super::super::partition::PARTITIONS];
    let (mut live, mut deleted, mut cursor, mut pages) = (0, 0, Some(0u32), 0);
    while let Some(c) = cursor {
        let (page, next) = s.page(&wanted, c, 300, 0);
        let size: usize = page
            .iter()
            .map(|e| e.key.len() + e.value.as_ref().map_or(0, |v| v.len()) + 32)
            .sum();
        assert!(size <= 300, "{size}");
        assert!(next.is_none_or(|n| n > c), "cursors move forward");
        live += page.iter().filter(|e| e.value.is_some()).count();
        deleted += page.iter().filter(|e| e.value.is_none()).count();
        cursor = next;
        pages += 1;
    }
    assert_eq!((live, deleted), (200, 400));
    assert!(pages > 50, "{pages}");
    // A made-up cursor gives a short page, never a panic.
    for c in [
        299,
        300,
        5_000,
        TOMBSTONE_CURSOR + 399,
        TOMBSTONE_CURSOR + 400,
        u32::MAX,
    ] {
        let (page, next) = s.page(&wanted, c, 300, 0);
        assert!(next.is_none_or(|n| n > c) && page.len() <= 10);
    }
}

#[test]
fn a_clear_removes_older_entries_and_deletes_and_refuses_older_writes_after() {
    let budget = Arc::new(MemoryBudget::new(u64::MAX));
    let mut s = Store::new(Limits::default(), budget.clone());
    s.apply(&e("old", "1", 10, 0), 0, Charge::Enforce).unwrap();
    s.apply(&e("new", "2", 30, 0), 0, Charge::Enforce).unwrap();
    s.apply(&del("gone", 15), 0, Charge::Enforce).unwrap();
    assert_eq!(s.clear_before(20), 1);
    assert_eq!(s.cleared_before(), 20);
    assert_eq!(s.get("old", 0), None);
    assert_eq!(s.get("new", 0).as_deref(), Some(&b"2"[..]));
    // The older delete is forgotten (the clear covers it); what is held is charged.
    assert_eq!(s.tombstones().0, 0);
    assert_eq!(budget.used(), s.bytes());
    // A write from before the clear arriving late is refused, naming the clear's version
    // (its writer stamps it again past it); an older delete is a no-op.
    let late = s.apply(&e("old", "1", 10, 0), 0, Charge::Enforce).unwrap();
    assert!(!late.changed);
    assert_eq!(late.superseded_by, Some(20));
    let late_del = s.apply(&del("new", 19), 0, Charge::Enforce).unwrap();
    assert_eq!((late_del.changed, late_del.superseded_by), (false, None));
    assert_eq!(s.get("old", 0), None);
    // After the clear, writes take effect; an older clear does not move it back.
    assert!(
        s.apply(&e("old", "3", 21, 0), 0, Charge::Enforce)
            .unwrap()
            .changed
    );
    assert_eq!(s.clear_before(5), 0);
    assert_eq!(s.cleared_before(), 20);
    assert_eq!(s.len(), 2);
}

#[test]
fn a_refused_read_touches_and_counts_nothing_and_a_read_counts_once() {
    let mut s = store(Limits {
        max_entries: Some(2),
        max_bytes: None,
    });
    s.apply(&e("a", "12345", 1, 0), 0, Charge::Enforce).unwrap();
    s.apply(&e("b", "v", 2, 77), 0, Charge::Enforce).unwrap();
    s.apply(&del("gone", 3), 0, Charge::Enforce).unwrap();
    // Refused for its length: no hit, no miss, and "a" stays least recently used.
    assert_eq!(s.read_within("a", 0, |len| len < 5), Read::Refused);
    assert_eq!((s.counters().hits, s.counters().misses), (0, 0));
    // Accepted: its value and expiry, one hit.
    assert_eq!(
        s.read_within("b", 0, |len| len == 1),
        Read::Found {
            value: Bytes::from_static(b"v"),
            expires: 77
        }
    );
    // A tombstone and an absent key are misses.
    assert_eq!(s.read_within("gone", 0, |_| true), Read::Missing);
    assert_eq!(s.read_within("never", 0, |_| true), Read::Missing);
    assert_eq!((s.counters().hits, s.counters().misses), (1, 2));
    // Expired: removed on the way, a miss.
    assert_eq!(s.read_within("b", 77, |_| true), Read::Missing);
    assert_eq!(s.counters().expired, 1);

    // A refused read does not touch the LRU, an accepted one does.
    let mut s = store(Limits {
        max_entries: Some(2),
        max_bytes: None,
    });
    s.apply(&e("x", "v", 1, 0), 0, Charge::Enforce).unwrap();
    s.apply(&e("y", "v", 2, 0), 0, Charge::Enforce).unwrap();
    assert_eq!(s.read_within("x", 0, |_| false), Read::Refused);
    s.apply(&e("z", "v", 3, 0), 0, Charge::Enforce).unwrap();
    assert!(s.get("x", 0).is_none(), "x stayed least recently used");
    assert!(matches!(
        s.read_within("y", 0, |_| true),
        Read::Found { .. }
    ));
    s.apply(&e("w", "v", 4, 0), 0, Charge::Enforce).unwrap();
    assert!(s.get("y", 0).is_some(), "the read made y recently used");
    assert!(s.get("z", 0).is_none());
}

#[test]
fn warming_keys_changes_nothing_a_store_shows() {
    // Two identical stores of 40 entries (more than one of warm's chunks), one warmed
    // with present, absent, expired and deleted keys, in chunks of every length.
    let fill = || {
        let mut s = store(Limits {
            max_entries: Some(40),
            max_bytes: None,
        });
        for i in 0..40u64 {
            let expires = if i % 7 == 0 { 5 } else { 0 };
            s.apply(
                &e(&format!("k{i}"), "value", i + 1, expires),
                0,
                Charge::Enforce,
            )
            .unwrap();
        }
        s.apply(&del("k3", 100), 0, Charge::Enforce).unwrap();
        s
    };
    let (mut warmed, mut plain) = (fill(), fill());
    let keys: Vec<String> = (0..48).map(|i| format!("k{}", (i * 13) % 50)).collect();
    for n in [0, 1, 15, 16, 17, 32, 48] {
        warmed.warm(keys.iter().take(n).map(String::as_str));
    }
    assert_eq!(warmed.len(), plain.len());
    assert_eq!(warmed.bytes(), plain.bytes());
    assert_eq!(warmed.counters(), plain.counters());
    // The same reads find the same values (expired entries go on the way in both)...
    for k in &keys {
        assert_eq!(
            warmed.read_within(k, 10, |_| true),
            plain.read_within(k, 10, |_| true)
        );
    }
    assert_eq!(warmed.counters(), plain.counters());
    // ... and the same least recently used entries are evicted by the same writes.
    for i in 0..30u64 {
        let w = e(&format!("new{i}"), "v", 1000 + i, 0);
        warmed.apply(&w, 10, Charge::Enforce).unwrap();
        plain.apply(&w, 10, Charge::Enforce).unwrap();
    }
    for i in 0..40 {
        let k = format!("k{i}");
        assert_eq!(warmed.get(&k, 10), plain.get(&k, 10), "{k}");
    }
    assert_eq!(warmed.counters(), plain.counters());
}

#[test]
fn a_value_of_the_same_length_is_overwritten_in_place_and_reads_stay_right() {
    let mut s = store(Limits::default());
    s.apply(&e("k", "aaaa", 1, 0), 0, Charge::Enforce).unwrap();
    s.apply(&e("other", "zz", 2, 0), 0, Charge::Enforce)
        .unwrap();
    let held = s.get("k", 0).unwrap();
    let bytes = s.bytes();
    // Same length: the new bytes, the same cost; a value read before is unchanged.
    s.apply(&e("k", "bbbb", 3, 9), 0, Charge::Enforce).unwrap();
    assert_eq!(
        s.read_within("k", 0, |_| true),
        Read::Found {
            value: Bytes::from_static(b"bbbb"),
            expires: 9
        }
    );
    assert_eq!(held, Bytes::from_static(b"aaaa"));
    assert_eq!(s.bytes(), bytes);
    // Shorter, then longer: reallocated, the cost follows.
    s.apply(&e("k", "c", 4, 0), 0, Charge::Enforce).unwrap();
    assert_eq!(s.get("k", 0).unwrap(), Bytes::from_static(b"c"));
    assert_eq!(s.bytes(), bytes - 3);
    s.apply(&e("k", "dddddd", 5, 0), 0, Charge::Enforce)
        .unwrap();
    assert_eq!(s.get("k", 0).unwrap(), Bytes::from_static(b"dddddd"));
    assert_eq!(s.bytes(), bytes + 2);
    // An older write of the same length changes nothing.
    s.apply(&e("k", "eeeeee", 2, 0), 0, Charge::Enforce)
        .unwrap();
    assert_eq!(s.get("k", 0).unwrap(), Bytes::from_static(b"dddddd"));
    assert_eq!(s.get("other", 0).unwrap(), Bytes::from_static(b"zz"));
}
