//! Resource leaks across many node lifetimes. Alone in its own test binary so that no
//! other test's threads or sockets disturb the counts.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_start_and_stop_without_leaking_threads_or_sockets() {
    // Warm up lazily created process-wide resources first.
    let warm = node("warm").await;
    warm.shutdown().await.unwrap();
    let (threads0, fds0) = threads_and_fds();
    for i in 0..50 {
        let a = builder(&format!("a{i}")).threads(2).start().await.unwrap();
        let b = builder(&format!("b{i}")).start().await.unwrap();
        echo(&b, "echo");
        let b_id = a.connect(&b.addr().to_string()).await.unwrap();
        a.channel("echo")
            .unwrap()
            .request(b_id, "x", None)
            .await
            .unwrap();
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    }
    // Threads exit asynchronously after being joined by the runtime: allow them a moment.
    let settled = eventually(Duration::from_secs(10), || {
        let (t, f) = threads_and_fds();
        t <= threads0 + 2 && f <= fds0 + 2
    })
    .await;
    let (threads1, fds1) = threads_and_fds();
    assert!(
        settled,
        "threads {threads0} -> {threads1}, fds {fds0} -> {fds1}"
    );
}
