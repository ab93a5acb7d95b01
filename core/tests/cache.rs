//! The replicated cache over real QUIC: buckets known cluster-wide, replication,
//! rebalancing without false misses, TTL, LRU, quota, batches and counters.

mod common;

use std::time::Duration;

use common::*;
use memmesh::{Bytes, CacheOptions, ErrorKind, Node, PeerState};

async fn join(name: &str, seed: &Node) -> Node {
    builder(name)
        .bootstrap([seed.addr().to_string()])
        .start()
        .await
        .unwrap()
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

fn opts(replicas: u32) -> Option<CacheOptions> {
    Some(CacheOptions {
        replicas,
        ..CacheOptions::default()
    })
}

/// Two nodes and `bucket` on both, one copy of each key (so about half the keys `a`
/// reads or writes are held by `b`).
async fn two_nodes(bucket: &str) -> (Node, Node, memmesh::Cache, memmesh::Cache) {
    let a = builder("a").start().await.unwrap();
    let b = join("b", &a).await;
    converge(&[a.clone(), b.clone()]).await;
    let ca = a.cache(bucket, opts(1)).await.unwrap();
    let cb = b.cache(bucket, None).await.unwrap();
    (a, b, ca, cb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_readable_everywhere_and_buckets_are_cluster_wide() {
    let a = node("a").await;
    let b = join("b", &a).await;
    let c = join("c", &a).await;
    converge(&[a.clone(), b.clone(), c.clone()]).await;
    let ca = a.cache("sessions", opts(2)).await.unwrap();
    // b learns the bucket's options from the cluster.
    let cb = b.cache("sessions", None).await.unwrap();
    assert_eq!(cb.options(), ca.options());
    // Different options for an existing bucket are refused.
    let err = c.cache("sessions", opts(3)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    for i in 0..200 {
        ca.set(&format!("k{i}"), format!("v{i}"), None)
            .await
            .unwrap();
    }
    let cc = c.cache("sessions", None).await.unwrap();
    for i in 0..200 {
        let v = cc.get(&format!("k{i}")).await.unwrap();
        assert_eq!(v.as_deref(), Some(format!("v{i}").as_bytes()), "k{i}");
    }
    assert_eq!(cb.get("absent").await.unwrap(), None);
    assert_eq!(cc.len().await.unwrap(), 200);
    // At least two copies of each entry across the three nodes (right after a membership
    // change, writes also go to the previous owners, which drop their copy later).
    let held: u64 = [&ca, &cb, &cc].iter().map(|c| c.stats().entries).sum();
    assert!((400..=600).contains(&held), "{held}");
    assert!(cb.delete("k1").await.unwrap());
    assert!(!cb.delete("k1").await.unwrap());
    assert_eq!(ca.get("k1").await.unwrap(), None);
    assert_eq!(cc.len().await.unwrap(), 199);
    assert!(a
        .caches()
        .iter()
        .any(|(n, o)| n == "sessions" && o.replicas == 2));
    // Concurrent writes to the same owners travel coalesced (`ApplyBatch`): each is
    // acknowledged once both owners have it, as a write of its own would be.
    let writes = (0..300).map(|i| {
        let ca = ca.clone();
        async move { ca.set(&format!("c{i}"), format!("w{i}"), None).await }
    });
    for r in futures::future::join_all(writes).await {
        r.unwrap();
    }
    for i in 0..300 {
        let key = format!("c{i}");
        for c in [&cb, &cc] {
            let v = c.get(&key).await.unwrap();
            assert_eq!(v.as_deref(), Some(format!("w{i}").as_bytes()), "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incr_batches_expire_and_ttl() {
    let a = node("a").await;
    let b = join("b", &a).await;
    converge(&[a.clone(), b.clone()]).await;
    let ca = a.cache("counters", opts(2)).await.unwrap();
    let cb = b.cache("counters", None).await.unwrap();
    assert_eq!(ca.incr("hits", 1).await.unwrap(), 1);
    assert_eq!(cb.incr("hits", 41).await.unwrap(), 42);
    assert_eq!(cb.incr("hits", -2).await.unwrap(), 40);
    assert_eq!(ca.get("hits").await.unwrap().as_deref(), Some(&b"40"[..]));
    ca.set("text", "abc", None).await.unwrap();
    assert_eq!(
        cb.incr("text", 1).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    ca.set("max", i64::MAX.to_string(), None).await.unwrap();
    assert_eq!(
        cb.incr("max", 1).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let entries: Vec<(String, Bytes)> = (0..16)
        .map(|i| (format!("batch{i}"), Bytes::from(format!("value{i}"))))
        .collect();
    cb.set_many(entries, None).await.unwrap();
    let mut keys: Vec<String> = (0..16).map(|i| format!("batch{i}")).collect();
    keys.push("nope".into());
    let got = ca.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), 17);
    for (i, v) in got.iter().take(16).enumerate() {
        assert_eq!(v.as_deref(), Some(format!("value{i}").as_bytes()));
    }
    assert_eq!(got[16], None);

    // TTL: none by default; expire sets one; ttl of an absent key is NotFound.
    assert_eq!(cb.ttl("text").await.unwrap(), None);
    assert!(cb.expire("text", Duration::from_secs(100)).await.unwrap());
    let left = ca.ttl("text").await.unwrap().unwrap();
    assert!(
        left > Duration::from_secs(90) && left <= Duration::from_secs(100),
        "{left:?}"
    );
    assert!(!cb.expire("nope", Duration::from_secs(1)).await.unwrap());
    assert_eq!(
        ca.ttl("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Bad input.
    assert_eq!(
        ca.set("", "x", None).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        ca.set("k", "x", Some(Duration::ZERO))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expires_exactly_and_the_sampler_removes_unread_entries() {
    let a = node("a").await;
    let c = a
        .cache(
            "short",
            Some(CacheOptions {
                ttl: Some(Duration::from_millis(300)),
                replicas: 1,
                ..CacheOptions::default()
            }),
        )
        .await
        .unwrap();
    c.set("default-ttl", "x", None).await.unwrap();
    c.set("long", "y", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    for i in 0..100 {
        c.set(&format!("unread{i}"), "z", None).await.unwrap();
    }
    assert!(c.get("default-ttl").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.get("default-ttl").await.unwrap(), None);
    assert!(c.get("long").await.unwrap().is_some());
    // Nobody reads the others: the active sampler removes them.
    assert!(
        eventually(Duration::from_secs(10), || c.stats().entries == 1).await,
        "{:?}",
        c.stats()
    );
    assert_eq!(c.stats().expired, 101);
    assert_eq!(c.len().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_evicts_the_least_recently_used_entry_and_quota_is_enforced() {
    let a = builder("a").memory_quota(64 * 1024).start().await.unwrap();
    let c = a
        .cache(
            "lru",
            Some(CacheOptions {
                max_entries: Some(3),
                replicas: 1,
                ..CacheOptions::default()
            }),
        )
        .await
        .unwrap();
    for k in ["a", "b", "c"] {
        c.set(k, k, None).await.unwrap();
    }
    assert!(c.get("a").await.unwrap().is_some());
    c.set("d", "d", None).await.unwrap();
    assert_eq!(
        c.get("b").await.unwrap(),
        None,
        "b was the least recently used"
    );
    for k in ["a", "c", "d"] {
        assert!(c.get(k).await.unwrap().is_some(), "{k}");
    }
    assert_eq!(c.stats().evicted, 1);
    assert_eq!(c.stats().entries, 3);
    // The node's quota (64 KiB) bounds every bucket: a write that does not fit fails.
    let big = a.cache("big", opts(1)).await.unwrap();
    let err = big
        .set("huge", vec![0u8; 70 * 1024], None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert_eq!(big.get("huge").await.unwrap(), None);
    assert_eq!(big.stats().entries, 0);
    // Blocks and cache share the quota.
    let used = a.blocks().unwrap().local_stats().used;
    assert!(used > 0 && used < 64 * 1024, "{used}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_while_a_reader_runs_and_the_reader_never_misses() {
    let a = node("a").await;
    let b = join("b", &a).await;
    let c = join("c", &a).await;
    converge(&[a.clone(), b.clone(), c.clone()]).await;
    let ca = a.cache("moving", opts(2)).await.unwrap();
    let keys: Vec<(String, Bytes)> = (0..2000)
        .map(|i| (format!("key{i}"), Bytes::from(format!("value{i}"))))
        .collect();
    for chunk in keys.chunks(100) {
        ca.set_many(chunk.to_vec(), None).await.unwrap();
    }
    let reader_cache = b.cache("moving", None).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let cache = reader_cache.clone();
        tokio::spawn(async move {
            let (mut reads, mut misses) = (0u64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for i in (0..2000).step_by(7) {
                    let k = format!("key{i}");
                    match cache.get(&k).await {
                        Ok(Some(v)) => assert_eq!(v, Bytes::from(format!("value{i}"))),
                        Ok(None) => misses.push(k),
                        Err(e) => panic!("read of {k} failed: {e}"),
                    }
                    reads += 1;
                }
            }
            (reads, misses)
        })
    };
    let d = join("d", &a).await;
    converge(&[a.clone(), b.clone(), c.clone(), d.clone()]).await;
    let cd = d.cache("moving", None).await.unwrap();
    // Partitions move to d in the background.
    assert!(
        eventually(Duration::from_secs(30), || cd.stats().entries > 500).await,
        "nothing moved to the new node: {:?}",
        cd.stats()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, misses) = reader.await.unwrap();
    assert!(reads > 0);
    assert!(
        misses.is_empty(),
        "{} false misses, e.g. {:?}",
        misses.len(),
        &misses[..misses.len().min(5)]
    );
    // Every key is readable from the newcomer, and counted once.
    for (k, v) in keys.iter().step_by(13) {
        assert_eq!(cd.get(k).await.unwrap().as_ref(), Some(v), "{k}");
    }
    assert_eq!(cd.len().await.unwrap(), 2000);
}

/// Concurrent single-key reads of keys another node holds travel together in multi-key
/// `Get` requests (`cache/readbox.rs`); each read still gets its own value, also when the
/// values are too large for one reply (the peer answers within its reply budget and the
/// rest are asked again), and a missing key is still a miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_of_remote_keys_each_get_their_own_value() {
    // Small messages, so that two large values never fit in one reply.
    let small = |name: &str| builder(name).max_message_size(64 * 1024);
    let a = small("a").start().await.unwrap();
    let b = small("b")
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    let c = small("c")
        .bootstrap([a.addr().to_string()])
        .start()
        .await
        .unwrap();
    converge(&[a.clone(), b.clone(), c.clone()]).await;
    // One copy: two keys in three are held by another node than `a`.
    let ca = a.cache("remote", opts(1)).await.unwrap();
    let cb = b.cache("remote", None).await.unwrap();
    let value = |i: usize| {
        if i.is_multiple_of(10) {
            Bytes::from(vec![(i % 251) as u8; 24 * 1024])
        } else {
            Bytes::from(format!("value-{i}"))
        }
    };
    for i in 0..300 {
        cb.set(&format!("r{i}"), value(i), None).await.unwrap();
    }
    for round in 0..3 {
        let reads = (0..300).map(|i| {
            let ca = ca.clone();
            async move { (i, ca.get(&format!("r{i}")).await) }
        });
        let misses = (0..20).map(|i| {
            let ca = ca.clone();
            async move { ca.get(&format!("absent{i}")).await }
        });
        let (found, missing) = futures::future::join(
            futures::future::join_all(reads),
            futures::future::join_all(misses),
        )
        .await;
        for (i, got) in found {
            assert_eq!(got.unwrap(), Some(value(i)), "round {round}: r{i}");
        }
        for got in missing {
            assert_eq!(got.unwrap(), None, "round {round}");
        }
    }
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

/// A reader that gives up midway (its future dropped while its request is under way)
/// gives up its place in its peer's lane (`cache/readbox.rs`): the reads queued behind it
/// are still sent and answered, and later reads are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_give_up_midway_do_not_hold_back_the_reads_queued_behind_them() {
    let (a, b, ca, cb) = two_nodes("giveup").await;
    let key = |i: usize| format!("k{i}");
    let value = |i: usize| Bytes::from(format!("value-{i}"));
    for i in 0..200 {
        cb.set(&key(i), value(i), None).await.unwrap();
    }
    let mut given_up = 0;
    for round in 0..20 {
        // Readers polled once (the first ones of a remote key send their request from
        // there, the others queue behind them), then dropped while their requests are
        // under way. Keys `a` holds itself are answered at once.
        let mut abandoned = Vec::new();
        for i in 0..8 {
            let ca = ca.clone();
            let k = key((round * 8 + i) % 200);
            let mut get = Box::pin(async move { ca.get(&k).await });
            if futures::poll!(&mut get).is_pending() {
                given_up += 1;
                abandoned.push(get);
            }
        }
        let mut reads = Vec::new();
        for i in 0..64 {
            let ca = ca.clone();
            let k = key((round * 7 + i) % 200);
            let mut get = Box::pin(async move { ca.get(&k).await });
            let first = futures::poll!(&mut get);
            reads.push((i, get, first));
        }
        drop(abandoned);
        for (i, get, first) in reads {
            let got = match first {
                std::task::Poll::Ready(got) => got,
                std::task::Poll::Pending => tokio::time::timeout(Duration::from_secs(10), get)
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: read {i} held back")),
            };
            let want = (round * 7 + i) % 200;
            assert_eq!(got.unwrap(), Some(value(want)), "round {round}: read {i}");
        }
    }
    assert!(given_up >= 20, "only {given_up} readers gave up midway");
    // And a lone reader afterwards is answered at once.
    let got = tokio::time::timeout(Duration::from_secs(5), ca.get(&key(3))).await;
    assert_eq!(got.expect("held back").unwrap(), Some(value(3)));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A writer that gives up midway (its future dropped while its write is under way) does
/// not cancel it (`cache/outbox.rs`: the sender is a task of its own): its write still
/// lands, and the writes queued behind it are sent and answered. The writers run on the node's runtime,
/// as a handler's or a binding's would, so a write's first poll reaches its peer's lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_give_up_midway_still_land_and_do_not_hold_back_the_writes_behind_them() {
    let (a, b, ca, cb) = two_nodes("giveupw").await;
    let on_a = ca.clone();
    let given_up = a
        .runtime_handle()
        .spawn(async move {
            let ca = on_a;
            let mut given_up = Vec::new();
            for round in 0..20 {
                // Writers polled once, then dropped while under way: the first one of a
                // remote key finds the lane idle and starts its sender (its write is
                // sent and must land); the others queue behind it (a queued
                // write whose writer is gone is not sent). Keys `a` holds itself are
                // written at once.
                tokio::time::sleep(Duration::from_millis(200)).await; // the lane is idle
                let mut abandoned = Vec::new();
                for i in 0..8 {
                    let ca = ca.clone();
                    let key = format!("gone-{round}-{i}");
                    let k = key.clone();
                    let mut set =
                        Box::pin(async move { ca.set(&k, Bytes::from("kept"), None).await });
                    if futures::poll!(&mut set).is_pending() {
                        if abandoned.is_empty() {
                            given_up.push(key);
                        }
                        abandoned.push(set);
                    }
                }
                let mut writes = Vec::new();
                for i in 0..64 {
                    let ca = ca.clone();
                    let k = format!("w-{round}-{i}");
                    let v = Bytes::from(format!("v{i}"));
                    let mut set = Box::pin(async move { ca.set(&k, v, None).await });
                    let first = futures::poll!(&mut set);
                    writes.push((i, set, first));
                }
                drop(abandoned);
                for (i, set, first) in writes {
                    let done = match first {
                        std::task::Poll::Ready(done) => done,
                        std::task::Poll::Pending => {
                            tokio::time::timeout(Duration::from_secs(10), set)
                                .await
                                .unwrap_or_else(|_| panic!("round {round}: write {i} held back"))
                        }
                    };
                    done.unwrap();
                }
            }
            given_up
        })
        .await
        .unwrap();
    assert!(
        given_up.len() >= 15,
        "only {} senders gave up midway",
        given_up.len()
    );
    // Every abandoned write that was under way landed (read through the other node).
    for key in &given_up {
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = cb.get(key).await.unwrap();
            if got.as_deref() == Some(b"kept".as_slice()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "the abandoned write of {key} was cancelled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for round in 0..20 {
        for i in 0..64 {
            let want = format!("v{i}");
            let got = ca.get(&format!("w-{round}-{i}")).await.unwrap();
            assert_eq!(got.as_deref(), Some(want.as_bytes()), "w-{round}-{i}");
        }
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
