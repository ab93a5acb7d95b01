//! Every path the bench measures, run briefly against real nodes over real QUIC on
//! 127.0.0.1: the runs must complete requests and check every echo.

use std::time::Duration;

use bytes::Bytes;
use memmesh_bench::load::{run_blocking, run_on, Spec};
use memmesh_bench::mesh::MeshPair;
use memmesh_bench::payload;
use memmesh_bench::quinn_echo::{Hops, QuinnPair};

const SIZES: [usize; 2] = [64, 64 * 1024];

fn spec(concurrency: usize) -> Spec {
    Spec {
        concurrency,
        warmup: Duration::from_millis(20),
        measure: Duration::from_millis(200),
    }
}

#[test]
fn memmesh_remote_requests_echo_both_sizes() {
    let mesh = MeshPair::start(1).unwrap();
    for size in SIZES {
        for concurrency in [1, 8] {
            let s = run_on(
                &mesh.handle(),
                spec(concurrency),
                payload(size),
                mesh.remote_call(),
            )
            .unwrap();
            assert!(
                s.count > 0 && s.p50 <= s.p99,
                "{size} B c={concurrency}: {s:?}"
            );
        }
    }
    mesh.shutdown().unwrap();
}

#[test]
fn quinn_baseline_echoes_both_sizes_with_and_without_extra_tasks() {
    let quinn = QuinnPair::start(1).unwrap();
    for size in SIZES {
        for concurrency in [1, 8] {
            let s = run_on(
                &quinn.handle(),
                spec(concurrency),
                payload(size),
                quinn.call(),
            )
            .unwrap();
            assert!(
                s.count > 0 && s.p50 <= s.p99,
                "{size} B c={concurrency}: {s:?}"
            );
        }
    }
    for read_fin in [false, true] {
        let hops = Hops {
            request_task: true,
            timeout: true,
            handler_task: true,
            framed: true,
            read_fin,
        };
        for size in SIZES {
            let s = run_on(
                &quinn.handle(),
                spec(4),
                payload(size),
                quinn.call_with(hops),
            )
            .unwrap();
            assert!(s.count > 0, "{hops:?}: {s:?}");
            let datagrams = quinn
                .datagrams_per_request(hops, payload(size), 20)
                .unwrap();
            // At least the request and the reply travel in datagrams of their own.
            assert!(
                datagrams >= 2.0,
                "{hops:?}: {datagrams} datagrams per request"
            );
        }
    }
    quinn.shutdown();
}

#[test]
fn local_calls_echo_on_the_runtime_and_from_a_plain_thread() {
    let mesh = MeshPair::start(1).unwrap();
    let s = run_on(&mesh.handle(), spec(4), payload(64), mesh.local_call()).unwrap();
    assert!(s.count > 0, "{s:?}");
    let s = run_blocking(spec(1), payload(64), mesh.local_call_blocking()).unwrap();
    assert!(s.count > 0, "{s:?}");
    mesh.shutdown().unwrap();
}

#[test]
fn a_wrong_echo_or_a_failing_handler_fails_the_run() {
    let mesh = MeshPair::start(1).unwrap();
    mesh.set_remote_handler(|req: memmesh::Request| async move {
        let mut reversed = req.data.to_vec();
        reversed.reverse();
        Ok(Bytes::from(reversed))
    })
    .unwrap();
    let err = run_on(&mesh.handle(), spec(2), payload(64), mesh.remote_call()).unwrap_err();
    assert!(err.to_string().contains("wrong echo"), "{err:#}");

    mesh.set_remote_handler(|_req: memmesh::Request| async move {
        Err(memmesh::Error::new(
            memmesh::ErrorKind::HandlerFailed,
            "refused by the test",
        ))
    })
    .unwrap();
    let err = run_on(&mesh.handle(), spec(2), payload(64), mesh.remote_call()).unwrap_err();
    let err = err.downcast::<memmesh::Error>().unwrap();
    assert_eq!(err.kind(), memmesh::ErrorKind::HandlerFailed, "{err}");
    mesh.shutdown().unwrap();
}
