//! The HTTP management front (issue 18, ADR 0025): every route, the bearer token, errors,
//! bounds, metrics per node and the live feed ending at shutdown. A small HTTP/1.1 client
//! over a TCP stream keeps the test free of an HTTP client dependency.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use memmesh::{ErrorKind, Node, Reach};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "an-http-token-of-some-length";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memmesh-http-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .expect("the reply in time")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        head: head.to_string(),
        body,
    }
}

fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, "", b"").await
}

async fn http_node(name: &str, data: Option<&std::path::Path>) -> Node {
    let mut b = builder(name).http_listen("127.0.0.1:0");
    if let Some(d) = data {
        b = b.data_dir(d);
    }
    b.start().await.expect("start node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_json_of_the_node() {
    let data = dir("routes");
    let a = http_node("a", Some(&data)).await;
    // The reads are counted where they are served: make them while `a` is alone, so
    // both are served here whichever node the key's partition would favour later.
    // With replicas 2 and two nodes, `a` keeps holding the entry once `b` joins.
    let cache = a.cache("web", None).await.unwrap();
    cache.set("k", b"v".to_vec(), None).await.unwrap();
    cache.get("k").await.unwrap();
    cache.get("nope").await.unwrap();
    let b = node("b").await;
    let b_id = a.connect(&b.addr().to_string()).await.unwrap();
    let addr = a.http_addr().expect("http_addr");
    let doc = a.docs().unwrap().create(Reach::Cluster).await.unwrap();

    let h = get(addr, "/health").await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["id"], a.id().to_string());

    assert!(
        eventually(Duration::from_secs(10), || a
            .peers()
            .iter()
            .any(|p| p.id == b_id))
        .await
    );
    let m = get(addr, "/cluster/members").await.json();
    assert_eq!(m["self"]["id"], a.id().to_string());
    let ids: Vec<String> = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&b_id.to_string()), "{m}");

    let l = get(addr, "/cluster/leader").await.json();
    assert_eq!(l["leader"], a.leader().to_string());

    let s = get(addr, "/storage/stats").await.json();
    let web = s["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "web")
        .cloned()
        .unwrap_or_else(|| panic!("{s}"));
    assert_eq!(web["hits"], 1);
    assert_eq!(web["misses"], 1);
    assert_eq!(web["entries"], 1);
    assert_eq!(s["files"]["files"], 0);
    assert_eq!(s["documents"], 1);

    let y = get(addr, "/sync/status").await.json();
    assert_eq!(y["documents"][0]["id"], doc.to_string());

    let t = get(addr, "/transfers").await.json();
    assert!(t["transfers"].is_array());

    let r = request(addr, "POST", &format!("/docs/{doc}/sync"), "", b"").await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = request(
        addr,
        "POST",
        &format!("/docs/{}/sync", "0".repeat(32)),
        "",
        b"",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["kind"], "NotFound");
    let r = request(addr, "POST", "/docs/not-an-id/sync", "", b"").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["kind"], "InvalidInput");

    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html"), "{}", page.body);

    let x = get(addr, "/metrics").await;
    assert_eq!(x.status, 200);
    assert!(
        x.body
            .contains("memmesh_cache_hits_total{bucket=\"web\"} 1"),
        "{}",
        x.body
    );

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_methods_and_large_bodies_are_refused_in_json() {
    let a = http_node("a", None).await;
    let addr = a.http_addr().unwrap();
    let r = get(addr, "/no/such/route").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["kind"], "NotFound");
    let r = request(addr, "DELETE", "/health", "", b"").await;
    assert_eq!(r.status, 405);
    let big = vec![b'x'; 64 * 1024];
    let r = request(
        addr,
        "POST",
        &format!("/docs/{}/sync", "0".repeat(32)),
        "",
        &big,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["kind"], "InvalidInput");
    // Without a data dir, documents live in memory (issue 15): an unknown one is not found.
    let r = get(addr, "/sync/status").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(
        addr,
        "POST",
        &format!("/docs/{}/sync", "0".repeat(32)),
        "",
        b"",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["kind"], "NotFound");
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_off_loopback_and_checked() {
    let e = builder("open")
        .http_listen("0.0.0.0:0")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("http_token"), "{e}");
    let e = builder("short")
        .http_listen("127.0.0.1:0")
        .http_token("short")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    let a = builder("tok")
        .http_listen("0.0.0.0:0")
        .http_token(TOKEN)
        .start()
        .await
        .unwrap();
    let port = a.http_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(get(addr, "/health").await.status, 200);
    let r = get(addr, "/cluster/members").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["kind"], "Unauthorized");
    assert!(r
        .head
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    let wrong = request(
        addr,
        "GET",
        "/metrics",
        "Authorization: Bearer nope\r\n",
        b"",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let right = request(
        addr,
        "GET",
        "/cluster/members",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        b"",
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.body);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_two_nodes_in_one_process_do_not_mix() {
    let a = http_node("a", None).await;
    let b = http_node("b", None).await;
    a.cache("only-a", None)
        .await
        .unwrap()
        .get("x")
        .await
        .unwrap();
    assert_eq!(get(a.http_addr().unwrap(), "/health").await.status, 200);
    let ma = get(a.http_addr().unwrap(), "/metrics").await.body;
    let mb = get(b.http_addr().unwrap(), "/metrics").await.body;
    assert!(ma.contains(&format!("id=\"{}\"", a.id())), "{ma}");
    assert!(!ma.contains(&format!("id=\"{}\"", b.id())), "{ma}");
    assert!(mb.contains(&format!("id=\"{}\"", b.id())), "{mb}");
    assert!(
        ma.contains("memmesh_cache_misses_total{bucket=\"only-a\"} 1"),
        "{ma}"
    );
    assert!(!mb.contains("only-a"), "{mb}");
    assert!(
        ma.contains("memmesh_http_requests_total{route=\"/health\",status=\"2xx\"} 1"),
        "{ma}"
    );
    assert!(ma.contains("\nmemmesh_memory_used_bytes 0\n"), "{ma}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_sends_events_and_ends_at_shutdown() {
    let a = http_node("a", None).await;
    let addr = a.http_addr().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The hello, then a stats tick within a few seconds.
    let got_stats = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the feed ended early");
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("\"type\":\"stats\"") {
                return;
            }
        }
    })
    .await;
    assert!(got_stats.is_ok(), "{}", String::from_utf8_lossy(&seen));
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(text.contains("\"type\":\"hello\""), "{text}");
    a.shutdown().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the feed did not end at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_drains_over_http() {
    let a = http_node("a", None).await;
    let addr = a.http_addr().unwrap();
    assert_eq!(get(addr, "/health").await.json()["draining"], false);
    let before = get(addr, "/node/drain").await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.json()["draining"], false);
    assert_eq!(before.json()["done"], false);
    let started = request(addr, "POST", "/node/drain", "", b"").await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.json()["draining"], true);
    // Alone with nothing stored, there is nothing to hand off.
    let mut done = false;
    for _ in 0..200 {
        let s = get(addr, "/node/drain").await.json();
        assert_eq!(s["draining"], true);
        if s["done"] == true {
            assert_eq!(s["partitions"], 0);
            assert_eq!(s["files"], 0);
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "the drain of an empty node did not finish");
    assert_eq!(get(addr, "/health").await.json()["draining"], true);
    assert!(a.drain_status().done());
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_tells_document_changes() {
    let data = dir("docfeed");
    let a = http_node("a", Some(&data)).await;
    let addr = a.http_addr().unwrap();
    let docs = a.docs().unwrap();
    let id = docs.create(Reach::Private).await.unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Wait for the hello: the feed is open before the change.
    let opened = tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&seen).contains("\"type\":\"hello\"") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the feed ended early");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(opened.is_ok(), "{}", String::from_utf8_lossy(&seen));
    let doc = docs.open(id).await.unwrap();
    doc.put("title", "drained").await.unwrap();
    let heads = doc.heads().unwrap();
    let wanted = format!("\"id\":\"{id}\"");
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text = String::from_utf8_lossy(&seen).to_string();
            if text.lines().any(|l| {
                l.contains("\"type\":\"doc\"")
                    && l.contains(&wanted)
                    && l.contains(&heads[0])
                    && l.contains("\"paths\":[\"title\"]")
            }) {
                return;
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the feed ended early");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(got.is_ok(), "{}", String::from_utf8_lossy(&seen));
    a.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
