//! Every path cache-bench measures, run briefly against real nodes on 127.0.0.1 (mDNS off):
//! the runs must complete calls and check every value.

use std::time::Duration;

use bytes::Bytes;
use memmesh_bench::cache_mesh::{local_hits, CachePair, LocalApi, BATCH};
use memmesh_bench::cache_report::{self, Record, Remote, Results};
use memmesh_bench::load::{run_on, Spec};
use memmesh_bench::resident;

fn spec(concurrency: usize) -> Spec {
    Spec {
        concurrency,
        warmup: Duration::from_millis(20),
        measure: Duration::from_millis(200),
    }
}

#[test]
fn remote_and_local_cases_complete_with_checked_values() {
    let pair = CachePair::start(1, 64, false).unwrap();
    assert_eq!(pair.remote_entries().len(), 64);
    assert_eq!(pair.local_entries().len(), 64);
    // The remote keys are not answered by the client's replica: every read crosses the
    // network.
    for (key, _) in pair.remote_entries() {
        assert_eq!(pair.cache().try_get_local(key), None, "{key}");
    }
    let token = Bytes::from_static(b"ok");
    for concurrency in [1, 8] {
        for (name, s) in [
            (
                "set",
                run_on(
                    &pair.handle(),
                    spec(concurrency),
                    token.clone(),
                    pair.remote_set(token.clone()),
                ),
            ),
            (
                "get",
                run_on(
                    &pair.handle(),
                    spec(concurrency),
                    token.clone(),
                    pair.remote_get(token.clone()),
                ),
            ),
            (
                "set_many",
                run_on(
                    &pair.handle(),
                    spec(concurrency),
                    token.clone(),
                    pair.remote_set_many(token.clone()),
                ),
            ),
            (
                "get_many",
                run_on(
                    &pair.handle(),
                    spec(concurrency),
                    token.clone(),
                    pair.remote_get_many(token.clone()),
                ),
            ),
        ] {
            let s = s.unwrap_or_else(|e| panic!("{name} c={concurrency}: {e:#}"));
            assert!(
                s.count > 0 && s.p50 <= s.p99,
                "{name} c={concurrency}: {s:?}"
            );
        }
    }
    for api in [LocalApi::TryGetLocal, LocalApi::Get] {
        let rate = local_hits(
            pair.cache(),
            pair.local_entries(),
            api,
            Duration::from_millis(50),
        )
        .unwrap();
        assert!(rate > 0.0, "{api:?}");
    }
    // A remote key is not a local hit: the local loop refuses it rather than measuring
    // something else.
    let err = local_hits(
        pair.cache(),
        &pair.remote_entries()[..BATCH],
        LocalApi::TryGetLocal,
        Duration::from_millis(10),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no longer answered locally"),
        "{err}"
    );
    pair.shutdown().unwrap();
}

#[test]
fn a_wrong_value_fails_the_run() {
    let pair = CachePair::start(1, 32, false).unwrap();
    let (key, _) = &pair.remote_entries()[0];
    futures::executor::block_on(pair.cache().set(key, Bytes::from_static(b"other"), None)).unwrap();
    let token = Bytes::from_static(b"ok");
    let err = run_on(
        &pair.handle(),
        spec(1),
        token.clone(),
        pair.remote_get(token),
    )
    .unwrap_err();
    assert!(err.to_string().contains("wrong value"), "{err:#}");
    pair.shutdown().unwrap();
}

#[test]
fn fill_counts_resident_bytes_and_stores_every_entry() {
    let r = resident::fill(2_000, 1).unwrap();
    assert_eq!(r.entries, 2_000);
    assert_eq!(r.key_bytes, 11);
    assert_eq!(r.value_bytes, 100);
    assert!(r.rss_after > 0 && r.rss_before > 0, "{r:?}");
    assert!(
        r.accounted_bytes >= 2_000 * 111,
        "the bucket accounts at least keys and values: {r:?}"
    );
}

#[test]
fn report_reads_a_results_directory() {
    let dir = std::env::temp_dir().join(format!("cache-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let remote = Remote {
        op: "GET".into(),
        concurrency: 50,
        batch: 16,
        calls_per_s: 1000.0,
        keys_per_s: 16000.0,
        p50_us: 500.0,
        p99_us: 900.0,
        cpu_us_per_call: Some(20.0),
    };
    let line = serde_json::to_string(&Record::Remote(remote)).unwrap();
    std::fs::write(dir.join(cache_report::MEMMESH_FILE), format!("{line}\n")).unwrap();
    std::fs::write(
        dir.join(cache_report::redis_csv_name(50, 16)),
        "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
         \"SET\",\"100000.00\",\"1\",\"1\",\"1.000\",\"1\",\"2.000\",\"3\"\n\
         \"GET\",\"32000.00\",\"1\",\"1\",\"1.000\",\"1\",\"2.000\",\"3\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(cache_report::LOCAL_FILE),
        "{\"lang\":\"python\",\"ops_per_s\":2000000}\n{\"lang\":\"redis-py\",\"ops_per_s\":10000}\n",
    )
    .unwrap();
    let results = Results::load(&dir).unwrap();
    let table = cache_report::remote_table(&results);
    let row = table.lines().nth(2).unwrap();
    assert!(row.starts_with("GET x16 c=50"), "{table}");
    assert!(row.contains("0.50x"), "{table}");
    let table = cache_report::local_table(&results);
    assert!(table.contains("200.00x"), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}
