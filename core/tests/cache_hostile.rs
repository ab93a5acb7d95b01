//! The replicated cache against a hostile member (issue 12): a raw authenticated peer
//! that writes the cache service's messages with whatever lengths, versions, durations
//! and counts it likes, over real QUIC to real nodes on 127.0.0.1. Every refusal must be a
//! clear error back to the peer, and the node must keep serving with a consistent store.

mod common;

#[path = "common/cache.rs"]
mod cache_common;

use std::time::Duration;

use cache_common::*;
use common::*;
use memmesh::cache::limits::{
    ENTRY_ENVELOPE, LOCAL_BUCKET_RESERVE, MAX_BATCH, MAX_BUCKETS, MAX_CLOCK_DRIFT, MAX_KEY_LEN,
};
use memmesh::cache::messages::{ApplyPart, PartReply, Request, Response, RmwOp, RmwResult};
use memmesh::cache::store::entry_cost;
use memmesh::{Bytes, CacheOptions, ErrorKind, Node, PeerState};

fn opts(replicas: u32) -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas,
        ..CacheOptions::default()
    })
}

async fn join(name: &str, seed: &Node, quota: Option<u64>) -> Node {
    let mut b = builder(name).bootstrap([seed.addr().to_string()]);
    if let Some(q) = quota {
        b = b.memory_quota(q);
    }
    b.start().await.unwrap()
}

async fn converge(nodes: &[Node]) {
    let n = nodes.len();
    assert!(
        eventually(Duration::from_secs(30), || nodes.iter().all(|x| x
            .peers()
            .iter()
            .filter(|p| p.state == PeerState::Alive)
            .count()
            == n - 1))
        .await,
        "cluster did not form"
    );
}

fn used(node: &Node) -> u64 {
    node.blocks().unwrap().local_stats().used
}

/// Defect 1: a key of 64 KiB or more was stored truncated (`key_len: u16`), could never be
/// found or removed, and panicked the node later. Every peer-supplied key, bucket name,
/// value and count is now checked on the serving side with the client's limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_key_of_70000_bytes_is_refused_and_the_node_keeps_working() {
    let max_message = 256 * 1024;
    let a = builder("a")
        .max_message_size(max_message)
        .start()
        .await
        .unwrap();
    let c = a.cache("h", opts(1)).await.unwrap();
    c.set("before", "v", None).await.unwrap();
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let s = spec("h", c.options());
    let long = "k".repeat(70_000);

    let apply = |key: &str, value: &[u8]| Request::Apply {
        spec: s.clone(),
        entries: vec![entry(key, value, stamp_now())],
        sent_to: vec![],
    };
    let answer = cache_call(&raw, &apply(&long, b"v")).await;
    assert_eq!(answer.kind(), ErrorKind::InvalidInput, "{answer:?}");
    for req in [
        Request::Get {
            bucket: "h".into(),
            keys: vec![long.clone()],
        },
        Request::Peek {
            bucket: "h".into(),
            keys: vec![long.clone()],
        },
    ] {
        let answer = cache_call(&raw, &req).await;
        assert_eq!(
            answer.kind(),
            ErrorKind::InvalidInput,
            "{req:?}: {answer:?}"
        );
    }
    // The same limits as a user's call: one byte over the key limit, an empty key, a
    // value that leaves no room for a request's envelope, a bucket name over its limit,
    // more keys than a request may carry, partitions that do not exist.
    let over = "x".repeat(MAX_KEY_LEN + 1);
    assert_eq!(
        c.set(&over, "v", None).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let too_big = vec![7u8; max_message - ENTRY_ENVELOPE];
    assert_eq!(
        c.set("big", too_big.clone(), None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let refused = [
        apply(&over, b"v"),
        apply("", b"v"),
        apply("big", &too_big),
        Request::Get {
            bucket: "n".repeat(300),
            keys: vec!["k".into()],
        },
        Request::Count {
            bucket: "n".repeat(300),
        },
        Request::Peek {
            bucket: "h".into(),
            keys: (0..=MAX_BATCH).map(|i| format!("k{i}")).collect(),
        },
        Request::Apply {
            spec: s.clone(),
            entries: (0..=MAX_BATCH)
                .map(|i| entry(&format!("k{i}"), b"v", stamp_now()))
                .collect(),
            sent_to: vec![],
        },
        Request::Pull {
            bucket: "h".into(),
            partitions: vec![9999],
            cursor: 0,
            table: 0,
        },
        Request::Pull {
            bucket: "h".into(),
            partitions: (0..2000u16).collect(),
            cursor: 0,
            table: 0,
        },
    ];
    for req in refused {
        let answer = cache_call(&raw, &req).await;
        let what = format!("{req:?}");
        let what = &what[..what.len().min(120)];
        assert_eq!(answer.kind(), ErrorKind::InvalidInput, "{what}: {answer:?}");
    }
    // Nothing of it was stored; the node keeps serving, with exact accounts.
    let mut expect_bytes = entry_cost("before".len(), 1);
    for i in 0..50 {
        let (k, v) = (format!("key{i}"), format!("value{i}"));
        c.set(&k, v.clone(), None).await.unwrap();
        expect_bytes += entry_cost(k.len(), v.len());
    }
    for i in 0..50 {
        assert_eq!(
            c.get(&format!("key{i}")).await.unwrap().as_deref(),
            Some(format!("value{i}").as_bytes())
        );
    }
    assert_eq!(c.stats().entries, 51);
    assert_eq!(c.stats().bytes, expect_bytes);
    assert_eq!(used(&a), expect_bytes);
    // A raw peer's well-formed requests are still served.
    let answer = cache_call(&raw, &apply("fine", b"ok")).await.response();
    assert!(
        matches!(answer, Response::Applied(ref o) if o.len() == 1),
        "{answer:?}"
    );
    assert_eq!(c.get("fine").await.unwrap().as_deref(), Some(&b"ok"[..]));
    a.shutdown().await.unwrap();
}

/// Defect 5: a peer's version of `u64::MAX` panicked the clock (debug) or wrapped it
/// (release), after which the peer's entries won forever. A stamp further ahead than the
/// maximum drift is refused; a later write from a real node wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_version_of_u64_max_is_refused_and_a_later_set_wins() {
    let a = node("a").await;
    let b = join("b", &a, None).await;
    converge(&[a.clone(), b.clone()]).await;
    let ca = a.cache("clock", opts(2)).await.unwrap();
    let cb = b.cache("clock", None).await.unwrap();
    ca.set("k", "first", None).await.unwrap();
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let s = spec("clock", ca.options());
    let wall = memmesh::cache::hlc::wall_ms();
    let drift = MAX_CLOCK_DRIFT.as_millis() as u64;
    let past_drift = (wall + drift + 60_000) << memmesh::cache::hlc::LOGICAL_BITS;
    for version in [u64::MAX, past_drift] {
        let answer = cache_call(
            &raw,
            &Request::Apply {
                spec: s.clone(),
                entries: vec![entry("k", b"evil", version)],
                sent_to: vec![],
            },
        )
        .await;
        assert_eq!(answer.kind(), ErrorKind::InvalidInput, "{answer:?}");
    }
    // A clock an hour fast is within the drift: its write is applied (and forwarded)...
    let hour_ahead = (wall + 3_600_000) << memmesh::cache::hlc::LOGICAL_BITS;
    let answer = cache_call(
        &raw,
        &Request::Apply {
            spec: s.clone(),
            entries: vec![entry("j", b"ahead", hour_ahead)],
            sent_to: vec![],
        },
    )
    .await
    .response();
    assert!(matches!(answer, Response::Applied(_)), "{answer:?}");
    assert_eq!(cb.get("j").await.unwrap().as_deref(), Some(&b"ahead"[..]));
    // ... and a later write from a real node still wins over it, everywhere.
    cb.set("j", "later", None).await.unwrap();
    ca.set("k", "good", None).await.unwrap();
    cb.set("k", "better", None).await.unwrap();
    for c in [&ca, &cb] {
        assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"better"[..]));
        assert_eq!(c.get("j").await.unwrap().as_deref(), Some(&b"later"[..]));
    }
    assert!(ca.delete("j").await.unwrap());
    assert_eq!(cb.get("j").await.unwrap(), None);
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// Coalesced writes (`ApplyBatch`, ADR 0021 fifth amendment): each part is answered as
/// its own `Apply` would be, so a refused part (a version past the drift, a bucket with
/// other options) fails alone and the others are applied and forwarded; a batch is held
/// to the entries one request may carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_writes_is_answered_part_by_part() {
    let a = node("a").await;
    let b = join("b", &a, None).await;
    converge(&[a.clone(), b.clone()]).await;
    let ca = a.cache("batch", opts(2)).await.unwrap();
    let cb = b.cache("batch", None).await.unwrap();
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let s = spec("batch", ca.options());
    let wall = memmesh::cache::hlc::wall_ms();
    let version = wall << memmesh::cache::hlc::LOGICAL_BITS;
    let past_drift =
        (wall + MAX_CLOCK_DRIFT.as_millis() as u64 + 60_000) << memmesh::cache::hlc::LOGICAL_BITS;
    let part = |spec: &memmesh::cache::messages::Spec, key: &str, v: u64| ApplyPart {
        spec: spec.clone(),
        entries: vec![entry(key, key.as_bytes(), v)],
        sent_to: vec![],
    };
    let other = spec("batch", opts(1).unwrap());
    let answer = cache_call(
        &raw,
        &Request::ApplyBatch(vec![
            part(&s, "x", version),
            part(&s, "y", past_drift),
            part(&other, "z", version),
            part(&s, "w", version),
        ]),
    )
    .await
    .response();
    let Response::AppliedBatch(replies) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert!(matches!(&replies[0], PartReply::Applied(o) if o.len() == 1));
    for refused in &replies[1..3] {
        assert!(
            matches!(refused, PartReply::Failed { kind, .. } if kind == "InvalidInput"),
            "{refused:?}"
        );
    }
    assert!(matches!(&replies[3], PartReply::Applied(o) if o.len() == 1));
    for c in [&ca, &cb] {
        assert_eq!(c.get("x").await.unwrap().as_deref(), Some(&b"x"[..]));
        assert_eq!(c.get("w").await.unwrap().as_deref(), Some(&b"w"[..]));
        assert_eq!(c.get("y").await.unwrap(), None);
        assert_eq!(c.get("z").await.unwrap(), None);
    }
    // More entries in all than one request may carry: the whole batch is refused.
    let too_many = (0..=MAX_BATCH)
        .map(|i| part(&s, &format!("m{i}"), version))
        .collect();
    let answer = cache_call(&raw, &Request::ApplyBatch(too_many)).await;
    assert_eq!(answer.kind(), ErrorKind::InvalidInput, "{answer:?}");
    assert_eq!(ca.get("m0").await.unwrap(), None);
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// Defect 6: `now + ttl` overflowed for `Duration::MAX` (the entry was then taken as
/// expired and deleted while `set` returned Ok), so did a peer's expiry of `u64::MAX` ms,
/// and `Instant::now() + request_timeout` panicked. TTLs saturate (effectively never
/// expire); deadlines saturate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_of_duration_max_saturate_for_users_and_peers() {
    // Configured timeouts are at most a day (checked at start); per-call TTLs saturate.
    let a = builder("a")
        .request_timeout(Duration::from_secs(86_400))
        .start()
        .await
        .unwrap();
    let c = a.cache("t", opts(1)).await.unwrap();
    c.set("forever", "v", Some(Duration::MAX)).await.unwrap();
    assert_eq!(c.get("forever").await.unwrap().as_deref(), Some(&b"v"[..]));
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    assert!(c.ttl("forever").await.unwrap().unwrap() > century);
    assert!(c.expire("forever", Duration::MAX).await.unwrap());
    assert_eq!(c.get("forever").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.incr("n", 5).await.unwrap(), 5);
    assert!(c.delete("n").await.unwrap());
    c.set_many(
        vec![
            ("m1".into(), Bytes::from("1")),
            ("m2".into(), Bytes::from("2")),
        ],
        Some(Duration::MAX),
    )
    .await
    .unwrap();
    assert_eq!(c.get("m2").await.unwrap().as_deref(), Some(&b"2"[..]));

    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let answer = cache_call(
        &raw,
        &Request::Rmw {
            spec: spec("t", c.options()),
            key: "forever".into(),
            op: RmwOp::Expire(u64::MAX),
        },
    )
    .await
    .response();
    assert_eq!(answer, Response::Rmw(RmwResult::Existed(true)));
    assert_eq!(c.get("forever").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(c.ttl("forever").await.unwrap().unwrap() > century);
    // A peer defines a bucket whose TTL is `Duration::MAX`; incr of a new key there.
    let eternal = spec(
        "eternal",
        CacheOptions {
            ttl: Some(Duration::MAX),
            replicas: 1,
            ..CacheOptions::default()
        },
    );
    let answer = cache_call(&raw, &Request::Define(eternal.clone()))
        .await
        .response();
    assert_eq!(answer, Response::Done);
    let answer = cache_call(
        &raw,
        &Request::Rmw {
            spec: eternal,
            key: "n".into(),
            op: RmwOp::Incr(1),
        },
    )
    .await
    .response();
    assert_eq!(answer, Response::Rmw(RmwResult::Int(1)));
    let e = a.cache("eternal", None).await.unwrap();
    assert_eq!(e.get("n").await.unwrap().as_deref(), Some(&b"1"[..]));
    e.set("x", "y", None).await.unwrap();
    assert_eq!(e.get("x").await.unwrap().as_deref(), Some(&b"y"[..]));
    a.shutdown().await.unwrap();
}

/// Defect 8 (cache): peers created buckets without limit. A node holds at most
/// `MAX_BUCKETS`, peers can fill it only up to `MAX_BUCKETS - LOCAL_BUCKET_RESERVE`, and
/// what is refused is `QuotaExceeded` with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_create_buckets_without_limit() {
    let a = node("a").await;
    let mine = a.cache("mine", opts(1)).await.unwrap();
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let peer_limit = MAX_BUCKETS - LOCAL_BUCKET_RESERVE;
    let mut accepted = 0usize;
    let mut refusal = None;
    for i in 0..MAX_BUCKETS + 10 {
        let req = Request::Define(spec(&format!("junk-{i}"), CacheOptions::default()));
        match cache_call(&raw, &req).await {
            Answer::Ok(Response::Done) => accepted += 1,
            Answer::Ok(other) => panic!("unexpected answer {other:?}"),
            Answer::Err(kind, message) => {
                refusal = Some((kind, message));
                break;
            }
        }
    }
    // "mine" was there first: peers made the node create up to its peer limit.
    assert_eq!(accepted, peer_limit - 1);
    let (kind, message) = refusal.expect("a refusal");
    assert_eq!(kind, ErrorKind::QuotaExceeded, "{message}");
    assert!(message.contains("buckets"), "{message}");
    // A write that would create one more is refused the same way.
    let answer = cache_call(
        &raw,
        &Request::Apply {
            spec: spec("junk-write", CacheOptions::default()),
            entries: vec![entry("k", b"v", stamp_now())],
            sent_to: vec![],
        },
    )
    .await;
    assert_eq!(answer.kind(), ErrorKind::QuotaExceeded);
    // Buckets that exist are still served, and this node's user can still open its own.
    let answer = cache_call(
        &raw,
        &Request::Define(spec("junk-3", CacheOptions::default())),
    )
    .await
    .response();
    assert_eq!(answer, Response::Done);
    let own = a.cache("own", opts(1)).await.unwrap();
    own.set("k", "v", None).await.unwrap();
    mine.set("k", "v", None).await.unwrap();
    assert_eq!(own.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert!(a.caches().len() <= MAX_BUCKETS);
    a.shutdown().await.unwrap();
}

/// Defect 3: partitions pulled during a move were stored past the memory quota. A node
/// joining with a small quota takes what fits, the rest stays readable from the source,
/// and its memory never exceeds its quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_partitions_respect_the_memory_quota() {
    let a = node("a").await;
    let ca = a.cache("bulk", opts(1)).await.unwrap();
    let value = vec![b'v'; 1000];
    let keys: Vec<String> = (0..3000).map(|i| format!("key{i}")).collect();
    for chunk in keys.chunks(200) {
        let batch = chunk
            .iter()
            .map(|k| (k.clone(), Bytes::from(value.clone())))
            .collect();
        ca.set_many(batch, None).await.unwrap();
    }
    // b owns about half of ~3.3 MiB after it joins: more than its quota.
    let quota = 1024 * 1024;
    let b = join("b", &a, Some(quota)).await;
    converge(&[a.clone(), b.clone()]).await;
    let cb = b.cache("bulk", None).await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || used(&b) > quota / 2
            || used(&b) > quota)
        .await,
        "nothing was pulled: {:?}",
        cb.stats()
    );
    // Watch it a while: it never goes past its quota.
    for _ in 0..30 {
        assert!(
            used(&b) <= quota,
            "{} > {quota}: {:?}",
            used(&b),
            cb.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What b could not take is read from the source: no key is missing.
    for k in keys.iter().step_by(7) {
        assert_eq!(cb.get(k).await.unwrap().as_deref(), Some(&value[..]), "{k}");
    }
    assert!(used(&b) <= quota);
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// Same class (a peer making a node hold memory): a node keeps the data of partitions
/// it handed off only while members pull them. Any peer could refresh that by pulling,
/// so a node's moved data was held for ever; only a pull from a member whose routing
/// table agrees counts now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_pulling_does_not_keep_handed_off_data_alive() {
    let a = node("a").await;
    let ca = a.cache("handoff", opts(1)).await.unwrap();
    for i in 0..300 {
        ca.set(&format!("key{i}"), "value", None).await.unwrap();
    }
    let b = join("b", &a, None).await;
    converge(&[a.clone(), b.clone()]).await;
    let cb = b.cache("handoff", None).await.unwrap();
    // b takes its share; a keeps its copy for the handoff time.
    assert!(
        eventually(Duration::from_secs(30), || cb.stats().entries > 50).await,
        "{:?}",
        cb.stats()
    );
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let puller = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let page = cache_call(
                    &raw,
                    &Request::Pull {
                        bucket: "handoff".into(),
                        partitions: (0..271u16).collect(),
                        cursor: 0,
                        table: 0,
                    },
                )
                .await
                .response();
                assert!(matches!(page, Response::Page { .. }), "{page:?}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    // a drops what it handed off (30 s after it lost it) although the raw peer pulls.
    let total = 300;
    assert!(
        eventually(Duration::from_secs(120), || ca.stats().entries
            + cb.stats().entries
            == total)
        .await,
        "a still holds what it handed off: a {:?}, b {:?}",
        ca.stats(),
        cb.stats()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    puller.await.unwrap();
    for i in (0..300).step_by(11) {
        assert!(cb.get(&format!("key{i}")).await.unwrap().is_some());
    }
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

/// Same class (lengths): a read naming one large value a thousand times made the node
/// copy it a thousand times into one reply (then fail to send it). A reply carries at
/// most a message's worth of values: `Get` answers `Moved` for the rest (readers ask again
/// key by key), `Peek` answers a prefix of the keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_one_large_value_many_times_gets_a_bounded_reply() {
    let max_message = 256 * 1024;
    let a = builder("a")
        .max_message_size(max_message)
        .start()
        .await
        .unwrap();
    let c = a.cache("reads", opts(1)).await.unwrap();
    let big = vec![b'b'; 200 * 1024];
    c.set("big", big.clone(), None).await.unwrap();
    c.set("small", "s", None).await.unwrap();
    let raw = RawPeer::connect(a.addr(), None).await.unwrap();
    let mut keys = vec!["big".to_string(); MAX_BATCH - 1];
    keys.push("small".into());
    let answer = cache_call(
        &raw,
        &Request::Get {
            bucket: "reads".into(),
            keys: keys.clone(),
        },
    )
    .await
    .response();
    let Response::Lookups(lookups) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(lookups.len(), keys.len());
    let found = lookups
        .iter()
        .filter(|l| matches!(l, memmesh::cache::messages::Lookup::Found { .. }))
        .count();
    assert_eq!(found, 1, "one value fits a reply of {max_message} bytes");
    assert!(matches!(
        lookups[0],
        memmesh::cache::messages::Lookup::Found { ref value, .. } if value.len() == big.len()
    ));
    assert!(lookups[1..]
        .iter()
        .all(|l| matches!(l, memmesh::cache::messages::Lookup::Moved)));
    let answer = cache_call(
        &raw,
        &Request::Peek {
            bucket: "reads".into(),
            keys,
        },
    )
    .await
    .response();
    let Response::Peeked(peeked) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(peeked.len(), 1, "a prefix of the keys");
    // A user's batch read of the same keys still gets every value.
    let mut mixed: Vec<String> = (0..5).map(|_| "big".to_string()).collect();
    mixed.push("small".into());
    let got = c.get_many(&mixed).await.unwrap();
    assert!(got[..5].iter().all(|v| v.as_deref() == Some(&big[..])));
    assert_eq!(got[5].as_deref(), Some(&b"s"[..]));
    a.shutdown().await.unwrap();
}

/// Replies and pages stay within a message: with 256 KiB messages, a node pulls 100 KiB
/// values page by page, stops at its quota, and a batch read of large values during the
/// move (answered partly by the source, a bounded reply at a time) returns every value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_move_and_read_in_bounded_replies() {
    let max_message = 256 * 1024;
    let a = builder("a")
        .max_message_size(max_message)
        .start()
        .await
        .unwrap();
    let ca = a.cache("large", opts(1)).await.unwrap();
    let keys: Vec<String> = (0..24).map(|i| format!("large{i}")).collect();
    let value = |i: usize| vec![b'a' + (i % 26) as u8; 100 * 1024];
    for (i, k) in keys.iter().enumerate() {
        ca.set(k, value(i), None).await.unwrap();
    }
    let quota = 600 * 1024;
    let b = builder("b")
        .max_message_size(max_message)
        .memory_quota(quota)
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    converge(&[a.clone(), b.clone()]).await;
    let cb = b.cache("large", None).await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || used(&b) > quota / 3).await,
        "nothing was pulled: {:?}",
        cb.stats()
    );
    let got = cb.get_many(&keys).await.unwrap();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v.as_deref(), Some(&value(i)[..]), "{}", keys[i]);
    }
    assert!(used(&b) <= quota);
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}
