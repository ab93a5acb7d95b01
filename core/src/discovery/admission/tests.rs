//! Unit tests of [`Admission`]: a simulated clock, no sockets.

use super::*;

const TAG: &str = "c0ffee";

fn id(n: u32) -> NodeId {
    let mut b = [7u8; 32];
    b[..4].copy_from_slice(&n.to_le_bytes());
    NodeId::from_bytes(b)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ad(n: u32, addrs: &[&str]) -> Advert {
    Advert {
        id: id(n),
        cluster: TAG.to_string(),
        addrs: addrs.iter().map(|a| sa(a)).collect(),
    }
}

fn nobody(_: &NodeId) -> bool {
    false
}

fn admission(t0: Instant) -> Admission {
    Admission::new(id(0), TAG, t0)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn failed(d: &Dial) -> Outcome {
    Outcome {
        failed: d.addrs.clone(),
        ..Outcome::default()
    }
}

fn reached(d: &Dial) -> Outcome {
    Outcome {
        connected: true,
        reached: d.addrs.first().copied(),
        ..Outcome::default()
    }
}

/// Every dial that may start at `now`.
fn drain(a: &mut Admission, now: Instant) -> Vec<Dial> {
    let mut out = Vec::new();
    while let Some(d) = a.next(now, nobody) {
        out.push(d);
    }
    out
}

#[test]
fn own_foreign_and_connected_adverts_are_not_dialled() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    assert_eq!(a.offer(ad(0, &["10.0.0.1:1"]), false, t0), Verdict::Own);
    let mut other = ad(1, &["10.0.0.1:1"]);
    other.cluster = "other".into();
    assert_eq!(a.offer(other, false, t0), Verdict::OtherCluster);
    assert_eq!(
        a.offer(ad(2, &["10.0.0.2:1"]), true, t0),
        Verdict::Connected
    );
    assert_eq!(a.pending(), 0);
    assert!(a.next(t0, nobody).is_none());

    // Connected by the time its turn comes (it dialled us): dropped, not dialled.
    assert_eq!(a.offer(ad(3, &["10.0.0.3:1"]), false, t0), Verdict::Queued);
    assert!(a.next(t0, |n| *n == id(3)).is_none());
    assert_eq!(a.pending(), 0);
    // Seen connected while waiting: dropped too.
    assert_eq!(a.offer(ad(4, &["10.0.0.4:1"]), false, t0), Verdict::Queued);
    assert_eq!(
        a.offer(ad(4, &["10.0.0.4:1"]), true, t0),
        Verdict::Connected
    );
    assert_eq!(a.pending(), 0);
}

#[test]
fn dials_run_concurrently_up_to_the_bound() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    for n in 1..=20 {
        a.offer(ad(n, &[&format!("10.0.1.{n}:7400")]), false, t0);
    }
    let first = drain(&mut a, t0);
    assert_eq!(first.len(), limits::MAX_DIALS_IN_FLIGHT);
    assert_eq!(a.in_flight(), limits::MAX_DIALS_IN_FLIGHT);
    assert_eq!(a.next_wake(t0), None, "only a dial ending frees a slot");
    // Ending one frees one slot.
    a.finished(&first[0].id, &failed(&first[0]), t0 + ms(10));
    let more = drain(&mut a, t0 + ms(10));
    assert_eq!(more.len(), 1);
    // A dial of the same node is never started twice at once.
    let ids: std::collections::HashSet<NodeId> = first.iter().chain(&more).map(|d| d.id).collect();
    assert_eq!(ids.len(), first.len() + more.len());
}

#[test]
fn the_newest_advert_is_dialled_first() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    for n in 1..=30 {
        a.offer(ad(n, &[&format!("10.0.1.{n}:7400")]), false, t0);
    }
    let d = drain(&mut a, t0);
    let got: Vec<NodeId> = d.iter().map(|d| d.id).collect();
    let want: Vec<NodeId> = (23..=30).rev().map(id).collect();
    assert_eq!(got, want);
}

#[test]
fn one_advert_names_at_most_max_addrs_addresses() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    let many: Vec<String> = (1..=50).map(|i| format!("10.0.2.{i}:7400")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(a.offer(ad(1, &refs), false, t0), Verdict::Queued);
    // The same node advertised again with other addresses: still no more than the bound.
    let others: Vec<String> = (100..=150).map(|i| format!("10.0.2.{i}:7400")).collect();
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    assert_eq!(a.offer(ad(1, &refs), false, t0), Verdict::Known);
    let d = a.next(t0, nobody).unwrap();
    assert_eq!(d.addrs.len(), limits::MAX_ADDRS_PER_ADVERT);
    assert_eq!(d.addrs[0], sa("10.0.2.1:7400"), "in the advert's order");
    assert_eq!(a.pending(), 0);
    // Duplicates in one advert count once.
    let mut b = admission(t0);
    b.offer(
        ad(2, &["10.0.3.1:1", "10.0.3.1:1", "10.0.3.2:1"]),
        false,
        t0,
    );
    assert_eq!(b.next(t0, nobody).unwrap().addrs.len(), 2);
}

#[test]
fn a_failed_record_is_not_dialled_again_for_a_while() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    a.offer(ad(1, &["10.0.0.9:7400"]), false, t0);
    let d = a.next(t0, nobody).unwrap();
    // Seen again while it is being dialled: nothing new.
    assert_eq!(
        a.offer(ad(1, &["10.0.0.9:7400"]), false, t0),
        Verdict::Known
    );
    a.finished(&d.id, &failed(&d), t0 + ms(3000));
    // The same record, over and over: ignored until the memory expires.
    let mut t = t0 + ms(3000);
    while t < t0 + ms(3000) + limits::FAILED_RETRY_AFTER {
        assert_eq!(a.offer(ad(1, &["10.0.0.9:7400"]), false, t), Verdict::Known);
        assert!(a.next(t, nobody).is_none());
        t += ms(5000);
    }
    let t = t0 + ms(3000) + limits::FAILED_RETRY_AFTER;
    assert_eq!(
        a.offer(ad(1, &["10.0.0.9:7400"]), false, t),
        Verdict::Queued
    );
    assert!(a.next(t, nobody).is_some());
}

#[test]
fn a_fake_record_for_a_real_id_does_not_hide_its_real_address() {
    // Failure memory is per (node, address): the real address is still dialled.
    let t0 = Instant::now();
    let mut a = admission(t0);
    a.offer(ad(1, &["10.0.0.66:7400"]), false, t0);
    let d = a.next(t0, nobody).unwrap();
    a.finished(&d.id, &failed(&d), t0 + ms(100));
    assert_eq!(
        a.offer(
            ad(1, &["10.0.0.66:7400", "10.0.0.5:7400"]),
            false,
            t0 + ms(200)
        ),
        Verdict::Queued
    );
    let d = a.next(t0 + ms(200), nobody).unwrap();
    assert_eq!(d.addrs, vec![sa("10.0.0.5:7400")]);
}

#[test]
fn a_failing_ip_backs_off_and_does_not_delay_others() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    // Forty fakes on one address, then a real node elsewhere.
    for n in 1..=40 {
        a.offer(ad(n, &["10.0.0.200:7400"]), false, t0);
    }
    let d = drain(&mut a, t0);
    assert_eq!(
        d.len(),
        1,
        "one IP gets one dial at a time ({} started)",
        d.len()
    );
    a.finished(&d[0].id, &failed(&d[0]), t0 + ms(3000));
    // The IP waits now; a real node elsewhere is dialled at once.
    a.offer(ad(99, &["10.0.0.5:7400"]), false, t0 + ms(3000));
    let d = drain(&mut a, t0 + ms(3000));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].id, id(99));
    a.finished(&d[0].id, &reached(&d[0]), t0 + ms(3010));
    // The failing IP's wait doubles with each consecutive failure.
    let mut t = t0 + ms(3000);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let ready = a.next_wake(t).expect("fakes still wait");
        waits.push(ready - t);
        let d = a.next(ready, nobody).expect("dialable when next_wake says");
        assert!(a.next(ready, nobody).is_none());
        t = ready + ms(3000);
        a.finished(&d.id, &failed(&d), t);
    }
    let s = Duration::from_secs;
    assert_eq!(
        waits,
        vec![s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]
    );
}

#[test]
fn a_success_resets_the_wait_of_an_ip() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    a.offer(ad(1, &["10.0.0.7:1"]), false, t0);
    let d = a.next(t0, nobody).unwrap();
    a.finished(&d.id, &failed(&d), t0);
    a.offer(ad(2, &["10.0.0.7:1"]), false, t0);
    assert!(a.next(t0, nobody).is_none());
    let t1 = t0 + Duration::from_secs(1);
    let d = a.next(t1, nobody).unwrap();
    a.finished(&d.id, &reached(&d), t1);
    // After the success only the spacing applies, not a doubled wait.
    a.offer(ad(3, &["10.0.0.7:1"]), false, t1);
    assert!(a.next(t1 + limits::SOURCE_SPACING, nobody).is_some());
}

#[test]
fn dials_start_at_the_overall_rate() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    for n in 1..=200 {
        a.offer(
            ad(n, &[&format!("10.1.{}.{}:7400", n / 200, 1 + n % 200)]),
            false,
            t0,
        );
    }
    // Dials that end at once (refused): only the bucket limits them.
    let mut started = 0u32;
    let mut t = t0;
    let end = t0 + Duration::from_secs(10);
    while t <= end {
        while let Some(d) = a.next(t, nobody) {
            started += 1;
            a.finished(&d.id, &failed(&d), t);
        }
        t += ms(10);
    }
    // 16 at once, then 4 per second.
    assert_eq!(started, limits::DIAL_BURST + 40);
}

#[test]
fn the_waiting_set_is_bounded_and_a_loud_source_cannot_push_out_a_quiet_one() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    // A quiet real node, then a flood from one IP, far beyond the bound.
    a.offer(ad(1, &["10.0.0.5:7400"]), false, t0);
    for n in 100..2100 {
        a.offer(ad(n, &["10.0.0.200:7400"]), false, t0);
    }
    assert_eq!(a.pending(), limits::MAX_PENDING);
    assert_eq!(a.take_dropped(), 2001 - limits::MAX_PENDING as u64);
    assert_eq!(a.take_dropped(), 0);
    let d = drain(&mut a, t0);
    assert!(d.iter().any(|d| d.id == id(1)), "{d:?}");
}

#[test]
fn a_finite_flood_of_distinct_fakes_does_not_delay_a_newcomer_long() {
    // 1,100 fakes on as many addresses, all unreachable (a dial times out after 3 s),
    // then a real node: it is dialled as soon as a slot frees, not after the backlog.
    let t0 = Instant::now();
    let mut a = admission(t0);
    for n in 1..=1100u32 {
        let addr = format!("10.77.{}.{}:7400", 1 + n / 200, 1 + n % 200);
        a.offer(ad(n, &[&addr]), false, t0);
    }
    assert!(a.pending() <= limits::MAX_PENDING);
    let timeout = limits::DIAL_TIMEOUT;
    let real_at = t0 + Duration::from_secs(5);
    let mut running: Vec<(Instant, Dial)> = Vec::new();
    let mut offered = false;
    let mut dialled_at = None;
    let mut t = t0;
    while dialled_at.is_none() {
        assert!(
            t < t0 + Duration::from_secs(600),
            "the newcomer was never dialled"
        );
        if !offered && t >= real_at {
            assert_eq!(
                a.offer(ad(9999, &["10.77.0.3:7400"]), false, t),
                Verdict::Queued
            );
            offered = true;
        }
        let (done, still): (Vec<_>, Vec<_>) = running.into_iter().partition(|(end, _)| *end <= t);
        running = still;
        for (_, d) in done {
            a.finished(&d.id, &failed(&d), t);
        }
        while let Some(d) = a.next(t, nobody) {
            if d.id == id(9999) {
                dialled_at = Some(t);
                break;
            }
            running.push((t + timeout, d));
        }
        t += ms(10);
    }
    let waited = dialled_at.unwrap() - real_at;
    // Simulated time: at most one dial timeout (the slots were all busy), never the
    // ~6 minutes the backlog of fakes would take.
    assert!(waited <= timeout, "waited {waited:?}");
    assert!(a.pending() <= limits::MAX_PENDING);
}

#[test]
fn memory_stays_bounded_under_an_endless_flood() {
    let t0 = Instant::now();
    let small = Limits {
        max_pending: 8,
        max_sources: 16,
        max_failed: 32,
        ..Limits::default()
    };
    let small = Limits {
        max_seen: 64,
        ..small
    };
    let mut a = Admission::with_limits(id(0), TAG, small, t0);
    let mut t = t0;
    for n in 1..=5000u32 {
        let addr = format!("10.{}.{}.{}:7400", n / 60000, (n / 250) % 250, 1 + n % 250);
        a.offer(ad(n, &[&addr]), false, t);
        while let Some(d) = a.next(t, nobody) {
            a.finished(&d.id, &failed(&d), t);
        }
        assert!(a.pending() <= 8);
        assert!(a.sources() <= 16, "{} sources", a.sources());
        assert!(a.remembered_failures() <= 32);
        assert!(a.seen() <= 64);
        t += ms(20);
    }
    assert!(a.remembered_failures() > 0 && a.sources() > 0);
}

#[test]
fn next_wake_points_at_a_moment_when_a_dial_can_start() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    assert_eq!(a.next_wake(t0), None, "nothing waits");
    // Empty the bucket with quick failures on distinct IPs.
    for n in 1..=limits::DIAL_BURST {
        a.offer(ad(n, &[&format!("10.0.5.{n}:1")]), false, t0);
        let d = a.next(t0, nobody).unwrap();
        a.finished(&d.id, &failed(&d), t0);
    }
    a.offer(ad(500, &["10.0.6.1:1"]), false, t0);
    assert!(a.next(t0, nobody).is_none(), "the bucket is empty");
    let at = a.next_wake(t0).unwrap();
    assert_eq!(at, t0 + limits::DIAL_REFILL);
    assert!(a.next(at - ms(1), nobody).is_none());
    assert_eq!(a.next(at, nobody).unwrap().id, id(500));
}

#[test]
fn leftover_addresses_wait_for_their_source_and_follow_a_failed_dial() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    // 10.0.0.8 is backing off after a failure; another node is advertised on it and on a
    // second address.
    a.offer(ad(1, &["10.0.0.8:1"]), false, t0);
    let d = a.next(t0, nobody).unwrap();
    a.finished(&d.id, &failed(&d), t0);
    a.offer(ad(2, &["10.0.0.8:2", "10.0.0.9:2"]), false, t0);
    let d = a.next(t0, nobody).unwrap();
    assert_eq!(d.addrs, vec![sa("10.0.0.9:2")]);
    assert!(
        a.next(t0, nobody).is_none(),
        "the same node is not dialled twice at once"
    );
    a.finished(&d.id, &failed(&d), t0 + ms(100));
    let t1 = t0 + Duration::from_secs(1);
    let d = a.next(t1, nobody).unwrap();
    assert_eq!(d.addrs, vec![sa("10.0.0.8:2")]);
    a.finished(&d.id, &reached(&d), t1);
    assert_eq!(a.pending(), 0);
    assert_eq!(a.in_flight(), 0);
}

#[test]
fn extreme_limits_saturate_instead_of_panicking() {
    let t0 = Instant::now();
    let huge = Limits {
        refill: Duration::MAX,
        source_spacing: Duration::MAX,
        backoff_min: Duration::MAX,
        backoff_max: Duration::MAX,
        failed_retry_after: Duration::MAX,
        max_sources: 1,
        max_failed: 1,
        ..Limits::default()
    };
    let mut a = Admission::with_limits(id(0), TAG, huge, t0);
    for n in 1..=4 {
        a.offer(ad(n, &[&format!("10.0.9.{n}:1")]), false, t0);
        if let Some(d) = a.next(t0, nobody) {
            a.finished(&d.id, &failed(&d), t0);
        }
        let _ = a.next_wake(t0);
    }
    assert!(a.remembered_failures() <= 1);
    assert!(a.sources() <= 1);
}

#[test]
fn a_replay_of_old_adverts_does_not_pass_a_node_that_just_appeared() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    let fake = |n: u32| ad(n, &[&format!("10.77.{}.{}:7400", 1 + n / 200, 1 + n % 200)]);
    // A flood; most of it is dropped from the full waiting set.
    for n in 1..=600 {
        a.offer(fake(n), false, t0);
    }
    assert!(a.take_dropped() > 0);
    // A real node appears, then the cache is replayed: every fake comes back.
    let t1 = t0 + ms(500);
    a.offer(ad(9999, &["10.77.0.3:7400"]), false, t1);
    for n in 1..=600 {
        a.offer(fake(n), false, t1);
    }
    assert_eq!(a.next(t1, nobody).unwrap().id, id(9999));
}

#[test]
fn fakes_aimed_at_a_real_nodes_ip_do_not_make_it_back_off() {
    let t0 = Instant::now();
    let mut a = admission(t0);
    // Fakes pointing at a live node's address: it answers with its own key, so each
    // dial is refused. The record is remembered as failed, the IP does not back off.
    for n in 1..=5 {
        a.offer(ad(n, &["10.0.0.3:7400"]), false, t0);
    }
    let mut t = t0;
    for _ in 0..5 {
        let d = a
            .next(t, nobody)
            .expect("the IP only waits for the spacing");
        a.finished(
            &d.id,
            &Outcome {
                refused: d.addrs.clone(),
                ..Outcome::default()
            },
            t,
        );
        t += limits::SOURCE_SPACING;
    }
    // The real node there is dialled at once, and the refused fakes never again.
    a.offer(ad(99, &["10.0.0.3:7400"]), false, t);
    assert_eq!(a.next(t, nobody).unwrap().id, id(99));
    for n in 1..=5 {
        assert_eq!(a.offer(ad(n, &["10.0.0.3:7400"]), false, t), Verdict::Known);
    }
}
