//! The Redis-protocol front with real nodes: a key set through one node's RESP port is
//! read through another's; TTLs, counters, batches, auth, pipelining, inline commands
//! and errors, spoken with a small client built on the crate's own parser.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use memmesh::resp::{parse, write, Protocol, RespLimits, Value};
use memmesh::{ErrorKind, Node, PeerState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    async fn connect(node: &Node) -> Client {
        let addr: SocketAddr = node.redis_addr().expect("a Redis listener");
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, args: &[&str]) {
        let mut out = BytesMut::new();
        let frame = Value::Array(
            args.iter()
                .map(|a| Value::Bulk(Bytes::copy_from_slice(a.as_bytes())))
                .collect(),
        );
        write(&mut out, &frame, Protocol::Resp2);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next reply, or `None` once the server closed the connection.
    async fn read(&mut self) -> Option<Value> {
        loop {
            if let Some((v, used)) = parse(&self.buf, &RespLimits::default()).unwrap() {
                let _ = self.buf.split_to(used);
                return Some(v);
            }
            let n =
                tokio::time::timeout(Duration::from_secs(60), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("a reply in time")
                    .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    async fn cmd(&mut self, args: &[&str]) -> Value {
        self.send(args).await;
        self.read().await.expect("a reply")
    }
}

fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn ok() -> Value {
    Value::Simple("OK".into())
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn error(v: &Value) -> &str {
    match v {
        Value::Error(e) => e,
        other => panic!("not an error: {other:?}"),
    }
}

async fn redis_node(name: &str, seed: Option<&Node>) -> Node {
    let mut b = builder(name).redis_listen("127.0.0.1:0");
    if let Some(seed) = seed {
        b = b.bootstrap([seed.addr().to_string()]);
    }
    b.start().await.unwrap()
}

/// Waits until `a` and `b` each see a live peer.
async fn see_each_other(a: &Node, b: &Node) {
    assert!(
        eventually(Duration::from_secs(30), || [a, b]
            .iter()
            .all(|n| n.peers().iter().any(|p| p.state == PeerState::Alive)))
        .await,
        "the two nodes did not see each other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_through_one_node_is_read_through_another() {
    let a = redis_node("a", None).await;
    let b = redis_node("b", Some(&a)).await;
    see_each_other(&a, &b).await;
    let mut ca = Client::connect(&a).await;
    let mut cb = Client::connect(&b).await;
    assert_eq!(ca.cmd(&["SET", "greeting", "hello"]).await, ok());
    assert_eq!(cb.cmd(&["GET", "greeting"]).await, bulk("hello"));
    assert_eq!(ca.cmd(&["MSET", "k1", "v1", "k2", "v2"]).await, ok());
    assert_eq!(
        cb.cmd(&["MGET", "k1", "nope", "k2"]).await,
        Value::Array(vec![bulk("v1"), Value::Null, bulk("v2")])
    );
    assert_eq!(int(&ca.cmd(&["INCR", "n"]).await), 1);
    assert_eq!(int(&cb.cmd(&["INCRBY", "n", "10"]).await), 11);
    assert_eq!(int(&ca.cmd(&["DECR", "n"]).await), 10);
    assert_eq!(int(&cb.cmd(&["DECRBY", "n", "4"]).await), 6);
    assert_eq!(cb.cmd(&["GET", "n"]).await, bulk("6"));
    assert_eq!(int(&cb.cmd(&["EXISTS", "k1", "k2", "nope"]).await), 2);
    assert_eq!(int(&cb.cmd(&["DEL", "k1", "nope"]).await), 1);
    assert_eq!(ca.cmd(&["GET", "k1"]).await, Value::Null);
    // Databases are buckets: db1 is another key space, on every node.
    assert_eq!(ca.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(ca.cmd(&["GET", "greeting"]).await, Value::Null);
    assert_eq!(ca.cmd(&["SET", "greeting", "db1"]).await, ok());
    assert_eq!(cb.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(cb.cmd(&["GET", "greeting"]).await, bulk("db1"));
    assert_eq!(int(&cb.cmd(&["DBSIZE"]).await), 1);
    assert!(a.caches().iter().any(|(n, _)| n == "db1"));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushdb_when_allowed_clears_the_database_on_every_node() {
    let start = |name: &'static str, seed: Option<String>| async move {
        let mut b = builder(name)
            .redis_listen("127.0.0.1:0")
            .redis_allow_flush(true);
        if let Some(seed) = seed {
            b = b.bootstrap([seed]);
        }
        b.start().await.unwrap()
    };
    let a = start("a", None).await;
    let b = start("b", Some(a.addr().to_string())).await;
    see_each_other(&a, &b).await;
    let mut ca = Client::connect(&a).await;
    let mut cb = Client::connect(&b).await;
    assert_eq!(ca.cmd(&["SET", "k1", "through-a"]).await, ok());
    assert_eq!(cb.cmd(&["SET", "k2", "through-b"]).await, ok());
    assert_eq!(cb.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(cb.cmd(&["SET", "other", "db1"]).await, ok());
    assert_eq!(cb.cmd(&["SELECT", "0"]).await, ok());
    assert_eq!(ca.cmd(&["GET", "k2"]).await, bulk("through-b"));
    assert_eq!(
        error(&ca.cmd(&["FLUSHDB", "LATER"]).await),
        "ERR syntax error"
    );
    assert_eq!(ca.cmd(&["FLUSHDB", "ASYNC"]).await, ok());
    // Gone through both nodes, whichever node they were set through.
    for c in [&mut ca, &mut cb] {
        assert_eq!(c.cmd(&["GET", "k1"]).await, Value::Null);
        assert_eq!(c.cmd(&["GET", "k2"]).await, Value::Null);
        assert_eq!(int(&c.cmd(&["DBSIZE"]).await), 0);
    }
    // Another database is another bucket: untouched. A write after the flush stays.
    assert_eq!(ca.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(ca.cmd(&["GET", "other"]).await, bulk("db1"));
    assert_eq!(cb.cmd(&["SET", "k1", "after"]).await, ok());
    assert_eq!(ca.cmd(&["SELECT", "0"]).await, ok());
    assert_eq!(ca.cmd(&["GET", "k1"]).await, bulk("after"));
    // FLUSHALL clears every database.
    assert_eq!(cb.cmd(&["FLUSHALL"]).await, ok());
    assert_eq!(ca.cmd(&["GET", "k1"]).await, Value::Null);
    assert_eq!(ca.cmd(&["SELECT", "1"]).await, ok());
    assert_eq!(ca.cmd(&["GET", "other"]).await, Value::Null);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_expire_persist_and_set_options() {
    let a = redis_node("a", None).await;
    let mut c = Client::connect(&a).await;
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "100"]).await, ok());
    let ttl = int(&c.cmd(&["TTL", "k"]).await);
    assert!((1..=100).contains(&ttl), "{ttl}");
    let pttl = int(&c.cmd(&["PTTL", "k"]).await);
    assert!((1..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(int(&c.cmd(&["EXPIRE", "k", "50"]).await), 1);
    assert!(int(&c.cmd(&["TTL", "k"]).await) <= 50);
    assert_eq!(int(&c.cmd(&["PERSIST", "k"]).await), 1);
    assert_eq!(int(&c.cmd(&["TTL", "k"]).await), -1);
    assert_eq!(int(&c.cmd(&["PERSIST", "k"]).await), 0);
    assert_eq!(int(&c.cmd(&["TTL", "missing"]).await), -2);
    assert_eq!(int(&c.cmd(&["EXPIRE", "missing", "5"]).await), 0);
    assert_eq!(c.cmd(&["SETEX", "s", "100", "x"]).await, ok());
    assert!(int(&c.cmd(&["TTL", "s"]).await) > 0);
    assert_eq!(c.cmd(&["PSETEX", "p", "100000", "x"]).await, ok());
    assert!(int(&c.cmd(&["PTTL", "p"]).await) > 0);
    // KEEPTTL keeps it; a plain SET drops it.
    assert_eq!(c.cmd(&["SET", "p", "y", "KEEPTTL"]).await, ok());
    assert!(int(&c.cmd(&["PTTL", "p"]).await) > 0);
    assert_eq!(c.cmd(&["SET", "p", "z"]).await, ok());
    assert_eq!(int(&c.cmd(&["PTTL", "p"]).await), -1);
    // NX, XX, GET.
    assert_eq!(c.cmd(&["SET", "p", "no", "NX"]).await, Value::Null);
    assert_eq!(c.cmd(&["SET", "fresh", "1", "XX"]).await, Value::Null);
    assert_eq!(c.cmd(&["SET", "fresh", "1", "NX"]).await, ok());
    assert_eq!(c.cmd(&["SET", "fresh", "2", "XX", "GET"]).await, bulk("1"));
    assert_eq!(c.cmd(&["GETDEL", "fresh"]).await, bulk("2"));
    assert_eq!(c.cmd(&["GETDEL", "fresh"]).await, Value::Null);
    // A short TTL passes (no time is asserted: polled until it does).
    assert_eq!(c.cmd(&["SET", "brief", "v", "PX", "50"]).await, ok());
    let mut gone = false;
    for _ in 0..500 {
        if c.cmd(&["GET", "brief"]).await == Value::Null {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone);
    // EXPIRE with a time in the past deletes.
    assert_eq!(int(&c.cmd(&["EXPIRE", "p", "0"]).await), 1);
    assert_eq!(c.cmd(&["GET", "p"]).await, Value::Null);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_pipelining_and_inline_commands() {
    let a = redis_node("a", None).await;
    let mut c = Client::connect(&a).await;
    assert_eq!(
        error(&c.cmd(&["NOSUCH", "x"]).await),
        "ERR unknown command 'NOSUCH', with args beginning with: 'x' "
    );
    assert_eq!(
        error(&c.cmd(&["get"]).await),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(c.cmd(&["SET", "s", "abc"]).await, ok());
    assert_eq!(
        error(&c.cmd(&["INCR", "s"]).await),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        error(&c.cmd(&["SET", "k", "v", "EX"]).await),
        "ERR syntax error"
    );
    assert_eq!(
        error(&c.cmd(&["SET", "k", "v", "NX", "XX"]).await),
        "ERR syntax error"
    );
    assert!(error(&c.cmd(&["SET", "k", "v", "EX", "0"]).await).contains("invalid expire time"));
    assert_eq!(
        error(&c.cmd(&["SELECT", "99"]).await),
        "ERR DB index is out of range"
    );
    assert!(error(&c.cmd(&["AUTH", "pw"]).await).contains("without any password"));
    // Refused unless the node sets redis_allow_flush (ADR 0021); the key stays.
    assert!(error(&c.cmd(&["FLUSHDB"]).await).contains("set redis_allow_flush"));
    assert!(error(&c.cmd(&["FLUSHALL", "ASYNC"]).await).contains("FLUSHALL is refused"));
    assert_eq!(c.cmd(&["ping"]).await, Value::Simple("PONG".into()));
    assert_eq!(c.cmd(&["EcHo", "hi"]).await, bulk("hi"));
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "me"]).await, ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, bulk("me"));
    assert!(int(&c.cmd(&["CLIENT", "ID"]).await) > 0);
    assert!(matches!(c.cmd(&["COMMAND"]).await, Value::Array(a) if a.len() > 20));
    match c.cmd(&["INFO"]).await {
        Value::Bulk(b) => assert!(String::from_utf8_lossy(&b).contains("redis_version:")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]).await,
        Value::Array(vec![bulk("appendonly"), bulk("no")])
    );
    // Pipelined: many commands in one write, answered in order.
    let mut batch = BytesMut::new();
    for i in 0..200 {
        let frame = Value::Array(vec![bulk("INCR"), bulk("pipe")]);
        write(&mut batch, &frame, Protocol::Resp2);
        if i % 50 == 0 {
            batch.extend_from_slice(b"PING\r\n");
        }
    }
    c.stream.write_all(&batch).await.unwrap();
    for i in 0..200 {
        assert_eq!(c.read().await, Some(Value::Integer(i + 1)));
        if i % 50 == 0 {
            assert_eq!(c.read().await, Some(Value::Simple("PONG".into())));
        }
    }
    // Inline commands.
    c.stream
        .write_all(b"set inline \"two words\"\r\nget inline\r\n")
        .await
        .unwrap();
    assert_eq!(c.read().await, Some(ok()));
    assert_eq!(c.read().await, Some(bulk("two words")));
    // RESP3 after HELLO 3.
    match c.cmd(&["HELLO", "3"]).await {
        Value::Map(m) => assert!(m.contains(&(bulk("proto"), Value::Integer(3)))),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.cmd(&["GET", "missing"]).await, Value::Null);
    assert!(matches!(
        c.cmd(&["CONFIG", "GET", "save"]).await,
        Value::Map(_)
    ));
    assert_eq!(
        error(&c.cmd(&["HELLO", "4"]).await),
        "NOPROTO unsupported protocol version"
    );
    // A protocol error is answered, then the connection is closed.
    c.stream
        .write_all(b"*1\r\n$999999999999\r\n")
        .await
        .unwrap();
    let reply = c.read().await.expect("the protocol error");
    assert!(error(&reply).starts_with("ERR Protocol error"), "{reply:?}");
    assert_eq!(c.read().await, None);
    // QUIT answers OK and closes.
    let mut q = Client::connect(&a).await;
    assert_eq!(q.cmd(&["QUIT"]).await, ok());
    assert_eq!(q.read().await, None);
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_required_before_anything_else() {
    let a = builder("a")
        .redis_listen("127.0.0.1:0")
        .redis_password("s3cret")
        .start()
        .await
        .unwrap();
    let mut c = Client::connect(&a).await;
    assert_eq!(
        error(&c.cmd(&["PING"]).await),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        error(&c.cmd(&["GET", "k"]).await),
        "NOAUTH Authentication required."
    );
    assert!(error(&c.cmd(&["HELLO", "3"]).await).starts_with("NOAUTH"));
    assert!(error(&c.cmd(&["AUTH", "wrong"]).await).starts_with("WRONGPASS"));
    assert!(error(&c.cmd(&["AUTH", "someone", "s3cret"]).await).starts_with("WRONGPASS"));
    assert_eq!(c.cmd(&["AUTH", "s3cret"]).await, ok());
    assert_eq!(c.cmd(&["PING"]).await, Value::Simple("PONG".into()));
    let mut d = Client::connect(&a).await;
    assert!(matches!(
        d.cmd(&["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "x"])
            .await,
        Value::Map(_)
    ));
    assert_eq!(d.cmd(&["CLIENT", "GETNAME"]).await, bulk("x"));
    a.shutdown().await.unwrap();
    // A listener off loopback without a password is refused at start.
    let e = builder("b")
        .redis_listen("0.0.0.0:0")
        .start()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("redis_password"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_stops_at_shutdown() {
    let a = redis_node("a", None).await;
    let addr = a.redis_addr().unwrap();
    let mut c = Client::connect(&a).await;
    assert_eq!(c.cmd(&["PING"]).await, Value::Simple("PONG".into()));
    a.shutdown().await.unwrap();
    assert_eq!(c.read().await, None);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_through_one_node_reaches_subscribers_on_another() {
    let a = redis_node("a", None).await;
    let b = redis_node("b", Some(&a)).await;
    see_each_other(&a, &b).await;
    let mut sub = Client::connect(&b).await;
    let push = |items: Vec<Value>| Value::Array(items);
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]).await,
        push(vec![bulk("subscribe"), bulk("news"), Value::Integer(1)])
    );
    sub.send(&["PSUBSCRIBE", "sport.*"]).await;
    assert_eq!(
        sub.read().await,
        Some(push(vec![
            bulk("psubscribe"),
            bulk("sport.*"),
            Value::Integer(2)
        ]))
    );
    // Subscribed (RESP2): only pub/sub commands and PING.
    assert!(error(&sub.cmd(&["GET", "k"]).await).contains("only (P|S)SUBSCRIBE"));
    assert_eq!(sub.cmd(&["PING"]).await, push(vec![bulk("pong"), bulk("")]));
    // RESP3 subscriber on a's own node.
    let mut local = Client::connect(&a).await;
    assert!(matches!(local.cmd(&["HELLO", "3"]).await, Value::Map(_)));
    assert_eq!(
        local.cmd(&["SUBSCRIBE", "news"]).await,
        Value::Push(vec![bulk("subscribe"), bulk("news"), Value::Integer(1)])
    );
    let mut publisher = Client::connect(&a).await;
    // Counts this node's receivers (as Redis Cluster does); b's get it too.
    assert_eq!(int(&publisher.cmd(&["PUBLISH", "news", "hello"]).await), 1);
    assert_eq!(
        sub.read().await,
        Some(push(vec![bulk("message"), bulk("news"), bulk("hello")]))
    );
    assert_eq!(
        local.read().await,
        Some(Value::Push(vec![
            bulk("message"),
            bulk("news"),
            bulk("hello")
        ]))
    );
    assert_eq!(
        int(&publisher.cmd(&["PUBLISH", "sport.tennis", "ace"]).await),
        0
    );
    assert_eq!(
        sub.read().await,
        Some(push(vec![
            bulk("pmessage"),
            bulk("sport.*"),
            bulk("sport.tennis"),
            bulk("ace")
        ]))
    );
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]).await,
        push(vec![bulk("unsubscribe"), bulk("news"), Value::Integer(1)])
    );
    sub.send(&["PUNSUBSCRIBE"]).await;
    assert_eq!(
        sub.read().await,
        Some(push(vec![
            bulk("punsubscribe"),
            bulk("sport.*"),
            Value::Integer(0)
        ]))
    );
    // Out of subscribed mode, commands work again.
    assert_eq!(sub.cmd(&["GET", "k"]).await, Value::Null);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_pubsub_reaches_shard_subscribers_on_another_node() {
    let a = redis_node("a", None).await;
    let b = redis_node("b", Some(&a)).await;
    see_each_other(&a, &b).await;
    // RESP2 shard subscriber on b, also subscribed to a plain channel of the same name.
    let mut sub = Client::connect(&b).await;
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "orders"]).await,
        Value::Array(vec![bulk("ssubscribe"), bulk("orders"), Value::Integer(1)])
    );
    // Sharded channels are counted apart from channels and patterns, as Redis 7 does.
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "orders"]).await,
        Value::Array(vec![bulk("subscribe"), bulk("orders"), Value::Integer(1)])
    );
    assert!(error(&sub.cmd(&["GET", "k"]).await).contains("only (P|S)SUBSCRIBE"));
    // RESP3 shard subscriber on a.
    let mut local = Client::connect(&a).await;
    assert!(matches!(local.cmd(&["HELLO", "3"]).await, Value::Map(_)));
    assert_eq!(
        local.cmd(&["SSUBSCRIBE", "orders"]).await,
        Value::Push(vec![bulk("ssubscribe"), bulk("orders"), Value::Integer(1)])
    );
    let mut publisher = Client::connect(&a).await;
    assert_eq!(
        publisher.cmd(&["PUBSUB", "SHARDCHANNELS"]).await,
        Value::Array(vec![bulk("orders")])
    );
    assert_eq!(
        publisher
            .cmd(&["PUBSUB", "SHARDNUMSUB", "orders", "none"])
            .await,
        Value::Array(vec![
            bulk("orders"),
            Value::Integer(1),
            bulk("none"),
            Value::Integer(0)
        ])
    );
    assert_eq!(
        publisher.cmd(&["PUBSUB", "CHANNELS"]).await,
        Value::Array(vec![])
    );
    // Counts this node's receivers; b's shard subscriber gets it too, as `smessage`.
    assert_eq!(int(&publisher.cmd(&["SPUBLISH", "orders", "o1"]).await), 1);
    assert_eq!(
        local.read().await,
        Some(Value::Push(vec![
            bulk("smessage"),
            bulk("orders"),
            bulk("o1")
        ]))
    );
    assert_eq!(
        sub.read().await,
        Some(Value::Array(vec![
            bulk("smessage"),
            bulk("orders"),
            bulk("o1")
        ]))
    );
    // A PUBLISH on the same name reaches only the plain subscription.
    assert_eq!(int(&publisher.cmd(&["PUBLISH", "orders", "p1"]).await), 0);
    assert_eq!(
        sub.read().await,
        Some(Value::Array(vec![
            bulk("message"),
            bulk("orders"),
            bulk("p1")
        ]))
    );
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE"]).await,
        Value::Array(vec![
            bulk("sunsubscribe"),
            bulk("orders"),
            Value::Integer(0)
        ])
    );
    // Still subscribed to the plain channel: still in subscribed mode.
    assert!(error(&sub.cmd(&["GET", "k"]).await).contains("only (P|S)SUBSCRIBE"));
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]).await,
        Value::Array(vec![bulk("unsubscribe"), bulk("orders"), Value::Integer(0)])
    );
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE"]).await,
        Value::Array(vec![bulk("sunsubscribe"), Value::Null, Value::Integer(0)])
    );
    assert_eq!(sub.cmd(&["GET", "k"]).await, Value::Null);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A numeric field of `INFO memmesh`.
async fn info_field(c: &mut Client, name: &str) -> u64 {
    let info = match c.cmd(&["INFO", "memmesh"]).await {
        Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// The `cache_read_requests` and `cache_reads_sent` counters of `INFO memmesh`.
async fn read_counts(c: &mut Client) -> (u64, u64) {
    (
        info_field(c, "cache_read_requests").await,
        info_field(c, "cache_reads_sent").await,
    )
}

/// Concurrent `MGET`s (`get_many`) of keys another node holds travel together in shared
/// `Get` requests (`cache/readbox.rs`), as single reads do: fewer requests than calls,
/// and each call still gets exactly its own values in its own order, misses included,
/// also when large values overflow a reply (the rest is asked again). And `INFO memmesh`
/// reports the routing epoch a join moves, and the write transition that follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mgets_share_requests_and_each_gets_its_own_values() {
    let start = |name: &'static str, seed: Option<String>| async move {
        // Small messages, so that two large values never fit in one reply.
        let mut b = builder(name)
            .redis_listen("127.0.0.1:0")
            .max_message_size(64 * 1024);
        if let Some(seed) = seed {
            b = b.bootstrap([seed]);
        }
        b.start().await.unwrap()
    };
    let a = start("a", None).await;
    let mut info = Client::connect(&a).await;
    let alone = info_field(&mut info, "cache_routing_epoch").await;
    let b = start("b", Some(a.addr().to_string())).await;
    see_each_other(&a, &b).await;
    // A join changes the owners: a new routing epoch, and for a while every write also
    // goes to the previous owners (reported, so that an operator or a benchmark can tell).
    let mut epoch = alone;
    for _ in 0..300 {
        epoch = info_field(&mut info, "cache_routing_epoch").await;
        if epoch > alone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        epoch > alone,
        "the routing epoch stayed at {alone} after a join"
    );
    let left = info_field(&mut info, "cache_write_transition_ms").await;
    let most = memmesh::cache::WRITE_TRANSITION.as_millis() as u64;
    assert!(left > 0 && left <= most, "{left} ms of transition left");
    // db0 with one copy of each key, so about half of what `a` reads is held by `b`.
    let one = memmesh::CacheOptions {
        replicas: 1,
        ..memmesh::CacheOptions::default()
    };
    let ca = a.cache("db0", Some(one)).await.unwrap();
    let cb = b.cache("db0", None).await.unwrap();
    let key = |i: usize| format!("m{i}");
    let value = |i: usize| {
        if i.is_multiple_of(25) {
            vec![(i % 251) as u8; 24 * 1024]
        } else {
            format!("value-{i}").into_bytes()
        }
    };
    for i in 0..400 {
        cb.set(&key(i), Bytes::from(value(i)), None).await.unwrap();
    }
    let remote: Vec<bool> = (0..400)
        .map(|i| !ca.owners(&key(i)).contains(&a.id()))
        .collect();
    let (requests_before, sent_before) = read_counts(&mut info).await;
    let mut clients = Vec::new();
    for _ in 0..32 {
        clients.push(Client::connect(&a).await);
    }
    let (mut calls, mut remote_keys) = (0u64, 0u64);
    for round in 0..5 {
        // Each client asks 16 keys of its own, and one that does not exist.
        let asks: Vec<Vec<usize>> = (0..32)
            .map(|c| (0..16).map(|j| (round * 61 + c * 16 + j) % 400).collect())
            .collect();
        for ask in &asks {
            if ask.iter().any(|&i| remote[i]) {
                calls += 1;
            }
            remote_keys += ask.iter().filter(|&&i| remote[i]).count() as u64;
        }
        let mgets = clients.iter_mut().zip(&asks).map(|(c, ask)| async move {
            let mut args = vec!["MGET".to_string()];
            args.extend(ask.iter().map(|&i| key(i)));
            args.push(format!("absent-{round}"));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            c.cmd(&args).await
        });
        let replies = futures::future::join_all(mgets).await;
        for (reply, ask) in replies.into_iter().zip(&asks) {
            let mut want: Vec<Value> = ask
                .iter()
                .map(|&i| Value::Bulk(Bytes::from(value(i))))
                .collect();
            want.push(Value::Null);
            assert_eq!(reply, Value::Array(want), "round {round}: {ask:?}");
        }
    }
    let (requests, sent) = read_counts(&mut info).await;
    let (requests, sent) = (requests - requests_before, sent - sent_before);
    assert!(
        sent >= remote_keys,
        "{sent} keys sent for {remote_keys} remote keys asked"
    );
    assert!(
        requests < calls,
        "{calls} MGETs with remote keys took {requests} requests: none shared"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
